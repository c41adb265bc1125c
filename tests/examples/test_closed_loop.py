"""The closed-loop demo end to end on a fresh embedded store: drift detected after the change
and not before, a retrain on fresh labelled rows, the challenger gated, rolled out and promoted,
and the promoted model far better than the old champion on post-change data."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.errors import InvalidInput
from mloop.examples.closed_loop import LoopEvent, run_closed_loop
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
