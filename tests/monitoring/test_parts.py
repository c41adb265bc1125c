"""The parts of a monitor: window parsing, the rank ROC AUC, the confidence-based estimate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mloop.errors import InvalidInput
from mloop.monitoring import parse_window
from mloop.monitoring.reference import calibrate, estimate, roc_auc


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
