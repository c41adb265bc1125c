"""The checks a monitor runs on a window, each giving per-feature results, alerts and a summary.

- ``feature_drift``: every feature of the window against the reference dataset's stored profile
  (:func:`mloop.data.drift`); one alert when the share of drifted features reaches
  ``drift_share`` — never on a single test, so 25 features of stationary data do not alarm.
- ``prediction_drift``: the predictions (and the positive-class probability of a binary
  classifier) against the served model's predictions on the reference data: PSI for numbers
  (alert at ``PSI_THRESHOLD`` = 0.2), Jensen-Shannon distance for predicted classes (0.1).
- ``data_quality``: the expectation suite drafted from the reference (or given); an alert when
  an expectation fails.
- ``performance``: with at least ``min_rows`` labelled rows (and, for roc_auc, at least
  ``min_class_rows`` positives and negatives, else "insufficient labels", no alert), the metric
  against the reference performance; alert when it is worse by more than ``PERFORMANCE_DROP``
  (0.05 for roc_auc and accuracy, absolute; for rmse and mae a relative rise of 10 %) and, for
  roc_auc and accuracy, by more than ``SIGNIFICANCE_Z`` standard errors of the difference
  (Hanley-McNeil for roc_auc, binomial for accuracy; the window's error and, when the rows the
  reference performance was measured on are known, the reference's), so small samples do not
  cry wolf. For
  binary classifiers the confidence-based estimate (calibrated probabilities) is reported on
  every window, labelled ``estimated_*``, and compared in the same way with the same estimate
  on the reference data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop.monitoring.reference import Reference, estimate, score
from mloop.monitoring.windows import WindowData
from mloop.store.monitoring import finite
from mloop.store.records import MonitorResult

__all__ = [
    "CHECKS",
    "JS_THRESHOLD",
    "MIN_CLASS_ROWS",
    "PERFORMANCE_DROP",
    "PSI_THRESHOLD",
    "SIGNIFICANCE_Z",
    "CheckOutcome",
    "auc_standard_error",
    "run_check",
]

CHECKS = ("feature_drift", "prediction_drift", "data_quality", "performance")
#: Default PSI above which the prediction (or probability) distribution has drifted.
PSI_THRESHOLD = 0.2
#: Default Jensen-Shannon distance above which the predicted classes have drifted.
JS_THRESHOLD = 0.1
#: Default worst tolerated drop of the metric (absolute; relative for error metrics).
PERFORMANCE_DROP = {"roc_auc": 0.05, "accuracy": 0.05, "rmse": 0.1, "mae": 0.1}
#: Default fewest labelled rows of each class (positives, negatives) to measure a ROC AUC.
MIN_CLASS_ROWS = 30
#: Standard errors a drop of roc_auc or accuracy must exceed to alert (one-sided p ~ 0.001).
SIGNIFICANCE_Z = 3.0
#: Rows above which drift is computed on bins rather than raw values (the data package's path).
MAX_EXACT_ROWS = 100_000
#: Expectations whose outcome adds up over chunks of rows (counts of unexpected values).
ADDITIVE_EXPECTATIONS = frozenset(
    {"column_exists", "column_type", "not_null", "in_range", "in_set", "matches_regex"}
)
#: Rows validated at once in a large window.
QUALITY_CHUNK_ROWS = 131_072


@dataclass
class CheckOutcome:
    """What one check found in one window."""

    results: list[MonitorResult] = field(default_factory=list)
    alerts: list[dict[str, str]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _drift_results(check: str, report: Any) -> list[MonitorResult]:
    return [
        MonitorResult(
            check=check, feature=c.column, statistic=c.test or c.status,
            value=finite(c.statistic), threshold=finite(c.threshold),
            p_value=finite(c.p_value), drifted=c.drifted if c.status == "ok" else None,
        )
        for c in report.columns
    ]  # fmt: skip


def feature_drift(data: WindowData, reference: Any, settings: Mapping[str, Any]) -> CheckOutcome:
    """Drift of every feature, and the dataset-level verdict on the share of drifted ones."""
    from mloop.data.drift import drift

    share = float(settings["drift_share"])
    thresholds = settings.get("thresholds", {}).get("feature_drift") or None
    columns = [c for c in data.features.column_names if c in reference.columns]
    missing = [f for f in settings["features"] if f not in data.features.column_names]
    if not columns:
        return CheckOutcome(summary={"skipped": "no feature of the reference is in the log"})
    report = drift(
        reference, data.features.select(columns), drift_share=share, thresholds=thresholds,
        max_rows_in_memory=MAX_EXACT_ROWS,
    )  # fmt: skip
    outcome = CheckOutcome(results=_drift_results("feature_drift", report))
    drifted = report.drifted_columns
    outcome.summary = {
        "tested": len(report.tested), "drifted": drifted,
        "drifted_share": round(report.drifted_share, 6), "drift_share": share,
        "missing": missing,
    }  # fmt: skip
    if report.drifted:
        outcome.alerts.append({
            "check": "feature_drift",
            "reason": f"{len(drifted)} of {len(report.tested)} features drifted "
            f"({report.drifted_share:.0%} >= drift_share {share:.0%}): "
            + ", ".join(drifted[:10]) + (" …" if len(drifted) > 10 else ""),
        })  # fmt: skip
    return outcome


def prediction_drift(
    data: WindowData, reference: Reference, settings: Mapping[str, Any]
) -> CheckOutcome:
    """Drift of the predictions (and of the positive-class probability) from the reference."""
    from mloop.data.drift import drift
    from mloop.data.profile import DatasetProfile

    if data.prediction is None:
        return CheckOutcome(summary={"skipped": "the log holds no predictions"})
    given = settings.get("thresholds", {}).get("prediction_drift") or {}
    current: dict[str, Any] = {"prediction": data.prediction}
    tests: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    if reference.task == "regression":
        tests["prediction"], thresholds["prediction"] = "psi", PSI_THRESHOLD
    else:
        current["prediction"] = data.prediction.cast(pa.string())
        tests["prediction"], thresholds["prediction"] = "jensenshannon", JS_THRESHOLD
    if reference.task == "binary" and data.positive_proba is not None:
        current["proba"] = data.positive_proba
        tests["proba"], thresholds["proba"] = "psi", PSI_THRESHOLD
    thresholds.update({k: float(v) for k, v in given.items() if k in thresholds})
    profile = DatasetProfile.from_dict(reference.prediction_profile)
    report = drift(
        profile, pa.table(current), tests=tests, thresholds=thresholds, drift_share=1.0,
        max_rows_in_memory=MAX_EXACT_ROWS,
    )  # fmt: skip
    outcome = CheckOutcome(results=_drift_results("prediction_drift", report))
    drifted = report.drifted_columns
    outcome.summary = {
        c.column: {"test": c.test, "value": finite(c.statistic), "threshold": c.threshold}
        for c in report.columns
    }
    if drifted:
        parts = [f"{c.column} {c.test} {c.statistic:.3g} >= {c.threshold:g}"
                 for c in report.columns if c.drifted]  # fmt: skip
        outcome.alerts.append(
            {"check": "prediction_drift", "reason": "predictions drifted: " + "; ".join(parts)}
        )
    return outcome


@dataclass
class _Tally:
    """One expectation's outcome summed over the chunks of a window."""

    kind: str
    column: str
    mostly: float | None
    unexpected: int = 0
    elements: int = 0
    passed: list[bool] = field(default_factory=list)

    @property
    def success(self) -> bool:
        if self.mostly is None:  # column_exists, column_type: the same answer for every chunk
            return any(self.passed) if self.kind == "column_type" else all(self.passed)
        return (
            self.elements == 0 or (self.elements - self.unexpected) / self.elements >= self.mostly
        )

    @property
    def fraction(self) -> float:
        return self.unexpected / self.elements if self.elements else 0.0


