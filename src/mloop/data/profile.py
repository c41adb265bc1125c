"""Column profiles: counts, moments, quantiles, histograms and top categories, in bounded memory.

``profile`` reads its input as a sequence of Arrow record batches, **twice**:

1. the first pass merges per-batch sketches — counts, null/NaN/±inf counts, min/max, mean and
   variance (Chan's parallel update), category counts, and a distinct-value sketch;
2. the second pass fills, on edges fixed by the first pass's min and max, the stored histogram
   (``bins`` equal-width bins) and a fine 4,096-bin histogram from which quantiles are interpolated.

So memory is bounded by one batch plus the sketches, whatever the row count, and a whole table
gives exactly the same profile as the same rows split into chunks (up to floating-point rounding of
the mean). Quantiles are therefore approximate: each is within ``(max - min) / 4096`` of the exact
value. Distinct counts are exact up to 100,000 distinct values, then a HyperLogLog estimate
(2^14 registers, about 0.8 % standard error) flagged with ``distinct_exact=False``. Category counts
are exact (memory grows with the number of distinct categories, not rows).

A numeric column with at most ``VALUE_COUNTS_LIMIT`` distinct finite values (integer codes, 0/1
flags, ratings) also keeps the exact count of each value (``value_counts``), so that drift from a
stored profile can test it as categorical, as drift from raw data does. Booleans are not numeric:
their counts are in ``top``, like any category.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mloop.data.frames import (
    ColumnKind,
    IntArray,
    batch_source,
    category_counts,
    column_kind,
    numeric_values,
)
from mloop.errors import InvalidInput

__all__ = [
    "QUANTILES",
    "VALUE_COUNTS_LIMIT",
    "ColumnProfile",
    "DatasetProfile",
    "Histogram",
    "profile",
]

#: The quantiles every numeric profile stores, by name.
QUANTILES: dict[str, float] = {
    "p1": 0.01,
    "p5": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
FINE_BINS = 4096
DISTINCT_EXACT_LIMIT = 100_000
#: A numeric column keeps the count of each value when it has at most this many distinct values.
VALUE_COUNTS_LIMIT = 20
_HLL_P = 14
_HLL_M = 1 << _HLL_P

#: Called after each column is finished with (columns done, columns in all, column name).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Histogram:
    """Bin counts on stored edges (``len(edges) == len(counts) + 1``, last bin closed)."""

    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class ColumnProfile:
    """Summary statistics of one column; statistics cover finite, non-null values only."""

    name: str
    kind: ColumnKind
    dtype: str
    count: int
    nulls: int
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0
    distinct: int = 0
    distinct_exact: bool = True
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    histogram: Histogram | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    other_count: int = 0
    value_counts: list[tuple[float, int]] | None = None
    """Numeric columns with at most ``VALUE_COUNTS_LIMIT`` distinct finite values: each value and
    how often it occurs, in ascending value order (summing to ``valid``). None otherwise, and in
    profiles saved before this field existed."""

    @property
    def valid(self) -> int:
        """Values that are neither null, NaN nor infinite."""
        return self.count - self.nulls - self.nan - self.pos_inf - self.neg_inf

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no NaN or infinity anywhere)."""
        body = asdict(self)
        body["top"] = [[label, n] for label, n in self.top]
        if self.value_counts is not None:
            body["value_counts"] = [[value, n] for value, n in self.value_counts]
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> ColumnProfile:
        """Rebuild a profile from :meth:`to_dict` output."""
        values = dict(body)
        hist = values.get("histogram")
        values["histogram"] = None if hist is None else Histogram(**hist)
        values["top"] = [(str(label), int(n)) for label, n in values.get("top", [])]
        counts = values.get("value_counts")  # absent from profiles saved before it existed
        if counts is not None:
            values["value_counts"] = [(float(value), int(n)) for value, n in counts]
        return cls(**values)


