"""The closed-loop demo end to end on a fresh embedded store: drift detected after the change
and not before, a retrain on fresh labelled rows, the challenger gated, rolled out and promoted,
and the promoted model far better than the old champion on post-change data."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.errors import InvalidInput
from mloop.examples.closed_loop import run_closed_loop
from mloop.examples.closed_loop_report import LoopEvent
from mloop.tracking import TrackingClient

pytestmark = pytest.mark.slow


@pytest.fixture
def client(mloop_home: Path) -> TrackingClient:
    """A client of a fresh store under a temporary MLOOP_HOME."""
    return TrackingClient()


def test_the_fraud_loop_meets_its_bars(client: TrackingClient, mloop_home: Path) -> None:
    events: list[LoopEvent] = []
    result = run_closed_loop(client, scenario="fraud", seed=0, on_event=events.append)
    print(result.summary())

    # Detected within two windows of the change; no alarm on the windows before it.
    assert result.change_row == 12_000 and result.window_rows == 2_000
    assert result.pre_change_windows == 6
    assert result.pre_change_alarms == 0
    assert result.detection_delay_windows is not None
    assert 1 <= result.detection_delay_windows <= 2
    assert result.detection_delay_rows is not None and result.detection_delay_rows <= 4_000

    # Retrained, gated on the same held-out fresh rows, rolled out, promoted.
    assert result.promoted and result.promoted_version == result.champion_version + 1
    check = result.gate["checks"][0]
    assert result.gate["passed"] and check["metric"] == "roc_auc"
    assert check["observed"] > check["champion"] + 0.005
    assert sorted(result.episode["health"]) == ["health_0", "health_1", "health_2"]
    from mloop.registry import resolve

    assert resolve("models:/fraud@champion", client=client).version == result.promoted_version

    # The bar: the promoted model's ROC AUC on post-change data at least 0.05 above the old one.
    assert result.gain is not None and result.gain >= 0.05

    # The monitor moved to the promoted version's training data: its windows raise nothing.
    assert len(result.after_promotion) >= 2 and result.after_promotion_alarms == 0
    monitor = client.store.get_monitor("fraud-detector")
    assert monitor.reference == "fraud-detector.training@v1"
    assert monitor.config["model_version"] == result.promoted_version

    # Every step is in the timeline, the report is written into the store's folder.
    kinds = [e.kind for e in events]
    for kind in ("data", "train", "registry", "serve", "monitor", "policy", "change", "measure"):
        assert kind in kinds
    states = [e.data.get("state") for e in events if e.kind == "episode"]
    assert states[0] == "triggered" and states[-1] == "promoted"
    assert states.count("rolling_out") == 3
    report = Path(result.report_path)
    assert report.parent == mloop_home and report.is_file()
    page = report.read_text()
    assert "<svg" in page and "beat_champion" in page and "<script" not in page

    # What the demo left in the store verifies.
    assert client.store.get_episode(result.episode["id"]).state == "promoted"
    from mloop.audit import verify

    assert verify(client.store).ok


def test_an_unknown_scenario_is_refused(client: TrackingClient) -> None:
    with pytest.raises(InvalidInput, match="unknown scenario 'churn'"):
        run_closed_loop(client, scenario="churn")


def test_the_demand_loop_detects_retrains_and_improves(client: TrackingClient) -> None:
    result = run_closed_loop(client, scenario="demand", seed=0)
    print(result.summary())
    assert result.metric == "rmse" and result.window_rows == 2_100
    assert result.change_row == 8_400 and result.pre_change_windows == 4
    assert result.pre_change_alarms == 0
    assert result.detection_delay_windows is not None
    assert 1 <= result.detection_delay_windows <= 2
    assert result.promoted and result.promoted_version == result.champion_version + 1
    check = result.gate["checks"][0]
    assert result.gate["passed"] and check["metric"] == "rmse"
    assert check["observed"] < check["champion"] - 0.1  # lower is better
    # The promoted model's RMSE on fresh post-change days is clearly lower than the old one's.
    assert result.gain is not None and result.old_metric is not None
    assert result.gain > 0.1 * result.old_metric
    assert result.after_promotion and result.after_promotion_alarms == 0
    # A regressor's canary has no error rate ("differs from the label" means nothing).
    for health in result.episode["health"].values():
        assert health["error_rate"] is None and health["primary_error_rate"] is None
        assert "numeric labels: no error rate to compare" in health["reason"]
    assert Path(result.report_path).name == "demo-demand-report.html"


def test_a_stationary_fraud_replay_raises_no_alarm_in_50_windows(client: TrackingClient) -> None:
    events: list[LoopEvent] = []
    result = run_closed_loop(
        client, scenario="fraud", seed=0, on_event=events.append, stationary_windows=50
    )
    alerting = [(w.index, w.checks) for w in result.windows if w.status == "alert"]
    assert result.stationary and len(result.windows) == 50
    assert all(w.rows >= 2_000 and w.post_change_rows == 0 for w in result.windows)
    assert result.alarms == 0, alerting
    assert result.pre_change_alarms == 0 and result.pre_change_windows == 50
    assert result.episode == {} and not result.promoted
    assert result.detection_window is None and result.old_metric is None
    assert result.summary()["alarms"] == 0 and result.summary()["stationary"] is True
    assert "change" not in [e.kind for e in events]
    assert "alarms: 0 of 50 windows" in events[-1].message
    # The first window starts at the first replayed row, not at the epoch.
    from mloop import monitoring

    first = monitoring.reports(result.monitor, client=client)[0]
    assert first.window_start_ms > 1_000_000_000_000


def test_bad_stationary_windows_are_refused(client: TrackingClient) -> None:
    with pytest.raises(InvalidInput, match="stationary_windows") as info:
        run_closed_loop(client, scenario="fraud", stationary_windows=0)
    with pytest.raises(InvalidInput, match="after_windows must be an int >= 1"):
        run_closed_loop(client, scenario="fraud", after_windows=0)
    assert info.value.details["field"] == "stationary_windows"
