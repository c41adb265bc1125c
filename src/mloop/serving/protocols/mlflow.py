"""MLflow's scoring protocol (``POST /invocations``), so clients of ``mlflow models serve`` work.

JSON bodies (``application/json``) hold exactly one of:

- ``dataframe_split``: ``{"columns": [...], "data": [[...], ...], "index": [...]}`` (columns
  optional: rows are then read by position; index optional and ignored);
- ``dataframe_records``: ``[{"col": value, ...}, ...]``;
- ``instances``: a list of records, or a list of rows / values (a tensor, or columns by position);
- ``inputs``: an object of column -> list of values (or -> one value, for one row), or a list as
  for ``instances``;

and optionally ``params``, which must be empty: this server takes no inference parameters.
MLflow 1's ``format=pandas-split`` / ``format=pandas-records`` content-type parameter is read
too (the body is then the bare split object or records list). CSV bodies (``text/csv``) have a
header row. Answers are ``{"predictions": [...]}``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from mloop.errors import InvalidInput, UnsupportedMediaType
from mloop.models.signature import Signature, TensorSpec
from mloop.serving.protocols.common import (
    ParsedInput,
    array_input,
    check_column_names,
    dumps,
    in_signature_order,
    input_from_columns,
    input_from_records,
    input_from_rows,
    json_type,
    loads,
    to_json_values,
)

__all__ = ["INPUT_KEYS", "encode_predictions", "parse_invocations"]

INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
"""The top-level keys of an MLflow JSON payload; exactly one must be present."""

_ACCEPTED = "application/json or text/csv"


def parse_invocations(body: bytes, content_type: str, signature: Signature | None) -> ParsedInput:
    """Read an ``/invocations`` body (JSON or CSV) into one request's rows."""
    media, params = _media_type(content_type)
    if media == "application/json":
        fmt = params.get("format")
        payload = loads(body)
        if fmt is None:
            return _parse_json(payload, signature)
        if fmt in ("pandas-split", "pandas-records"):
            key = "dataframe_split" if fmt == "pandas-split" else "dataframe_records"
            return _parse_json({key: payload}, signature)
        raise UnsupportedMediaType(
            f"content-type format={fmt!r} is not supported; send application/json with one of "
            f"{', '.join(INPUT_KEYS)} as the top-level key",
            field="content-type",
        )
    if media == "text/csv":
        return _parse_csv(body, signature)
    raise UnsupportedMediaType(
        f"content type {content_type!r} is not supported by /invocations; send {_ACCEPTED}",
        field="content-type",
        accepted=["application/json", "text/csv"],
    )


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    media, _, rest = (content_type or "").partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        name, sep, value = item.partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"')
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"charset {charset!r} is not supported; send the body as UTF-8", field="content-type"
        )
    return media.strip().lower(), params


def _parse_json(payload: Any, signature: Signature | None) -> ParsedInput:
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"the body is a JSON {json_type(payload)}; send an object with one of "
            f"{', '.join(INPUT_KEYS)}",
            field="body",
        )
    keys = [k for k in INPUT_KEYS if k in payload]
    unknown = [k for k in payload if k not in INPUT_KEYS and k != "params"]
    if unknown:
        raise InvalidInput(
            f"the body has unknown key(s) {', '.join(repr(k) for k in unknown)}; send exactly "
            f"one of {', '.join(INPUT_KEYS)} (and optionally an empty 'params')",
            field=unknown[0],
        )
    if len(keys) != 1:
        got = f"{', '.join(keys)}" if keys else "none"
        raise InvalidInput(
            f"the body must have exactly one of {', '.join(INPUT_KEYS)}; got {got}",
            field="body",
        )
    params = payload.get("params")
    if params is not None and params != {}:
        raise InvalidInput(
            "'params' are not supported: this server takes no inference parameters; remove "
            "'params' (or send it empty)",
            field="params",
        )
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        return _parse_split(value, signature)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidInput(
                f"'dataframe_records' is a JSON {json_type(value)}; send a list of objects",
                field=key,
            )
        return input_from_records(value, signature, key)
    if isinstance(value, dict) and key == "inputs":
        return input_from_columns(value, signature, key)
    if not isinstance(value, list):
        allowed = "a list, or an object of columns" if key == "inputs" else "a list"
        raise InvalidInput(f"'{key}' is a JSON {json_type(value)}; send {allowed}", field=key)
    if value and isinstance(value[0], dict):
        return input_from_records(value, signature, key)
    return input_from_rows(value, signature, key)


