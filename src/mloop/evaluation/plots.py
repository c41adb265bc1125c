"""Evaluation plots as small, self-contained SVG documents (no plotting library, no script).

Each function returns the SVG text of one chart: axes with ticks and labels, a title, and the
data drawn as polylines, points or cells. Curves are thinned to at most ``MAX_CURVE_POINTS``
points and scatters to ``MAX_SCATTER_POINTS``, so a plot's size does not grow with the data.
Every string taken from the data (class labels) is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mloop.evaluation.metrics import Predictions
from mloop.evaluation.results import Calibration, Label

__all__ = [
    "MAX_CURVE_POINTS",
    "MAX_SCATTER_POINTS",
    "calibration_svg",
    "classification_plots",
    "confusion_svg",
    "pr_svg",
    "regression_plots",
    "residuals_svg",
    "roc_svg",
]

Array = np.ndarray[Any, Any]

MAX_CURVE_POINTS = 300
MAX_SCATTER_POINTS = 1500
MAX_CURVES = 10
_W, _H = 420, 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 120, 30, 46
_COLOURS = (
    "#4878a8",
    "#e0884a",
    "#5a9e5a",
    "#c44e52",
    "#8172b2",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
)
_esc = html.escape


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _thin(n: int, limit: int) -> Array:
    """At most ``limit`` evenly spaced indices into ``range(n)``, keeping both ends."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _short(label: Label, width: int = 14) -> str:
    text = str(label)
    return text if len(text) <= width else text[: width - 1] + "…"


