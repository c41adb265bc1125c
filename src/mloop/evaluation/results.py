"""The records an evaluation produces, and their JSON form.

Every record is a frozen dataclass with ``to_dict``/``from_dict``. The dict form is JSON-ready and
never holds NaN or infinity: a non-finite float is written as ``None`` (NaN) or as the strings
``"inf"``/``"-inf"``, and read back as the same float. Labels (class values, slice values) are
written as plain Python scalars (``str``, ``int``, ``float``, ``bool`` or ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.errors import InvalidInput

__all__ = [
    "FORMAT",
    "Calibration",
    "CalibrationBin",
    "EvaluationResult",
    "FairnessGaps",
    "FeatureImportance",
    "Label",
    "LatencyStats",
    "SliceMetrics",
    "Task",
    "decode_float",
    "encode_float",
]

#: Written into every serialised result so a later reader can tell formats apart.
FORMAT = "mloop-evaluation-1"

Task = Literal["classification", "regression"]
#: A class label or slice value, as a JSON scalar.
Label = str | int | float | bool | None

#: Names accepted by :meth:`EvaluationResult.slice_gap` in place of the slice metric they measure.
GAP_ALIASES = {
    "demographic_parity_difference": "selection_rate",
    "equal_opportunity_difference": "recall",
}


def encode_float(value: float | None) -> float | str | None:
    """A float as JSON: finite as is, NaN as ``None``, infinities as ``"inf"``/``"-inf"``."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def decode_float(value: Any) -> float:
    """The inverse of :func:`encode_float` (``None`` reads back as NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        if value in ("inf", "-inf", "nan"):
            return float(value)
        raise InvalidInput(f"expected a number, 'inf', '-inf' or null, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"expected a number, got {value!r}")
    return float(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else decode_float(value)


def _encode_metrics(metrics: Mapping[str, float]) -> dict[str, float | str | None]:
    return {name: encode_float(value) for name, value in metrics.items()}


def _decode_metrics(raw: Mapping[str, Any]) -> dict[str, float]:
    return {str(name): decode_float(value) for name, value in raw.items()}


def _encode_label_map(values: Mapping[str, float]) -> dict[str, float | str | None]:
    return {key: encode_float(value) for key, value in values.items()}


def _require(raw: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return raw[key]
    except (KeyError, TypeError):
        raise InvalidInput(f"{what} is missing the field {key!r}") from None


@dataclass(frozen=True)
class SliceMetrics:
    """Metrics on the rows where ``column`` equals ``value`` (``n`` rows)."""

    column: str
    value: Label
    n: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "column": self.column,
            "value": self.value,
            "n": self.n,
            "metrics": _encode_metrics(self.metrics),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SliceMetrics:
        """Read the form written by :meth:`to_dict`."""
        return cls(
            column=str(_require(raw, "column", "a slice")),
            value=_require(raw, "value", "a slice"),
            n=int(_require(raw, "n", "a slice")),
            metrics=_decode_metrics(_require(raw, "metrics", "a slice")),
        )


@dataclass(frozen=True)
class FairnessGaps:
    """Gaps between the groups of one slice column (classification only).

    ``demographic_parity_difference`` is the largest minus the smallest selection rate (share of
    rows predicted positive); ``equal_opportunity_difference`` the same for recall (true-positive
    rate); ``equalized_odds_difference`` the larger of the recall gap and the false-positive-rate
    gap. These three are ``None`` for multiclass tasks. ``recall`` and ``precision`` map each group
    (its value as a string) to the metric; ``max_gaps`` maps every slice metric to its largest
    minus smallest value over the groups where it is defined.
    """

    column: str
    demographic_parity_difference: float | None
    equal_opportunity_difference: float | None
    equalized_odds_difference: float | None
    recall: dict[str, float]
    precision: dict[str, float]
    selection_rate: dict[str, float]
    max_gaps: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "column": self.column,
            "demographic_parity_difference": encode_float(self.demographic_parity_difference),
            "equal_opportunity_difference": encode_float(self.equal_opportunity_difference),
            "equalized_odds_difference": encode_float(self.equalized_odds_difference),
            "recall": _encode_label_map(self.recall),
            "precision": _encode_label_map(self.precision),
            "selection_rate": _encode_label_map(self.selection_rate),
            "max_gaps": _encode_metrics(self.max_gaps),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FairnessGaps:
        """Read the form written by :meth:`to_dict`."""
        return cls(
            column=str(_require(raw, "column", "fairness gaps")),
            demographic_parity_difference=_optional_float(raw.get("demographic_parity_difference")),
            equal_opportunity_difference=_optional_float(raw.get("equal_opportunity_difference")),
            equalized_odds_difference=_optional_float(raw.get("equalized_odds_difference")),
            recall=_decode_metrics(raw.get("recall", {})),
            precision=_decode_metrics(raw.get("precision", {})),
            selection_rate=_decode_metrics(raw.get("selection_rate", {})),
            max_gaps=_decode_metrics(raw.get("max_gaps", {})),
        )


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of a reliability diagram: predicted probabilities in ``[lower, upper)``."""

    lower: float
    upper: float
    mean_predicted: float
    fraction_positive: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "lower": self.lower,
            "upper": self.upper,
            "mean_predicted": self.mean_predicted,
            "fraction_positive": self.fraction_positive,
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CalibrationBin:
        """Read the form written by :meth:`to_dict`."""
        return cls(
            lower=decode_float(raw["lower"]),
            upper=decode_float(raw["upper"]),
            mean_predicted=decode_float(raw["mean_predicted"]),
            fraction_positive=decode_float(raw["fraction_positive"]),
            count=int(raw["count"]),
        )


