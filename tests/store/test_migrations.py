"""Migrations build exactly schema.py, run once, and survive several processes at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mloop.errors import MigrationError
from mloop.store import migrate, open_store
from mloop.store.schema import metadata
from tests.fixtures.stores import test_settings


def test_head_revision() -> None:
    assert migrate.head_revision() == migrate.HEAD_REVISION == "0007"
    assert migrate.alembic_config().get_main_option("script_location")


def test_migrated_schema_equals_schema_py(store_uri: str, tmp_path: Path) -> None:
    store = open_store(store_uri, settings=test_settings(tmp_path))
    try:
        engine = store.engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            tables = set(conn.dialect.get_table_names(conn))
        assert tables == {t.name for t in metadata.sorted_tables} | {"alembic_version"}
    finally:
        store.close()


def test_open_is_idempotent_and_migrate_false(store_uri: str, tmp_path: Path) -> None:
    settings = test_settings(tmp_path)
    bare = open_store(store_uri, settings=settings, migrate=False)
    assert bare.schema_revision() is None
    bare.close()
    for _ in range(2):
        store = open_store(store_uri, settings=settings)
        assert store.schema_revision() == migrate.head_revision()
        store.close()


def test_unknown_revision_is_a_migration_error(store_uri: str, tmp_path: Path) -> None:
    settings = test_settings(tmp_path)
    store = open_store(store_uri, settings=settings)
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    store.close()
    with pytest.raises(MigrationError, match="newer mloop"):
        open_store(store_uri, settings=settings)


WORKER = """
import sys, time
from mloop.config import load_settings
from mloop.store import open_store
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
store = open_store(sys.argv[1], settings=load_settings(overrides={"home": sys.argv[3]}, environ={}))
print(store.schema_revision())
store.close()
"""


@pytest.mark.slow
def test_four_processes_open_a_fresh_store_at_once(store_uri: str, tmp_path: Path) -> None:
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, store_uri, str(start), str(tmp_path / "home")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == migrate.head_revision()


def test_upgrade_from_0001_keeps_data(store_uri: str, tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    settings = test_settings(tmp_path)
    bare = open_store(store_uri, settings=settings, migrate=False)
    engine = bare.engine  # type: ignore[attr-defined]
    with engine.connect() as conn, conn.begin():
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "INSERT INTO experiments (name, lifecycle, created_at, updated_at) "
                "VALUES ('kept', 'active', 1, 1)"
            )
        )
    bare.close()
    store = open_store(store_uri, settings=settings)
    try:
        assert store.schema_revision() == "0007"
        assert store.get_experiment_by_name("kept") is not None
    finally:
        store.close()