def _nice(lo: float, hi: float, target: int = 5) -> tuple[float, float, list[float]]:
    """A range covering [lo, hi] on round numbers, and its ticks (steps of 1, 2 or 5 times 10^k)."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start, stop = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = [round(k * step, 12) for k in range(start, stop + 1)]
    return ticks[0], ticks[-1], ticks


class _Axes:
    """A plotting area mapping data coordinates to SVG pixels."""

    def __init__(
        self, x: tuple[float, float], y: tuple[float, float], *, legend: bool = True
    ) -> None:
        self.x0, self.x1, self.xticks = _nice(*x)
        self.y0, self.y1, self.yticks = _nice(*y)
        self.left, self.right = _LEFT, _W - (_RIGHT if legend else 20)
        self.top, self.bottom = _TOP, _H - _BOTTOM
        self.parts: list[str] = []

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def py(self, y: float) -> float:
        return self.bottom - (y - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def frame(self, xlabel: str, ylabel: str) -> None:
        parts = self.parts
        for xv in self.xticks:
            x = self.px(xv)
            parts.append(
                f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{self.bottom}" '
                'stroke="#eee"/>'
                f'<text x="{x:.1f}" y="{self.bottom + 14}" text-anchor="middle">{_fmt(xv)}</text>'
            )
        for yv in self.yticks:
            y = self.py(yv)
            parts.append(
                f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" '
                'stroke="#eee"/>'
                f'<text x="{self.left - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(yv)}</text>'
            )
        parts.append(
            f'<line x1="{self.left}" y1="{self.bottom}" x2="{self.right}" y2="{self.bottom}" '
            'stroke="#333"/>'
            f'<line x1="{self.left}" y1="{self.top}" x2="{self.left}" y2="{self.bottom}" '
            'stroke="#333"/>'
            f'<text x="{(self.left + self.right) / 2:.1f}" y="{_H - 8}" text-anchor="middle">'
            f"{_esc(xlabel)}</text>"
            f'<text x="14" y="{(self.top + self.bottom) / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {(self.top + self.bottom) / 2:.1f})">{_esc(ylabel)}</text>'
        )

    def line(self, xs: Array, ys: Array, colour: str, *, dashed: bool = False) -> None:
        keep = _thin(len(xs), MAX_CURVE_POINTS)
        points = " ".join(
            f"{self.px(float(x)):.1f},{self.py(float(y)):.1f}"
            for x, y in zip(xs[keep], ys[keep], strict=True)
        )
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        self.parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>'
        )

    def points(self, xs: Array, ys: Array, colour: str, radius: float = 2.0) -> None:
        self.parts.extend(
            f'<circle cx="{self.px(float(x)):.1f}" cy="{self.py(float(y)):.1f}" r="{radius}" '
            f'fill="{colour}" fill-opacity="0.6"/>'
            for x, y in zip(xs, ys, strict=True)
        )

    def legend(self, items: Sequence[tuple[str, str]]) -> None:
        for i, (label, colour) in enumerate(items):
            y = self.top + 6 + i * 16
            self.parts.append(
                f'<rect x="{self.right + 10}" y="{y - 8}" width="10" height="10" '
                f'fill="{colour}"/><text x="{self.right + 24}" y="{y + 1}">{_esc(label)}</text>'
            )


def _document(title: str, body: Sequence[str], width: int = _W, height: int = _H) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="11">'
        f"<title>{_esc(title)}</title>"
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<text x="{_LEFT}" y="18" font-size="13" font-weight="bold">{_esc(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _one_vs_rest(p: Predictions) -> list[tuple[str, Array, Array]]:
    """(name, truth as 0/1, score) per curve: the positive label, or each class (at most 10)."""
    assert p.proba is not None and p.classes is not None
    if p.binary:
        return [(str(p.positive_label), p.y_true == p.positive_label, p.positive_proba())]
    return [
        (_short(c), p.y_true == c, p.proba[:, i])
        for i, c in enumerate(p.classes[:MAX_CURVES])
        if (p.y_true == c).any() and not (p.y_true == c).all()
    ]


def roc_svg(p: Predictions) -> str:
    """ROC curve (one-vs-rest per class for multiclass, at most 10 curves) with the AUC."""
    from sklearn.metrics import auc, roc_curve

    axes = _Axes((0.0, 1.0), (0.0, 1.0))
    axes.frame("false positive rate", "true positive rate")
    axes.line(np.array([0.0, 1.0]), np.array([0.0, 1.0]), "#999", dashed=True)
    legend = []
    for i, (name, truth, score) in enumerate(_one_vs_rest(p)):
        fpr, tpr, _ = roc_curve(truth.astype(np.int8), score)
        colour = _COLOURS[i % len(_COLOURS)]
        axes.line(fpr, tpr, colour)
        legend.append((f"{name} ({auc(fpr, tpr):.3f})", colour))
    axes.legend(legend)
    return _document("ROC curve (AUC)", axes.parts)


def pr_svg(p: Predictions) -> str:
    """Precision-recall curve (one-vs-rest per class for multiclass) with the average precision."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    axes = _Axes((0.0, 1.0), (0.0, 1.0))
    axes.frame("recall", "precision")
    legend = []
    for i, (name, truth, score) in enumerate(_one_vs_rest(p)):
        t = truth.astype(np.int8)
        precision, recall, _ = precision_recall_curve(t, score)
        colour = _COLOURS[i % len(_COLOURS)]
        axes.line(recall, precision, colour)
        legend.append((f"{name} ({average_precision_score(t, score):.3f})", colour))
    axes.legend(legend)
    return _document("Precision-recall curve (AP)", axes.parts)


def confusion_svg(p: Predictions) -> str:
    """Confusion matrix: counts per (true, predicted) class, shaded by share of the true class."""
    from sklearn.metrics import confusion_matrix

    assert p.classes is not None
    labels = p.classes
    matrix = confusion_matrix(p.y_true, p.y_pred, labels=labels)
    k = len(labels)
    cell = max(8.0, min(48.0, 300.0 / k))
    left, top = 110.0, 40.0
    width = int(left + cell * k + 20)
    height = int(top + cell * k + 60)
    row_totals = np.maximum(matrix.sum(axis=1), 1)
    show_text = cell >= 20
    parts = []
    for i in range(k):
        for j in range(k):
            share = matrix[i, j] / row_totals[i]
            x, y = left + j * cell, top + i * cell
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" '
                f'fill="#4878a8" fill-opacity="{0.08 + 0.92 * share:.3f}" stroke="#fff">'
                f"<title>true {_esc(str(labels[i]))}, predicted {_esc(str(labels[j]))}: "
                f"{int(matrix[i, j])}</title></rect>"
            )
            if show_text:
                colour = "#fff" if share > 0.5 else "#222"
                parts.append(
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle" '
                    f'fill="{colour}">{int(matrix[i, j])}</text>'
                )
    if k <= 30:
        for i, label in enumerate(labels):
            parts.append(
                f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4:.1f}" '
                f'text-anchor="end">{_esc(_short(label))}</text>'
            )
            cx, cy = left + i * cell + cell / 2, top + k * cell + 12
            parts.append(
                f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" '
                f'transform="rotate(-45 {cx:.1f} {cy:.1f})">{_esc(_short(label))}</text>'
            )
    parts.append(
        f'<text x="{left + cell * k / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        "predicted</text>"
        f'<text x="12" y="{top + cell * k / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + cell * k / 2:.1f})">true</text>'
    )
    return _document("Confusion matrix", parts, max(width, 260), height)


