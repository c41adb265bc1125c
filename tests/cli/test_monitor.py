"""``mloop monitor``: create, run, list, show, history; bad input is one error line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.config import load_settings
from mloop.tracking import TrackingClient, reset_default_client
from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke
from tests.monitoring.scenario import DEP, HOUR, T0, make_scenario


@pytest.fixture
def deployed(mloop_home: Path) -> Iterator[None]:
    """The monitoring scenario in the default store: two windows logged, the second shifted."""
    reset_default_client()
    with TrackingClient(load_settings()) as client:
        scenario = make_scenario(client)
        scenario.log(T0, 1, 1000, seed=10)
        scenario.log(T0 + HOUR, 1, 1000, shift=1.0, seed=11)
    reset_default_client()
    yield None


def test_create_run_list_show_history(invoke: Invoke, deployed: None) -> None:
    made = as_json(
        invoke("monitor", "create", "--deployment", DEP, "--check", "feature_drift",
               "--check", "data_quality", "--threshold", "feature_drift.f00=0.2", "--json")
    )  # fmt: skip
    assert made["name"] == DEP and made["config"]["checks"] == ["feature_drift", "data_quality"]
    assert made["config"]["thresholds"] == {"feature_drift": {"f00": 0.2}}
    text = invoke("monitor", "create", "--deployment", DEP, "--name", "rows",
                  "--window", "500 rows", "--check", "feature_drift")  # fmt: skip
    assert text.exit_code == 0 and "monitor rows: created" in text.stdout
    labelled = as_json(
        invoke("monitor", "create", "--deployment", DEP, "--name", "perf", "--check",
               "performance", "--min-class-rows", "50", "--json")
    )  # fmt: skip
    assert labelled["config"]["min_class_rows"] == 50
    assert invoke("monitor", "create", "--deployment", DEP, "--name", "bad",
                  "--min-class-rows", "0").exit_code == 1  # fmt: skip
    reports = as_json(invoke("monitor", "run", DEP, "--end-ms", str(T0 + 2 * HOUR), "--json"))
    assert [r["status"] for r in reports] == ["ok", "alert"]
    assert reports[1]["alerts"][0]["check"] == "feature_drift"
    again = invoke("monitor", "run", DEP, "--end-ms", str(T0 + 2 * HOUR))
    assert "no complete window" in again.stdout
    table = invoke("monitor", "run", "rows", "--end-ms", str(T0 + 3 * HOUR)).stdout
    assert "new report(s)" in table and "window(s) with alerts" in table
    listed = as_json(invoke("monitor", "list", "--json"))
    assert [m["name"] for m in listed] == [DEP, "perf", "rows"]
    assert listed[0]["last_report"]["status"] == "alert"
    assert "feature_drift, data_quality" in invoke("monitor", "list").stdout
    shown = as_json(invoke("monitor", "show", DEP, "--json"))
    assert len(shown["reports"]) == 2 and shown["reports"][1]["results"]
    assert "features drifted" in invoke("monitor", "show", DEP).stdout
    points = as_json(
        invoke("monitor", "history", DEP, "--check", "feature_drift", "--feature", "f00", "--json")
    )
    assert [p["drifted"] for p in points] == [False, True] and points[0]["threshold"] == 0.2
    assert "wasserstein" in invoke("monitor", "history", DEP, "--feature", "f00").stdout


@pytest.mark.parametrize(
    "args",
    [
        ("create", "--deployment", "nope"),
        ("create", "--deployment", DEP, "--window", "1 week"),
        ("create", "--deployment", DEP, "--threshold", "performance"),
        ("create", "--deployment", DEP, "--threshold", "feature_drift=0.1"),
        ("create", "--deployment", DEP, "--reference", "missing@v1"),
        ("run", "nope"),
        ("show", "nope"),
        ("history", "nope"),
    ],
)
def test_bad_input_is_one_error_line(invoke: Invoke, deployed: None, args: tuple[str, ...]) -> None:
    assert_one_error_line(invoke("monitor", *args))
    assert as_json(invoke("monitor", "list", "--json")) == []
