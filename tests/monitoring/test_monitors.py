"""Monitors end to end: windows of a written prediction log, each check, reports and history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mloop
from mloop.config import load_settings
from mloop.errors import AlreadyExists, InvalidInput, InvalidName, NotFound
from mloop.monitoring import monitors
from mloop.serving.predlog import PredictionBatch, PredictionLog
from mloop.tracking import TrackingClient, reset_default_client
from tests.monitoring.scenario import DEP, FEATURES, HOUR, T0, Scenario, make_scenario, sample


@pytest.fixture
def scenario(client: TrackingClient) -> Scenario:
    """The deployment of a 25-feature classifier with a 5,000-row reference."""
    return make_scenario(client)


def test_public_face(scenario: Scenario) -> None:
    created = mloop.monitors.create(deployment=DEP, client=scenario.client)
    assert created.name == DEP and created.reference == "transactions@v1"
    assert created.checks == list(mloop.monitors.CHECKS)
    assert created.config["reference_given"] == "training"
    assert created.config["target"] == "label"
    assert mloop.monitors.get(DEP, client=scenario.client) == created
    assert mloop.monitors.list_monitors(client=scenario.client) == [created]
    with pytest.raises(AlreadyExists):
        mloop.monitors.create(deployment=DEP, client=scenario.client)


def test_time_windows_are_aligned_and_reported_once(scenario: Scenario) -> None:
    client = scenario.client
    monitors.create("m", deployment=DEP, window="30m", checks=["feature_drift"], client=client)
    scenario.log(T0 + 60_000, 2, 400, window_ms=HOUR // 2)
    found = monitors.run("m", end_ms=T0 + HOUR + 5, client=client)
    assert [(r.window_start_ms, r.window_end_ms) for r in found] == [
        (T0, T0 + HOUR // 2), (T0 + HOUR // 2, T0 + HOUR),
    ]  # fmt: skip
    assert [r.rows for r in found] == [400, 400]
    assert monitors.run("m", end_ms=T0 + HOUR + 5, client=client) == []
    # A window with no rows is reported as no_data, saying why.
    later = monitors.run("m", end_ms=T0 + 2 * HOUR - 1, client=client)
    assert [(r.status, r.rows) for r in later] == [("no_data", 0)]
    assert "fewer than min_rows 100" in later[0].summary["reason"]
    reports = monitors.reports("m", client=client)
    assert [r.window_start_ms for r in reports] == [T0 + i * HOUR // 2 for i in range(3)]
    assert monitors.run("m", end_ms=T0 + 2 * HOUR - 1, client=client) == []


def test_row_windows(scenario: Scenario) -> None:
    client = scenario.client
    monitors.create(
        "rows", deployment=DEP, window="500 rows", checks=["feature_drift"], client=client
    )
    scenario.log(T0, 1, 1200, per_request=50)
    found = monitors.run("rows", end_ms=T0 + 10 * HOUR, client=client)
    assert [r.rows for r in found] == [500, 500]
    assert found[0].window_end_ms == found[1].window_start_ms
    # The first window starts at the first logged row, not at the epoch.
    assert found[0].window_start_ms == T0
    assert all(r.status == "ok" for r in found)
    scenario.log(T0 + HOUR, 1, 400, seed=9)
    more = monitors.run("rows", end_ms=T0 + 10 * HOUR, client=client)
    assert [r.rows for r in more] == [500]  # 200 + 400 rows left: one window complete
    assert more[0].window_start_ms == found[1].window_end_ms


def test_stationary_windows_never_alarm(client: TrackingClient) -> None:
    """50 windows x 25 features of stationary data: single features drift by chance (KS at
    p < 0.05 with an 800-row reference), the data set never does."""
    scenario = make_scenario(client, reference_rows=800)
    monitors.create(
        deployment=DEP, window="15m", checks=["feature_drift", "prediction_drift"],
        client=client,
    )  # fmt: skip
    scenario.log(T0, 50, 400, window_ms=HOUR // 4, seed=100)
    found = monitors.run(DEP, end_ms=T0 + 50 * HOUR // 4, client=client)
    assert len(found) == 50
    assert [r.alerts for r in found if r.status != "ok"] == []
    points = monitors.history(DEP, check="feature_drift", client=client)
    assert len(points) == 50 * 25
    assert {p.statistic for p in points} == {"ks"}
    assert sum(bool(p.drifted) for p in points) > 0  # single tests do fire...
    assert max(r.summary["feature_drift"]["drifted_share"] for r in found) < 0.5  # ...not many


def test_a_shift_is_alerted_within_two_windows(scenario: Scenario) -> None:
    client = scenario.client
    monitors.create(deployment=DEP, checks=["feature_drift"], client=client)
    scenario.log(T0, 4, 1000, seed=10)
    scenario.log(T0 + 4 * HOUR, 2, 1000, shift=0.5, shifted=15, seed=20)
    found = monitors.run(DEP, end_ms=T0 + 6 * HOUR, client=client)
    statuses = [r.status for r in found]
    assert statuses[:4] == ["ok"] * 4
    assert "alert" in statuses[4:6]
    alert = found[4].alerts[0]
    assert alert["check"] == "feature_drift" and "features drifted" in alert["reason"]
    drifted = found[4].summary["feature_drift"]["drifted"]
    assert set(drifted) <= set(FEATURES[:15]) and len(drifted) >= 13
    amount = monitors.history(DEP, check="feature_drift", feature="f00", client=client)
    assert [p.drifted for p in amount] == [False] * 4 + [True] * 2
    assert (
        monitors.history(DEP, feature="f00", since_ms=T0 + 5 * HOUR, client=client)[
            0
        ].window_start_ms
        == T0 + 5 * HOUR
    )


def test_prediction_drift_and_performance(scenario: Scenario) -> None:
    client = scenario.client
    monitors.create(deployment=DEP, checks=["prediction_drift", "performance"], client=client)
    scenario.log(T0, 1, 2000, labels=True, seed=30)
    scenario.log(T0 + HOUR, 1, 2000, labels=True, flip_labels=True, seed=31)
    scenario.log(T0 + 2 * HOUR, 1, 2000, shift=1.5, shifted=3, seed=32)  # no labels yet
    found = monitors.run(DEP, end_ms=T0 + 3 * HOUR, client=client)
    ok, flipped, shifted = found
    assert ok.status == "ok" and ok.labelled_rows == 2000
    perf = ok.summary["performance"]
    assert perf["metric"] == "roc_auc" and perf["value"] > 0.75
    assert {r.feature for r in ok.results if r.check == "performance"} == {
        "roc_auc", "estimated_accuracy", "estimated_roc_auc",
    }  # fmt: skip
    assert flipped.status == "alert"
    assert [a["check"] for a in flipped.alerts] == ["performance"]
    assert flipped.summary["performance"]["value"] < 0.3
    # No labels: the estimate is reported, and the predictions have moved.
    assert shifted.labelled_rows == 0 and "value" not in shifted.summary["performance"]
    assert "estimated" in shifted.summary["performance"]
    assert "prediction_drift" in [a["check"] for a in shifted.alerts]
    proba = next(r for r in shifted.results if r.feature == "proba")
    assert proba.statistic == "psi" and proba.threshold == 0.2 and proba.drifted


@pytest.mark.parametrize("chunk_rows", [None, 64])
def test_data_quality_alerts_on_nulls(
    scenario: Scenario, chunk_rows: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same verdicts whether the window is validated at once or chunk by chunk."""
    from mloop.monitoring import checks

    if chunk_rows is not None:
        monkeypatch.setattr(checks, "QUALITY_CHUNK_ROWS", chunk_rows)
    client = scenario.client
    monitors.create(deployment=DEP, checks=["data_quality"], client=client)
    frame = sample(500, seed=40)[FEATURES]
    frame.loc[:250, "f03"] = np.nan
    log = PredictionLog(DEP, client=client)
    log.append(
        PredictionBatch(
            model_version=1, role="primary", request_ids=[f"{T0:013d}{0:016x}"],
            row_counts=[500], ts_ms=[T0], latency_ms=[1.0], inputs=frame,
            predictions=np.zeros(500, dtype=np.int64), probabilities=None,
        )
    )  # fmt: skip
    log.close()
    (found,) = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
    assert found.status == "alert"
    assert found.summary["data_quality"]["failed"] == ["not_null(f03)"]
    (failed,) = [r for r in found.results if r.drifted]
    assert (failed.feature, failed.statistic) == ("f03", "not_null")
    assert failed.value == pytest.approx(251 / 500)
    assert sum(r.drifted is False for r in found.results) == len(found.results) - 1