def calibration_svg(cal: Calibration) -> str:
    """Reliability diagram: mean predicted probability against the observed share, per bin."""
    axes = _Axes((0.0, 1.0), (0.0, 1.0))
    what = "positive" if cal.kind == "positive" else "top class correct"
    axes.frame("mean predicted probability", f"fraction {what}")
    axes.line(np.array([0.0, 1.0]), np.array([0.0, 1.0]), "#999", dashed=True)
    xs = np.array([b.mean_predicted for b in cal.bins])
    ys = np.array([b.fraction_positive for b in cal.bins])
    if len(xs):
        axes.line(xs, ys, _COLOURS[0])
        axes.points(xs, ys, _COLOURS[0], radius=3.0)
    axes.legend([(f"ECE {cal.ece:.3f}", _COLOURS[0])])
    return _document("Calibration", axes.parts)


def _range(values: Array) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return (0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    pad = (hi - lo) * 0.05 or max(abs(lo) * 0.05, 0.5)
    return (lo - pad, hi + pad)


def _sample(n: int) -> Array:
    if n <= MAX_SCATTER_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_SCATTER_POINTS, replace=False))


def residuals_svg(y_true: Array, y_pred: Array) -> str:
    """Residual (truth minus prediction) against the prediction, with the zero line."""
    keep = _sample(len(y_true))
    pred = y_pred[keep].astype(np.float64)
    resid = y_true[keep].astype(np.float64) - pred
    axes = _Axes(_range(pred), _range(np.append(resid, 0.0)), legend=False)
    axes.frame("predicted", "residual (true - predicted)")
    axes.line(np.array([axes.x0, axes.x1]), np.array([0.0, 0.0]), "#999", dashed=True)
    axes.points(pred, resid, _COLOURS[0])
    return _document("Residuals", axes.parts)


def predicted_vs_actual_svg(y_true: Array, y_pred: Array) -> str:
    """Prediction against truth, with the identity line."""
    keep = _sample(len(y_true))
    truth, pred = y_true[keep].astype(np.float64), y_pred[keep].astype(np.float64)
    both = _range(np.concatenate([truth, pred]))
    axes = _Axes(both, both, legend=False)
    axes.frame("true", "predicted")
    axes.line(np.array([axes.x0, axes.x1]), np.array([axes.y0, axes.y1]), "#999", dashed=True)
    axes.points(truth, pred, _COLOURS[0])
    return _document("Predicted vs true", axes.parts)


def classification_plots(p: Predictions, cal: Calibration | None) -> dict[str, str]:
    """``confusion.svg`` always; ``roc.svg``, ``pr.svg`` and ``calibration.svg`` with
    probabilities."""
    plots = {"confusion.svg": confusion_svg(p)}
    if p.proba is not None and _one_vs_rest(p):
        plots["roc.svg"] = roc_svg(p)
        plots["pr.svg"] = pr_svg(p)
    if cal is not None:
        plots["calibration.svg"] = calibration_svg(cal)
    return plots


def regression_plots(y_true: Array, y_pred: Array) -> dict[str, str]:
    """``residuals.svg`` and ``predicted_vs_actual.svg``."""
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        return {}
    return {
        "residuals.svg": residuals_svg(y_true, y_pred),
        "predicted_vs_actual.svg": predicted_vs_actual_svg(y_true, y_pred),
    }
