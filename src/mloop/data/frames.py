"""Input normalisation: pandas, Arrow tables and record batches become typed Arrow columns.

Every statistic in :mod:`mloop.data.profile` and :mod:`mloop.data.drift` reads its input through
this module, so the rules for column kinds live in one place:

- ``numeric``: integer, floating and decimal columns (not booleans);
- ``boolean``: boolean columns;
- ``categorical``: string, large string and dictionary columns, pandas ``object`` columns that hold
  only strings, and integer columns named in ``categorical=`` (never automatically);
- ``datetime``: timestamps and dates (profiled, not drift-tested);
- ``null``: a column whose every value is missing and whose type is therefore unknown.

A pandas ``object`` column that mixes types (``[1, "a"]``) is rejected with :class:`InvalidInput`
naming the column, rather than silently stringified: a mixed column is nearly always a bug upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import InvalidInput

__all__ = [
    "BatchSource",
    "CategoryCounts",
    "ColumnKind",
    "NumericValues",
    "as_table",
    "batch_source",
    "category_counts",
    "column_kind",
    "numeric_values",
]

ColumnKind = Literal["numeric", "boolean", "categorical", "datetime", "null"]

#: A zero-argument callable that yields the record batches of one data set, once per call.
BatchSource = Callable[[], Iterator[pa.RecordBatch]]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _is_pandas(data: object) -> bool:
    return type(data).__module__.startswith("pandas") and hasattr(data, "columns")


def _from_pandas(frame: Any) -> pa.Table:
    names = [str(name) for name in frame.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInput(f"duplicate column names {dupes}; rename them first", columns=dupes)
    arrays = []
    for name, (_, series) in zip(names, frame.items(), strict=True):
        try:
            # NaN in a float column stays NaN (counted apart from nulls); elsewhere it means missing
            keep_nan = getattr(series.dtype, "kind", "") == "f"
            arrays.append(pa.array(series, from_pandas=not keep_nan))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(
                f"column {name!r} mixes value types ({exc}); "
                "cast it to one type (e.g. .astype(str)) before profiling",
                column=name,
            ) from None
    return pa.Table.from_arrays(arrays, names=names)


def as_table(data: object) -> pa.Table:
    """Read a DataFrame, Arrow table, record batch or iterable of record batches as one table."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if _is_pandas(data):
        return _from_pandas(data)
    if isinstance(data, Iterable) and not isinstance(data, str | bytes | dict):
        batches = list(data)
        if not batches:
            raise InvalidInput("an empty iterable of record batches has no schema; pass a table")
        if not all(isinstance(b, pa.RecordBatch) for b in batches):
            raise InvalidInput("an iterable input must hold pyarrow.RecordBatch objects only")
        try:
            return pa.Table.from_batches(batches)
        except pa.ArrowInvalid as exc:
            raise InvalidInput(f"record batches do not share one schema: {exc}") from None
    raise InvalidInput(
        f"unsupported data of type {type(data).__name__}; pass a pandas DataFrame, a "
        "pyarrow Table or RecordBatch, or an iterable of RecordBatches"
    )


def batch_source(data: object) -> BatchSource:
    """A re-callable batch reader over the input, so that statistics may read it twice.

    A list, tuple or zero-argument callable of record batches is read lazily, batch by batch (the
    larger-than-memory path); a one-shot iterator cannot be read twice and is rejected.
    """
    if isinstance(data, pa.Table | pa.RecordBatch) or _is_pandas(data):
        table = as_table(data)
        batches = table.to_batches() or [_empty_batch(table.schema)]
        return lambda: iter(batches)
    if callable(data):
        factory: Callable[[], Iterable[Any]] = data
        return lambda: _checked(iter(factory()))
    if isinstance(data, Iterator):
        raise InvalidInput(
            "a one-shot iterator of record batches cannot be read twice; pass a list, or a "
            "zero-argument callable returning a fresh iterator"
        )
    if isinstance(data, Iterable) and not isinstance(data, str | bytes | dict):
        items = data
        return lambda: _checked(iter(items))
    as_table(data)  # raises the standard message for anything else
    raise AssertionError("unreachable")  # pragma: no cover


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.record_batch([pa.array([], type=f.type) for f in schema], schema=schema)


