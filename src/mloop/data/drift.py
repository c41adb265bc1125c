"""Data drift: compare each column of current data with a reference, raw or profiled.

Automatic test choice (by reference row count and column kind, as Evidently does):

====================  ==============================  ===============================
reference rows        numeric (> 5 distinct values)   categorical, boolean, few-valued
====================  ==============================  ===============================
≤ 1,000               ``ks`` (p < 0.05)               ``z`` if two categories, else
                                                      ``chisquare`` (p < 0.05)
> 1,000               ``wasserstein`` normed by the   ``jensenshannon`` (≥ 0.1)
                      reference std (≥ 0.1)
====================  ==============================  ===============================

Binned tests on numeric columns use ``bins`` equal-width bins over the reference's range, plus an
underflow and an overflow bin that catch current values outside it (so new ranges count as drift).
Categories seen only in the current data are a bin with zero reference mass; see
:mod:`mloop.data.stattests` for how each test treats empty bins.

When ``reference`` is a :class:`DatasetProfile`, tests run on its stored histogram and top-k
categories, with the current data binned on the same edges and categories: ``ks`` and
``wasserstein`` become binned approximations (values uniform within a bin; ``approximate=True``),
``cramer_von_mises`` is unavailable, and current categories outside the stored top-k are pooled
with the reference's "other" count.

Column-level outcomes other than a test result: ``missing`` (in only one of the two data sets),
``skipped`` (no values to compare — reason ``empty`` — or a datetime column), and ``error`` (the
kinds differ, e.g. numeric in the reference and strings in the current data). Only ``ok`` columns
count towards the dataset verdict: drifted when the share of drifted columns is ≥ ``drift_share``.

Input is read into Arrow memory once and each numeric column becomes one NumPy array; columns run
in a thread pool (NumPy and Arrow release the GIL).
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
from rich.console import Console

from mloop.data.frames import (
    CategoryCounts,
    ColumnKind,
    as_table,
    category_counts,
    column_kind,
    numeric_values,
)
from mloop.data.profile import ColumnProfile, DatasetProfile, Progress
from mloop.data.stattests import (
    TESTS,
    FloatArray,
    StatTest,
    binned_ks,
    binned_wasserstein,
)
from mloop.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

    from rich.table import Table

__all__ = ["ColumnDrift", "DriftReport", "Status", "drift"]

Status = Literal["ok", "skipped", "missing", "error"]
SMALL_REFERENCE = 1_000
FEW_VALUES = 5
PLOT_BINS = 20
PLOT_CATEGORIES = 20
#: Categories seen fewer times than this on both sides are pooled in plots (never shown by name).
MIN_PLOT_COUNT = 5
OTHER = "(other)"


def _json_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict for one column, with the aggregates needed to plot both sides."""

    column: str
    kind: str
    status: Status
    drifted: bool = False
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    reason: str = ""
    approximate: bool = False
    reference_count: int = 0
    current_count: int = 0
    edges: list[float] | None = None
    categories: list[str] | None = None
    reference_hist: list[int] = field(default_factory=list)
    current_hist: list[int] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        """The number compared with the threshold: the p-value, or else the statistic."""
        return self.p_value if self.p_value is not None else self.statistic

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (infinite statistics become the strings "inf"/"-inf")."""
        return {
            "column": self.column,
            "kind": self.kind,
            "status": self.status,
            "drifted": self.drifted,
            "test": self.test,
            "statistic": _json_float(self.statistic),
            "p_value": _json_float(self.p_value),
            "threshold": self.threshold,
            "reason": self.reason,
            "approximate": self.approximate,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "edges": self.edges,
            "categories": self.categories,
            "reference_hist": self.reference_hist,
            "current_hist": self.current_hist,
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift results and the dataset verdict."""

    columns: list[ColumnDrift]
    drift_share: float
    reference_rows: int
    current_rows: int
    reference_is_profile: bool = False

    @property
    def tested(self) -> list[ColumnDrift]:
        """Columns that were actually tested (status ``ok``)."""
        return [c for c in self.columns if c.status == "ok"]

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns that drifted."""
        return [c.column for c in self.columns if c.drifted]

    @property
    def drifted_share(self) -> float:
        """Share of tested columns that drifted (0 when nothing was tested)."""
        tested = self.tested
        return len(self.drifted_columns) / len(tested) if tested else 0.0

    @property
    def drifted(self) -> bool:
        """Whether the data set drifted: drifted share ≥ ``drift_share`` (never if none tested)."""
        return bool(self.tested) and self.drifted_share >= self.drift_share

    def __getitem__(self, column: str) -> ColumnDrift:
        for result in self.columns:
            if result.column == column:
                return result
        raise KeyError(column)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole report."""
        return {
            "drifted": self.drifted,
            "drifted_share": self.drifted_share,
            "drift_share": self.drift_share,
            "n_tested": len(self.tested),
            "n_drifted": len(self.drifted_columns),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_is_profile": self.reference_is_profile,
            "columns": [c.to_dict() for c in self.columns],
        }

    def render(self, console: Console | None = None) -> None:
        """Print the one-screen summary table (to ``console``, else the terminal)."""
        from mloop.data.report import summary_table

        (console or Console()).print(summary_table(self))

    def render_text(self) -> str:
        """The one-screen summary as plain text (see :func:`mloop.data.report.render_text`)."""
        from mloop.data.report import render_text

        return render_text(self)

    def __rich__(self) -> Table:
        """Rich renders a report as its summary table."""
        from mloop.data.report import summary_table

        return summary_table(self)

    def save_html(self, path: str | Path) -> None:
        """Write one self-contained HTML file (see :func:`mloop.data.report.save_html`)."""
        from mloop.data.report import save_html

        save_html(self, path)