def _tallies(features: pa.Table, suite: Any) -> list[_Tally]:
    """Validate a window chunk by chunk when every expectation adds up over rows (so memory
    holds one chunk as pandas, not the window), else the whole window at once."""
    from mloop.data.validation import validate

    additive = all(e.kind in ADDITIVE_EXPECTATIONS for e in suite.expectations)
    frames: Iterator[Any]
    if additive and features.num_rows > QUALITY_CHUNK_ROWS:
        frames = (b.to_pandas() for b in features.to_batches(max_chunksize=QUALITY_CHUNK_ROWS))
    else:
        frames = iter([features.to_pandas()])
    tallies: list[_Tally] = []
    for frame in frames:
        result = validate(frame, suite, sample_size=0)
        if not tallies:
            tallies = [
                _Tally(r.kind, r.column or "(table)", getattr(r.expectation, "mostly", None))
                for r in result.results
            ]
        for tally, item in zip(tallies, result.results, strict=True):
            tally.unexpected += item.unexpected_count
            tally.elements += item.element_count
            tally.passed.append(item.success)
    return tallies


def data_quality(
    data: WindowData, reference: Reference, settings: Mapping[str, Any]
) -> CheckOutcome:
    """The reference's expectation suite on the window's features."""
    from mloop.data.validation import Suite

    tallies = _tallies(data.features, Suite.from_dict(reference.suite))
    outcome = CheckOutcome()
    failed = []
    for tally in tallies:
        outcome.results.append(
            MonitorResult(
                check="data_quality", feature=tally.column, statistic=tally.kind,
                value=tally.fraction,
                threshold=None if tally.mostly is None else round(1.0 - tally.mostly, 12),
                drifted=not tally.success,
            )
        )  # fmt: skip
        if not tally.success:
            failed.append(f"{tally.kind}({tally.column})")
    outcome.summary = {"evaluated": len(tallies), "failed": failed}
    if failed:
        outcome.alerts.append({
            "check": "data_quality",
            "reason": f"{len(failed)} of {len(tallies)} expectations failed: "
            + ", ".join(failed[:10]) + (" …" if len(failed) > 10 else ""),
        })  # fmt: skip
    return outcome