def _checked(batches: Iterator[Any]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if isinstance(batch, pa.Table):
            yield from batch.to_batches()
        elif isinstance(batch, pa.RecordBatch):
            yield batch
        else:
            raise InvalidInput(
                f"expected pyarrow.RecordBatch chunks, got {type(batch).__name__}; "
                "convert each chunk with pyarrow.RecordBatch.from_pandas"
            )


def column_kind(name: str, dtype: pa.DataType, categorical: Collection[str] = ()) -> ColumnKind:
    """The kind of a column from its Arrow type (integers become categorical only if named)."""
    if pa.types.is_dictionary(dtype):
        return "categorical"
    if pa.types.is_null(dtype):
        return "null"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype):
        return "categorical" if name in categorical else "numeric"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        if name in categorical:
            raise InvalidInput(
                f"column {name!r} holds floating-point values; only integer or string "
                "columns can be treated as categorical",
                column=name,
            )
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    if pa.types.is_string_view(dtype):
        return "categorical"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return "datetime"
    raise InvalidInput(
        f"column {name!r} has unsupported type {dtype}; supported kinds are numeric, boolean, "
        "categorical (strings) and datetime — drop or convert the column",
        column=name,
        dtype=str(dtype),
    )


@dataclass(frozen=True)
class NumericValues:
    """The finite values of a numeric column, with the counts of what was excluded."""

    values: FloatArray
    nulls: int
    nan: int
    pos_inf: int
    neg_inf: int


def numeric_values(column: pa.ChunkedArray | pa.Array) -> NumericValues:
    """Finite float64 values of a numeric column; nulls, NaN and ±inf are counted, not kept."""
    nulls = int(column.null_count)
    present = pc.drop_null(column)
    if isinstance(present, pa.ChunkedArray):
        present = present.combine_chunks() if present.num_chunks != 1 else present.chunk(0)
    if not pa.types.is_float64(present.type):
        present = present.cast(pa.float64(), safe=False)
    raw = np.asarray(present.to_numpy(zero_copy_only=False), dtype=np.float64)
    finite = np.isfinite(raw)
    if finite.all():
        return NumericValues(raw, nulls, 0, 0, 0)
    nan = int(np.count_nonzero(np.isnan(raw)))
    pos_inf = int(np.count_nonzero(raw == np.inf))
    neg_inf = int(np.count_nonzero(raw == -np.inf))
    return NumericValues(raw[finite], nulls, nan, pos_inf, neg_inf)


@dataclass(frozen=True)
class CategoryCounts:
    """Counts of each category of a column (labels as text), most frequent first."""

    labels: list[str]
    counts: IntArray
    nulls: int


def _labels(values: pa.Array) -> list[str]:
    if pa.types.is_boolean(values.type):
        return ["True" if v else "False" for v in values.to_pylist()]
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    return [str(v) for v in values.to_pylist()]


def category_counts(column: pa.ChunkedArray | pa.Array) -> CategoryCounts:
    """Exact category counts of a column (vectorised in Arrow; one Python step per category)."""
    nulls = int(column.null_count)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string_view(column.type):
        column = column.cast(pa.large_string())
    present = pc.drop_null(column)
    if len(present) == 0:
        return CategoryCounts([], np.zeros(0, dtype=np.int64), nulls)
    counted = pc.value_counts(present)
    counts = np.asarray(counted.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
    labels = _labels(counted.field("values"))
    order = sorted(range(len(labels)), key=lambda i: (-int(counts[i]), labels[i]))
    return CategoryCounts([labels[i] for i in order], counts[order], nulls)
