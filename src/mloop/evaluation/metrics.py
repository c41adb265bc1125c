"""Classification and regression metrics, computed with scikit-learn, and their directions.

A metric that cannot be computed on the given rows (a single class for ``roc_auc``, no
probabilities, a zero target for ``mape``) is left out of the returned dict, never set to NaN;
when the caller passes a ``notes`` list, the reason is appended to it.

Direction table (used by gates to read "better"):

- higher is better: accuracy, balanced_accuracy, precision, recall, f1, mcc, roc_auc, pr_auc,
  r2, explained_variance
- lower is better: log_loss, brier, ece, false_positive_rate, rmse, mse, mae, mape, median_ae,
  max_error
- neither (allowed in thresholds and slice gaps, not in "beat the champion"): selection_rate
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.errors import InvalidInput

__all__ = [
    "CLASSIFICATION_METRICS",
    "HIGHER_IS_BETTER",
    "KNOWN_METRICS",
    "LOWER_IS_BETTER",
    "NEUTRAL_METRICS",
    "REGRESSION_METRICS",
    "Predictions",
    "classification_metrics",
    "direction",
    "regression_metrics",
]

HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "mcc",
        "roc_auc",
        "pr_auc",
        "r2",
        "explained_variance",
    }
)
LOWER_IS_BETTER = frozenset(
    {
        "log_loss",
        "brier",
        "ece",
        "false_positive_rate",
        "rmse",
        "mse",
        "mae",
        "mape",
        "median_ae",
        "max_error",
    }
)
NEUTRAL_METRICS = frozenset({"selection_rate"})
KNOWN_METRICS = HIGHER_IS_BETTER | LOWER_IS_BETTER | NEUTRAL_METRICS

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "mcc",
    "selection_rate",
    "false_positive_rate",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
)
REGRESSION_METRICS = (
    "rmse",
    "mse",
    "mae",
    "r2",
    "mape",
    "median_ae",
    "max_error",
    "explained_variance",
)

Array = np.ndarray[Any, Any]


def direction(metric: str) -> Literal["higher", "lower"] | None:
    """``"higher"`` or ``"lower"`` (is better), ``None`` for a neutral metric; unknown raises."""
    if metric in HIGHER_IS_BETTER:
        return "higher"
    if metric in LOWER_IS_BETTER:
        return "lower"
    if metric in NEUTRAL_METRICS:
        return None
    raise InvalidInput(
        f"unknown metric {metric!r}; known metrics: {', '.join(sorted(KNOWN_METRICS))}",
        metric=metric,
    )


@dataclass(frozen=True)
class Predictions:
    """Aligned truth and model output for a set of rows.

    ``proba`` has one column per entry of ``classes`` (in that order) or is ``None``;
    ``positive_label`` is set for binary tasks only.
    """

    y_true: Array
    y_pred: Array
    proba: Array | None = None
    classes: Array | None = None
    positive_label: Any = None

    def subset(self, mask: Array) -> Predictions:
        """The same predictions restricted to the rows where ``mask`` is true."""
        return Predictions(
            y_true=self.y_true[mask],
            y_pred=self.y_pred[mask],
            proba=None if self.proba is None else self.proba[mask],
            classes=self.classes,
            positive_label=self.positive_label,
        )

    @property
    def binary(self) -> bool:
        """Whether this is a two-class task with a positive label."""
        return self.classes is not None and len(self.classes) == 2

    def positive_proba(self) -> Array:
        """The probability of the positive label (binary tasks with probabilities only)."""
        assert self.proba is not None and self.classes is not None
        index = int(np.flatnonzero(self.classes == self.positive_label)[0])
        column: Array = self.proba[:, index]
        return column


def _record(
    out: dict[str, float],
    name: str,
    compute: Callable[[], float],
    notes: list[str] | None,
) -> None:
    """Compute one metric; leave it out (with a note) when it is undefined on these rows."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(compute())
    except (ValueError, ZeroDivisionError, IndexError) as exc:
        if notes is not None:
            notes.append(f"{name} omitted: {exc}")
        return
    if math.isfinite(value):
        out[name] = value
    elif notes is not None:
        notes.append(f"{name} omitted: not finite on these rows")


