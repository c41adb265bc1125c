"""The SQLite metadata store: only the engine and its connection settings.

Every connection runs in WAL mode with ``synchronous=NORMAL``, foreign keys on, a busy timeout
from ``sqlite_busy_timeout`` and case-sensitive LIKE (the search compiler relies on it). The
driver's own transaction handling is turned off so that SQLAlchemy's "begin" event can emit the
right BEGIN: ``BEGIN IMMEDIATE`` for write transactions, so that writers queue on the busy
timeout instead of deadlocking on a lock upgrade, and a deferred ``BEGIN`` for reads, which in
WAL mode never block nor are blocked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from mloop.config import Settings, load_settings
from mloop.errors import ConfigError
from mloop.store.migrate import TXN_OPTION
from mloop.store.queries import run_on_cursor
from mloop.store.sql import SqlStore

__all__ = ["SQLiteStore", "attach_hooks", "database_path", "make_engine"]


def database_path(uri: str) -> Path:
    """The file a ``sqlite:///path.db`` URI names. Raises ConfigError for in-memory URIs."""
    try:
        url = make_url(uri)
    except ArgumentError:
        raise ConfigError(f"{uri!r} is not a valid database URI") from None
    if url.get_backend_name() != "sqlite":
        raise ConfigError(f"{uri!r} is not a sqlite:/// URI")
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise ConfigError(
            f"the SQLite metadata store needs a file, got {uri!r}; "
            "use sqlite:///path/to/mloop.db (three slashes, then the path)"
        )
    return Path(database).expanduser()


def make_engine(path: Path, settings: Settings) -> Engine:
    """An engine on the SQLite file at ``path`` with mloop's pragmas and BEGIN handling."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sqlalchemy.create_engine(
        f"sqlite:///{path.as_posix()}",
        connect_args={"timeout": settings.sqlite_busy_timeout, "check_same_thread": False},
    )
    attach_hooks(engine, settings)
    return engine


def attach_hooks(engine: Engine, settings: Settings, *, always_immediate: bool = False) -> None:
    """Give a SQLite ``engine`` mloop's pragmas and BEGIN handling (see the module docstring).

    ``always_immediate`` starts every transaction with ``BEGIN IMMEDIATE``, for code that does
    not mark its write transactions (Optuna's storage): a deferred transaction that reads and
    then writes would fail at once with "database is locked" when another process wrote in
    between. Connections the engine made before this call do not have the hooks.
    """
    timeout = settings.sqlite_busy_timeout

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # None = the driver never BEGINs or COMMITs on its own; the "begin" hook decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA case_sensitive_like = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = always_immediate or conn.get_execution_options().get(TXN_OPTION) == "write"
        # On the driver's cursor: this runs for every transaction, and SQLAlchemy's
        # statement machinery costs more than the BEGIN.
        run_on_cursor(conn, "BEGIN IMMEDIATE" if write else "BEGIN", ())


class SQLiteStore(SqlStore):
    """The metadata store in one SQLite file (WAL mode), the embedded default."""

    dialect_insert = staticmethod(sqlite_insert)

    def __init__(self, uri: str, *, settings: Settings | None = None, migrate: bool = True) -> None:
        settings = settings or load_settings()
        self.path = database_path(uri)
        super().__init__(uri, make_engine(self.path, settings), settings=settings, migrate=migrate)
