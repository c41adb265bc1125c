"""What every protocol parser hands to the batcher (one request's rows), and shared readers.

Parsers check structure only: JSON types of the containers, shapes, row counts, column names
against the signature. Value types (is this a whole number, a date, a nullable column?) are
:func:`mloop.models.coerce.coerce_input`'s job, done once per batch by the model.

Column values are Python lists when they come from JSON (cheap for one row, and every value
keeps its JSON type) and 1-D ndarrays when they come from typed tensors or CSV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from mloop.errors import InvalidInput
from mloop.models.signature import Signature, TensorSpec

__all__ = [
    "ParsedInput",
    "array_input",
    "check_column_names",
    "check_tensor_shape",
    "concat_inputs",
    "dumps",
    "in_signature_order",
    "input_from_columns",
    "input_from_records",
    "input_from_rows",
    "json_type",
    "loads",
    "to_json_values",
]

Column = list[Any] | np.ndarray


@dataclass
class ParsedInput:
    """One request's rows, ready to be batched."""

    # Column signatures (and signature-less tabular input): each column 1-D, n_rows long.
    columns: dict[str, list[Any] | np.ndarray] | None
    # Tensor signatures, or a bare 2-D array input.
    array: np.ndarray | None
    n_rows: int


def loads(body: bytes, *, what: str = "request body") -> Any:
    """Parse JSON with orjson; malformed JSON (NaN and Infinity included) is an InvalidInput."""
    if not body:
        raise InvalidInput(f"the {what} is empty; send a JSON document", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = ""
        if b"NaN" in body or b"Infinity" in body:
            hint = "; NaN and Infinity are not JSON: send null for a missing value"
        raise InvalidInput(f"the {what} is not valid JSON: {exc}{hint}", field="body") from None


_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Serialize with orjson; numpy arrays and scalars are written as JSON numbers and lists."""
    return orjson.dumps(value, default=_json_default, option=_DUMPS_OPTIONS)


def _json_default(value: Any) -> Any:
    # orjson serializes numeric/bool ndarrays natively; the rest lands here.
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def to_json_values(outputs: Any) -> Any:
    """Model outputs ready for :func:`dumps`: a numeric ndarray as is, a frame as records."""
    import pandas as pd

    if isinstance(outputs, pd.DataFrame):
        frame = outputs.astype(object).where(outputs.notna(), None)
        return frame.to_dict(orient="records")
    if isinstance(outputs, pd.Series):
        outputs = outputs.to_numpy()
    if isinstance(outputs, np.ndarray):
        if outputs.dtype.kind in "biuf" and outputs.flags.c_contiguous:
            return outputs
        if outputs.dtype.kind in "biuf":
            return np.ascontiguousarray(outputs)
        if outputs.dtype.kind == "M":
            # Microseconds give datetime objects (orjson writes ISO 8601); NaT gives None.
            return outputs.astype("datetime64[us]").tolist()
        # Object and string arrays: Python values; NaN becomes null.
        return _nulls_to_none(outputs.tolist())
    return outputs


def _nulls_to_none(values: Any) -> Any:
    if isinstance(values, list):
        return [_nulls_to_none(v) for v in values]
    if isinstance(values, float) and math.isnan(values):
        return None
    return values


def check_column_names(present: Sequence[str], signature: Signature | None, what: str) -> None:
    """Refuse columns the signature does not name, and signature columns that are missing."""
    if signature is None or isinstance(signature.inputs, TensorSpec):
        return
    names = signature.column_names
    known = set(names)
    extra = [c for c in present if c not in known]
    if extra:
        raise InvalidInput(
            f"the {what} has column(s) {', '.join(repr(e) for e in extra)} that the model's "
            f"signature does not name; expected columns: {', '.join(names)}",
            field=extra[0],
            extra=extra,
        )
    have = set(present)
    missing = [n for n in names if n not in have]
    if missing:
        raise InvalidInput(
            f"the {what} is missing column(s) {', '.join(repr(m) for m in missing)} that the "
            f"model's signature requires; expected columns: {', '.join(names)}",
            field=missing[0],
            missing=missing,
        )


def _empty(what: str) -> InvalidInput:
    return InvalidInput(f"the {what} is empty (0 rows); send at least one row", field="rows")


def in_signature_order(
    columns: dict[str, Column], signature: Signature | None
) -> dict[str, Column]:
    """``columns`` in the order of the signature's column names (as given with no signature
    or a tensor one); every signature column must be present."""
    if signature is None or isinstance(signature.inputs, TensorSpec):
        return columns
    return {name: columns[name] for name in signature.column_names}


def input_from_records(records: list[Any], signature: Signature | None, what: str) -> ParsedInput:
    """Rows given as JSON objects -> columns (a missing key is a null), or an array (tensor)."""
    if not records:
        raise _empty(what)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InvalidInput(
                f"row {i} of the {what} is a {json_type(rec)}; every row must be an object "
                "of column name -> value",
                field=f"{what}[{i}]",
            )
    if signature is not None and isinstance(signature.inputs, TensorSpec):
        # A tensor model fed records: the values of each record, in key order.
        first = list(records[0])
        for i, rec in enumerate(records):
            if list(rec) != first:
                raise InvalidInput(
                    f"row {i} of the {what} has keys {list(rec)}, row 0 has {first}; a tensor "
                    "model reads records by position, so every row needs the same keys in order",
                    field=f"{what}[{i}]",
                )
        return input_from_rows([list(rec.values()) for rec in records], signature, what)
    names: dict[str, None] = {}
    for rec in records:
        for key in rec:
            names[key] = None
    if not names:
        raise InvalidInput(f"the rows of the {what} are empty objects; send columns", field=what)
    check_column_names(list(names), signature, what)
    columns: dict[str, Column] = {name: [rec.get(name) for rec in records] for name in names}
    return ParsedInput(
        columns=in_signature_order(columns, signature), array=None, n_rows=len(records)
    )


def input_from_columns(
    mapping: dict[str, Any], signature: Signature | None, what: str
) -> ParsedInput:
    """A JSON object of column name -> list of values (or -> one value each, for one row)."""
    if not mapping:
        raise InvalidInput(f"the {what} is an empty object; send at least one column", field=what)
    values = list(mapping.values())
    scalar = [not isinstance(v, list) for v in values]
    if all(scalar):
        if any(isinstance(v, dict) for v in values):
            bad = next(k for k, v in mapping.items() if isinstance(v, dict))
            raise InvalidInput(
                f"column '{bad}' of the {what} is an object; send a list of values",
                field=bad,
            )
        return input_from_records([mapping], signature, what)
    if any(scalar):
        bad = next(k for k, v in mapping.items() if not isinstance(v, list))
        raise InvalidInput(
            f"column '{bad}' of the {what} is a single value while others are lists; send "
            "every column as a list of the same length",
            field=bad,
        )
    lengths = {k: len(v) for k, v in mapping.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInput(
            f"the columns of the {what} have different lengths "
            f"({', '.join(f'{k}={n}' for k, n in lengths.items())}); send equal lengths",
            field=what,
        )
    n_rows = len(values[0])
    if n_rows == 0:
        raise _empty(what)
    if signature is not None and isinstance(signature.inputs, TensorSpec):
        spec = signature.inputs
        if len(mapping) != 1 or (spec.name is not None and spec.name not in mapping):
            expected = spec.name or "one tensor"
            raise InvalidInput(
                f"the model takes one tensor ({expected}); the {what} names "
                f"{', '.join(repr(k) for k in mapping)}",
                field=next(iter(mapping)),
            )
        return _array_input(values[0], signature, what)
    check_column_names(list(mapping), signature, what)
    return ParsedInput(
        columns=in_signature_order(dict(mapping), signature), array=None, n_rows=n_rows
    )


def input_from_rows(rows: list[Any], signature: Signature | None, what: str) -> ParsedInput:
    """Rows given as lists (or scalars): by position for columns, else an array."""
    if not rows:
        raise _empty(what)
    if signature is None or isinstance(signature.inputs, TensorSpec):
        return _array_input(rows, signature, what)
    names = signature.column_names
    width = len(names)
    if all(not isinstance(r, list | dict) for r in rows):
        if width != 1:
            raise InvalidInput(
                f"the {what} is a list of single values; the model takes {width} columns "
                f"({', '.join(names)}): send each row as a list of {width} values, by position",
                field=what,
            )
        return ParsedInput(columns={names[0]: list(rows)}, array=None, n_rows=len(rows))
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else f"a {json_type(row)}"
            raise InvalidInput(
                f"row {i} of the {what} has {got}; the model takes {width} columns "
                f"({', '.join(names)}), read by position",
                field=f"{what}[{i}]",
            )
    columns: dict[str, Column] = {name: [row[j] for row in rows] for j, name in enumerate(names)}
    return ParsedInput(columns=columns, array=None, n_rows=len(rows))


def _array_input(data: list[Any], signature: Signature | None, what: str) -> ParsedInput:
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"the {what} is a ragged list (rows of different lengths or kinds): {exc}",
            field=what,
        ) from None
    if arr.dtype.kind == "O" and any(isinstance(v, dict | list) for v in arr.ravel()):
        raise InvalidInput(
            f"the {what} holds objects or lists where values belong; send rows of equal shape "
            "holding single values",
            field=what,
        )
    return array_input(arr, signature, what)


def array_input(arr: np.ndarray, signature: Signature | None, what: str) -> ParsedInput:
    """An array input checked against the signature's shape (or read by position as columns)."""
    if arr.ndim == 0:
        raise InvalidInput(f"the {what} is a single value; send a list of rows", field=what)
    n_rows = int(arr.shape[0])
    if n_rows == 0:
        raise _empty(what)
    if signature is None:
        return ParsedInput(columns=None, array=arr, n_rows=n_rows)
    if isinstance(signature.inputs, TensorSpec):
        check_tensor_shape(arr.shape, signature.inputs, what)
        return ParsedInput(columns=None, array=arr, n_rows=n_rows)
    names = signature.column_names
    if arr.ndim == 1 and len(names) == 1:
        return ParsedInput(columns={names[0]: arr}, array=None, n_rows=n_rows)
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise InvalidInput(
            f"the {what} has shape {list(arr.shape)}; the model takes {len(names)} columns "
            f"({', '.join(names)}): send a 2-D array [rows, {len(names)}] read by position, "
            "or named columns",
            field="shape",
        )
    columns: dict[str, Column] = {name: arr[:, j] for j, name in enumerate(names)}
    return ParsedInput(columns=columns, array=None, n_rows=n_rows)