# --- one side of a comparison -------------------------------------------------------------


@dataclass
class _Side:
    kind: ColumnKind
    rows: int
    values: FloatArray | None = None  # raw finite numeric values
    counts: CategoryCounts | None = None  # categorical / boolean
    profile: ColumnProfile | None = None

    @property
    def size(self) -> int:
        if self.values is not None:
            return len(self.values)
        if self.counts is not None:
            return int(self.counts.counts.sum())
        if self.profile is None:
            return 0  # an all-null column of unknown type
        if self.profile.histogram is not None:
            return sum(self.profile.histogram.counts)
        return sum(n for _, n in self.profile.top) + self.profile.other_count


def _raw_side(table: pa.Table, name: str, categorical: Collection[str]) -> _Side:
    column = table.column(name)
    kind = column_kind(name, column.type, categorical)
    if kind == "numeric":
        return _Side(kind, table.num_rows, values=numeric_values(column).values)
    if kind in ("categorical", "boolean"):
        if pa.types.is_integer(column.type):
            column = column.cast(pa.string())
        return _Side(kind, table.num_rows, counts=category_counts(column))
    return _Side(kind, table.num_rows)


def _align(
    labels_a: Sequence[str], counts_a: Sequence[int], b: CategoryCounts
) -> tuple[list[str], FloatArray, FloatArray]:
    labels = list(labels_a)
    index = {label: i for i, label in enumerate(labels)}
    for label in b.labels:
        if label not in index:
            index[label] = len(labels)
            labels.append(label)
    ref = np.zeros(len(labels))
    ref[: len(counts_a)] = counts_a
    cur = np.zeros(len(labels))
    cur[[index[label] for label in b.labels]] = b.counts
    return labels, ref, cur


