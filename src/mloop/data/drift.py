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
with the reference's "other" count. A numeric column whose profile holds ``value_counts`` for at
most ``FEW_VALUES`` values (integer codes, 0/1 flags) is known exactly, so it is tested as a raw
reference would be: same test, same statistic (a raw-value test named for it rebuilds the values
from the counts).

Column-level outcomes other than a test result: ``missing`` (in only one of the two data sets),
``skipped`` (no values to compare — reason ``empty`` — or a datetime column), and ``error`` (the
kinds differ, e.g. numeric in the reference and strings in the current data). Only ``ok`` columns
count towards the dataset verdict: drifted when the share of drifted columns is ≥ ``drift_share``.

The current data is read once, batch by batch (a table, a Parquet file or folder, a dataset, a
reader or an iterator of batches; see :func:`mloop.data.frames.batch_stream`), into per-column
aggregates on bins fixed by the reference (:mod:`mloop.data.binning`), so memory does not grow
with its rows. Up to ``max_rows_in_memory`` rows its raw values are kept too and every test is
exact (``method="exact"``); beyond, numeric columns are tested on the bins (``method="binned"``):
binned tests are unchanged, while ``ks``, ``wasserstein`` and ``anderson`` run on 8,000 fine bins
(``approximate=True``) and ``cramer_von_mises`` is refused. Columns are folded and tested in a
thread pool (NumPy and Arrow release the GIL), and the next batch is decoded meanwhile.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pa_ds

from mloop.data.binning import (
    FINE_PER_BIN,
    CategoryAccumulator,
    Grid,
    NumericAccumulator,
    read_current,
)
from mloop.data.drift_report import ColumnDrift, DriftReport, Method, Status
from mloop.data.frames import (
    DEFAULT_BATCH_ROWS,
    CategoryCounts,
    ColumnKind,
    IntArray,
    as_table,
    batch_stream,
    category_counts,
    column_kind,
    numeric_values,
)
from mloop.data.profile import ColumnProfile, DatasetProfile, Progress
from mloop.data.stattests import (
    TESTS,
    FloatArray,
    StatTest,
    anderson_counts,
    binned_ks,
    binned_wasserstein,
)
from mloop.errors import InvalidInput

__all__ = ["DEFAULT_MAX_ROWS_IN_MEMORY", "ColumnDrift", "DriftReport", "Method", "Status", "drift"]

#: Current data with at most this many rows keeps its raw values, so every test is exact.
DEFAULT_MAX_ROWS_IN_MEMORY = 100_000
SMALL_REFERENCE = 1_000
#: A numeric reference with at most this many distinct values is tested like a categorical one.
FEW_VALUES = 5
PLOT_BINS = 20
PLOT_CATEGORIES = 20
#: Categories seen fewer times than this on both sides are pooled in plots (never shown by name).
MIN_PLOT_COUNT = 5
OTHER = "(other)"


# --- one side of a comparison -------------------------------------------------------------


@dataclass
class _Side:
    kind: ColumnKind
    rows: int
    values: FloatArray | None = None  # raw finite numeric values
    counts: CategoryCounts | None = None  # categorical / boolean
    profile: ColumnProfile | None = None
    binned: NumericAccumulator | None = None  # numeric current data read in one binned pass
    # a few-valued numeric reference (raw, or a profile's value_counts): its distinct finite
    # values, ascending, and how often each occurs
    few: tuple[FloatArray, FloatArray] | None = None

    @property
    def size(self) -> int:
        if self.values is not None:
            return len(self.values)
        if self.binned is not None:
            return self.binned.count
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
        values = numeric_values(column).values
        distinct, counts = np.unique(values, return_counts=True)
        few = (distinct, counts.astype(np.float64)) if 0 < len(distinct) <= FEW_VALUES else None
        return _Side(kind, table.num_rows, values=values, few=few)
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


def _profile_side(profile: ColumnProfile, rows: int) -> _Side:
    """A stored profile; a numeric column with few enough ``value_counts`` is known exactly."""
    counts = profile.value_counts
    few = None
    if profile.kind == "numeric" and counts and len(counts) <= FEW_VALUES:
        few = (
            np.array([v for v, _ in counts], dtype=np.float64),
            np.array([n for _, n in counts], dtype=np.float64),
        )
    return _Side(profile.kind, rows, profile=profile, few=few)


