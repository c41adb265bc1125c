"""Calibration: a reliability diagram on uniform bins and the expected calibration error.

The binning is scikit-learn's ``calibration_curve(strategy="uniform")``: ``n_bins`` equal bins on
[0, 1], a probability equal to an inner edge falls in the upper bin, empty bins are dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mloop.evaluation.metrics import Predictions
from mloop.evaluation.results import Calibration, CalibrationBin

__all__ = ["calibration"]

Array = np.ndarray[Any, Any]


def _bins(score: Array, hit: Array, n_bins: int) -> tuple[list[CalibrationBin], float, float]:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], score)
    sums = np.bincount(ids, weights=score, minlength=n_bins)
    hits = np.bincount(ids, weights=hit.astype(np.float64), minlength=n_bins)
    counts = np.bincount(ids, minlength=n_bins)
    bins: list[CalibrationBin] = []
    ece, mce = 0.0, 0.0
    total = max(int(counts.sum()), 1)
    for i in np.flatnonzero(counts):
        mean_pred, frac = float(sums[i] / counts[i]), float(hits[i] / counts[i])
        gap = abs(frac - mean_pred)
        ece += gap * int(counts[i]) / total
        mce = max(mce, gap)
        bins.append(
            CalibrationBin(
                lower=float(edges[i]),
                upper=float(edges[i + 1]),
                mean_predicted=mean_pred,
                fraction_positive=frac,
                count=int(counts[i]),
            )
        )
    return bins, ece, mce


def calibration(p: Predictions, n_bins: int = 10) -> Calibration | None:
    """The reliability diagram of ``p`` (``None`` without probabilities).

    Binary: the positive label's probability against the share of positives. Multiclass: the top
    probability (confidence) against the share of rows whose top class is the true one.
    """
    if p.proba is None or p.classes is None or len(p.y_true) == 0:
        return None
    if p.binary:
        score = np.clip(p.positive_proba().astype(np.float64), 0.0, 1.0)
        bins, ece, mce = _bins(score, p.y_true == p.positive_label, n_bins)
        return Calibration(kind="positive", n_bins=n_bins, bins=bins, ece=ece, mce=mce)
    top = np.argmax(p.proba, axis=1)
    score = np.clip(p.proba[np.arange(len(top)), top].astype(np.float64), 0.0, 1.0)
    bins, ece, mce = _bins(score, p.classes[top] == p.y_true, n_bins)
    return Calibration(kind="top_label", n_bins=n_bins, bins=bins, ece=ece, mce=mce)
