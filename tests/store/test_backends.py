"""Choosing and configuring backends by URI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mloop.errors import ConfigError, MissingExtra
from mloop.store import BACKENDS, open_store
from mloop.store.postgres import normalize_uri
from mloop.store.sqlite import SQLiteStore, database_path
from tests.fixtures.stores import test_settings


def test_unknown_scheme_lists_supported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sqlite://") as info:
        open_store("mysql://u:secret@h/db", settings=test_settings(tmp_path))
    assert "secret" not in str(info.value)
    assert "postgresql://" in str(info.value)
    with pytest.raises(ConfigError):
        open_store("no-scheme", settings=test_settings(tmp_path))


def test_registry_names_importable_classes() -> None:
    for target in BACKENDS.values():
        module, _, name = target.partition(":")
        assert importlib.util.find_spec(module) is not None, target
        assert name


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:"])
def test_sqlite_needs_a_file(uri: str) -> None:
    with pytest.raises(ConfigError, match="needs a file"):
        database_path(uri)


def test_sqlite_creates_parent_folder_and_pragmas(tmp_path: Path) -> None:
    uri = f"sqlite:///{(tmp_path / 'a' / 'b' / 'm.db').as_posix()}"
    store = open_store(uri, settings=test_settings(tmp_path))
    try:
        assert isinstance(store, SQLiteStore) and store.path.exists()
        with store.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 60_000,
        }
    finally:
        store.close()


def test_empty_uri_uses_settings(tmp_path: Path) -> None:
    settings = test_settings(tmp_path)
    store = open_store("", settings=settings)
    try:
        assert store.uri == settings.tracking_uri
    finally:
        store.close()


@pytest.mark.parametrize(
    "uri",
    ["postgresql://u:p@h/db", "postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"],
)
def test_postgres_uri_is_rewritten_to_psycopg(uri: str) -> None:
    assert normalize_uri(uri) == "postgresql+psycopg://u:p@h/db"


def test_postgres_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.store import postgres

    real = importlib.util.find_spec
    monkeypatch.setattr(
        postgres.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "psycopg" else real(name, *a),
    )
    with pytest.raises(MissingExtra, match=r"mloop\[postgres\]"):
        postgres.PostgresStore("postgresql://u:p@127.0.0.1/db")


def test_unreachable_postgres_is_a_backend_error(tmp_path: Path) -> None:
    from mloop.errors import BackendError, MigrationError

    with pytest.raises((BackendError, MigrationError)):
        open_store("postgresql://nobody:x@127.0.0.1:1/none", settings=test_settings(tmp_path))
