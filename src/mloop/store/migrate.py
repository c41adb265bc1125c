"""Schema migrations: bring a metadata database to the revision this mloop needs.

Alembic is configured in code (no ``alembic.ini``), with the scripts in the ``migrations``
folder beside this module, so upgrades work from an installed wheel. :func:`upgrade` is called
when a store opens: when the database is already at head it costs one query; otherwise it takes
a lock that serialises every process starting at once (``BEGIN IMMEDIATE`` on SQLite, whose DDL
is transactional; a transaction-scoped advisory lock on PostgreSQL), re-reads the revision under
the lock and runs the missing revisions in that same transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from mloop.errors import MigrationError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The newest revision in ``migrations/versions`` (a test checks it against Alembic's view), so
#: that opening a store already at head never imports Alembic.
HEAD_REVISION = "0007"

#: Execution option read by the SQLite engine's "begin" hook (see sqlite.py): "write" emits
#: BEGIN IMMEDIATE, anything else a deferred BEGIN.
TXN_OPTION = "mloop_txn"

# Any fixed 64-bit number; every mloop process migrating a PostgreSQL database takes this lock.
_PG_LOCK_KEY = 0x6D6C6F6F70_01  # "mloop" + 1


def alembic_config() -> Config:
    """The Alembic configuration of the metadata store, built in code."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    return config


def head_revision() -> str:
    """The newest revision this version of mloop knows (read from the migration scripts)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revision 0001
        raise MigrationError("mloop ships no schema migrations; the installation is broken")
    return head


def _revision_on(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    try:
        with engine.connect() as conn:
            return _revision_on(conn)
    except SQLAlchemyError as exc:
        raise MigrationError(
            f"cannot read the schema revision of {_safe_url(engine)}: {_reason(exc)}"
        ) from exc


def _fast_revision(engine: Engine) -> str | None:
    """One query; None when the version table is missing (or anything else goes wrong)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        return None
    return rows[0][0] if len(rows) == 1 else None


def upgrade(engine: Engine) -> None:
    """Bring the database to the head revision; safe when several processes start at once.

    SQLite engines must come from :func:`mloop.store.sqlite.make_engine`, whose "begin" hook
    turns the write transaction into ``BEGIN IMMEDIATE``. Raises MigrationError.
    """
    if _fast_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    head = head_revision()
    try:
        with engine.connect().execution_options(**{TXN_OPTION: "write"}) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
            current = _revision_on(conn)  # re-read under the lock: another process may be done
            if current == head:
                return
            known = {
                rev.revision
                for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()
            }
            if current is not None and current not in known:
                raise MigrationError(
                    f"the metadata database at {_safe_url(engine)} is at schema revision "
                    f"{current!r}, which this mloop does not know (it knows up to {head!r}); "
                    "it was written by a newer mloop — upgrade mloop (pip install -U mloop)"
                )
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except MigrationError:
        raise
    except Exception as exc:
        raise MigrationError(
            f"could not bring the metadata database at {_safe_url(engine)} to schema revision "
            f"{head}: {_reason(exc)}. Nothing was changed (the upgrade runs in one transaction); "
            "check that the database is reachable and writable and that no other tool altered "
            "its tables, then retry"
        ) from exc


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]