def classification_metrics(
    p: Predictions, *, notes: list[str] | None = None, ece: float | None = None
) -> dict[str, float]:
    """Accuracy, precision, recall, … (binary for the positive label, macro-averaged otherwise),
    plus probability metrics when ``p.proba`` is set."""
    from sklearn import metrics as skm

    y_true, y_pred = p.y_true, p.y_pred
    out: dict[str, float] = {}
    if len(y_true) == 0:
        return out
    _record(out, "accuracy", lambda: skm.accuracy_score(y_true, y_pred), notes)
    _record(out, "balanced_accuracy", lambda: skm.balanced_accuracy_score(y_true, y_pred), notes)
    if p.binary:
        pos = p.positive_label
        kw: dict[str, Any] = {"pos_label": pos, "average": "binary", "zero_division": 0}
        true_pos, pred_pos = y_true == pos, y_pred == pos
        if true_pos.any() or pred_pos.any():
            _record(out, "precision", lambda: skm.precision_score(y_true, y_pred, **kw), notes)
        if true_pos.any():
            _record(out, "recall", lambda: skm.recall_score(y_true, y_pred, **kw), notes)
        elif notes is not None:
            notes.append("recall omitted: no rows of the positive label")
        if true_pos.any() or pred_pos.any():
            _record(out, "f1", lambda: skm.f1_score(y_true, y_pred, **kw), notes)
        out["selection_rate"] = float(pred_pos.mean())
        negatives = ~true_pos
        if negatives.any():
            out["false_positive_rate"] = float((pred_pos & negatives).sum() / negatives.sum())
    else:
        kw = {"average": "macro", "zero_division": 0}
        _record(out, "precision", lambda: skm.precision_score(y_true, y_pred, **kw), notes)
        _record(out, "recall", lambda: skm.recall_score(y_true, y_pred, **kw), notes)
        _record(out, "f1", lambda: skm.f1_score(y_true, y_pred, **kw), notes)
    _record(out, "mcc", lambda: skm.matthews_corrcoef(y_true, y_pred), notes)
    if p.proba is not None:
        out.update(_probability_metrics(p, notes))
        if ece is not None and math.isfinite(ece):
            out["ece"] = ece
    return out


def _probability_metrics(p: Predictions, notes: list[str] | None) -> dict[str, float]:
    from sklearn import metrics as skm

    assert p.proba is not None and p.classes is not None
    y_true, proba, classes = p.y_true, p.proba, p.classes
    out: dict[str, float] = {}
    present = np.isin(classes, y_true)
    if p.binary:
        truth = (y_true == p.positive_label).astype(np.int8)
        score = p.positive_proba()
        if present.all():
            _record(out, "roc_auc", lambda: skm.roc_auc_score(truth, score), notes)
            _record(out, "pr_auc", lambda: skm.average_precision_score(truth, score), notes)
        elif notes is not None:
            notes.append("roc_auc and pr_auc omitted: the rows hold a single class")
        _record(out, "brier", lambda: skm.brier_score_loss(truth, score), notes)
    else:
        if present.all():
            _record(
                out,
                "roc_auc",
                lambda: skm.roc_auc_score(
                    y_true, proba, multi_class="ovr", average="macro", labels=classes
                ),
                notes,
            )
        elif notes is not None:
            notes.append("roc_auc omitted: not every class occurs in the rows")
        _record(out, "pr_auc", lambda: _macro_average_precision(y_true, proba, classes), notes)
        _record(out, "brier", lambda: _multiclass_brier(y_true, proba, classes), notes)
    _record(out, "log_loss", lambda: skm.log_loss(y_true, proba, labels=classes), notes)
    return out


def _macro_average_precision(y_true: Array, proba: Array, classes: Array) -> float:
    """Average precision per class (one-vs-rest), averaged over the classes present in y_true."""
    from sklearn.metrics import average_precision_score

    scores = [
        average_precision_score((y_true == c).astype(np.int8), proba[:, i])
        for i, c in enumerate(classes)
        if (y_true == c).any()
    ]
    if not scores:
        raise ValueError("no class occurs in the rows")
    return float(np.mean(scores))


def _multiclass_brier(y_true: Array, proba: Array, classes: Array) -> float:
    """Mean over rows of the squared distance between the one-hot truth and the probabilities."""
    onehot = (y_true[:, None] == classes[None, :]).astype(np.float64)
    return float(np.mean(np.sum((onehot - proba) ** 2, axis=1)))


def regression_metrics(
    y_true: Array, y_pred: Array, *, notes: list[str] | None = None
) -> dict[str, float]:
    """RMSE, MSE, MAE, R², MAPE (left out when the target holds a zero), median and max error,
    explained variance."""
    from sklearn import metrics as skm

    out: dict[str, float] = {}
    if len(y_true) == 0:
        return out
    _record(out, "mse", lambda: skm.mean_squared_error(y_true, y_pred), notes)
    if "mse" in out:
        out["rmse"] = math.sqrt(out["mse"])
    _record(out, "mae", lambda: skm.mean_absolute_error(y_true, y_pred), notes)
    if len(y_true) >= 2:
        _record(out, "r2", lambda: skm.r2_score(y_true, y_pred), notes)
        _record(
            out, "explained_variance", lambda: skm.explained_variance_score(y_true, y_pred), notes
        )
    elif notes is not None:
        notes.append("r2 and explained_variance omitted: fewer than two rows")
    if np.any(y_true == 0):
        if notes is not None:
            notes.append("mape omitted: the target holds zeros, where a percentage is undefined")
    else:
        _record(out, "mape", lambda: skm.mean_absolute_percentage_error(y_true, y_pred), notes)
    _record(out, "median_ae", lambda: skm.median_absolute_error(y_true, y_pred), notes)
    _record(out, "max_error", lambda: skm.max_error(y_true, y_pred), notes)
    return {name: out[name] for name in REGRESSION_METRICS if name in out}


def ordered(metrics: dict[str, float], names: Sequence[str]) -> dict[str, float]:
    """``metrics`` in the canonical order of ``names`` (unknown names last)."""
    first = {n: metrics[n] for n in names if n in metrics}
    return first | {n: v for n, v in metrics.items() if n not in first}
