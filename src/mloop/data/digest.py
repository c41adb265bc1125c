"""The content digest of a table: equal for equal data, whatever its chunking or producer.

A table's digest is the SHA-256 of a canonical description: the schema (column names in order,
logical types with dictionaries decoded and string/binary widths merged, no metadata), the row
count, and per column the SHA-256 of its validity (one byte per row) and of its values with
null slots zeroed: the fixed-width bytes of numbers, booleans (one byte each), dates, times,
timestamps, decimals; the lengths and the concatenated bytes of strings and binaries. So the same
rows give the same digest whether they came from pandas, a CSV or a Parquet file, in one chunk or
many. Row order and column order count: a dataset is an ordered table. Nested columns (lists,
structs, maps) are hashed through their Arrow IPC encoding, which is stable for a given pyarrow
but may differ between producers that lay the same values out differently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DIGEST_FORMAT", "canonical_type", "table_digest"]

#: Bumped if the canonical description ever changes (it is part of what is hashed).
DIGEST_FORMAT = "mloop-table-1"


def canonical_type(dtype: pa.DataType) -> pa.DataType:
    """The type a column is hashed (and stored) as: dictionaries decoded, string and binary
    widths merged into their large forms."""
    if pa.types.is_dictionary(dtype):
        return canonical_type(dtype.value_type)
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return pa.large_string()
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return pa.large_binary()
    return dtype


def _valid_mask(chunk: pa.Array) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if chunk.null_count == 0:
        return np.ones(len(chunk), dtype=np.bool_)
    mask: np.ndarray[Any, np.dtype[np.bool_]] = chunk.is_valid().to_numpy(zero_copy_only=False)
    return mask


class _ColumnHasher:
    """Feeds one column, chunk by chunk, into hashers whose input does not depend on chunking."""

    def __init__(self, dtype: pa.DataType) -> None:
        self.dtype = dtype
        self.validity = hashlib.sha256()
        self.values = hashlib.sha256()
        self.lengths = hashlib.sha256()

    def add(self, chunk: pa.Array) -> None:
        if len(chunk) == 0:
            return
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_decode()
        if chunk.type != self.dtype:
            chunk = chunk.cast(self.dtype)
        valid = _valid_mask(chunk)
        self.validity.update(valid.view(np.uint8).tobytes())
        dtype = self.dtype
        if pa.types.is_null(dtype):
            return
        if pa.types.is_boolean(dtype):
            filled = pc.fill_null(chunk, False) if chunk.null_count else chunk
            self.values.update(filled.to_numpy(zero_copy_only=False).view(np.uint8).tobytes())
        elif pa.types.is_large_string(dtype) or pa.types.is_large_binary(dtype):
            self._add_variable(chunk, valid)
        elif _fixed_width(dtype):
            self._add_fixed(chunk, valid)
        else:
            self._add_nested(chunk)

    def _add_fixed(self, chunk: pa.Array, valid: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        width = self.dtype.bit_width // 8
        data = chunk.buffers()[1]
        raw = np.frombuffer(data, dtype=np.uint8)[
            chunk.offset * width : (chunk.offset + len(chunk)) * width
        ].reshape(len(chunk), width)
        if chunk.null_count:
            raw = raw.copy()
            raw[~valid] = 0
        self.values.update(np.ascontiguousarray(raw).tobytes())

    def _add_variable(self, chunk: pa.Array, valid: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        buffers = chunk.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int64)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        lengths = np.diff(offsets)
        if chunk.null_count:
            lengths = np.where(valid, lengths, 0)
        self.lengths.update(lengths.astype(np.int64).tobytes())
        if buffers[2] is None:
            return
        data = memoryview(buffers[2])
        if chunk.null_count == 0:
            self.values.update(data[int(offsets[0]) : int(offsets[-1])])
            return
        # Bytes under null slots are not part of the value: skip them, run by run of valid rows.
        starts, ends = offsets[:-1][valid], offsets[1:][valid]
        for start, end in _runs(starts, ends):
            self.values.update(data[start:end])

    def _add_nested(self, chunk: pa.Array) -> None:
        sink = pa.BufferOutputStream()
        batch = pa.record_batch([pa.concat_arrays([chunk])], names=["c"])
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        self.values.update(sink.getvalue())

    def digest(self) -> str:
        parts = (self.validity.hexdigest(), self.lengths.hexdigest(), self.values.hexdigest())
        return hashlib.sha256(":".join(parts).encode()).hexdigest()


def _runs(starts: np.ndarray[Any, Any], ends: np.ndarray[Any, Any]) -> Iterable[tuple[int, int]]:
    """Merge byte ranges that touch (consecutive valid rows) into few contiguous slices."""
    if len(starts) == 0:
        return []
    breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    run_starts = starts[np.concatenate(([0], breaks))]
    run_ends = ends[np.concatenate((breaks - 1, [len(ends) - 1]))]
    return zip(run_starts.tolist(), run_ends.tolist(), strict=True)


def _fixed_width(dtype: pa.DataType) -> bool:
    try:
        return bool(dtype.bit_width) and dtype.bit_width % 8 == 0
    except ValueError:
        return False


def table_digest(table: pa.Table) -> str:
    """The SHA-256 content digest of a table (see the module docstring for what it covers)."""
    header: list[Any] = [DIGEST_FORMAT, table.num_rows]
    columns: list[str] = []
    for field, column in zip(table.schema, table.columns, strict=True):
        dtype = canonical_type(field.type)
        header.append([field.name, str(dtype)])
        hasher = _ColumnHasher(dtype)
        for chunk in column.chunks:
            hasher.add(chunk)
        columns.append(hasher.digest())
    body = json.dumps(header, separators=(",", ":"), ensure_ascii=False) + "\n" + "\n".join(columns)
    return hashlib.sha256(body.encode()).hexdigest()
