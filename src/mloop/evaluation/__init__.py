"""Evaluation: metrics, slices and fairness, calibration, importance, latency, plots and gates.

``evaluate(model, data, target=...)`` runs any object with ``predict`` (and optionally
``predict_proba``) over labelled data and returns an :class:`EvaluationResult`; a :class:`Gate`
checks a result (and the champion's, on the same data) against declarative thresholds and
returns a :class:`GateDecision` with the evidence. Scikit-learn is imported only when an
evaluation runs, so importing this package stays cheap.
"""

from mloop.evaluation.evaluate import data_digest, evaluate
from mloop.evaluation.gates import LATENCY_METRIC, Gate, GateCheck, GateDecision
from mloop.evaluation.metrics import (
    CLASSIFICATION_METRICS,
    HIGHER_IS_BETTER,
    KNOWN_METRICS,
    LOWER_IS_BETTER,
    NEUTRAL_METRICS,
    REGRESSION_METRICS,
    direction,
)
from mloop.evaluation.report import save_html, to_html
from mloop.evaluation.results import (
    Calibration,
    CalibrationBin,
    EvaluationResult,
    FairnessGaps,
    FeatureImportance,
    LatencyStats,
    SliceMetrics,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "HIGHER_IS_BETTER",
    "KNOWN_METRICS",
    "LATENCY_METRIC",
    "LOWER_IS_BETTER",
    "NEUTRAL_METRICS",
    "REGRESSION_METRICS",
    "Calibration",
    "CalibrationBin",
    "EvaluationResult",
    "FairnessGaps",
    "FeatureImportance",
    "Gate",
    "GateCheck",
    "GateDecision",
    "LatencyStats",
    "SliceMetrics",
    "data_digest",
    "direction",
    "evaluate",
    "save_html",
    "to_html",
]