@dataclass(frozen=True)
class Calibration:
    """A reliability diagram (non-empty uniform bins) and its calibration errors.

    ``kind`` is ``"positive"`` for binary tasks (the probability of the positive label against the
    share of positives) and ``"top_label"`` for multiclass (the highest probability against the
    share of rows whose top class is right). ``ece`` is the count-weighted mean of
    ``|fraction_positive - mean_predicted|`` over the bins, ``mce`` its maximum.
    """

    kind: Literal["positive", "top_label"]
    n_bins: int
    bins: list[CalibrationBin]
    ece: float
    mce: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "n_bins": self.n_bins,
            "bins": [b.to_dict() for b in self.bins],
            "ece": encode_float(self.ece),
            "mce": encode_float(self.mce),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Calibration:
        """Read the form written by :meth:`to_dict`."""
        kind = raw.get("kind")
        if kind not in ("positive", "top_label"):
            raise InvalidInput(f"calibration kind must be 'positive' or 'top_label', got {kind!r}")
        return cls(
            kind=kind,
            n_bins=int(raw["n_bins"]),
            bins=[CalibrationBin.from_dict(b) for b in raw["bins"]],
            ece=decode_float(raw["ece"]),
            mce=decode_float(raw["mce"]),
        )


@dataclass(frozen=True)
class FeatureImportance:
    """Permutation importance of one feature: the mean and standard deviation of the score drop."""

    mean: float
    std: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"mean": encode_float(self.mean), "std": encode_float(self.std)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureImportance:
        """Read the form written by :meth:`to_dict`."""
        return cls(mean=decode_float(raw["mean"]), std=decode_float(raw["std"]))


@dataclass(frozen=True)
class LatencyStats:
    """Prediction latency: single-row ``predict`` calls and one whole-batch call.

    ``p50_ms``/``p99_ms`` are percentiles over ``calls`` timed single-row calls (after a warm-up);
    ``rows_per_s`` is the throughput of the fastest of the timed whole-data ``predict`` calls over
    ``batch_rows`` rows.
    """

    p50_ms: float
    p99_ms: float
    mean_ms: float
    calls: int
    batch_rows: int
    batch_ms: float
    rows_per_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "p50_ms": encode_float(self.p50_ms),
            "p99_ms": encode_float(self.p99_ms),
            "mean_ms": encode_float(self.mean_ms),
            "calls": self.calls,
            "batch_rows": self.batch_rows,
            "batch_ms": encode_float(self.batch_ms),
            "rows_per_s": encode_float(self.rows_per_s),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LatencyStats:
        """Read the form written by :meth:`to_dict`."""
        return cls(
            p50_ms=decode_float(raw["p50_ms"]),
            p99_ms=decode_float(raw["p99_ms"]),
            mean_ms=decode_float(raw["mean_ms"]),
            calls=int(raw["calls"]),
            batch_rows=int(raw["batch_rows"]),
            batch_ms=decode_float(raw["batch_ms"]),
            rows_per_s=decode_float(raw["rows_per_s"]),
        )


