"""mloop artifacts: ls and get (verified downloads)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke, Populated


def test_ls(invoke: Invoke, populated: Populated) -> None:
    run_id = populated.children[0]
    result = invoke("artifacts", "ls", run_id)
    assert result.exit_code == 0, result.output
    assert "reports/summary.txt" in result.stdout and "config.json" in result.stdout

    doc = as_json(invoke("artifacts", "ls", run_id, "reports/", "--json"))
    assert doc["run_id"] == run_id
    assert [a["path"] for a in doc["artifacts"]] == ["reports/summary.txt"]
    entry = doc["artifacts"][0]
    assert entry["size"] == len(b"report 0\n") and len(entry["digest"]) == 64


def test_ls_empty(invoke: Invoke, populated: Populated) -> None:
    result = invoke("artifacts", "ls", populated.other, "nothing/")
    assert result.exit_code == 0
    assert "no artifacts under 'nothing/'" in result.stdout


def test_get_one_file(invoke: Invoke, populated: Populated, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    result = invoke("artifacts", "get", populated.children[1], "config.json", "--dest", str(dest))
    assert result.exit_code == 0, result.output
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["config.json"]
    assert json.loads(files[0].read_text()) == {"lr": 0.01}
    assert "verified" in result.stdout


def test_get_everything_json(invoke: Invoke, populated: Populated, tmp_path: Path) -> None:
    dest = tmp_path / "all"
    doc = as_json(invoke("artifacts", "get", populated.children[0], "--dest", str(dest), "--json"))
    assert {f["path"] for f in doc["files"]} >= {"reports/summary.txt", "config.json"}
    assert (dest / "reports" / "summary.txt").read_text() == "report 0\n"


def test_get_missing_path(invoke: Invoke, populated: Populated, tmp_path: Path) -> None:
    assert_one_error_line(
        invoke("artifacts", "get", populated.children[0], "nope.txt", "--dest", str(tmp_path))
    )


def test_ls_unknown_run(invoke: Invoke, mloop_home: Path) -> None:
    assert_one_error_line(invoke("artifacts", "ls", "0" * 32))
