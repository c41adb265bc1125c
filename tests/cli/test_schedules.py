"""``mloop schedules add|list|enable|disable|delete`` and ``mloop scheduler --once``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke

FLOW = """
from mloop.pipelines import pipeline, step


@step
def load(n: int) -> list:
    return list(range(n))


@pipeline
def flow(n: int = 4):
    load(n)
"""
REF = "schedcli.flows:flow"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloop_home: Path) -> Iterator[Path]:
    package = tmp_path / "proj" / "schedcli"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path / "proj")
    yield package
    for name in [m for m in sys.modules if m == "schedcli" or m.startswith("schedcli.")]:
        del sys.modules[name]


def test_add_list_enable_disable_delete(invoke: Invoke, project: Path) -> None:
    added = as_json(
        invoke("schedules", "add", "nightly", REF, "--cron", "0 2 * * *", "--param", "n=5",
               "--json")
    )  # fmt: skip
    assert added["params"] == {"n": 5} and added["enabled"] and added["tz"] == "UTC"
    paris = invoke("schedules", "add", "p", REF, "--cron", "@hourly", "--tz", "Europe/Paris")
    assert "schedule p:" in paris.stdout
    listed = as_json(invoke("schedules", "list", "--json"))
    assert [s["name"] for s in listed] == ["nightly", "p"]
    assert "Europe/Paris" in invoke("schedules", "list").stdout
    assert as_json(invoke("schedules", "disable", "nightly", "--json"))["enabled"] is False
    assert as_json(invoke("schedules", "enable", "nightly", "--json"))["enabled"] is True
    assert "deleted" in invoke("schedules", "delete", "p").stdout
    assert [s["name"] for s in as_json(invoke("schedules", "list", "--json"))] == ["nightly"]
    line = assert_one_error_line(invoke("schedules", "delete", "p"))
    assert "no schedule named 'p'" in line


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("--cron", "0 25 * * *"), "cron '0 25 * * *'"),
        (("--cron", "@daily", "--tz", "Nowhere/Land"), "Nowhere/Land"),
        (("--cron", "@daily", "--param", "depth=3"), "refuses params"),
    ],
)
def test_bad_input_is_one_line_and_nothing_stored(
    invoke: Invoke, project: Path, args: tuple[str, ...], match: str
) -> None:
    line = assert_one_error_line(invoke("schedules", "add", "s", REF, *args))
    assert match in line
    assert as_json(invoke("schedules", "list", "--json")) == []


def test_unknown_pipeline_is_refused(invoke: Invoke, project: Path) -> None:
    line = assert_one_error_line(
        invoke("schedules", "add", "s", "schedcli.nope:flow", "--cron", "@daily")
    )
    assert "cannot import module 'schedcli.nope'" in line
    assert as_json(invoke("schedules", "list", "--json")) == []


def test_scheduler_once_fires_due_schedules(invoke: Invoke, project: Path) -> None:
    import mloop
    from mloop.pipelines.scheduler import add_schedule

    with mloop.TrackingClient() as client:
        add_schedule("nightly", REF, "0 2 * * *", client=client)
        # Make it due now: as if the scheduler had been down since a fire long ago.
        client.store.set_schedule_enabled("nightly", True, next_fire_at=1, actor="t")
    fired = as_json(invoke("scheduler", "--once", "--json"))
    assert [(f["schedule"], f["status"], f["recorded"]) for f in fired] == [
        ("nightly", "FINISHED", True)
    ]
    shown = as_json(invoke("pipelines", "show", fired[0]["run_id"], "--json"))
    assert shown["status"] == "FINISHED"
    [stored] = as_json(invoke("schedules", "list", "--json"))
    assert stored["last_run_id"] == fired[0]["run_id"] and stored["next_fire_at"] > 1
    assert as_json(invoke("scheduler", "--once", "--json")) == []
    assert "nothing due" in invoke("scheduler", "--once").stdout