def auc_standard_error(auc: float, positives: float, negatives: float) -> float:
    """The Hanley-McNeil standard error of a ROC AUC measured on ``positives`` and
    ``negatives`` rows (exponential approximation)."""
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1.0 - auc)
        + (positives - 1.0) * (q1 - auc * auc)
        + (negatives - 1.0) * (q2 - auc * auc)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def _standard_error(
    metric: str, reference: float, rows: int, positives: float, negatives: float
) -> float | None:
    """The sampling error of the window's metric if nothing changed (None for error metrics,
    which keep a relative tolerance)."""
    if metric == "roc_auc":
        return auc_standard_error(min(max(reference, 0.0), 1.0), positives, negatives)
    if metric == "accuracy":
        share = min(max(reference, 0.0), 1.0)
        return math.sqrt(share * (1.0 - share) / rows)
    return None


def _reference_error(
    metric: str, reference: float, measured_on: Mapping[str, int] | None
) -> float | None:
    """The sampling error of the reference performance itself, from the labelled rows it was
    measured on (None when they are unknown)."""
    if not measured_on:
        return None
    rows = int(measured_on.get("rows", 0))
    if metric == "roc_auc":
        positives = measured_on.get("positives")
        if positives is None or not 0 < positives < rows:
            return None
        return _standard_error(metric, reference, rows, positives, rows - positives)
    return _standard_error(metric, reference, rows, 0, 0) if rows > 0 else None


def _verdict(
    metric: str, value: float, reference: float, drop: float, error: float | None
) -> tuple[bool, float | None]:
    """Whether the window is worse than the reference beyond the tolerance and, when the
    metric's sampling error is known, by more than ``SIGNIFICANCE_Z`` standard errors; and the
    z-score of the drop."""
    if metric in ("rmse", "mae"):
        return value > reference * (1.0 + drop), None
    fall = reference - value
    z = fall / error if error else None
    return fall > drop and (z is None or z > SIGNIFICANCE_Z), z


def _class_counts(y: np.ndarray, classes: list[Any] | None) -> tuple[int, int]:
    if classes is None:
        return 0, 0
    positives = int(np.count_nonzero(np.asarray(y) == classes[-1]))
    return positives, len(y) - positives


