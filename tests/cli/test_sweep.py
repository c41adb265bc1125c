"""``mloop sweep`` on a small project in a temp folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke

pytest.importorskip("optuna")

FLOWS = """
from mloop.pipelines import pipeline, step


@step
def make(x: int, kind: str, lr: float) -> dict:
    return {"x": x, "kind": kind, "lr": lr}


@step
def evaluate(data: dict) -> dict:
    return {"score": -((data["x"] - 5) ** 2) + (1 if data["kind"] == "b" else 0)}


@pipeline
def flow(x: int = 1, kind: str = "a", lr: float = 0.1):
    evaluate(make(x, kind, lr))


@step
def quad(x: float) -> float:
    return -((x - 2.0) ** 2)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloop_home: Path) -> Iterator[Path]:
    package = tmp_path / "proj" / "swcli"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(FLOWS)
    monkeypatch.chdir(tmp_path / "proj")
    yield package
    for name in [m for m in sys.modules if m == "swcli" or m.startswith("swcli.")]:
        del sys.modules[name]


def test_sweep_pipeline_json(invoke: Invoke, project: Path) -> None:
    found = as_json(
        invoke(
            "sweep", "swcli.flows:flow", "--space", "x=int:0:9", "--space", "kind=cat:a,b",
            "--space", "lr=float:1e-3:1e-1:log", "--trials", "6", "--metric", "evaluate.score",
            "--workers", "2", "--json",
        )
    )  # fmt: skip
    assert len(found["trials"]) == 6
    values = [t["value"] for t in found["trials"]]
    assert found["best_value"] == max(values) > min(values)
    assert set(found["best_params"]) == {"x", "kind", "lr"}
    shown = as_json(invoke("runs", "show", found["trials"][0]["run_id"], "--json"))
    assert shown["parent"]["id"] == found["run_id"]


def test_sweep_step_table(invoke: Invoke, project: Path) -> None:
    result = invoke(
        "sweep", "swcli.flows:quad", "--space", "x=float:0:4", "--trials", "3",
        "--metric", "q", "--direction", "minimize",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "best: trial" in result.stdout


@pytest.mark.slow
def test_sweep_trials_on_worker_processes(invoke: Invoke, project: Path) -> None:
    found = as_json(
        invoke(
            "sweep", "swcli.flows:quad", "--space", "x=float:0:4", "--trials", "3",
            "--metric", "q", "--workers", "2", "--trial-executor", "process", "--json",
        )
    )  # fmt: skip
    assert [t["state"] for t in found["trials"]] == ["COMPLETE"] * 3
    for trial in found["trials"]:
        shown = as_json(invoke("runs", "show", trial["run_id"], "--json"))
        assert shown["parent"]["id"] == found["run_id"]
        assert shown["run"]["pid"] != os.getpid()


def test_sweep_bad_trial_executor(invoke: Invoke, project: Path) -> None:
    result = invoke(
        "sweep", "swcli.flows:quad", "--space", "x=float:0:4", "--metric", "q",
        "--trial-executor", "fork",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "fork" in result.output and "thread" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--space", "x=int:9"], "int:LOW:HIGH"),
        (["--space", "x=normal:0:1"], "not int, float or cat"),
        (["--space", "x=int:a:3"], "not a number"),
        (["--space", "x=int:5:1"], "'x'"),
        (["--space", "x=int:0:3", "--metric", "evaluate.nokey"], "no key 'nokey'"),
        (["--space", "x=int:0:3", "--metric", "nowhere"], "names no step"),
    ],
)
def test_sweep_bad_input(invoke: Invoke, project: Path, args: list[str], needle: str) -> None:
    base = ["sweep", "swcli.flows:flow", "--trials", "2"]
    if "--metric" not in args:
        args = [*args, "--metric", "evaluate.score"]
    assert needle in assert_one_error_line(invoke(*base, *args))