def test_shadow_rows_are_not_monitored(scenario: Scenario) -> None:
    client = scenario.client
    monitors.create(deployment=DEP, checks=["feature_drift"], min_rows=10, client=client)
    frame = sample(50, seed=41)[FEATURES]
    log = PredictionLog(DEP, client=client)
    for role, version in (("primary", 1), ("shadow", 2)):
        log.append(
            PredictionBatch(
                model_version=version, role=role, request_ids=[f"{T0:013d}{version:016x}"],
                row_counts=[50], ts_ms=[T0], latency_ms=[1.0], inputs=frame,
                predictions=np.zeros(50, dtype=np.int64), probabilities=None,
            )
        )  # fmt: skip
    log.close()
    (found,) = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
    assert found.rows == 50 and found.summary["model_versions"] == {"1": 50}


def test_delete_and_audit(scenario: Scenario) -> None:
    client = scenario.client
    monitors.create("m", deployment=DEP, checks=["feature_drift"], client=client)
    scenario.log(T0, 1, 200)
    monitors.run("m", end_ms=T0 + HOUR, client=client)
    monitors.delete("m", client=client)
    with pytest.raises(NotFound, match="no monitor named 'm'"):
        monitors.reports("m", client=client)
    actions = [e.action for e in client.store.iter_audit() if e.object_type == "monitor"]
    assert actions == ["monitor.created", "monitor.deleted"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"window": "1 week"}, InvalidInput, "is not a window"),
        ({"window": "5 rows"}, InvalidInput, "is not a window"),
        ({"checks": ["drift"]}, InvalidInput, "unknown check"),
        ({"checks": "feature_drift"}, InvalidInput, "non-empty list"),
        ({"drift_share": 0}, InvalidInput, "drift_share"),
        ({"min_rows": 0}, InvalidInput, "min_rows"),
        ({"thresholds": {"perf": 1}}, InvalidInput, "unknown check"),
        ({"thresholds": {"feature_drift": 0.2}}, InvalidInput, "maps a column"),
        ({"performance_metric": "f1"}, InvalidInput, "performance_metric"),
        ({"name": "bad name"}, InvalidName, "monitor name"),
        ({"deployment": "nope"}, NotFound, "no deployment named 'nope'"),
        ({"reference": "nope@v1"}, NotFound, "reference 'nope@v1' is missing"),
        ({"reference": "transactions@v9"}, NotFound, "missing"),
        ({"target": "nope"}, InvalidInput, "target 'nope'"),
    ],
)
def test_bad_input_writes_nothing(
    scenario: Scenario, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    args: dict[str, object] = {"deployment": DEP, **kwargs}
    with pytest.raises(error, match=match):
        monitors.create(client=scenario.client, **args)  # type: ignore[arg-type]
    assert monitors.list_monitors(client=scenario.client) == []


def test_training_reference_needs_a_logged_input(client: TrackingClient) -> None:
    from sklearn.linear_model import LogisticRegression

    from mloop import data, registry
    from mloop.serving import create_deployment

    frame = sample(300, seed=0)
    data.register("transactions", frame, client=client)
    with client.start_run(experiment="monitoring") as run:  # no log_input
        model = LogisticRegression().fit(frame[FEATURES], frame["label"])
        run.log_model(model, "fraud", input_example=frame[FEATURES][:5])
    registry.set_alias("fraud", "champion", 1, client=client)
    create_deployment(DEP, "fraud@champion", client=client)
    with pytest.raises(NotFound, match="logged no input with context 'training'"):
        monitors.create(deployment=DEP, client=client)
    made = monitors.create(deployment=DEP, reference="transactions@v1", client=client)
    assert made.reference == "transactions@v1"


def test_history_and_run_bad_input(scenario: Scenario) -> None:
    monitors.create(deployment=DEP, checks=["feature_drift"], client=scenario.client)
    with pytest.raises(InvalidInput, match="unknown check"):
        monitors.history(DEP, check="nope", client=scenario.client)
    with pytest.raises(InvalidInput, match="end_ms"):
        monitors.run(DEP, end_ms="soon", client=scenario.client)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        monitors.run("nope", client=scenario.client)


def test_the_latest_label_of_a_row_wins(scenario: Scenario) -> None:
    client = scenario.client
    monitors.create(deployment=DEP, checks=["performance"], client=client)
    frame = sample(400, seed=50)
    x, y = frame[FEATURES], frame["label"].to_numpy()
    ids = [f"{T0 + i:013d}{i:016x}" for i in range(8)]
    log = PredictionLog(DEP, client=client)
    log.append(
        PredictionBatch(
            model_version=1, role="primary", request_ids=ids, row_counts=[50] * 8,
            ts_ms=[T0 + i for i in range(8)], latency_ms=[1.0] * 8, inputs=x,
            predictions=scenario.model.predict(x), probabilities=scenario.model.predict_proba(x),
            classes=[0, 1],
        )
    )  # fmt: skip
    log.flush()
    for i, request_id in enumerate(ids):  # wrong labels first, then the right ones
        log.append_feedback(request_id, (1 - y[i * 50 : (i + 1) * 50]).tolist())
    log.flush()
    for i, request_id in enumerate(ids):
        log.append_feedback(request_id, y[i * 50 : (i + 1) * 50].tolist())
    log.close()
    (found,) = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
    assert found.labelled_rows == 400 and found.status == "ok"
    assert found.summary["performance"]["value"] > 0.75


def test_a_damaged_segment_is_an_error_report_and_later_windows_go_on(
    scenario: Scenario, mloop_home: Path
) -> None:
    from mloop.serving.predlog_read import list_segments

    client = scenario.client
    monitors.create(deployment=DEP, checks=["feature_drift"], client=client)
    scenario.log(T0, 2, 200)
    (first, _) = list_segments(DEP, start_ms=T0, end_ms=T0 + 2 * HOUR, client=client)
    blob = next((mloop_home / "artifacts").rglob(first.digest))
    blob.chmod(0o644)
    blob.write_bytes(b"garbage")
    found = monitors.run(DEP, end_ms=T0 + 2 * HOUR, client=client)
    assert [r.status for r in found] == ["error", "ok"]
    assert "IntegrityError" in found[0].summary["error"] or "Digest" in found[0].summary["error"]


def test_a_regressor_is_watched_with_psi_and_rmse(client: TrackingClient) -> None:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from mloop import data, registry
    from mloop.serving import create_deployment

    def demand(n: int, seed: int, shift: float = 0.0, noise: float = 0.1) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame({"price": rng.normal(size=n) + shift, "promo": rng.normal(size=n)})
        frame["units"] = 3 * frame["price"] - frame["promo"] + noise * rng.normal(size=n)
        return frame

    frame = demand(3000, 0)
    version = data.register("demand", frame, client=client)
    with client.start_run(experiment="monitoring") as run:
        run.log_input(version, context="training")
        model = LinearRegression().fit(frame[["price", "promo"]], frame["units"])
        run.log_model(model, "demand", input_example=frame[["price", "promo"]][:5])
    registry.set_alias("demand", "champion", 1, client=client)
    create_deployment("demand-api", "demand@champion", client=client)
    made = monitors.create(deployment="demand-api", checks=["prediction_drift", "performance"],
                           client=client)  # fmt: skip
    assert made.config["performance_metric"] == "rmse" and made.config["target"] == "units"
    log = PredictionLog("demand-api", client=client)
    batches = [demand(500, 1), demand(500, 2, noise=2.0), demand(500, 3, shift=2.0)]
    for w, window in enumerate(batches):
        ids = [f"{T0 + w * HOUR + i:013d}{w * 10 + i:016x}" for i in range(10)]
        x = window[["price", "promo"]]
        log.append(
            PredictionBatch(
                model_version=1, role="primary", request_ids=ids, row_counts=[50] * 10,
                ts_ms=[T0 + w * HOUR + i for i in range(10)], latency_ms=[1.0] * 10, inputs=x,
                predictions=model.predict(x), probabilities=None,
            )
        )  # fmt: skip
        log.flush()
        for i, request_id in enumerate(ids):
            log.append_feedback(request_id, window["units"][i * 50 : (i + 1) * 50].tolist())
    log.close()
    ok, noisy, shifted = monitors.run("demand-api", end_ms=T0 + 3 * HOUR, client=client)
    assert ok.status == "ok"
    assert [a["check"] for a in noisy.alerts] == ["performance"]
    assert "rmse" in noisy.alerts[0]["reason"]
    assert "prediction_drift" in [a["check"] for a in shifted.alerts]
    (psi,) = [r for r in shifted.results if r.check == "prediction_drift"]
    assert (psi.feature, psi.statistic, psi.threshold) == ("prediction", "psi", 0.2)


def test_text_classes(client: TrackingClient) -> None:
    """Classes named by text: predictions, probabilities and labels line up by name."""
    from sklearn.linear_model import LogisticRegression

    from mloop import data, registry
    from mloop.serving import create_deployment

    frame = sample(3000, seed=0)
    frame["label"] = np.where(frame["label"] == 1, "fraud", "legit")
    version = data.register("transactions", frame, client=client)
    with client.start_run(experiment="monitoring") as run:
        run.log_input(version, context="training")
        model = LogisticRegression().fit(frame[FEATURES], frame["label"])
        run.log_model(model, "fraud", input_example=frame[FEATURES][:5])
    registry.set_alias("fraud", "champion", 1, client=client)
    create_deployment(DEP, "fraud@champion", client=client)
    monitors.create(deployment=DEP, checks=["prediction_drift", "performance"], client=client)
    window = sample(500, seed=7)
    y = np.where(window["label"] == 1, "fraud", "legit")
    x = window[FEATURES]
    ids = [f"{T0 + i:013d}{i:016x}" for i in range(10)]
    log = PredictionLog(DEP, client=client)
    log.append(
        PredictionBatch(
            model_version=1, role="primary", request_ids=ids, row_counts=[50] * 10,
            ts_ms=[T0 + i for i in range(10)], latency_ms=[1.0] * 10, inputs=x,
            predictions=model.predict(x), probabilities=model.predict_proba(x),
            classes=list(model.classes_),
        )
    )  # fmt: skip
    log.flush()
    for i, request_id in enumerate(ids):
        log.append_feedback(request_id, y[i * 50 : (i + 1) * 50].tolist())
    log.close()
    (found,) = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
    assert found.status == "ok", found.alerts
    assert found.summary["performance"]["value"] > 0.75
    assert found.summary["prediction_drift"]["prediction"]["value"] < 0.1


@pytest.mark.s3
def test_on_s3_artifacts(mloop_home: Path, s3_artifact_uri: str) -> None:
    """The same monitor with the log, the reference and its blob on S3."""
    reset_default_client()
    with TrackingClient(load_settings(), artifact_uri=s3_artifact_uri) as client:
        scenario = make_scenario(client, reference_rows=1000)
        monitors.create(deployment=DEP, window="30m", client=client)
        scenario.log(T0, 2, 500, window_ms=HOUR // 2, labels=True)
        found = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
        assert [(r.rows, r.labelled_rows, r.status) for r in found] == [
            (500, 500, "ok"), (500, 500, "ok"),
        ]  # fmt: skip
    reset_default_client()


def test_a_window_of_versions_predicting_different_types_is_reported(
    scenario: Scenario,
) -> None:
    """Version 1 predicts ints, version 2 text: the window is compared as text and reported
    once, not retried forever."""
    client = scenario.client
    monitors.create(deployment=DEP, checks=["prediction_drift", "performance"], client=client)
    frame = sample(400, seed=60)
    x, y = frame[FEATURES], frame["label"].to_numpy()
    log = PredictionLog(DEP, client=client)
    for version in (1, 2):
        ids = [f"{T0 + version * 10 + i:013d}{version * 10 + i:016x}" for i in range(4)]
        predicted = scenario.model.predict(x[:200])
        log.append(
            PredictionBatch(
                model_version=version, role="primary", request_ids=ids, row_counts=[50] * 4,
                ts_ms=[T0 + version * 10 + i for i in range(4)], latency_ms=[1.0] * 4,
                inputs=x[:200],
                predictions=predicted if version == 1 else predicted.astype(str),
                probabilities=scenario.model.predict_proba(x[:200]), classes=[0, 1],
            )
        )  # fmt: skip
        log.flush()
        for i, request_id in enumerate(ids):
            log.append_feedback(request_id, y[i * 50 : (i + 1) * 50].tolist())
    log.close()
    (found,) = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
    assert found.rows == 400 and found.labelled_rows == 400
    assert found.summary["model_versions"] == {"1": 200, "2": 200}
    assert monitors.run(DEP, end_ms=T0 + HOUR, client=client) == []