def _histograms(
    reference: FloatArray, current: FloatArray, lo: float, hi: float, bins: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Counts on reference edges, with underflow/overflow bins that only current data can fill."""
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    inner = np.linspace(lo, hi, bins + 1)
    ref = np.histogram(reference, bins=bins, range=(lo, hi))[0].astype(np.float64)
    cur = np.histogram(current, bins=bins, range=(lo, hi))[0].astype(np.float64)
    under = float(np.count_nonzero(current < lo))
    over = float(np.count_nonzero(current > hi))
    cur_lo = float(current.min()) if under else lo
    cur_hi = float(current.max()) if over else hi
    edges = np.concatenate([[min(cur_lo, lo)], inner, [max(cur_hi, hi)]])
    return (
        edges,
        np.concatenate([[0.0], ref, [0.0]]),
        np.concatenate([[under], cur, [over]]),
    )


def _plot_numeric(ref: FloatArray, cur: FloatArray) -> tuple[list[float], list[int], list[int]]:
    lo = min(float(ref.min()), float(cur.min()))
    hi = max(float(ref.max()), float(cur.max()))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, PLOT_BINS + 1)
    r = np.histogram(ref, bins=PLOT_BINS, range=(lo, hi))[0]
    c = np.histogram(cur, bins=PLOT_BINS, range=(lo, hi))[0]
    return [float(e) for e in edges], [int(x) for x in r], [int(x) for x in c]


def _plot_categories(
    labels: list[str], ref: FloatArray, cur: FloatArray
) -> tuple[list[str], list[int], list[int]]:
    """The most frequent categories for plotting; rare ones are pooled so no identifier leaks."""
    frequent = np.maximum(ref, cur) >= MIN_PLOT_COUNT
    order = np.argsort(-(ref + cur), kind="stable")
    keep = [int(i) for i in order if frequent[i]][: PLOT_CATEGORIES - 1]
    rest = np.ones(len(labels), dtype=bool)
    rest[keep] = False
    names = [labels[i] for i in keep]
    ref_counts = [int(ref[i]) for i in keep]
    cur_counts = [int(cur[i]) for i in keep]
    if rest.any():
        names.append(OTHER)
        ref_counts.append(int(ref[rest].sum()))
        cur_counts.append(int(cur[rest].sum()))
    return names, ref_counts, cur_counts


# --- one column ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    bins: int
    tests: Mapping[str, str]
    thresholds: Mapping[str, float]
    categorical: Collection[str]


def _auto_test(rows: int, few_valued: bool, categories: int) -> str:
    if rows <= SMALL_REFERENCE:
        if not few_valued:
            return "ks"
        return "z" if categories <= 2 else "chisquare"
    return "jensenshannon" if few_valued else "wasserstein"


def _pick(
    name: str, opts: _Options, rows: int, *, few: bool, numeric: bool, values: int
) -> StatTest:
    """The requested or automatic test, checked against the column (``values``: categories)."""
    test = TESTS[opts.tests.get(name) or _auto_test(rows, few, values)]
    if test.numeric_only and not numeric:
        raise InvalidInput(
            f"test {test.name!r} needs a numeric column, but {name!r} is categorical",
            column=name,
        )
    if test.binary_only and not (few and values <= 2):
        raise InvalidInput(
            f"test 'z' compares two proportions, but column {name!r} does not hold exactly "
            "two values; use 'chisquare' or 'jensenshannon'",
            column=name,
        )
    return test


def _result(
    name: str,
    kind: str,
    test: StatTest,
    opts: _Options,
    outcome: tuple[float, float | None],
    **extra: Any,
) -> ColumnDrift:
    statistic, p_value = outcome
    threshold = opts.thresholds.get(name, test.threshold)
    drifted = p_value < threshold if test.uses_p_value and p_value is not None else False
    if not test.uses_p_value:
        drifted = statistic >= threshold
    return ColumnDrift(
        column=name,
        kind=kind,
        status="ok",
        drifted=bool(drifted),
        test=test.name,
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        **extra,
    )


def _categorical(name: str, kind: str, ref: _Side, cur: _Side, opts: _Options) -> ColumnDrift:
    assert cur.counts is not None
    if ref.profile is not None:
        top = ref.profile.top
        labels = [label for label, _ in top] + [OTHER]
        counts = [n for _, n in top] + [ref.profile.other_count]
        known = set(labels)
        inside = [i for i, label in enumerate(cur.counts.labels) if label in known]
        outside = int(cur.counts.counts.sum()) - int(cur.counts.counts[inside].sum())
        pooled = CategoryCounts(
            [cur.counts.labels[i] for i in inside] + [OTHER],
            np.concatenate([cur.counts.counts[inside], [outside]]).astype(np.int64),
            0,
        )
        labels, r, c = _align(labels, counts, pooled)
        if r[-1] == 0 and c[-1] == 0:
            labels, r, c = labels[:-1], r[:-1], c[:-1]
    else:
        assert ref.counts is not None
        labels, r, c = _align(ref.counts.labels, ref.counts.counts.tolist(), cur.counts)
    test = _pick(name, opts, ref.rows, few=True, numeric=False, values=len(labels))
    unseen = int(np.count_nonzero((r == 0) & (c > 0)))
    reason = f"{unseen} unseen categories" if unseen else ""
    plot = _plot_categories(labels, r, c)
    return _result(
        name,
        kind,
        test,
        opts,
        test.function(r, c),
        reason=reason,
        approximate=ref.profile is not None and ref.profile.other_count > 0,
        reference_count=int(r.sum()),
        current_count=int(c.sum()),
        categories=plot[0],
        reference_hist=plot[1],
        current_hist=plot[2],
    )


def _numeric(name: str, ref: _Side, cur: _Side, opts: _Options) -> ColumnDrift:
    assert cur.values is not None
    current = cur.values
    if ref.profile is not None:
        return _numeric_from_profile(name, ref.profile, ref.rows, current, opts)
    assert ref.values is not None
    reference = ref.values
    ref_values, ref_counts = np.unique(reference, return_counts=True)
    few = len(ref_values) <= FEW_VALUES
    values = 0
    if few:  # a few-valued numeric column is tested like a categorical one
        cur_values, cur_counts = np.unique(current, return_counts=True)
        union = np.union1d(ref_values, cur_values)
        values = len(union)
        r = np.zeros(values)
        c = np.zeros(values)
        r[np.searchsorted(union, ref_values)] = ref_counts
        c[np.searchsorted(union, cur_values)] = cur_counts
    test = _pick(name, opts, ref.rows, few=few, numeric=True, values=values)
    edges, ref_hist, cur_hist = _plot_numeric(reference, current)
    extra: dict[str, Any] = {
        "reference_count": len(reference),
        "current_count": len(current),
        "edges": edges,
        "reference_hist": ref_hist,
        "current_hist": cur_hist,
    }
    if test.shape == "raw":
        return _result(name, "numeric", test, opts, test.function(reference, current), **extra)
    if not few:
        lo, hi = float(reference.min()), float(reference.max())
        _, r, c = _histograms(reference, current, lo, hi, opts.bins)
    return _result(name, "numeric", test, opts, test.function(r, c), **extra)


def _numeric_from_profile(
    name: str, ref: ColumnProfile, rows: int, current: FloatArray, opts: _Options
) -> ColumnDrift:
    hist = ref.histogram
    assert hist is not None and ref.std is not None
    stored = np.asarray(hist.edges)
    bins = len(hist.counts)
    edges, _, c = _histograms(current, current, float(stored[0]), float(stored[-1]), bins)
    r = np.concatenate([[0.0], np.asarray(hist.counts, dtype=np.float64), [0.0]])
    test = _pick(name, opts, rows, few=False, numeric=True, values=ref.distinct)
    if test.name == "wasserstein":
        # the profile's std is the sample std; the raw test divides by the population std
        n = float(ref.valid)
        std = ref.std * math.sqrt((n - 1.0) / n) if n > 1 else 0.0
        outcome = binned_wasserstein(r, c, edges, std)
    elif test.name == "ks":
        outcome = binned_ks(r, c)
    elif test.shape == "raw":
        raise InvalidInput(
            f"test {test.name!r} needs the raw reference values; column {name!r} has only a "
            "stored profile — use 'ks', 'wasserstein' or a binned test"
        )
    else:
        outcome = test.function(r, c)
    plot_edges = [float(e) for e in edges]
    return _result(
        name,
        "numeric",
        test,
        opts,
        outcome,
        approximate=True,
        reference_count=int(r.sum()),
        current_count=len(current),
        edges=plot_edges,
        reference_hist=[int(x) for x in r],
        current_hist=[int(x) for x in c],
    )


def _compare(name: str, ref: _Side | None, cur: _Side | None, opts: _Options) -> ColumnDrift:
    if ref is None or cur is None:
        where = "current" if cur is None else "reference"
        kind = (ref or cur).kind if (ref or cur) is not None else "null"  # type: ignore[union-attr]
        return ColumnDrift(name, kind, "missing", reason=f"missing in {where}")
    kind = ref.kind if ref.kind != "null" else cur.kind
    if kind == "datetime" or cur.kind == "datetime":
        return ColumnDrift(name, "datetime", "skipped", reason="datetime columns are not tested")
    if ref.size == 0 or cur.size == 0:
        side = "reference" if ref.size == 0 else "current"
        return ColumnDrift(name, kind, "skipped", reason=f"empty: no values in the {side} data")
    if ref.kind != cur.kind and "null" not in (ref.kind, cur.kind):
        return ColumnDrift(
            name,
            kind,
            "error",
            reason=f"kinds differ: {ref.kind} in the reference, {cur.kind} in the current data",
        )
    if kind == "numeric":
        return _numeric(name, ref, cur, opts)
    return _categorical(name, kind, ref, cur, opts)


# --- the public verb ----------------------------------------------------------------------


def _check_options(
    names: Sequence[str],
    tests: Mapping[str, str] | str | None,
    thresholds: Mapping[str, float] | None,
    drift_share: float,
    bins: int,
) -> tuple[dict[str, str], dict[str, float]]:
    if isinstance(tests, str):
        tests = dict.fromkeys(names, tests)
    tests = dict(tests or {})
    thresholds = dict(thresholds or {})
    for column, test in tests.items():
        if test not in TESTS:
            raise InvalidInput(
                f"unknown drift test {test!r} for column {column!r}; known tests: "
                + ", ".join(sorted(TESTS)),
                test=test,
            )
    for column in [*tests, *thresholds]:
        if column not in names:
            raise InvalidInput(f"test or threshold given for unknown column {column!r}")
    for column, value in thresholds.items():
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InvalidInput(f"threshold for {column!r} must be a finite number ≥ 0")
    if not 0 < drift_share <= 1:
        raise InvalidInput(f"drift_share must be in (0, 1], got {drift_share}")
    if not 1 <= bins <= 10_000:
        raise InvalidInput(f"bins must be between 1 and 10000, got {bins}")
    return tests, thresholds


def drift(
    reference: object,
    current: object,
    *,
    columns: Sequence[str] | None = None,
    tests: Mapping[str, str] | str | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    bins: int = 20,
    categorical: Collection[str] = (),
    workers: int | None = None,
    progress: Progress | None = None,
) -> DriftReport:
    """Test each column of ``current`` for drift from ``reference`` (raw data or a profile)."""
    is_profile = isinstance(reference, DatasetProfile)
    ref_table = None if isinstance(reference, DatasetProfile) else as_table(reference)
    cur_table = as_table(current)
    ref_names = list(reference.columns) if isinstance(reference, DatasetProfile) else []
    if ref_table is not None:
        ref_names = list(ref_table.column_names)
    cur_names = list(cur_table.column_names)
    if columns is None:
        names = ref_names + [n for n in cur_names if n not in set(ref_names)]
    else:
        names = list(columns)
        unknown = [n for n in names if n not in ref_names and n not in cur_names]
        if unknown:
            raise InvalidInput(f"columns not found in either data set: {unknown}")
    per_test, per_threshold = _check_options(names, tests, thresholds, drift_share, bins)
    opts = _Options(bins, per_test, per_threshold, categorical)
    if isinstance(reference, DatasetProfile):
        ref_rows = reference.rows
    else:
        assert ref_table is not None
        ref_rows = int(ref_table.num_rows)
    cur_set = set(cur_names)

    def reference_side(name: str) -> _Side | None:
        if isinstance(reference, DatasetProfile):
            col = reference.columns.get(name)
            return None if col is None else _Side(col.kind, ref_rows, profile=col)
        assert ref_table is not None
        return _raw_side(ref_table, name, categorical) if name in ref_table.column_names else None

    def one(name: str) -> ColumnDrift:
        ref = reference_side(name)
        cur = _raw_side(cur_table, name, categorical) if name in cur_set else None
        return _compare(name, ref, cur, opts)

    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    results: list[ColumnDrift] = []
    if n_workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for done, result in enumerate(pool.map(one, names), 1):
                results.append(result)
                if progress is not None:
                    progress(done, len(names), result.column)
    else:
        for done, name in enumerate(names, 1):
            results.append(one(name))
            if progress is not None:
                progress(done, len(names), name)
    return DriftReport(results, drift_share, ref_rows, cur_table.num_rows, is_profile)
