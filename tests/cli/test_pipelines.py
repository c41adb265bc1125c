"""``mloop pipelines run|list|show|resume|why-rerun`` on a small project in a temp folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke

FLOW = """
import os
from pathlib import Path

from cliproj.helpers import offset
from mloop.pipelines import pipeline, step


@step
def load(n: int) -> list:
    return list(range(n))


@step
def total(values: list) -> int:
    if os.environ.get("CLIPROJ_FAIL"):
        raise RuntimeError("total failed on purpose")
    return sum(values) + offset()


@pipeline
def flow(n: int = 4):
    total(load(n))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloop_home: Path) -> Path:
    package = tmp_path / "proj" / "cliproj"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def offset() -> int:\n    return 0\n")
    (package / "flows.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path / "proj")
    yield package
    for name in [m for m in sys.modules if m == "cliproj" or m.startswith("cliproj.")]:
        del sys.modules[name]


def test_run_cache_show_list_why(invoke: Invoke, project: Path) -> None:
    first = as_json(invoke("pipelines", "run", "cliproj.flows:flow", "--param", "n=5", "--json"))
    assert first["status"] == "FINISHED"
    assert [s["cached"] for s in first["steps"]] == [False, False]
    second = as_json(invoke("pipelines", "run", "cliproj.flows:flow", "--param", "n=5", "--json"))
    assert [s["cached"] for s in second["steps"]] == [True, True]
    why = as_json(invoke("pipelines", "why-rerun", second["run_id"], "total", "--json"))
    assert why["cached"] is True
    shown = as_json(invoke("pipelines", "show", first["run_id"], "--json"))
    assert shown["params"] == {"n": "5"} and {s["step"] for s in shown["steps"]} == {
        "load",
        "total",
    }
    assert "total" in invoke("pipelines", "show", first["run_id"]).stdout
    listed = as_json(invoke("pipelines", "list", "--pipeline", "flow", "--json"))
    assert [r["run_id"] for r in listed] == [second["run_id"], first["run_id"]]
    assert "flow" in invoke("pipelines", "list").stdout


def test_failure_then_resume(
    invoke: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPROJ_FAIL", "1")
    failed = invoke("pipelines", "run", "cliproj.flows:flow")
    line = assert_one_error_line(failed)
    assert "total" in line and "failed on purpose" in failed.stderr
    listed = as_json(invoke("pipelines", "list", "--json"))
    assert listed[0]["status"] == "FAILED"
    monkeypatch.delenv("CLIPROJ_FAIL")
    resumed = as_json(invoke("pipelines", "resume", listed[0]["run_id"], "--json"))
    assert resumed["status"] == "FINISHED"
    by_step = {s["step"]: s for s in resumed["steps"]}
    assert by_step["load"]["cached"] is True and by_step["total"]["cached"] is False


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("pipelines", "run", "nocolon"), "MODULE:NAME"),
        (("pipelines", "run", "no_such_module_xyz:flow"), "cannot import"),
        (("pipelines", "run", "cliproj.flows:nothing"), "has no"),
        (("pipelines", "run", "cliproj.flows:load"), "not an @mloop.pipeline"),
        (("pipelines", "run", "cliproj.flows:flow", "--param", "novalue"), "KEY=VALUE"),
        (("pipelines", "run", "cliproj.flows:flow", "--param", "m=1"), "unknown parameter"),
    ],
)
def test_errors_are_one_line(
    invoke: Invoke, project: Path, args: tuple[str, ...], match: str
) -> None:
    assert match in assert_one_error_line(invoke(*args))