def check_tensor_shape(shape: Sequence[int], spec: TensorSpec, what: str) -> None:
    """Refuse a shape whose rank or fixed dimensions differ from the tensor signature."""
    label = f"tensor '{spec.name}'" if spec.name else "tensor"
    ok = len(shape) == len(spec.shape) and all(
        want in (-1, got) for got, want in zip(shape, spec.shape, strict=True)
    )
    if not ok:
        raise InvalidInput(
            f"the {what} has shape {list(shape)}; the model's {label} has shape "
            f"{list(spec.shape)} (-1 = any size)",
            field=spec.name or "shape",
            expected=list(spec.shape),
            got=list(shape),
        )


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (for error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def concat_inputs(parts: Sequence[ParsedInput]) -> ParsedInput:
    """Join the inputs of several requests into one, rows in order.

    Arrays are concatenated along axis 0. Columns are joined by name (a column that a
    signature-less request lacks is null there); a column that mixes lists and ndarrays becomes
    a list of Python values, so JSON ints stay ints next to tensor values.
    """
    if not parts:
        raise ValueError("concat_inputs needs at least one input")
    if len(parts) == 1:
        return parts[0]
    n_rows = sum(p.n_rows for p in parts)
    arrays = [p.array for p in parts if p.array is not None]
    if len(arrays) == len(parts):
        return ParsedInput(columns=None, array=np.concatenate(arrays), n_rows=n_rows)
    column_parts = [p.columns for p in parts if p.columns is not None]
    if len(column_parts) != len(parts):
        raise ValueError("cannot join column inputs with array inputs")
    names: dict[str, None] = {}
    for cols in column_parts:
        names.update(dict.fromkeys(cols))
    merged: dict[str, Column] = {}
    for name in names:
        pieces: list[Column] = [
            cols[name] if name in cols else [None] * p.n_rows
            for cols, p in zip(column_parts, parts, strict=True)
        ]
        if all(isinstance(x, np.ndarray) for x in pieces):
            merged[name] = np.concatenate(pieces)
        else:
            joined: list[Any] = []
            for x in pieces:
                joined.extend(x.tolist() if isinstance(x, np.ndarray) else x)
            merged[name] = joined
    return ParsedInput(columns=merged, array=None, n_rows=n_rows)
