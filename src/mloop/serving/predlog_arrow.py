"""Building the prediction log's Arrow tables and Parquet bytes (the on-disk format).

Everything here runs in the log's writer thread, never on the request path, and is vectorised:
the batches' inputs are concatenated once, per-request values (request id, time, latency) are
expanded to rows with ``numpy.repeat``. Batches are grouped by the shapes and types of their
inputs and outputs first, so each table has one schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.data.expectations import _python
from mloop.errors import InvalidInput
from mloop.serving.predlog_read import CLASSES_KEY, HOUR_MS, TS_TYPE

if TYPE_CHECKING:
    from mloop.serving.predlog import PredictionBatch

__all__ = [
    "FeedbackItem",
    "by_hour",
    "check_batch",
    "check_labels",
    "feedback_table",
    "group_key",
    "parquet_bytes",
    "prediction_table",
    "rows_of",
]


@dataclass
class FeedbackItem:
    """Labels for one request, waiting to be written."""

    request_id: str
    ts_ms: int  # the prediction's time: feedback is partitioned by it
    label_ts_ms: int
    labels: list[Any]


def rows_of(value: Any) -> int:
    """Rows of an array or frame (its first dimension)."""
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape else len(value)


def _to_arrow(values: np.ndarray) -> pa.Array:
    if values.dtype.kind == "f" and values.dtype.itemsize < 4:
        values = values.astype(np.float32)
    if values.dtype.kind in "biufMm":
        return pa.array(values)
    try:
        return pa.array(values.tolist() if values.dtype.kind == "O" else values)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array([None if v is None else str(v) for v in values.tolist()], pa.string())


def _frame_struct(frames: list[pd.DataFrame]) -> pa.Array:
    names = [str(name) for name in frames[0].columns]
    dtypes = set(frames[0].dtypes)
    (dtype, *others) = dtypes if dtypes else (None,)
    if len(frames) > 1 and not others and isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        # One numeric dtype (the common case): a block concatenation, much cheaper than
        # pd.concat over thousands of one-row frames.
        block = np.concatenate([f.to_numpy() for f in frames]).T.copy()
        return pa.StructArray.from_arrays([pa.array(c) for c in block], names=names)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = [c.combine_chunks() for c in table.columns]
    # pandas 3 strings come as large_string: store plain strings, one schema for every pandas.
    columns = [c.cast(pa.string()) if pa.types.is_large_string(c.type) else c for c in columns]
    return pa.StructArray.from_arrays(columns, names=names)


def _list_column(arrays: list[np.ndarray], as_float: bool) -> pa.Array:
    array = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
    n = array.shape[0]
    flat = array.reshape(n, -1)
    width = flat.shape[1]
    if as_float and flat.dtype.kind in "biuf":
        values = pa.array(flat.astype(np.float64, copy=False).ravel())
    else:
        values = _to_arrow(flat.ravel())
    offsets = pa.array(np.arange(n + 1, dtype=np.int64) * width, pa.int32())
    return pa.ListArray.from_arrays(offsets, values)


def _inputs_column(values: list[Any]) -> pa.Array:
    if isinstance(values[0], pd.DataFrame):
        return _frame_struct(values)
    return _list_column([np.asarray(v) for v in values], as_float=True)


def _output_column(values: list[Any]) -> pa.Array:
    if isinstance(values[0], pd.DataFrame):
        return _frame_struct(values)
    arrays = [np.asarray(v) for v in values]
    if arrays[0].ndim == 1:
        return _to_arrow(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
    return _list_column(arrays, as_float=False)


def _shape_key(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ("none",)
    if isinstance(value, pd.DataFrame):
        return ("frame", tuple(map(str, value.columns)), tuple(map(str, value.dtypes)))
    array = np.asarray(value)
    return ("array", array.shape[1:], array.dtype.str)


def group_key(batch: PredictionBatch) -> tuple[Any, ...]:
    """Batches with equal keys give tables of one schema (shapes, types, classes)."""
    classes = (
        None
        if batch.classes is None
        else json.dumps([_python(c) for c in batch.classes], default=str)
    )
    return (
        _shape_key(batch.inputs),
        _shape_key(batch.predictions),
        _shape_key(batch.probabilities),
        classes,
    )


def check_batch(batch: PredictionBatch) -> None:
    """Refuse a batch whose parts disagree (a server bug) before it poisons a segment."""
    n = len(batch.request_ids)
    if not (len(batch.row_counts) == len(batch.ts_ms) == len(batch.latency_ms) == n) or n == 0:
        raise InvalidInput(
            "request_ids, row_counts, ts_ms and latency_ms must have one entry per request",
            field="request_ids",
        )
    rows = rows_of(batch.inputs)
    if sum(batch.row_counts) != rows or rows_of(batch.predictions) != rows:
        raise InvalidInput(
            f"row_counts add up to {sum(batch.row_counts)}, but inputs have {rows} rows and "
            f"predictions {rows_of(batch.predictions)}",
            field="row_counts",
        )
    if batch.probabilities is not None and rows_of(batch.probabilities) != rows:
        raise InvalidInput("probabilities must have one row per input row", field="probabilities")
    if min(batch.ts_ms) < 0 or max(batch.ts_ms) >= 10**13:
        raise InvalidInput("ts_ms must be epoch milliseconds (13 digits)", field="ts_ms")


def prediction_table(batches: list[PredictionBatch]) -> pa.Table:
    """One table from batches of the same shapes: per-request values repeated per row."""
    counts = np.concatenate([np.asarray(b.row_counts, dtype=np.int64) for b in batches])
    total = int(counts.sum())
    ids: list[str] = []
    for b in batches:
        ids.extend(b.request_ids)
    per_row = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    row = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    ts = np.repeat(np.concatenate([np.asarray(b.ts_ms, dtype=np.int64) for b in batches]), counts)
    latency = np.repeat(
        np.concatenate([np.asarray(b.latency_ms, dtype=np.float32) for b in batches]), counts
    )
    batch_rows = [rows_of(b.inputs) for b in batches]
    versions = np.repeat(np.array([b.model_version for b in batches], dtype=np.int32), batch_rows)
    roles = sorted({b.role for b in batches})
    role_index = np.repeat(np.array([roles.index(b.role) for b in batches], np.int32), batch_rows)
    probabilities = [b.probabilities for b in batches]
    if probabilities[0] is None:
        proba: pa.Array = pa.nulls(total, pa.list_(pa.float64()))
    else:
        proba = _list_column([np.asarray(p) for p in probabilities], as_float=True)
    table = pa.table(
        {
            "request_id": pa.array(ids, pa.string()).take(pa.array(per_row)),
            "row": pa.array(row.astype(np.int32)),
            "ts": pa.array(ts, TS_TYPE),
            "model_version": pa.array(versions),
            "role": pa.DictionaryArray.from_arrays(pa.array(role_index), pa.array(roles)),
            "latency_ms": pa.array(latency),
            "inputs": _inputs_column([b.inputs for b in batches]),
            "prediction": _output_column([b.predictions for b in batches]),
            "proba": proba,
        }
    )
    if batches[0].classes is not None:
        classes = json.dumps([_python(c) for c in batches[0].classes], default=str)
        table = table.replace_schema_metadata({CLASSES_KEY: classes.encode()})
    return table


def feedback_table(items: list[FeedbackItem]) -> pa.Table:
    """The feedback rows of labelled requests, one row per label."""
    counts = np.array([len(item.labels) for item in items], dtype=np.int64)
    per_row = np.repeat(np.arange(len(items)), counts)
    starts = np.cumsum(counts) - counts
    labels = [label for item in items for label in item.labels]
    try:
        label = pa.array(labels)
    except (pa.ArrowException, TypeError, ValueError):
        label = pa.array([None if v is None else str(v) for v in labels], pa.string())
    return pa.table(
        {
            "request_id": pa.array([i.request_id for i in items], pa.string()).take(
                pa.array(per_row)
            ),
            "row": pa.array((np.arange(len(labels)) - np.repeat(starts, counts)).astype(np.int32)),
            "ts": pa.array(np.repeat([i.ts_ms for i in items], counts).astype(np.int64), TS_TYPE),
            "label_ts": pa.array(
                np.repeat([i.label_ts_ms for i in items], counts).astype(np.int64), TS_TYPE
            ),
            "label": label,
        }
    )


def by_hour(table: pa.Table) -> list[tuple[int, pa.Table]]:
    """Split a table by the UTC hour of ``ts``; each part with its earliest ts."""
    ts = table["ts"].combine_chunks().cast(pa.int64()).to_numpy()
    hours = ts // HOUR_MS
    if hours.min() == hours.max():
        return [(int(ts.min()), table)]
    parts = []
    for hour in np.unique(hours):
        mask = hours == hour
        parts.append((int(ts[mask].min()), table.filter(pa.array(mask))))
    return parts


def _text_columns(name: str, type_: pa.DataType) -> list[str]:
    """Dotted paths of the string-like leaf columns (worth a dictionary: few distinct values)."""
    if pa.types.is_struct(type_):
        return [
            path for child in type_ for path in _text_columns(f"{name}.{child.name}", child.type)
        ]
    if pa.types.is_dictionary(type_) or pa.types.is_string(type_) or pa.types.is_boolean(type_):
        return [name]
    return []


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as Parquet bytes, written like mloop.data.io.write_table (zstd, checksums).

    Dictionary encoding only for text columns (roles, categories) except the request ids,
    which never repeat: on numbers it costs three times the writing time and saves nothing.
    """
    from mloop.data.io import COMPRESSION, ROW_GROUP_ROWS

    text = [
        path
        for field in table.schema
        if field.name != "request_id"
        for path in _text_columns(field.name, field.type)
    ]
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression=COMPRESSION,
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
        write_page_checksum=True,
        use_dictionary=text,
    )
    return bytes(sink.getvalue().to_pybytes())


def check_labels(labels: object) -> list[Any]:
    """Labels as a list of JSON-like scalars; InvalidInput naming ``labels`` otherwise."""
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if not isinstance(labels, list | tuple):
        raise InvalidInput(
            f"labels must be a list with one label per row of the request, got "
            f"{type(labels).__name__}",
            field="labels",
        )
    checked = []
    for given in labels:
        label = _python(given)
        if label is not None and not isinstance(label, bool | int | float | str):
            raise InvalidInput(
                f"a label must be a number, a string, a boolean or null, got "
                f"{type(label).__name__}",
                field="labels",
            )
        checked.append(label)
    return checked
