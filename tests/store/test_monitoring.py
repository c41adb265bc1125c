"""The monitor part of the MetadataStore contract, run against every backend."""

from __future__ import annotations

import math
from typing import Any

import pytest

from mloop.errors import AlreadyExists, InvalidInput, InvalidName, NotFound
from mloop.store.base import MetadataStore, MonitorResult
from tests.store.test_contract import ACTOR
from tests.store.test_datasets import digest, new_version

CONFIG = {"checks": ["feature_drift"], "drift_share": 0.5, "min_rows": 100}


@pytest.fixture
def monitored(store: MetadataStore) -> MetadataStore:
    """A monitor ``fraud-drift`` of deployment ``fraud-api`` against ``transactions@v1``."""
    version, _ = store.create_dataset_version("transactions", new_version(1), actor=ACTOR)
    store.create_monitor(
        "fraud-drift", deployment="fraud-api", reference=version.ref,
        reference_version_id=version.id, window="1h", config=CONFIG,
        reference_digest=digest(77), reference_size=123, actor=ACTOR,
    )  # fmt: skip
    return store


def report(store: MetadataStore, start: int, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "window_start_ms": start, "window_end_ms": start + 3_600_000, "rows": 2000,
        "labelled_rows": 0, "status": "ok", "alerts": [], "summary": {"n": 1},
        "results": [
            MonitorResult("feature_drift", "amount", "wasserstein", 0.05, 0.1, None, False),
            MonitorResult("feature_drift", "age", "ks", 0.2, 0.05, 0.01, True),
        ],
    }  # fmt: skip
    args.update(kw)
    return store.add_monitor_report("fraud-drift", **args)


def test_create_get_list_delete(monitored: MetadataStore) -> None:
    found = monitored.get_monitor("fraud-drift")
    assert (found.name, found.deployment, found.reference, found.window) == (
        "fraud-drift", "fraud-api", "transactions@v1", "1h",
    )  # fmt: skip
    assert found.config == CONFIG and found.checks == ["feature_drift"]
    assert found.reference_digest == digest(77) and found.created_by == ACTOR
    assert [m.name for m in monitored.list_monitors()] == ["fraud-drift"]
    assert monitored.list_monitors("fraud-api") == [found]
    assert monitored.list_monitors("other") == []
    # The reference blob is kept by an artifact reference of the monitor.
    refs = monitored.list_artifacts("monitor", str(found.id))
    assert [(r.path, r.digest) for r in refs] == [("reference.json", digest(77))]
    report(monitored, 0)
    monitored.delete_monitor("fraud-drift", actor=ACTOR)
    with pytest.raises(NotFound, match="no monitor named 'fraud-drift'"):
        monitored.get_monitor("fraud-drift")
    assert monitored.list_artifacts("monitor", str(found.id)) == []
    events = [(e.action, e.object_id) for e in monitored.iter_audit() if e.object_type == "monitor"]
    assert events == [("monitor.created", "fraud-drift"), ("monitor.deleted", "fraud-drift")]


def test_bad_creates_write_nothing(monitored: MetadataStore) -> None:
    version = monitored.get_dataset_version("transactions", 1)
    args: dict[str, Any] = {
        "deployment": "fraud-api", "reference": "transactions@v1",
        "reference_version_id": version.id, "window": "1h", "config": CONFIG,
        "reference_digest": digest(1), "reference_size": 1, "actor": ACTOR,
    }  # fmt: skip
    with pytest.raises(AlreadyExists, match="already exists"):
        monitored.create_monitor("fraud-drift", **args)
    with pytest.raises(InvalidName, match="monitor name"):
        monitored.create_monitor("bad name!", **args)
    with pytest.raises(NotFound, match="reference dataset version"):
        monitored.create_monitor("x", **{**args, "reference_version_id": 10**6})
    with pytest.raises(InvalidInput):
        monitored.create_monitor("y", **{**args, "config": {"x": math.nan}})
    assert [m.name for m in monitored.list_monitors()] == ["fraud-drift"]


