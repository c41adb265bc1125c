"""The parts of a monitor: window parsing, the rank ROC AUC, the confidence-based estimate, the
performance check's significance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from mloop.errors import InvalidInput
from mloop.monitoring import parse_window
from mloop.monitoring.checks import auc_standard_error, performance
from mloop.monitoring.reference import Reference, calibrate, estimate, roc_auc
from mloop.monitoring.windows import WindowData


@pytest.mark.parametrize(
    ("text", "ms", "rows"),
    [
        ("1h", 3_600_000, None),
        ("15m", 900_000, None),
        (" 30s ", 30_000, None),
        ("1d", 86_400_000, None),
        ("10000 rows", None, 10_000),
        ("10 row", None, 10),
    ],
)
def test_parse_window(text: str, ms: int | None, rows: int | None) -> None:
    spec = parse_window(text)
    assert (spec.ms, spec.rows) == (ms, rows)


@pytest.mark.parametrize("bad", ["", "1w", "0s", "h", "9 rows", "-1h", 3600, None, "1.5h"])
def test_bad_windows(bad: object) -> None:
    with pytest.raises(InvalidInput, match="is not a window") as info:
        parse_window(bad)
    assert info.value.details["field"] == "window"


def test_time_windows_align_to_their_length() -> None:
    spec = parse_window("15m")
    assert spec.align(1_763_906_400_000 + 16 * 60_000) == 1_763_906_400_000 + 15 * 60_000


def test_rank_auc_equals_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000).astype(bool)
    score = np.round(rng.normal(size=5000) + y, 1)  # with ties
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert roc_auc(np.ones(3, bool), np.arange(3.0)) is None


def test_estimate_tracks_real_performance_on_calibrated_scores() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(2, 2, 200_000)
    y = rng.random(p.size) < p  # p is calibrated by construction
    found = estimate(p, calibrate(p[:20_000], y[:20_000]))
    assert found["accuracy"] == pytest.approx(np.mean((p >= 0.5) == y), abs=0.01)
    assert found["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.01)
    # Miscalibrated scores are corrected by the calibration learnt on labelled reference rows.
    squashed = 0.5 + (p - 0.5) / 4
    corrected = estimate(squashed, calibrate(squashed[:20_000], y[:20_000]))
    assert corrected["roc_auc"] == pytest.approx(found["roc_auc"], abs=0.01)
    assert estimate(np.array([np.nan]), None) == {}


def _window(y: np.ndarray, p: np.ndarray) -> WindowData:
    proba = pa.chunked_array([pa.array([[1.0 - v, v] for v in p], pa.list_(pa.float64()))])
    return WindowData(
        rows=len(y), features=pa.table({"x": p}),
        prediction=pa.chunked_array([pa.array((p >= 0.5).astype(np.int64))]),
        proba=proba, label=pa.chunked_array([pa.array(y.astype(np.int64))]),
        model_versions={1: len(y)},
    )  # fmt: skip


def _reference(metric: str, performance: float) -> Reference:
    return Reference(
        dataset="d@v1", model_version=1, features=["x"], task="binary", classes=[0, 1],
        prediction_profile={}, suite={}, metric=metric, performance=performance,
        performance_source="test", target="y",
    )  # fmt: skip


def _draw(rng: np.random.Generator, rows: int, rate: float, signal: float) -> tuple[Any, Any]:
    y = rng.random(rows) < rate
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=rows) + signal * y - 3.0)))
    return y.astype(np.int64), p


SETTINGS = {"min_rows": 100, "thresholds": {}}


def test_auc_standard_error_matches_sampling_spread() -> None:
    rng = np.random.default_rng(3)
    aucs = []
    for _ in range(300):
        y = np.r_[np.ones(40, bool), np.zeros(800, bool)]
        aucs.append(roc_auc(y, rng.normal(size=y.size) + 1.5 * y))
    spread = float(np.std(aucs))
    # The exponential approximation is a little conservative for normal scores: never smaller.
    assert spread <= auc_standard_error(float(np.mean(aucs)), 40, 800) <= 1.5 * spread


def test_performance_reports_insufficient_labels_without_alerting() -> None:
    rng = np.random.default_rng(4)
    y, p = _draw(rng, 2000, 0.006, 2.0)  # about a dozen positives
    found = performance(_window(y, 1.0 - p), _reference("roc_auc", 0.9), SETTINGS)
    assert not found.alerts
    assert "insufficient labels" in found.summary["note"]
    assert "value" not in found.summary
    fewer = performance(
        _window(y, 1.0 - p), _reference("roc_auc", 0.9), {**SETTINGS, "min_class_rows": 5}
    )
    assert [a["check"] for a in fewer.alerts] == ["performance"]  # the scores are inverted


def test_performance_is_quiet_on_50_stationary_windows_and_alerts_on_a_real_drop() -> None:
    rng = np.random.default_rng(5)
    y, p = _draw(rng, 400_000, 0.03, 2.0)
    reference = roc_auc(y.astype(bool), p)
    assert reference is not None
    alarms, notes = 0, 0
    for _ in range(50):
        wy, wp = _draw(rng, 2000, 0.03, 2.0)  # about 60 positives: a noisy AUC
        found = performance(_window(wy, wp), _reference("roc_auc", reference), SETTINGS)
        alarms += bool(found.alerts)
        notes += "note" in found.summary
    assert alarms == 0 and notes == 0
    wy, wp = _draw(rng, 2000, 0.03, 0.8)  # the relation between inputs and labels weakens
    found = performance(_window(wy, wp), _reference("roc_auc", reference), SETTINGS)
    assert [a["check"] for a in found.alerts] == ["performance"]
    assert "standard errors" in found.alerts[0]["reason"]
    assert found.summary["z"] > 3.0


def test_accuracy_drop_needs_significance() -> None:
    rng = np.random.default_rng(6)
    y = rng.random(120) < 0.5
    right = rng.random(120) < 0.84  # 0.06 below the reference's 0.9: within sampling noise
    p = np.where(right == y, 0.9, 0.1)
    quiet = performance(_window(y.astype(np.int64), p), _reference("accuracy", 0.9), SETTINGS)
    assert not quiet.alerts and quiet.summary["standard_error"] > 0.02
    y = rng.random(5000) < 0.5
    right = rng.random(5000) < 0.8
    p = np.where(right == y, 0.9, 0.1)
    loud = performance(_window(y.astype(np.int64), p), _reference("accuracy", 0.9), SETTINGS)
    assert [a["check"] for a in loud.alerts] == ["performance"]


def test_the_reference_performance_own_sampling_error_counts() -> None:
    # A reference measured on 2,000 rows is itself an estimate: a window 3.5 window-standard-
    # errors below it is not significant once the reference's error is counted too.
    rng = np.random.default_rng(9)
    wy, wp = _draw(rng, 2000, 0.03, 1.2)
    value = roc_auc(wy.astype(bool), wp)
    assert value is not None
    positives = int(wy.sum())
    base = value
    for _ in range(50):  # the reference 3.5 standard errors (taken at the reference) above
        base = value + 3.5 * auc_standard_error(base, positives, len(wy) - positives)
    assert base - value > 0.05  # beyond the tolerance either way
    alone = performance(_window(wy, wp), _reference("roc_auc", base), SETTINGS)
    assert [a["check"] for a in alone.alerts] == ["performance"]
    counted = _reference("roc_auc", base)
    counted.performance_rows = {"rows": 2000, "positives": positives}
    both = performance(_window(wy, wp), counted, SETTINGS)
    assert not both.alerts
    assert both.summary["standard_error"] == pytest.approx(
        alone.summary["standard_error"] * np.sqrt(2), rel=1e-4
    )
    # Unknown positives (an evaluation without calibration bins): the window's error alone.
    counted.performance_rows = {"rows": 2000}
    assert performance(_window(wy, wp), counted, SETTINGS).alerts


def test_a_window_without_probabilities_measures_no_auc_and_stores_no_nan() -> None:
    import json

    rng = np.random.default_rng(13)
    y, _ = _draw(rng, 2000, 0.3, 2.0)
    found = performance(_window(y, np.full(len(y), np.nan)), _reference("roc_auc", 0.9), SETTINGS)
    assert not found.alerts and found.summary["value"] is None
    json.dumps(found.summary, allow_nan=False)  # what the store requires
