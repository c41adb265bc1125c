"""``mloop data add|list|show|diff|get`` on table versions (folders: tests/cli/test_folders.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mloop.data.digest import table_digest
from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    first = pd.DataFrame({"amount": rng.normal(100, 10, 200), "city": rng.choice(["a", "b"], 200)})
    second = first.assign(amount=first["amount"] + 50, channel="web")
    paths = (tmp_path / "v1.parquet", tmp_path / "v2.csv")
    first.to_parquet(paths[0], index=False)
    second.to_csv(paths[1], index=False)
    return paths


def test_add_list_show_diff_get(invoke: Invoke, tables: tuple[Path, Path], tmp_path: Path) -> None:
    v1 = as_json(invoke("data", "add", "tx", str(tables[0]), "--tag", "source=test", "--json"))
    assert (v1["ref"], v1["created"], v1["rows"]) == ("tx@v1", True, 200)
    again = as_json(invoke("data", "add", "tx", str(tables[0]), "--json"))
    assert (again["ref"], again["created"]) == ("tx@v1", False)
    text = invoke("data", "add", "tx", str(tables[1]), "--parent", "tx@v1")
    assert text.exit_code == 0, text.output
    assert "added tx@v2" in text.stdout

    listed = as_json(invoke("data", "list", "--json"))
    assert listed[0]["name"] == "tx" and listed[0]["versions"] == 2
    assert "tx" in invoke("data", "list").stdout
    versions = as_json(invoke("data", "list", "tx", "--json"))
    assert [v["version"] for v in versions] == [1, 2]
    assert "v2" in invoke("data", "list", "tx").stdout

    shown = as_json(invoke("data", "show", "tx@v2", "--json"))
    assert shown["parents"] == ["tx@v1"]
    assert shown["profile"]["rows"] == 200
    human = invoke("data", "show", "tx")
    assert human.exit_code == 0 and "tx@v2" in human.stdout and "amount" in human.stdout

    diff = as_json(invoke("data", "diff", "tx@v1", "tx@v2", "--json"))
    assert diff["columns"]["added"] == ["channel"]
    assert any(s["column"] == "amount" and s["statistic"] == "mean" for s in diff["statistics"])
    assert "channel" in invoke("data", "diff", "tx@v1", "tx@v2").stdout

    target = tmp_path / "out.parquet"
    got = as_json(invoke("data", "get", "tx@v1", str(target), "--json"))
    assert got["path"] == str(target)
    assert table_digest(pq.read_table(target)) == v1["digest"]
    assert_one_error_line(invoke("data", "get", "tx@v1", str(target)))
    assert invoke("data", "get", "tx@v1", str(target), "--overwrite").exit_code == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("data", "show", "missing"), "no dataset named"),
        (("data", "show", "tx@vx"), "not NAME"),
        (("data", "add", "bad name", "x.parquet"), ""),
        (("data", "add", "tx", "/no/such/file.parquet"), "no such"),
        (("data", "diff", "a@v1", "b@v1"), "no dataset"),
        (("data", "get", "nothing@v1"), "no dataset"),
        (("data", "list", "nothing"), "no dataset"),
    ],
)
def test_errors_are_one_line(invoke: Invoke, args: tuple[str, ...], match: str) -> None:
    line = assert_one_error_line(invoke(*args))
    assert match in line


def test_bad_tag_is_one_line(invoke: Invoke, tables: tuple[Path, Path]) -> None:
    line = assert_one_error_line(invoke("data", "add", "tx", str(tables[0]), "--tag", "novalue"))
    assert "KEY=VALUE" in line
    assert "tx" not in invoke("data", "list").stdout


def test_data_commands_take_dataset_versions(
    invoke: Invoke, tables: tuple[Path, Path], tmp_path: Path
) -> None:
    assert invoke("data", "add", "tx", str(tables[0])).exit_code == 0
    assert invoke("data", "add", "tx", str(tables[1])).exit_code == 0
    profile = as_json(invoke("data", "profile", "tx@v1", "--json"))
    assert profile["rows"] == 200
    drift = invoke("data", "drift", "tx@v1", "tx@v2", "--json")
    assert drift.exit_code == 3, drift.output
    report = json.loads(drift.stdout)
    assert report["reference_is_profile"] is True
    assert "amount" in {c["column"] for c in report["columns"] if c["drifted"]}
    suite = tmp_path / "suite.yaml"
    assert invoke("data", "suggest", "tx@v1", "--output", str(suite)).exit_code == 0
    assert invoke("data", "validate", "tx@v1", "--suite", str(suite)).exit_code == 0
    shown = as_json(invoke("data", "show", "tx@v1", "--json"))
    assert [v["success"] for v in shown["validations"]] == [True]
    assert "passed" in invoke("data", "show", "tx@v1").stdout
    line = assert_one_error_line(invoke("data", "profile", "nothing@v1"))
    assert "neither a file nor a dataset version" in line


def test_folders(invoke: Invoke, tmp_path: Path) -> None:
    tree = tmp_path / "docs"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a\n")
    (tree / "sub" / "b.txt").write_text("b\n")
    v1 = as_json(invoke("data", "add", "docs", str(tree), "--json"))
    assert (v1["kind"], v1["files"]) == ("files", 2)
    (tree / "a.txt").write_text("changed\n")
    assert "added docs@v2" in invoke("data", "add", "docs", str(tree)).stdout
    diff = as_json(invoke("data", "diff", "docs@v1", "docs@v2", "--json"))
    assert diff["files"]["modified"] == ["a.txt"]
    assert "a.txt" in invoke("data", "diff", "docs@v1", "docs@v2").stdout
    dest = tmp_path / "restored"
    assert invoke("data", "get", "docs@v1", str(dest)).exit_code == 0
    assert (dest / "a.txt").read_text() == "a\n"
    assert (dest / "sub" / "b.txt").read_text() == "b\n"
    assert_one_error_line(invoke("data", "get", "docs@v1", str(dest)))
    line = assert_one_error_line(invoke("data", "drift", "docs@v1", str(tree / "a.txt")))
    assert "folder of files" in line