def test_reports_and_results_round_trip(monitored: MetadataStore) -> None:
    first = report(monitored, 0, status="alert", alerts=[{"check": "feature_drift", "reason": "r"}])
    assert first is not None and first.status == "alert" and first.monitor == "fraud-drift"
    assert first.alerts == [{"check": "feature_drift", "reason": "r"}]
    assert [(r.feature, r.drifted) for r in first.results] == [("age", True), ("amount", False)]
    # The results of a new report carry its window (as the ones read back do).
    assert {(r.window_start_ms, r.window_end_ms) for r in first.results} == {(0, 3_600_000)}
    nan = [MonitorResult("performance", "roc_auc", "roc_auc", math.nan, math.inf, None, None)]
    report(monitored, 3_600_000, results=nan, status="no_data")
    reports = monitored.list_monitor_reports("fraud-drift")
    assert [r.window_start_ms for r in reports] == [0, 3_600_000]
    assert reports[0].results == ()  # results only when asked
    newest = monitored.list_monitor_reports("fraud-drift", newest_first=True, limit=1,
                                            with_results=True)  # fmt: skip
    assert newest[0].window_start_ms == 3_600_000
    assert newest[0].results[0].value is None and newest[0].results[0].threshold is None
    assert monitored.list_monitor_reports("fraud-drift", since_ms=3_600_000)[0].id == newest[0].id
    age = monitored.list_monitor_results("fraud-drift", check="feature_drift", feature="age")
    assert [(r.window_start_ms, r.window_end_ms, r.value, r.p_value) for r in age] == [
        (0, 3_600_000, 0.2, 0.01)
    ]
    assert len(monitored.list_monitor_results("fraud-drift")) == 3
    assert monitored.list_monitor_results("fraud-drift", since_ms=3_600_000)[0].check == (
        "performance"
    )


def test_a_window_is_reported_once(monitored: MetadataStore) -> None:
    assert report(monitored, 0) is not None
    assert report(monitored, 0, rows=5) is None
    reports = monitored.list_monitor_reports("fraud-drift", with_results=True)
    assert [(r.rows, len(r.results)) for r in reports] == [(2000, 2)]


def test_bad_reports_write_nothing(monitored: MetadataStore) -> None:
    with pytest.raises(InvalidInput, match="status"):
        report(monitored, 0, status="fine")
    with pytest.raises(InvalidInput, match="window_end_ms"):
        report(monitored, 0, window_end_ms=0)
    twice = [MonitorResult("feature_drift", "a", "ks"), MonitorResult("feature_drift", "a", "ks")]
    with pytest.raises(InvalidInput, match="one result per"):
        report(monitored, 0, results=twice)
    with pytest.raises(InvalidInput):
        report(monitored, 0, summary={"x": math.inf})
    with pytest.raises(NotFound):
        monitored.add_monitor_report(
            "nope", window_start_ms=0, window_end_ms=1, rows=0, labelled_rows=0, status="ok",
            alerts=[], summary={}, results=[],
        )  # fmt: skip
    assert monitored.list_monitor_reports("fraud-drift") == []
    with pytest.raises(NotFound):
        monitored.list_monitor_results("nope")


def test_update_reference_is_conditional_keeps_every_blob_and_is_audited(
    monitored: MetadataStore,
) -> None:
    old = monitored.get_monitor("fraud-drift")
    version, _ = monitored.create_dataset_version("transactions", new_version(2), actor=ACTOR)
    config = {**CONFIG, "model_version": 2}
    moved = monitored.update_monitor_reference(
        "fraud-drift", expect_digest=digest(77), config=config,
        event="monitor.reference_refreshed", detail={"model_version": 2}, actor=ACTOR,
        reference=(version.ref, version.id, digest(78), 10),
    )  # fmt: skip
    assert moved is not None
    assert (moved.reference, moved.reference_digest, moved.config) == (
        "transactions@v2", digest(78), config,
    )  # fmt: skip
    refs = monitored.list_artifacts("monitor", str(old.id))
    assert sorted((r.path, r.digest) for r in refs) == [
        ("reference-2.json", digest(78)), ("reference.json", digest(77)),
    ]  # fmt: skip
    # Another process refreshed first: nothing changes.
    assert monitored.update_monitor_reference(
        "fraud-drift", expect_digest=digest(77), config=CONFIG, event="monitor.x", detail={},
        actor=ACTOR,
    ) is None  # fmt: skip
    # A config-only change (a failed refresh's note) keeps the reference.
    noted = monitored.update_monitor_reference(
        "fraud-drift", expect_digest=digest(78), config={**config, "note": 1},
        event="monitor.reference_refresh_failed", detail={"reason": "r"}, actor=ACTOR,
    )  # fmt: skip
    assert noted is not None and noted.reference_digest == digest(78)
    assert noted.config["note"] == 1
    assert len(monitored.list_artifacts("monitor", str(old.id))) == 2
    events = [e for e in monitored.iter_audit() if e.object_type == "monitor"]
    assert [e.action for e in events][-2:] == [
        "monitor.reference_refreshed", "monitor.reference_refresh_failed",
    ]  # fmt: skip
    assert events[-2].before == {"reference": "transactions@v1", "model_version": None}