def _plot_numeric(ref: _Side, cur: FloatArray) -> tuple[list[float], list[int], list[int]]:
    values, weights = (ref.values, None) if ref.values is not None else _few(ref)
    lo = min(float(values.min()), float(cur.min()))
    hi = max(float(values.max()), float(cur.max()))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, PLOT_BINS + 1)
    r = np.histogram(values, bins=PLOT_BINS, range=(lo, hi), weights=weights)[0]
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
        method="profile" if ref.profile is not None else "exact",
        reference_count=int(r.sum()),
        current_count=int(c.sum()),
        categories=plot[0],
        reference_hist=plot[1],
        current_hist=plot[2],
    )


def _few(ref: _Side) -> tuple[FloatArray, FloatArray]:
    assert ref.few is not None
    return ref.few


def _few_counts(
    ref: _Side, cur_values: FloatArray, cur_counts: FloatArray, other: int = 0
) -> tuple[FloatArray, FloatArray]:
    """Reference and current counts on the union of their values (``other``: pooled values)."""
    ref_values, ref_counts = _few(ref)
    union = np.union1d(ref_values, cur_values)
    r = np.zeros(len(union) + (1 if other else 0))
    c = np.zeros(len(r))
    r[np.searchsorted(union, ref_values)] = ref_counts
    c[np.searchsorted(union, cur_values)] = cur_counts
    if other:
        c[-1] = other
    return r, c


def _reference_values(ref: _Side) -> FloatArray:
    """The raw reference values, rebuilt from exact counts for a few-valued profile column."""
    if ref.values is not None:
        return ref.values
    values, counts = _few(ref)
    return np.repeat(values, counts.astype(np.int64))


def _numeric(name: str, ref: _Side, cur: _Side, opts: _Options) -> ColumnDrift:
    if ref.values is None and ref.few is None:  # only a stored histogram
        assert ref.profile is not None
        if cur.values is None:
            assert cur.binned is not None
            return _numeric_binned_profile(name, ref.profile, ref.rows, cur.binned, opts)
        return _numeric_from_profile(name, ref.profile, ref.rows, cur.values, opts)
    if cur.values is None:
        assert cur.binned is not None
        return _numeric_binned(name, ref, cur.binned, opts)
    current = cur.values
    few = ref.few is not None
    values = 0
    if few:  # a few-valued numeric column is tested like a categorical one
        cur_values, cur_counts = np.unique(current, return_counts=True)
        r, c = _few_counts(ref, cur_values, cur_counts.astype(np.float64))
        values = len(r)
    test = _pick(name, opts, ref.rows, few=few, numeric=True, values=values)
    edges, ref_hist, cur_hist = _plot_numeric(ref, current)
    extra: dict[str, Any] = {
        "method": "exact" if ref.profile is None else "profile",
        "reference_count": ref.size,
        "current_count": len(current),
        "edges": edges,
        "reference_hist": ref_hist,
        "current_hist": cur_hist,
    }
    if test.shape == "raw":
        outcome = test.function(_reference_values(ref), current)
        return _result(name, "numeric", test, opts, outcome, **extra)
    if not few:
        reference = ref.values
        assert reference is not None
        lo, hi = float(reference.min()), float(reference.max())
        _, r, c = _histograms(reference, current, lo, hi, opts.bins)
    return _result(name, "numeric", test, opts, test.function(r, c), **extra)


def _raw_only(name: str, test: StatTest, why: str) -> InvalidInput:
    return InvalidInput(
        f"test {test.name!r} needs the raw values of both sides; column {name!r} has {why} — "
        "use 'ks', 'wasserstein', 'anderson' or a binned test",
        column=name,
        test=test.name,
    )


def _on_bins(
    test: StatTest, r: FloatArray, c: FloatArray, edges: FloatArray, std: float
) -> tuple[tuple[float, float | None], bool] | None:
    """A raw-value test computed on histograms (values uniform within bins), if it has a form."""
    if test.name == "wasserstein":
        return binned_wasserstein(r, c, edges, std), True
    if test.name == "ks":
        return binned_ks(r, c), True
    if test.name == "anderson":
        return anderson_counts(r, c), True
    return None


