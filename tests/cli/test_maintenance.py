"""mloop gc, db, audit, doctor and config."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke, Populated


def test_gc(invoke: Invoke, populated: Populated) -> None:
    result = invoke("gc", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.stdout

    doc = as_json(invoke("gc", "--grace", "0", "--json"))
    assert set(doc["gc"]) >= {"scanned", "deleted", "freed_bytes", "kept_young", "dry_run"}
    assert doc["gc"]["deleted"] == 0  # everything is referenced


def test_gc_purge_deleted_frees_blobs(invoke: Invoke, populated: Populated) -> None:
    invoke("runs", "delete", *populated.children)
    doc = as_json(invoke("gc", "--purge-deleted", "--grace", "0", "--json"))
    assert doc["gc"]["deleted"] >= 1 and doc["gc"]["freed_bytes"] > 0


def test_gc_bad_grace(invoke: Invoke, mloop_home: Path) -> None:
    assert invoke("gc", "--grace", "-1").exit_code == 2


def test_db_current_and_upgrade(invoke: Invoke, mloop_home: Path) -> None:
    before = as_json(invoke("db", "current", "--json"))
    assert before["current"] is None and before["up_to_date"] is False
    up = as_json(invoke("db", "upgrade", "--json"))
    assert up["before"] is None and up["after"] == before["head"] and up["changed"]
    after = as_json(invoke("db", "current", "--json"))
    assert after["up_to_date"] is True

    again = invoke("db", "upgrade")
    assert again.exit_code == 0 and "already" in again.stdout
    table = invoke("db", "current")
    assert "up to date" in table.stdout


def test_audit_verify(invoke: Invoke, populated: Populated) -> None:
    result = invoke("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "verifies" in result.stdout
    doc = as_json(invoke("audit", "verify", "--json"))
    assert doc["ok"] is True and doc["events_checked"] > 0 and doc["problems"] == []


def corrupt_audit(home: Path) -> None:
    """Edit the first audit event behind mloop's back."""
    engine = sqlalchemy.create_engine(f"sqlite:///{home / 'mloop.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    finally:
        engine.dispose()


def test_corrupted_audit_log_fails_verify(
    invoke: Invoke, populated: Populated, mloop_home: Path
) -> None:
    corrupt_audit(mloop_home)
    result = invoke("audit", "verify")
    assert result.exit_code == 1
    assert "hash mismatch" in result.stdout
    assert_one_error_line(result)

    doc_result = invoke("audit", "verify", "--json")
    assert doc_result.exit_code == 1
    import json

    doc = json.loads(doc_result.stdout)
    assert doc["ok"] is False and doc["problems"][0]["seq"] == 1

    doctor = invoke("doctor")
    assert doctor.exit_code == 1
    assert "✗ audit log" in doctor.stdout


def test_audit_log(invoke: Invoke, populated: Populated) -> None:
    result = invoke("audit", "log", "-n", "5")
    assert result.exit_code == 0, result.output
    assert "run." in result.stdout
    doc = as_json(invoke("audit", "log", "--json", "-n", "3"))
    assert len(doc["events"]) == 3
    seqs = [e["seq"] for e in doc["events"]]
    assert seqs == sorted(seqs)
    assert {"seq", "ts", "actor", "action", "object_type", "object_id", "hash"} <= set(
        doc["events"][0]
    )
    about = as_json(invoke("audit", "log", "--object-id", populated.other, "--json"))
    assert about["events"] and {e["object_id"] for e in about["events"]} == {populated.other}


def test_doctor(invoke: Invoke, populated: Populated) -> None:
    result = invoke("doctor")
    assert result.exit_code == 0, result.output
    for name in ("settings", "metadata store", "artifact store", "stale runs", "audit log"):
        assert f"✓ {name}" in result.stdout
    assert "WAL" in result.stdout

    doc = as_json(invoke("doctor", "--json"))
    assert doc["ok"] is True
    names = [c["name"] for c in doc["checks"]]
    assert {"extra [postgres]", "extra [s3]", "extra [ray]"} <= set(names)
    for check in doc["checks"]:
        assert set(check) == {"name", "ok", "detail", "fix", "essential"}
        if not check["ok"]:
            assert check["fix"].startswith("pip install 'mloop[")


def test_doctor_reports_a_broken_config(invoke: Invoke, mloop_home: Path) -> None:
    result = invoke("doctor", env={"MLOOP_GC_GRACE": "soon"})
    assert result.exit_code == 1
    assert "✗ settings" in result.stdout
    assert "MLOOP_GC_GRACE" in result.stdout


def test_doctor_reports_an_old_schema(invoke: Invoke, mloop_home: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    # Creating the empty file first; doctor must not migrate it.
    sqlalchemy.create_engine(uri).dispose()
    result = invoke("--tracking-uri", uri, "doctor")
    assert result.exit_code == 1
    assert "✗ metadata store" in result.stdout and "mloop db upgrade" in result.stdout


def test_config(invoke: Invoke, mloop_home: Path) -> None:
    result = invoke("config", env={"MLOOP_GC_GRACE": "60"})
    assert result.exit_code == 0, result.output
    assert "MLOOP_GC_GRACE" in result.stdout and "environment" in result.stdout

    doc = as_json(invoke("config", "--json", env={"MLOOP_GC_GRACE": "60"}))
    rows = {r["name"]: r for r in doc["settings"]}
    assert rows["gc_grace"]["value"] == 60.0
    assert rows["gc_grace"]["default"] == 3600.0
    assert rows["gc_grace"]["source"] == "environment (MLOOP_GC_GRACE)"
    assert rows["home"]["source"].startswith("environment")
    assert rows["writer_batch_size"]["source"] == "default"
    assert rows["tracking_uri"]["source"] == "derived from home"


def test_config_sources(invoke: Invoke, mloop_home: Path) -> None:
    mloop_home.mkdir(parents=True)
    (mloop_home / "config.toml").write_text("[mloop]\nactor = 'ci-bot'\n")
    doc = as_json(invoke("--tracking-uri", "sqlite:///x.db", "config", "--json"))
    rows = {r["name"]: r for r in doc["settings"]}
    assert rows["actor"] == rows["actor"] | {"value": "ci-bot", "source": "config file"}
    assert rows["tracking_uri"]["source"] == "override"
    assert doc["config_file_exists"] is True


def test_config_error_is_one_line(invoke: Invoke, mloop_home: Path) -> None:
    line = assert_one_error_line(invoke("runs", "list", env={"MLOOP_WRITER_BATCH_SIZE": "lots"}))
    assert "MLOOP_WRITER_BATCH_SIZE" in line
