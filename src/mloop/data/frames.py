"""Input normalisation: pandas, Arrow tables, record batches and Parquet become typed Arrow columns.

Every statistic in :mod:`mloop.data.profile` and :mod:`mloop.data.drift` reads its input through
this module, so the rules for column kinds live in one place:

- ``numeric``: integer, floating and decimal columns (not booleans);
- ``boolean``: boolean columns;
- ``categorical``: string, large string and dictionary columns, pandas ``object`` columns that hold
  only strings, and integer columns named in ``categorical=`` (never automatically);
- ``datetime``: timestamps and dates (profiled, not drift-tested);
- ``null``: a column whose every value is missing and whose type is therefore unknown.

Two ways to read a data set: :func:`as_table` (one in-memory table) and :func:`batch_stream` (one
pass over record batches: Parquet files or folders, a ``pyarrow.dataset.Dataset``, a
``RecordBatchReader`` or any iterator of batches, read batch by batch, so memory holds one batch).

A pandas ``object`` column that mixes types (``[1, "a"]``) is rejected with :class:`InvalidInput`
naming the column, rather than silently stringified: a mixed column is nearly always a bug upstream.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq

from mloop.errors import InvalidInput, NotFound

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "BatchSource",
    "BatchStream",
    "CategoryCounts",
    "ColumnKind",
    "NumericValues",
    "as_table",
    "batch_source",
    "batch_stream",
    "category_counts",
    "column_kind",
    "numeric_values",
]

ColumnKind = Literal["numeric", "boolean", "categorical", "datetime", "null"]

#: A zero-argument callable that yields the record batches of one data set, once per call.
BatchSource = Callable[[], Iterator[pa.RecordBatch]]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Rows per record batch when reading a Parquet file or dataset batch by batch.
DEFAULT_BATCH_ROWS = 65_536
#: Bytes Arrow reads ahead per Parquet column (a buffered stream, not a whole column chunk).
_PARQUET_BUFFER = 1 << 20


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
        "pyarrow Table or RecordBatch, an iterable of RecordBatches, or (where data is read "
        "in batches) a Parquet path, a pyarrow Dataset or a RecordBatchReader"
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
    if _is_path(data) or isinstance(data, pa_ds.Dataset):
        return lambda: batch_stream(data).batches
    if isinstance(data, pa.RecordBatchReader):
        raise InvalidInput(
            "a RecordBatchReader cannot be read twice; pass a list, a Parquet path, or a "
            "zero-argument callable returning a fresh reader"
        )
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
        elif _is_pandas(batch):
            yield from _from_pandas(batch).to_batches()
        else:
            raise InvalidInput(
                f"expected pyarrow.RecordBatch chunks, got {type(batch).__name__}; "
                "convert each chunk with pyarrow.RecordBatch.from_pandas"
            )


# --- one pass over record batches -----------------------------------------------------------


@dataclass
class BatchStream:
    """One pass over a data set's record batches, with its schema and what is known of its size.

    ``rows`` and ``batches_hint`` are ``None`` when they cannot be known without reading (an
    iterator); ``in_memory`` says whether the whole data set is already in memory.
    """

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    rows: int | None
    batches_hint: int | None
    in_memory: bool


def _is_path(data: object) -> bool:
    return isinstance(data, str | os.PathLike)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _open_parquet(path: str | os.PathLike[str]) -> pa_ds.Dataset:
    shown = os.fspath(path)
    if not Path(path).exists():
        raise NotFound(f"no data file at {shown!r}", path=shown)
    try:
        return pa_ds.dataset(shown, format="parquet")
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(
            f"cannot read {shown!r} as Parquet: {_one_line(str(exc))}", path=shown
        ) from None


def _guarded(batches: Iterator[pa.RecordBatch], label: str) -> Iterator[pa.RecordBatch]:
    """Turn Arrow and I/O errors raised while reading into one :class:`InvalidInput`."""
    try:
        yield from batches
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"cannot read {label}: {_one_line(str(exc))}") from None


def _same_schema(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for index, batch in enumerate(batches):
        if batch.schema.names != schema.names or batch.schema.types != schema.types:
            raise InvalidInput(
                f"record batch {index} does not match the schema of the data: expected "
                f"{_describe(schema)}, got {_describe(batch.schema)}; cast every batch to one "
                "schema first"
            )
        yield batch


def _describe(schema: pa.Schema) -> str:
    return "(" + ", ".join(f"{f.name}: {f.type}" for f in schema) + ")"


def _file_names(dataset: pa_ds.FileSystemDataset) -> list[str]:
    fragments = dataset.get_fragments()
    first = next(iter(fragments), None)
    return [] if first is None else list(first.physical_schema.names)


def _parquet_batches(
    files: Sequence[str], filesystem: Any, names: Sequence[str], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    for path in files:
        reader = pq.ParquetFile(
            path, filesystem=filesystem, buffer_size=_PARQUET_BUFFER, pre_buffer=False
        )
        try:
            yield from reader.iter_batches(
                batch_size=batch_rows, columns=list(names), use_threads=True
            )
        finally:
            reader.close()


def _dataset_stream(
    dataset: pa_ds.Dataset, columns: Sequence[str] | None, batch_rows: int, label: str
) -> BatchStream:
    names = (
        dataset.schema.names
        if columns is None
        else [c for c in columns if c in dataset.schema.names]
    )
    schema = pa.schema([dataset.schema.field(n) for n in names])
    rows: int | None = None
    hint: int | None = None
    options: dict[str, Any] = {}
    if isinstance(dataset.format, pa_ds.ParquetFileFormat):
        # buffered column reads and no pre-buffering: memory holds one batch, not a row group
        options["fragment_scan_options"] = pa_ds.ParquetFragmentScanOptions(
            use_buffered_stream=True, buffer_size=_PARQUET_BUFFER, pre_buffer=False
        )
        try:
            groups = [
                group.num_rows
                for fragment in dataset.get_fragments()
                for group in fragment.row_groups
            ]
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"cannot read {label}: {_one_line(str(exc))}") from None
        rows = sum(groups)
        hint = sum(math.ceil(n / batch_rows) for n in groups)
    by_file = isinstance(dataset, pa_ds.FileSystemDataset) and "fragment_scan_options" in options
    if by_file:  # not if a column comes from the folder names (hive partitions)
        by_file = all(n in _file_names(dataset) for n in names)
    if by_file:
        # file by file: leaner and faster than a dataset scanner (no read-ahead queue)
        files = _parquet_batches(dataset.files, dataset.filesystem, names, batch_rows)
        batches = _guarded(files, label)
    else:
        scanner = dataset.scanner(
            columns=names,
            batch_size=batch_rows,
            batch_readahead=1,
            fragment_readahead=1,
            use_threads=True,
            **options,
        )
        batches = _guarded(iter(scanner.to_batches()), label)
    return BatchStream(schema, _same_schema(batches, schema), rows, hint, in_memory=False)


def batch_stream(
    data: object, *, columns: Sequence[str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
) -> BatchStream:
    """Read ``data`` once, batch by batch: the larger-than-memory input of one-pass statistics.

    Takes a path to a Parquet file or folder, a ``pyarrow.dataset.Dataset`` (only ``columns``
    are read), a ``RecordBatchReader``, an iterable or iterator of record batches (or of tables
    or DataFrames, each converted on its own), a zero-argument callable returning one, or the
    in-memory forms :func:`as_table` takes. Every batch must have the schema of the first; an
    unreadable file or an empty stream is an :class:`InvalidInput`.
    """
    if batch_rows < 1:
        raise InvalidInput(f"batch_rows must be at least 1, got {batch_rows}")
    if _is_path(data):
        shown = os.fspath(data)  # type: ignore[call-overload]
        return _dataset_stream(_open_parquet(shown), columns, batch_rows, repr(shown))
    if isinstance(data, pa_ds.Dataset):
        return _dataset_stream(data, columns, batch_rows, "the dataset")
    if isinstance(data, pa.Table | pa.RecordBatch) or _is_pandas(data):
        table = as_table(data)
        batches = iter(table.to_batches(max_chunksize=batch_rows))
        return BatchStream(table.schema, batches, table.num_rows, None, in_memory=True)
    if isinstance(data, pa.RecordBatchReader):
        batches = _guarded(iter(data), "the record batch reader")
        return BatchStream(data.schema, _same_schema(batches, data.schema), None, None, False)
    if callable(data) and not isinstance(data, Iterable):
        data = data()
    if isinstance(data, Iterable) and not isinstance(data, str | bytes | dict):
        rows: int | None = None
        if isinstance(data, list | tuple) and all(isinstance(b, pa.RecordBatch) for b in data):
            rows = sum(b.num_rows for b in data)
        items = _checked(iter(data))
        first = next(items, None)
        if first is None:
            raise InvalidInput(
                "the stream of record batches is empty, so it has no schema; pass at least one "
                "(possibly empty) batch or a table"
            )
        rest = _same_schema(chain([first], items), first.schema)
        hint = len(data) if rows is not None else None  # type: ignore[arg-type]
        return BatchStream(first.schema, rest, rows, hint, in_memory=False)
    as_table(data)  # raises the standard message for anything else
    raise AssertionError("unreachable")  # pragma: no cover


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