def _parse_split(value: Any, signature: Signature | None) -> ParsedInput:
    what = "dataframe_split"
    if not isinstance(value, dict):
        raise InvalidInput(
            f'\'{what}\' is a JSON {json_type(value)}; send {{"columns": [...], "data": [...]}}',
            field=what,
        )
    unknown = [k for k in value if k not in ("columns", "data", "index")]
    if unknown:
        raise InvalidInput(
            f"'{what}' has unknown key(s) {', '.join(repr(k) for k in unknown)}; use columns, "
            "data and index",
            field=f"{what}.{unknown[0]}",
        )
    data = value.get("data")
    if not isinstance(data, list):
        raise InvalidInput(
            f"'{what}.data' is a JSON {json_type(data)}; send a list of rows", field=f"{what}.data"
        )
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise InvalidInput(
            f"'{what}.index' must be a list as long as data ({len(data)} rows)",
            field=f"{what}.index",
        )
    columns = value.get("columns")
    if columns is None:
        return input_from_rows(data, signature, f"{what}.data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput(
            f"'{what}.columns' must be a list of column names (strings)", field=f"{what}.columns"
        )
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        raise InvalidInput(f"'{what}.columns' names {', '.join(dup)} twice", field=dup[0])
    if not data:
        raise InvalidInput(f"the {what} is empty (0 rows); send at least one row", field="rows")
    width = len(columns)
    rows: list[list[Any]] = []
    for i, item in enumerate(data):
        row = item
        if not isinstance(row, list):
            if width == 1 and not isinstance(row, dict):
                row = [row]
            else:
                raise InvalidInput(
                    f"row {i} of '{what}.data' is a JSON {json_type(row)}; send a list of "
                    f"{width} values",
                    field=f"{what}.data[{i}]",
                )
        if len(row) != width:
            raise InvalidInput(
                f"row {i} of '{what}.data' has {len(row)} values; columns names {width}",
                field=f"{what}.data[{i}]",
            )
        rows.append(row)
    if signature is not None and isinstance(signature.inputs, TensorSpec):
        return input_from_rows(rows, signature, f"{what}.data")
    check_column_names(columns, signature, what)
    position = {name: j for j, name in enumerate(columns)}
    order = columns if signature is None else signature.column_names
    by_name: dict[str, list[Any] | np.ndarray] = {
        name: [row[position[name]] for row in rows] for name in order
    }
    return ParsedInput(columns=by_name, array=None, n_rows=len(rows))


def _parse_csv(body: bytes, signature: Signature | None) -> ParsedInput:
    import pandas as pd

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV body is not UTF-8 text", field="body") from None
    if not text.strip():
        raise InvalidInput("the CSV body is empty; send a header row and rows", field="body")
    names = _csv_header(text)
    dtype: dict[str, Any] | None = None
    if signature is not None and not isinstance(signature.inputs, TensorSpec):
        # Text columns stay text ("007" is not 7); dates are parsed by the model's coercion.
        dtype = {c.name: str for c in signature.inputs if c.type in ("string", "datetime")}
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=dtype, index_col=False)
    except (ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"the CSV body does not parse: {first}", field="body") from None
    if frame.shape[0] == 0:
        raise InvalidInput("the CSV body has no rows; send at least one row", field="rows")
    if signature is not None and isinstance(signature.inputs, TensorSpec):
        return array_input(frame.to_numpy(), signature, "CSV body")
    check_column_names(names, signature, "CSV body")
    if frame.shape[1] != len(names):
        raise InvalidInput(
            f"the CSV body reads as {frame.shape[1]} columns but its header names {len(names)}; "
            "check its quoting",
            field="header",
        )
    columns: dict[str, list[Any] | np.ndarray] = {
        name: _csv_column(frame.iloc[:, j]) for j, name in enumerate(names)
    }
    return ParsedInput(
        columns=in_signature_order(columns, signature), array=None, n_rows=frame.shape[0]
    )


def _csv_header(text: str) -> list[str]:
    """The header's names, after checking every row has as many fields (pandas would not)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(row for row in reader if row)
        for row in reader:
            if row and len(row) != len(header):
                raise InvalidInput(
                    f"line {reader.line_num} of the CSV body has {len(row)} fields; the header "
                    f"row names {len(header)} columns",
                    field="body",
                )
    except csv.Error as exc:
        raise InvalidInput(f"the CSV body does not parse: {exc}", field="body") from None
    if any(not name for name in header) or len(set(header)) != len(header):
        raise InvalidInput(
            "the CSV header row has empty or repeated column names; name every column once",
            field="header",
        )
    return header


def _csv_column(series: Any) -> np.ndarray:
    values = series.to_numpy()
    if values.dtype.kind == "O":
        # Empty cells read as NaN in text columns: make them nulls.
        out = values.copy()
        out[series.isna().to_numpy()] = None
        return np.asarray(out)
    return np.asarray(values)


def encode_predictions(outputs: Any) -> bytes:
    """``{"predictions": [...]}``; a DataFrame becomes a list of records, NaN becomes null."""
    return dumps({"predictions": to_json_values(outputs)})