@dataclass(frozen=True)
class DatasetProfile:
    """Profiles of every column of a data set, in column order."""

    rows: int
    columns: dict[str, ColumnProfile]

    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, to be stored beside a dataset version."""
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> DatasetProfile:
        """Rebuild a dataset profile from :meth:`to_dict` output."""
        try:
            cols = [ColumnProfile.from_dict(c) for c in body["columns"]]
            return cls(rows=int(body["rows"]), columns={c.name: c for c in cols})
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not a dataset profile: {exc}") from None


def _hash64(bits: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # splitmix64 finaliser: a fast, well-mixed 64-bit hash of 64-bit keys (array ops wrap silently)
    z = bits + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Distinct:
    """Exact distinct values up to a limit, with HyperLogLog registers kept alongside."""

    def __init__(self) -> None:
        self.exact: npt.NDArray[np.uint64] | None = np.zeros(0, dtype=np.uint64)
        self.registers = np.zeros(_HLL_M, dtype=np.uint8)

    def add(self, keys: npt.NDArray[np.uint64]) -> None:
        """Add 64-bit keys (the bit patterns of the values)."""
        if self.exact is not None:
            self.exact = np.union1d(self.exact, keys)
            if len(self.exact) > DISTINCT_EXACT_LIMIT:
                self.exact = None
        hashed = _hash64(keys)
        index = (hashed >> np.uint64(64 - _HLL_P)).astype(np.int64)
        rest = (hashed << np.uint64(_HLL_P)) | np.uint64(1 << (_HLL_P - 1))
        _, exponent = np.frexp(rest.astype(np.float64))
        rank = (65 - exponent).astype(np.uint8)  # leading zeros + 1
        np.maximum.at(self.registers, index, rank)

    def estimate(self) -> tuple[int, bool]:
        if self.exact is not None:
            return len(self.exact), True
        m = float(_HLL_M)
        alpha = 0.7213 / (1.0 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            raw = m * math.log(m / zeros)
        return round(raw), False


class _Numeric:
    """Mergeable numeric sketch for one column (pass 1), then histograms (pass 2)."""

    def __init__(self) -> None:
        self.count = self.nulls = self.nan = self.pos_inf = self.neg_inf = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self.distinct = _Distinct()
        # Exact counts per value while there are few distinct values; None once there are more.
        self.values: dict[float, int] | None = {}
        self.fine: IntArray = np.zeros(FINE_BINS, dtype=np.int64)
        self.hist: IntArray = np.zeros(0, dtype=np.int64)

    def first(self, column: pa.Array) -> None:
        got = numeric_values(column)
        self.count += len(column)
        self.nulls += got.nulls
        self.nan += got.nan
        self.pos_inf += got.pos_inf
        self.neg_inf += got.neg_inf
        x = got.values
        if len(x) == 0:
            return
        n_b, mean_b = len(x), float(np.mean(x))
        m2_b = float(np.sum((x - mean_b) ** 2))
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * self.n * n_b / total
        self.n = total
        self.lo = min(self.lo, float(np.min(x)))
        self.hi = max(self.hi, float(np.max(x)))
        x = x + 0.0  # makes -0.0 and 0.0 one value
        self.distinct.add(x.view(np.uint64))
        self._count_values(x)

    def _count_values(self, x: npt.NDArray[np.float64]) -> None:
        exact = self.distinct.exact  # every distinct value so far, this batch's included
        if self.values is None or exact is None or len(exact) > VALUE_COUNTS_LIMIT:
            self.values = None
            return
        found, counts = np.unique(x, return_counts=True)
        for value, n in zip(found.tolist(), counts.tolist(), strict=True):
            self.values[value] = self.values.get(value, 0) + n

    def second(self, column: pa.Array, bins: int) -> None:
        x = numeric_values(column).values
        if len(self.hist) == 0:
            self.hist = np.zeros(bins, dtype=np.int64)
        if len(x) == 0:
            return
        span = (self.lo, self.hi) if self.hi > self.lo else (self.lo - 0.5, self.hi + 0.5)
        self.fine += np.histogram(x, bins=FINE_BINS, range=span)[0]
        self.hist += np.histogram(x, bins=bins, range=span)[0]

    def quantiles(self) -> dict[str, float]:
        if self.n == 0:
            return {}
        if self.hi == self.lo:
            return dict.fromkeys(QUANTILES, self.lo)
        edges = np.linspace(self.lo, self.hi, FINE_BINS + 1)
        cdf = np.concatenate([[0.0], np.cumsum(self.fine) / self.n])
        targets = np.array(list(QUANTILES.values()))
        found = np.interp(targets, cdf, edges)
        return {
            k: float(np.clip(v, self.lo, self.hi)) for k, v in zip(QUANTILES, found, strict=True)
        }

    def result(self, name: str, dtype: str, bins: int) -> ColumnProfile:
        distinct, exact = self.distinct.estimate()
        stats_ok = self.n > 0
        span = (self.lo, self.hi) if self.hi > self.lo else (self.lo - 0.5, self.hi + 0.5)
        histogram = None
        if stats_ok:
            edges = np.linspace(span[0], span[1], bins + 1)
            histogram = Histogram([float(e) for e in edges], [int(c) for c in self.hist])
        std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0
        return ColumnProfile(
            name=name,
            kind="numeric",
            dtype=dtype,
            count=self.count,
            nulls=self.nulls,
            nan=self.nan,
            pos_inf=self.pos_inf,
            neg_inf=self.neg_inf,
            distinct=distinct,
            distinct_exact=exact,
            min=self.lo if stats_ok else None,
            max=self.hi if stats_ok else None,
            mean=self.mean if stats_ok else None,
            std=std if stats_ok else None,
            quantiles=self.quantiles(),
            histogram=histogram,
            value_counts=None if self.values is None else sorted(self.values.items()),
        )


class _Categories:
    """Exact category counts merged across batches (memory grows with distinct categories)."""

    def __init__(self) -> None:
        self.count = self.nulls = 0
        self.totals: dict[str, int] = {}

    def first(self, column: pa.Array) -> None:
        got = category_counts(column)
        self.count += len(column)
        self.nulls += got.nulls
        if not self.totals:
            self.totals = dict(zip(got.labels, got.counts.tolist(), strict=True))
            return
        for label, n in zip(got.labels, got.counts.tolist(), strict=True):
            self.totals[label] = self.totals.get(label, 0) + n

    def result(self, name: str, kind: ColumnKind, dtype: str, top_k: int) -> ColumnProfile:
        ranked = sorted(self.totals.items(), key=lambda item: (-item[1], item[0]))
        top = ranked[:top_k]
        return ColumnProfile(
            name=name,
            kind=kind,
            dtype=dtype,
            count=self.count,
            nulls=self.nulls,
            distinct=len(ranked),
            top=top,
            other_count=sum(n for _, n in ranked[top_k:]),
        )


class _Datetimes:
    """Count, nulls, min, max (ISO text) and distinct of a timestamp or date column."""

    def __init__(self) -> None:
        self.count = self.nulls = 0
        self.lo: Any = None
        self.hi: Any = None
        self.distinct = _Distinct()

    def first(self, column: pa.Array) -> None:
        self.count += len(column)
        self.nulls += column.null_count
        present = pc.drop_null(column)
        if len(present) == 0:
            return
        bounds = pc.min_max(present)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        as_int = present.cast(pa.int64()).to_numpy(zero_copy_only=False)
        self.distinct.add(np.asarray(as_int, dtype=np.int64).view(np.uint64))

    def result(self, name: str, dtype: str) -> ColumnProfile:
        distinct, exact = self.distinct.estimate()
        return ColumnProfile(
            name=name,
            kind="datetime",
            dtype=dtype,
            count=self.count,
            nulls=self.nulls,
            distinct=distinct,
            distinct_exact=exact,
            min=None if self.lo is None else self.lo.isoformat(),
            max=None if self.hi is None else self.hi.isoformat(),
        )


def profile(
    data: object,
    *,
    bins: int = 20,
    top_k: int = 20,
    categorical: Collection[str] = (),
    progress: Progress | None = None,
) -> DatasetProfile:
    """Profile every column of ``data`` (DataFrame, Arrow table, or a list/factory of batches)."""
    if not 1 <= bins <= 10_000:
        raise InvalidInput(f"bins must be between 1 and 10000, got {bins}")
    if top_k < 1:
        raise InvalidInput(f"top_k must be at least 1, got {top_k}")
    read = batch_source(data)
    schema: pa.Schema | None = None
    sketches: dict[str, Any] = {}
    kinds: dict[str, ColumnKind] = {}
    rows = 0
    for batch in read():
        if schema is None:
            schema = batch.schema
            for name, dtype in zip(schema.names, schema.types, strict=True):
                kinds[name] = column_kind(name, dtype, categorical)
                kind = kinds[name]
                sketches[name] = (
                    _Numeric()
                    if kind == "numeric"
                    else _Datetimes()
                    if kind == "datetime"
                    else _Categories()
                )
        elif batch.schema.names != schema.names:
            raise InvalidInput("record batches do not share one schema (column names differ)")
        rows += batch.num_rows
        for name in schema.names:
            column = batch.column(name)
            if kinds[name] == "categorical" and pa.types.is_integer(column.type):
                column = column.cast(pa.string())
            sketches[name].first(column)
    if schema is None:
        raise InvalidInput("the data has no record batches, so no schema to profile")
    numeric = [n for n in schema.names if kinds[n] == "numeric"]
    if numeric:
        for batch in read():
            for name in numeric:
                sketches[name].second(batch.column(name), bins)
    columns: dict[str, ColumnProfile] = {}
    for done, (name, dtype) in enumerate(zip(schema.names, schema.types, strict=True), 1):
        sketch = sketches[name]
        if isinstance(sketch, _Numeric):
            columns[name] = sketch.result(name, str(dtype), bins)
        elif isinstance(sketch, _Datetimes):
            columns[name] = sketch.result(name, str(dtype))
        else:
            columns[name] = sketch.result(name, kinds[name], str(dtype), top_k)
        if progress is not None:
            progress(done, len(schema.names), name)
    return DatasetProfile(rows=rows, columns=columns)