def _numeric_binned(name: str, ref: _Side, acc: NumericAccumulator, opts: _Options) -> ColumnDrift:
    """A raw (or few-valued profile) reference against current data read in one binned pass."""
    assert acc.grid is not None
    grid = acc.grid
    few = acc.few_values is not None
    values = 0
    if few:
        cur_values = np.array(sorted(acc.few), dtype=np.float64)
        cur_counts = np.array([acc.few[v] for v in cur_values.tolist()], dtype=np.float64)
        r, c = _few_counts(ref, cur_values, cur_counts, acc.few_other)
        values = len(r)
    test = _pick(name, opts, ref.rows, few=few, numeric=True, values=values)
    ref_slots = _grid_counts(grid, ref)
    ref_fine = ref_slots.astype(np.float64)
    cur_fine = acc.slots.astype(np.float64)
    coarse_r = grid.coarse(ref_slots, FINE_PER_BIN)
    coarse_c = grid.coarse(acc.slots, FINE_PER_BIN)
    inner = np.linspace(grid.lo, grid.hi, opts.bins + 1)
    edges = [min(acc.lo, grid.lo), *inner.tolist(), max(acc.hi, grid.hi)]
    extra: dict[str, Any] = {
        "method": "binned" if ref.profile is None else "profile",
        "reference_count": ref.size,
        "current_count": acc.count,
        "edges": [float(e) for e in edges],
        "reference_hist": [int(x) for x in coarse_r],
        "current_hist": [int(x) for x in coarse_c],
    }
    if few and test.shape == "binned":
        return _result(name, "numeric", test, opts, test.function(r, c), **extra)
    if test.shape == "raw":
        fine_edges = grid.edges(acc.lo, acc.hi)
        found = _on_bins(test, ref_fine, cur_fine, fine_edges, _reference_std(ref))
        if found is None:
            raise _raw_only(
                name, test, f"{acc.count:,} current values, more than max_rows_in_memory"
            )
        outcome, approximate = found
        return _result(name, "numeric", test, opts, outcome, approximate=approximate, **extra)
    outcome = test.function(coarse_r.astype(np.float64), coarse_c.astype(np.float64))
    return _result(name, "numeric", test, opts, outcome, **extra)


def _grid_counts(grid: Grid, ref: _Side) -> IntArray:
    """Reference counts per grid slot, from raw values or from exact counts per value."""
    if ref.values is not None:
        return grid.counts(ref.values)
    values, counts = _few(ref)
    slots = np.zeros(grid.slots, dtype=np.int64)
    for value, n in zip(values.tolist(), counts.tolist(), strict=True):
        slots += grid.counts(np.array([value])) * int(n)
    return slots


def _reference_std(ref: _Side) -> float:
    """The reference's population std (as ``np.std`` of its raw values, up to rounding)."""
    if ref.values is not None:
        return float(np.std(ref.values))
    values, counts = _few(ref)
    mean = float(np.average(values, weights=counts))
    return math.sqrt(float(np.average((values - mean) ** 2, weights=counts)))


def _profile_std(ref: ColumnProfile) -> float:
    # the profile's std is the sample std; the raw test divides by the population std
    assert ref.std is not None
    n = float(ref.valid)
    return ref.std * math.sqrt((n - 1.0) / n) if n > 1 else 0.0


def _numeric_from_profile(
    name: str, ref: ColumnProfile, rows: int, current: FloatArray, opts: _Options
) -> ColumnDrift:
    hist = ref.histogram
    assert hist is not None
    stored = np.asarray(hist.edges)
    edges, _, c = _histograms(
        current, current, float(stored[0]), float(stored[-1]), len(hist.counts)
    )
    return _profile_test(name, ref, rows, edges=edges, c=c, current_count=len(current), opts=opts)


def _numeric_binned_profile(
    name: str, ref: ColumnProfile, rows: int, acc: NumericAccumulator, opts: _Options
) -> ColumnDrift:
    assert acc.grid is not None
    edges = acc.grid.edges(acc.lo, acc.hi)
    c = acc.slots.astype(np.float64)
    return _profile_test(name, ref, rows, edges=edges, c=c, current_count=acc.count, opts=opts)


