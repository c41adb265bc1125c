"""One pass over the current data: fixed bin grids and per-column accumulators for drift.

``drift`` reads its current data as record batches (see :func:`mloop.data.frames.batch_stream`)
and folds each batch into one accumulator per column, so memory holds one batch plus, per column:

- numeric: counts on a :class:`Grid` fixed *before* reading (from the raw reference's range, or a
  stored profile's histogram edges), with underflow and overflow bins; null, NaN and ±inf
  counts; the running min and max; the raw finite values only while the data has at most
  ``max_rows_in_memory`` rows (then they are dropped); and, for a column the reference holds as a
  few values, exact counts per value;
- categorical and boolean: exact counts per category (memory grows with distinct categories).

Each batch costs a few vectorised NumPy/Arrow passes per column, never a Python step per row.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.data.frames import (
    BatchStream,
    CategoryCounts,
    FloatArray,
    IntArray,
    category_counts,
    numeric_values,
)
from mloop.data.profile import Progress

__all__ = [
    "FINE_PER_BIN",
    "MAX_FEW_VALUES",
    "CategoryAccumulator",
    "Grid",
    "NumericAccumulator",
    "read_current",
]

#: Fine bins per test bin on the grid of a raw reference (20 bins → 4,000 fine bins in range).
FINE_PER_BIN = 200
#: Distinct current values counted one by one in a few-valued numeric column; more are pooled.
MAX_FEW_VALUES = 10_000


@dataclass(frozen=True)
class Grid:
    """Equal-width bins on ``[lo, hi]``, ``pad`` more of the same width beyond each end, and
    an underflow and an overflow slot: ``inner + 2 * pad + 2`` slots in all.

    A value in ``[lo, hi]`` always lands in an inner bin (``hi`` in the last, as NumPy does).
    """

    lo: float
    hi: float
    inner: int
    pad: int = 0

    @classmethod
    def around(cls, lo: float, hi: float, inner: int, pad: int = 0) -> Grid:
        """A grid on ``[lo, hi]``, widened by ±0.5 when the range is a single point."""
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        return cls(lo, hi, inner, pad)

    @property
    def slots(self) -> int:
        """Number of count slots, underflow and overflow included."""
        return self.inner + 2 * self.pad + 2

    def counts(self, x: FloatArray) -> IntArray:
        """Counts of finite values ``x`` per slot."""
        if len(x) == 0:
            return np.zeros(self.slots, dtype=np.int64)
        t = x - self.lo  # exact sign: a value below lo never lands in range
        t *= self.inner / (self.hi - self.lo)
        np.floor(t, out=t)
        t += self.pad + 1
        np.clip(t, 0, self.slots - 1, out=t)
        index = t.astype(np.intp)
        # rounding near hi: hi itself belongs to the last inner bin, anything above it beyond
        last = self.pad + self.inner
        at_end = np.flatnonzero(index == last + 1)
        index[at_end[x[at_end] <= self.hi]] = last
        before_end = np.flatnonzero(index == last)
        index[before_end[x[before_end] > self.hi]] = last + 1
        return np.bincount(index, minlength=self.slots).astype(np.int64)

    def edges(self, low: float, high: float) -> FloatArray:
        """Slot edges, the outer slots reaching to ``low`` and ``high`` (the data's extremes)."""
        width = (self.hi - self.lo) / self.inner
        steps = np.arange(-self.pad, self.inner + self.pad + 1, dtype=np.float64)
        inner = self.lo + steps * width
        inner[self.pad] = self.lo
        inner[self.pad + self.inner] = self.hi
        return np.concatenate([[min(low, inner[0])], inner, [max(high, inner[-1])]])

    def coarse(self, counts: IntArray, per_bin: int) -> IntArray:
        """Counts on ``inner // per_bin`` bins of ``[lo, hi]`` plus underflow and overflow."""
        low = counts[: self.pad + 1].sum()
        high = counts[self.pad + 1 + self.inner :].sum()
        middle = counts[self.pad + 1 : self.pad + 1 + self.inner].reshape(-1, per_bin).sum(axis=1)
        return np.concatenate([[low], middle, [high]]).astype(np.int64)


class NumericAccumulator:
    """What the drift tests need of one numeric current column, merged batch by batch."""

    def __init__(
        self, grid: Grid | None, few_values: FloatArray | None, *, keep_values: bool
    ) -> None:
        self.grid = grid
        self.few_values = few_values
        self.count = self.nulls = self.nan = self.pos_inf = self.neg_inf = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.slots: IntArray = np.zeros(0 if grid is None else grid.slots, dtype=np.int64)
        self.parts: list[FloatArray] | None = [] if keep_values else None
        self.few: dict[float, int] = {}
        self.few_other = 0
        self.few_pooled = False

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        """Fold one batch's column in."""
        got = numeric_values(column)
        self.nulls += got.nulls
        self.nan += got.nan
        self.pos_inf += got.pos_inf
        self.neg_inf += got.neg_inf
        x = got.values
        if len(x) == 0:
            return
        self.count += len(x)
        self.lo = min(self.lo, float(x.min()))
        self.hi = max(self.hi, float(x.max()))
        if self.grid is not None:
            self.slots += self.grid.counts(x)
        if self.parts is not None:
            self.parts.append(x)
        if self.few_values is not None:
            self._add_few(x)

    def _add_few(self, x: FloatArray) -> None:
        assert self.few_values is not None
        values, counts = np.unique(x, return_counts=True)
        if self.few_pooled:
            known = np.isin(values, self.few_values)
            values, self.few_other = values[known], self.few_other + int(counts[~known].sum())
            counts = counts[known]
        for value, n in zip(values.tolist(), counts.tolist(), strict=True):
            self.few[value] = self.few.get(value, 0) + n
        if len(self.few) > MAX_FEW_VALUES:  # pool what the reference never had
            known_set = set(self.few_values.tolist())
            for value in [v for v in self.few if v not in known_set]:
                self.few_other += self.few.pop(value)
            self.few_pooled = True

    def drop_values(self) -> None:
        """Stop keeping raw values (the data has more rows than may be held)."""
        self.parts = None

    def values(self) -> FloatArray | None:
        """The raw finite values, if they were kept."""
        if self.parts is None:
            return None
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


class CategoryAccumulator:
    """Exact category counts of one categorical or boolean current column."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.nulls = 0

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        """Fold one batch's column in (integers named categorical are read as text)."""
        if pa.types.is_integer(column.type):
            column = column.cast(pa.string())
        got = category_counts(column)
        self.nulls += got.nulls
        for label, n in zip(got.labels, got.counts.tolist(), strict=True):
            self.totals[label] = self.totals.get(label, 0) + n

    def result(self) -> CategoryCounts:
        """The counts, most frequent first (as :func:`category_counts` orders them)."""
        ranked = sorted(self.totals.items(), key=lambda item: (-item[1], item[0]))
        labels = [label for label, _ in ranked]
        counts = np.array([n for _, n in ranked], dtype=np.int64)
        return CategoryCounts(labels, counts, self.nulls)


def read_current(
    stream: BatchStream,
    accumulators: Mapping[str, Any],
    max_rows: int,
    *,
    pool: ThreadPoolExecutor | None,
    workers: int,
    progress: Progress | None,
) -> int:
    """Fold every batch of ``stream`` into the accumulators; return the row count.

    Columns are split into one group per worker thread, and the next batch is decoded while
    this one is folded in. Past ``max_rows`` rows, numeric accumulators drop their raw values.
    """
    names = [name for name, acc in accumulators.items() if acc is not None]
    lanes = max(min(workers, len(names)), 1) if pool is not None else 1
    groups = [names[i::lanes] for i in range(lanes)]
    rows = 0
    keep = True
    reader = ThreadPoolExecutor(max_workers=1) if pool is not None else None
    batches = stream.batches if reader is None else _read_ahead(stream.batches, reader)
    try:
        for done, batch in enumerate(batches, 1):
            rows += batch.num_rows
            if keep and rows > max_rows:  # too many rows to hold: numeric columns go binned
                keep = False
                for acc in accumulators.values():
                    if isinstance(acc, NumericAccumulator):
                        acc.drop_values()
            _fold(batch, accumulators, groups, pool)
            if progress is not None and not stream.in_memory:
                total = max(stream.batches_hint, done) if stream.batches_hint else 0
                progress(done, total, f"current data, batch {done}")
    finally:
        if reader is not None:
            reader.shutdown(wait=True, cancel_futures=True)
    return rows


def _read_ahead(
    batches: Iterator[pa.RecordBatch], reader: ThreadPoolExecutor
) -> Iterator[pa.RecordBatch]:
    """Decode the next batch while this one is folded in (one batch of read-ahead)."""
    pending = reader.submit(next, batches, None)
    while (batch := pending.result()) is not None:
        pending = reader.submit(next, batches, None)
        yield batch


def _fold(
    batch: pa.RecordBatch,
    accumulators: Mapping[str, Any],
    groups: Sequence[Sequence[str]],
    pool: ThreadPoolExecutor | None,
) -> None:
    """Fold one batch into the accumulators, one group of columns per thread."""

    def fold(group: Sequence[str]) -> None:
        for name in group:
            accumulators[name].add(batch.column(name))

    if pool is not None and len(groups) > 1:
        list(pool.map(fold, groups))
    else:
        for group in groups:
            fold(group)