@dataclass(frozen=True)
class EvaluationResult:
    """Everything one :func:`mloop.evaluation.evaluate` call measured.

    ``metrics`` holds only the metrics that could be computed; each omission (no
    ``predict_proba``, a zero in the target for ``mape``, …) is explained in ``notes``.
    ``data_digest`` identifies the evaluated rows (see :func:`mloop.evaluation.data_digest`), so
    that a gate can refuse to compare results on different data.
    """

    task: Task
    target: str
    n_rows: int
    data_digest: str
    features: list[str]
    metrics: dict[str, float]
    classes: list[Label] = field(default_factory=list)
    positive_label: Label = None
    threshold: float | None = None
    slices: dict[str, list[SliceMetrics]] = field(default_factory=dict)
    fairness: dict[str, FairnessGaps] = field(default_factory=dict)
    calibration: Calibration | None = None
    importance: dict[str, FeatureImportance] | None = None
    importance_metric: str | None = None
    latency: LatencyStats | None = None
    plots: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metric(self, name: str) -> float:
        """The value of one overall metric; :class:`InvalidInput` names the ones there are."""
        try:
            return self.metrics[name]
        except KeyError:
            known = ", ".join(sorted(self.metrics)) or "none"
            hint = f" ({'; '.join(self.notes)})" if self.notes else ""
            raise InvalidInput(
                f"metric {name!r} was not computed in this evaluation; available: {known}{hint}",
                metric=name,
            ) from None

    def slice_values(self, metric: str, column: str | None = None) -> dict[str, dict[str, float]]:
        """``{column: {group value as str: value}}`` over the groups where ``metric`` is defined."""
        name = GAP_ALIASES.get(metric, metric)
        if column is not None and column not in self.slices:
            raise InvalidInput(
                f"no slice column {column!r} in this evaluation; sliced by: "
                f"{', '.join(self.slices) or 'nothing'}",
                column=column,
            )
        columns = [column] if column is not None else list(self.slices)
        return {
            col: {str(s.value): s.metrics[name] for s in self.slices[col] if name in s.metrics}
            for col in columns
        }

    def slice_gap(self, metric: str, column: str | None = None) -> float:
        """Largest minus smallest ``metric`` over the groups of ``column`` (or the widest gap over
        every slice column). ``demographic_parity_difference`` and
        ``equal_opportunity_difference`` are accepted for ``selection_rate`` and ``recall``.

        A column with fewer than two groups where the metric is defined has a gap of 0. Raises
        :class:`InvalidInput` when nothing was sliced or no group has the metric.
        """
        if not self.slices:
            raise InvalidInput("this evaluation has no slices; pass slices=[...] to evaluate()")
        per_column = self.slice_values(metric, column)
        gaps = [max(v.values()) - min(v.values()) for v in per_column.values() if v]
        if not gaps:
            available = sorted(
                {m for group in self.slices.values() for s in group for m in s.metrics}
            )
            raise InvalidInput(
                f"slice metric {metric!r} is not defined for any group; "
                f"available: {', '.join(available) or 'none'}",
                metric=metric,
            )
        return max(gaps)

    def flat_metrics(self, prefix: str = "") -> dict[str, float]:
        """Every finite number worth logging as a run metric, under flat names.

        ``<metric>`` for overall metrics; ``fairness/<column>/<gap>`` for the fairness gaps;
        ``slice/<column>=<value>/<metric>`` per group; ``latency/p50_ms``, ``latency/p99_ms``
        and ``latency/rows_per_s``; ``importance/<feature>``. Names start with ``prefix``.
        """
        out: dict[str, float] = dict(self.metrics)
        for column, gaps in self.fairness.items():
            for name in (
                "demographic_parity_difference",
                "equal_opportunity_difference",
                "equalized_odds_difference",
            ):
                value = getattr(gaps, name)
                if value is not None:
                    out[f"fairness/{column}/{name}"] = value
        for column, groups in self.slices.items():
            for group in groups:
                for name, value in group.metrics.items():
                    out[f"slice/{column}={group.value}/{name}"] = value
        if self.latency is not None:
            out["latency/p50_ms"] = self.latency.p50_ms
            out["latency/p99_ms"] = self.latency.p99_ms
            out["latency/rows_per_s"] = self.latency.rows_per_s
        for feature, imp in (self.importance or {}).items():
            out[f"importance/{feature}"] = imp.mean
        return {f"{prefix}{k}": float(v) for k, v in out.items() if math.isfinite(v)}

    def to_dict(self, *, include_plots: bool = True) -> dict[str, Any]:
        """JSON-ready form (no NaN or infinity; see the module docstring)."""
        return {
            "format": FORMAT,
            "task": self.task,
            "target": self.target,
            "n_rows": self.n_rows,
            "data_digest": self.data_digest,
            "features": list(self.features),
            "classes": list(self.classes),
            "positive_label": self.positive_label,
            "threshold": self.threshold,
            "metrics": _encode_metrics(self.metrics),
            "slices": {col: [s.to_dict() for s in group] for col, group in self.slices.items()},
            "fairness": {col: gaps.to_dict() for col, gaps in self.fairness.items()},
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "importance": (
                None
                if self.importance is None
                else {name: imp.to_dict() for name, imp in self.importance.items()}
            ),
            "importance_metric": self.importance_metric,
            "latency": self.latency.to_dict() if self.latency else None,
            "plots": dict(self.plots) if include_plots else {},
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EvaluationResult:
        """Read the form written by :meth:`to_dict`; :class:`InvalidInput` if it is malformed."""
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"an evaluation result must be a mapping, got {type(raw).__name__}")
        fmt = raw.get("format", FORMAT)
        if fmt != FORMAT:
            raise InvalidInput(f"unknown evaluation result format {fmt!r}; expected {FORMAT!r}")
        task = _require(raw, "task", "an evaluation result")
        if task not in ("classification", "regression"):
            raise InvalidInput(f"task must be 'classification' or 'regression', got {task!r}")
        try:
            importance = raw.get("importance")
            calibration = raw.get("calibration")
            latency = raw.get("latency")
            threshold = raw.get("threshold")
            return cls(
                task=task,
                target=str(_require(raw, "target", "an evaluation result")),
                n_rows=int(_require(raw, "n_rows", "an evaluation result")),
                data_digest=str(_require(raw, "data_digest", "an evaluation result")),
                features=[str(f) for f in raw.get("features", [])],
                metrics=_decode_metrics(_require(raw, "metrics", "an evaluation result")),
                classes=list(raw.get("classes", [])),
                positive_label=raw.get("positive_label"),
                threshold=None if threshold is None else decode_float(threshold),
                slices={
                    str(col): [SliceMetrics.from_dict(s) for s in group]
                    for col, group in raw.get("slices", {}).items()
                },
                fairness={
                    str(col): FairnessGaps.from_dict(g)
                    for col, g in raw.get("fairness", {}).items()
                },
                calibration=None if calibration is None else Calibration.from_dict(calibration),
                importance=(
                    None
                    if importance is None
                    else {str(k): FeatureImportance.from_dict(v) for k, v in importance.items()}
                ),
                importance_metric=raw.get("importance_metric"),
                latency=None if latency is None else LatencyStats.from_dict(latency),
                plots={str(k): str(v) for k, v in raw.get("plots", {}).items()},
                notes=[str(n) for n in raw.get("notes", [])],
            )
        except InvalidInput:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"malformed evaluation result: {exc!r}") from exc
