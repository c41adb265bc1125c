"""Per-slice metrics and the fairness gaps between the groups of a slice column.

A slice column splits the rows into groups, one per distinct value (missing values form one
group whose value is ``None``). A numeric column with more than ``MAX_NUMERIC_GROUPS`` distinct
values is cut into ``NUMERIC_BINS`` quantile bins first, named by their interval (``"(1.5, 3.0]"``).
Any other column with more than ``MAX_GROUPS`` distinct values is refused: group it first.
Groups with fewer than ``min_slice_size`` rows are listed with their size but no metrics, so that
they count toward no gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput
from mloop.evaluation.metrics import Predictions, classification_metrics, regression_metrics
from mloop.evaluation.results import FairnessGaps, Label, SliceMetrics

__all__ = [
    "MAX_GROUPS",
    "MAX_NUMERIC_GROUPS",
    "NUMERIC_BINS",
    "fairness_gaps",
    "slice_groups",
    "slice_metrics",
    "to_label",
]

MAX_GROUPS = 100
MAX_NUMERIC_GROUPS = 20
NUMERIC_BINS = 5


def to_label(value: Any) -> Label:
    """A group value as a JSON scalar."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _groups(series: pd.Series) -> tuple[np.ndarray[Any, Any], list[Label]]:
    """Integer group codes per row and the value of each group."""
    column = str(series.name)
    values = series
    is_numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if is_numeric and series.nunique(dropna=True) > MAX_NUMERIC_GROUPS:
        values = pd.qcut(series, q=NUMERIC_BINS, duplicates="drop").astype("object")
        values = values.map(lambda v: None if pd.isna(v) else str(v))
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=False, sort=True)
    except TypeError:  # values of mixed types cannot be ordered: keep first-seen order
        codes, uniques = pd.factorize(values, use_na_sentinel=False, sort=False)
    if len(uniques) > MAX_GROUPS:
        raise InvalidInput(
            f"slice column {column!r} has {len(uniques)} distinct values (at most {MAX_GROUPS}); "
            "group or bin it into fewer values before slicing",
            column=column,
        )
    return np.asarray(codes), [to_label(v) for v in uniques]


Groups = dict[str, tuple[np.ndarray[Any, Any], list[Label]]]


def slice_groups(frame: pd.DataFrame, columns: Sequence[str]) -> Groups:
    """Group codes per row and group values for each slice column (refusing too many groups)."""
    return {column: _groups(frame[column]) for column in columns}


def slice_metrics(
    groups: Groups,
    p: Predictions,
    *,
    task: str,
    min_slice_size: int = 1,
) -> dict[str, list[SliceMetrics]]:
    """The metrics of every group of every slice column, in order of value."""
    out: dict[str, list[SliceMetrics]] = {}
    for column, (codes, values) in groups.items():
        group_metrics = []
        for code, value in enumerate(values):
            mask = codes == code
            n = int(mask.sum())
            if n == 0:
                continue
            metrics: dict[str, float] = {}
            if n >= min_slice_size:
                sub = p.subset(mask)
                if task == "classification":
                    metrics = classification_metrics(sub)
                else:
                    metrics = regression_metrics(sub.y_true, sub.y_pred)
            group_metrics.append(SliceMetrics(column=column, value=value, n=n, metrics=metrics))
        out[column] = group_metrics
    return out


def _gap(values: Sequence[float]) -> float | None:
    return max(values) - min(values) if values else None


def fairness_gaps(
    slices: dict[str, list[SliceMetrics]], *, binary: bool
) -> dict[str, FairnessGaps]:
    """Demographic parity, equal opportunity and equalized odds differences per slice column
    (binary tasks), per-group recall/precision/selection rate, and the gap of every metric."""
    out: dict[str, FairnessGaps] = {}
    for column, groups in slices.items():

        def per_group(metric: str, groups: list[SliceMetrics] = groups) -> dict[str, float]:
            return {str(g.value): g.metrics[metric] for g in groups if metric in g.metrics}

        names = sorted({m for g in groups for m in g.metrics})
        max_gaps = {}
        for name in names:
            gap = _gap(list(per_group(name).values()))
            if gap is not None:
                max_gaps[name] = gap
        recall, selection = per_group("recall"), per_group("selection_rate")
        dpd = _gap(list(selection.values())) if binary else None
        eod = _gap(list(recall.values())) if binary else None
        fpr_gap = _gap(list(per_group("false_positive_rate").values())) if binary else None
        eq_odds = None
        if binary and (eod is not None or fpr_gap is not None):
            eq_odds = max(g for g in (eod, fpr_gap) if g is not None)
        out[column] = FairnessGaps(
            column=column,
            demographic_parity_difference=dpd,
            equal_opportunity_difference=eod,
            equalized_odds_difference=eq_odds,
            recall=recall,
            precision=per_group("precision"),
            selection_rate=selection,
            max_gaps=max_gaps,
        )
    return out