def _profile_test(
    name: str,
    ref: ColumnProfile,
    rows: int,
    *,
    edges: FloatArray,
    c: FloatArray,
    current_count: int,
    opts: _Options,
) -> ColumnDrift:
    """Current counts on the stored edges (with under/overflow) against the stored histogram."""
    assert ref.histogram is not None
    r = np.concatenate([[0.0], np.asarray(ref.histogram.counts, dtype=np.float64), [0.0]])
    test = _pick(name, opts, rows, few=False, numeric=True, values=ref.distinct)
    if test.shape == "raw":
        found = _on_bins(test, r, c, edges, _profile_std(ref))
        if found is None:
            raise InvalidInput(
                f"test {test.name!r} needs the raw reference values; column {name!r} has only a "
                "stored profile — use 'ks', 'wasserstein', 'anderson' or a binned test"
            )
        outcome = found[0]
    else:
        outcome = test.function(r, c)
    return _result(
        name,
        "numeric",
        test,
        opts,
        outcome,
        approximate=True,
        method="profile",
        reference_count=int(r.sum()),
        current_count=current_count,
        edges=[float(e) for e in edges],
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


def _reference_table(reference: object) -> pa.Table:
    """A raw reference, held in memory (a Parquet path or a dataset is read whole)."""
    if isinstance(reference, str | os.PathLike | pa_ds.Dataset | pa.RecordBatchReader):
        stream = batch_stream(reference)
        return pa.Table.from_batches(list(stream.batches), schema=stream.schema)
    return as_table(reference)


def _accumulator(kind: ColumnKind, ref: _Side | None, bins: int) -> Any:
    """The current-side accumulator of one column, with its bins fixed by the reference."""
    if kind in ("categorical", "boolean"):
        return CategoryAccumulator()
    if kind != "numeric":
        return None
    if ref is None:
        return NumericAccumulator(None, None, keep_values=True)
    grid: Grid | None = None
    few: FloatArray | None = None
    fine = bins * FINE_PER_BIN
    if ref.values is not None and len(ref.values):
        grid = Grid.around(float(ref.values.min()), float(ref.values.max()), fine, fine // 2)
        few = None if ref.few is None else ref.few[0]
    elif ref.few is not None:  # a few-valued profile column: the grid a raw reference gives
        few = ref.few[0]
        grid = Grid.around(float(few[0]), float(few[-1]), fine, fine // 2)
    elif ref.profile is not None and ref.profile.histogram is not None:
        edges = ref.profile.histogram.edges
        grid = Grid.around(edges[0], edges[-1], len(ref.profile.histogram.counts))
    return NumericAccumulator(grid, few, keep_values=True)


def _current_side(kind: ColumnKind, rows: int, acc: Any) -> _Side:
    if isinstance(acc, CategoryAccumulator):
        return _Side(kind, rows, counts=acc.result())
    if isinstance(acc, NumericAccumulator):
        values = acc.values()
        if values is not None:
            return _Side(kind, rows, values=values)
        return _Side(kind, rows, binned=acc)
    return _Side(kind, rows)


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
    max_rows_in_memory: int = DEFAULT_MAX_ROWS_IN_MEMORY,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> DriftReport:
    """Test each column of ``current`` for drift from ``reference`` (raw data or a profile).

    ``current`` is read once, batch by batch: a DataFrame or Arrow table, a Parquet file or
    folder, a ``pyarrow.dataset.Dataset``, a ``RecordBatchReader`` or an iterator of record
    batches. Up to ``max_rows_in_memory`` current rows keep their raw values (exact tests);
    beyond, numeric columns are tested on bins fixed by the reference (``method="binned"``).
    """
    if max_rows_in_memory < 0:
        raise InvalidInput(f"max_rows_in_memory must be at least 0, got {max_rows_in_memory}")
    is_profile = isinstance(reference, DatasetProfile)
    ref_table = None if isinstance(reference, DatasetProfile) else _reference_table(reference)
    stream = batch_stream(current, columns=columns, batch_rows=batch_rows)
    ref_names = list(reference.columns) if isinstance(reference, DatasetProfile) else []
    if ref_table is not None:
        ref_names = list(ref_table.column_names)
    cur_names = list(stream.schema.names)
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

    def reference_side(name: str) -> _Side | None:
        if isinstance(reference, DatasetProfile):
            col = reference.columns.get(name)
            return None if col is None else _profile_side(col, ref_rows)
        assert ref_table is not None
        if name not in ref_table.column_names:
            return None
        return _raw_side(ref_table, name, categorical)

    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=n_workers) if n_workers > 1 else None
    try:
        run = pool.map if pool is not None and len(names) > 1 else map
        ref_sides = dict(zip(names, run(reference_side, names), strict=True))
        kinds = {
            name: column_kind(name, stream.schema.field(name).type, categorical)
            for name in names
            if name in cur_names
        }
        accumulators = {n: _accumulator(k, ref_sides[n], bins) for n, k in kinds.items()}
        rows = read_current(
            stream,
            accumulators,
            max_rows_in_memory,
            pool=pool,
            workers=n_workers,
            progress=progress,
        )
        cur_sides = {n: _current_side(k, rows, accumulators[n]) for n, k in kinds.items()}
        del accumulators

        def one(name: str) -> ColumnDrift:
            return _compare(name, ref_sides[name], cur_sides.get(name), opts)

        results: list[ColumnDrift] = []
        for done, result in enumerate(run(one, names), 1):
            results.append(result)
            if progress is not None:
                progress(done, len(names), result.column)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return DriftReport(results, drift_share, ref_rows, rows, is_profile)