def performance(
    data: WindowData, reference: Reference, settings: Mapping[str, Any]
) -> CheckOutcome:
    """Measured performance once labels exist; estimated performance before (classifiers)."""
    metric = reference.metric
    drop = float(settings.get("thresholds", {}).get("performance", PERFORMANCE_DROP[metric]))
    min_class = int(settings.get("min_class_rows", MIN_CLASS_ROWS))
    outcome = CheckOutcome()
    labelled = data.labelled_rows
    summary: dict[str, Any] = {"metric": metric, "reference": reference.performance,
                               "reference_source": reference.performance_source,
                               "labelled_rows": labelled}  # fmt: skip
    positive = data.positive_proba if reference.task == "binary" else None
    if (
        labelled >= int(settings["min_rows"])
        and data.label is not None
        and data.prediction is not None
    ):
        has = pc.is_valid(data.label)
        y = data.label.filter(has).to_numpy(zero_copy_only=False)
        predictions = data.prediction.filter(has).to_numpy(zero_copy_only=False)
        proba = None
        if positive is not None:
            kept = positive[has.to_numpy(zero_copy_only=False)]
            proba = np.column_stack([1.0 - kept, kept])
        classes = reference.classes
        if classes is not None and len(y) and type(y[0]) is not type(classes[-1]):
            # Labels sent as text for numeric classes (or the other way round): compare as text.
            y, classes = y.astype(str), [str(c) for c in classes]
        positives, negatives = _class_counts(y, classes)
        if metric == "roc_auc":
            summary.update(positives=positives, negatives=negatives)
        if metric == "roc_auc" and min(positives, negatives) < min_class:
            summary["note"] = (
                f"insufficient labels: {positives} positive and {negatives} negative labelled "
                f"rows, fewer than min_class_rows {min_class} of each: not evaluated"
            )
        else:
            _measured(
                outcome, summary, metric, score(metric, y, predictions, proba, classes),
                base=reference.performance, drop=drop, rows=len(y), positives=positives,
                negatives=negatives, measured_on=reference.performance_rows,
            )  # fmt: skip
    elif labelled:
        summary["note"] = f"{labelled} labelled rows, fewer than min_rows {settings['min_rows']}"
    if positive is not None and reference.estimated:
        found = estimate(positive, reference.calibration)
        summary["estimated"] = found
        # The estimate counts each row as positive with its calibrated probability.
        expected = float(np.nansum(_calibrated(positive, reference)))
        rows = int(np.count_nonzero(np.isfinite(np.asarray(positive, dtype=np.float64))))
        tolerance = float(settings.get("thresholds", {}).get("performance", 0.05))
        for name, value in sorted(found.items()):
            base = reference.estimated.get(name)
            worse, z = (False, None)
            if base is not None:
                error = _standard_error(name, base, rows, expected, rows - expected)
                worse, z = _verdict(name, value, base, tolerance, error)
            outcome.results.append(
                MonitorResult(
                    check="performance", feature=f"estimated_{name}", statistic=name,
                    value=value, threshold=base, drifted=worse,
                )
            )  # fmt: skip
            if worse and base is not None and name == metric:
                outcome.alerts.append({
                    "check": "performance",
                    "reason": f"estimated {name} {value:.4f} (confidence-based, before labels) "
                    f"vs {base:.4f} estimated on the reference (tolerance {tolerance:g}, "
                    f"{z or 0.0:.1f} standard errors)",
                })  # fmt: skip
    outcome.summary = summary
    return outcome


def _calibrated(positive: np.ndarray, reference: Reference) -> np.ndarray:
    """The positive-class probabilities calibrated as on the reference."""
    p = np.asarray(positive, dtype=np.float64)
    p = p[np.isfinite(p)]
    calibration = reference.calibration
    if calibration is not None and calibration["x"]:
        p = np.interp(p, calibration["x"], calibration["y"])
    return p


def _measured(
    outcome: CheckOutcome, summary: dict[str, Any], metric: str, value: float | None, *,
    base: float | None, drop: float, rows: int, positives: int, negatives: int,
    measured_on: Mapping[str, int] | None = None,
) -> None:  # fmt: skip
    """Compare the measured metric with the reference one: a result, and an alert when the
    drop is beyond the tolerance and significant given the window's labelled rows."""
    if value is not None and not math.isfinite(value):
        value = None  # e.g. no probabilities were logged: no AUC to measure
    summary["value"] = value
    if value is None:
        outcome.results.append(
            MonitorResult(
                check="performance", feature=metric, statistic=metric, value=None,
                threshold=base, drifted=None,
            )
        )  # fmt: skip
        return
    worse, z = False, None
    if base is not None:
        error = _standard_error(metric, base, rows, positives, negatives)
        ref_error = _reference_error(metric, base, measured_on)
        if error is not None and ref_error is not None:
            # Two estimates are compared: the error of their difference holds both.
            error = math.hypot(error, ref_error)
        worse, z = _verdict(metric, value, base, drop, error)
        if error is not None:
            summary["standard_error"] = round(error, 6)
            summary["z"] = None if z is None else round(z, 3)
    outcome.results.append(
        MonitorResult(
            check="performance", feature=metric, statistic=metric, value=value,
            threshold=base, drifted=worse,
        )
    )  # fmt: skip
    if worse and base is not None:
        significance = "" if z is None else f", {z:.1f} standard errors"
        outcome.alerts.append({
            "check": "performance",
            "reason": f"{metric} {value:.4f} on {rows} labelled rows vs {base:.4f} on the "
            f"reference (tolerance {drop:g}{significance})",
        })  # fmt: skip


def run_check(
    name: str, data: WindowData, reference: Reference, feature_profile: Any,
    settings: Mapping[str, Any],
) -> CheckOutcome:  # fmt: skip
    """Run one check by name."""
    if name == "feature_drift":
        return feature_drift(data, feature_profile, settings)
    if name == "prediction_drift":
        return prediction_drift(data, reference, settings)
    if name == "data_quality":
        return data_quality(data, reference, settings)
    return performance(data, reference, settings)
