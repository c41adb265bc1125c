"""The Open Inference Protocol (KServe v2) over REST, with the binary tensor data extension.

A request is a JSON object ``{"id"?, "parameters"?, "inputs": [...], "outputs"?: [...]}``; each
input is ``{"name", "shape", "datatype", "parameters"?, "data"?}`` with ``data`` flat or nested
(row-major) and holding exactly ``prod(shape)`` elements. With the binary extension (what
``tritonclient`` sends by default) an input has ``parameters.binary_data_size`` instead of
``data``, the JSON is followed by the raw tensors in input order, and the header
``Inference-Header-Content-Length`` gives the JSON's length in bytes. Binary data is
little-endian and row-major; BOOL is one byte (0 or 1); BYTES elements are a 4-byte
little-endian length followed by the bytes.

How inputs meet the model's signature:

- column signature: one tensor per column, by name, of shape ``[n]`` or ``[n, 1]``; or ONE 2-D
  tensor ``[n, n_columns]`` read by position (its name is then not a column name). String and
  datetime columns take BYTES (UTF-8 text), other columns a numeric or BOOL datatype.
- tensor signature: exactly one tensor (named as the signature's tensor, when it has a name)
  whose rank and fixed dimensions match; BYTES is refused.
- no signature: one tensor is the array; several are columns by name.

JSON ``null`` is accepted in FP tensors (as NaN) and BYTES tensors (as a null); other datatypes
refuse it. Outputs are ``predict`` and, for models with probabilities, ``predict_proba``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mloop.errors import InvalidInput, MloopError
from mloop.models.signature import Signature, TensorSpec
from mloop.serving.protocols.common import (
    ParsedInput,
    array_input,
    check_column_names,
    check_tensor_shape,
    dumps,
    json_type,
    loads,
)

__all__ = [
    "DATATYPES",
    "HEADER_LENGTH",
    "InferRequest",
    "RequestedOutput",
    "encode_infer_response",
    "error_body",
    "model_metadata",
    "model_outputs",
    "parse_infer_request",
    "prediction_outputs",
    "server_metadata",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
"""The header giving the JSON part's length when binary tensor data follows it."""

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(bool),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
"""The tensor datatypes of the protocol and the numpy dtype each one is read into."""

_COLUMN_DATATYPES = {
    "bool": "BOOL",
    "int32": "INT32",
    "int64": "INT64",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
    "datetime": "BYTES",
}
_REQUEST_KEYS = ("id", "parameters", "inputs", "outputs")
_INPUT_KEYS = ("name", "shape", "datatype", "parameters", "data")
_UNSUPPORTED_PARAMS = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


@dataclass
class RequestedOutput:
    """An output the client asked for; ``binary`` None means the request's default."""

    name: str
    binary: bool | None = None


@dataclass
class InferRequest:
    """A parsed ``/infer`` request: its id, its rows and what to answer."""

    id: str | None
    inputs: ParsedInput
    outputs: list[RequestedOutput] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    binary_output: bool = False

    def select_outputs(self, available: Sequence[str]) -> tuple[list[str], set[str]]:
        """The outputs to answer (all of ``available`` unless some were asked) and the binary ones.

        Raises InvalidInput naming an asked-for output the model does not have.
        """
        if self.outputs is None:
            names = list(available)
            return names, set(names) if self.binary_output else set()
        names = []
        binary: set[str] = set()
        for out in self.outputs:
            if out.name not in available:
                raise InvalidInput(
                    f"output '{out.name}' is not an output of this model; its outputs are "
                    f"{', '.join(available)}",
                    field=out.name,
                )
            names.append(out.name)
            if out.binary if out.binary is not None else self.binary_output:
                binary.add(out.name)
        return names, binary


@dataclass
class _Tensor:
    name: str
    shape: list[int]
    datatype: str
    array: np.ndarray


def parse_infer_request(
    body: bytes, headers: Mapping[str, str], signature: Signature | None
) -> InferRequest:
    """Read an ``/infer`` body (JSON, or JSON then binary tensors) into an InferRequest."""
    header_length = _header_length(body, headers)
    head = body if header_length is None else body[:header_length]
    binary = b"" if header_length is None else body[header_length:]
    try:
        payload = loads(head, what="inference request")
    except InvalidInput as exc:
        if header_length is None and b'"binary_data_size"' in body:
            raise InvalidInput(
                f"{exc.message}; inputs with binary_data_size need the {HEADER_LENGTH} header "
                "giving the JSON part's length",
                field=HEADER_LENGTH,
            ) from None
        raise
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"the inference request is a JSON {json_type(payload)}; send an object with 'inputs'",
            field="body",
        )
    unknown = [k for k in payload if k not in _REQUEST_KEYS]
    if unknown:
        raise InvalidInput(
            f"the inference request has unknown key(s) {', '.join(repr(k) for k in unknown)}; "
            f"use {', '.join(_REQUEST_KEYS)}",
            field=unknown[0],
        )
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"'id' must be a string, got a JSON {json_type(request_id)}", field="id")
    parameters = _parameters(payload.get("parameters"), "parameters")
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise InvalidInput(
            "'parameters.binary_data_output' must be true or false",
            field="parameters.binary_data_output",
        )
    tensors = _read_inputs(payload.get("inputs"), binary, header_length is not None)
    return InferRequest(
        id=request_id,
        inputs=_to_parsed_input(tensors, signature),
        outputs=_read_outputs(payload.get("outputs")),
        parameters=parameters,
        binary_output=binary_output,
    )


def _header_length(body: bytes, headers: Mapping[str, str]) -> int | None:
    raw = headers.get(HEADER_LENGTH)
    if raw is None:
        wanted = HEADER_LENGTH.lower()
        raw = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if raw is None:
        return None
    try:
        length = int(raw)
    except ValueError:
        length = -1
    if not 0 <= length <= len(body):
        raise InvalidInput(
            f"header {HEADER_LENGTH} is {raw!r}; it must be the JSON part's length in bytes "
            f"(0 to the body's {len(body)} bytes)",
            field=HEADER_LENGTH,
        )
    return length


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(
            f"'{where}' must be an object, got a JSON {json_type(value)}", field=where
        )
    for key in _UNSUPPORTED_PARAMS:
        if key in value:
            raise InvalidInput(
                f"'{where}.{key}': shared memory is not supported by this server; send the "
                "data in the request (JSON or binary)",
                field=f"{where}.{key}",
            )
    return value


def _read_outputs(value: Any) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput(
            f"'outputs' must be a list, got a JSON {json_type(value)}", field="outputs"
        )
    outputs: list[RequestedOutput] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"outputs[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInput(f"'{where}' must be an object with a 'name' string", field=where)
        name = item["name"]
        if name in seen:
            raise InvalidInput(f"output '{name}' is asked twice", field=name)
        seen.add(name)
        params = _parameters(item.get("parameters"), f"{where}.parameters")
        if params.get("classification"):
            raise InvalidInput(
                f"output '{name}': the classification extension is not supported; ask for "
                "predict (labels) or predict_proba (probabilities)",
                field=f"{where}.parameters.classification",
            )
        binary = params.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise InvalidInput(
                f"output '{name}': parameters.binary_data must be true or false",
                field=f"{where}.parameters.binary_data",
            )
        outputs.append(RequestedOutput(name=name, binary=binary))
    return outputs


def _read_inputs(value: Any, binary: bytes, has_binary: bool) -> list[_Tensor]:
    if not isinstance(value, list) or not value:
        raise InvalidInput(
            "'inputs' must be a non-empty list of tensors {name, shape, datatype, data}",
            field="inputs",
        )
    tensors: list[_Tensor] = []
    seen: set[str] = set()
    offset = 0
    for i, item in enumerate(value):
        where = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(
                f"'{where}' is a JSON {json_type(item)}; send {{name, shape, datatype, data}}",
                field=where,
            )
        unknown = [k for k in item if k not in _INPUT_KEYS]
        if unknown:
            raise InvalidInput(
                f"'{where}' has unknown key(s) {', '.join(repr(k) for k in unknown)}; use "
                f"{', '.join(_INPUT_KEYS)}",
                field=f"{where}.{unknown[0]}",
            )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"'{where}.name' must be a non-empty string", field=f"{where}.name")
        if name in seen:
            raise InvalidInput(f"input '{name}' is given twice", field=name)
        seen.add(name)
        shape = _shape(item.get("shape"), name)
        datatype = item.get("datatype")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise InvalidInput(
                f"input '{name}' has datatype {datatype!r}; use one of {', '.join(DATATYPES)}",
                field=name,
            )
        params = _parameters(item.get("parameters"), f"{where}.parameters")
        size = params.get("binary_data_size")
        count = math.prod(shape)
        if size is not None:
            if "data" in item:
                raise InvalidInput(
                    f"input '{name}' has both 'data' and parameters.binary_data_size; send one",
                    field=name,
                )
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidInput(
                    f"input '{name}': parameters.binary_data_size must be a whole number of bytes",
                    field=name,
                )
            if not has_binary:
                raise InvalidInput(
                    f"input '{name}' has parameters.binary_data_size but the request has no "
                    f"{HEADER_LENGTH} header giving the JSON part's length",
                    field=HEADER_LENGTH,
                )
            if offset + size > len(binary):
                raise InvalidInput(
                    f"input '{name}' declares {size} bytes of binary data but only "
                    f"{len(binary) - offset} remain after the JSON part",
                    field=name,
                )
            chunk = binary[offset : offset + size]
            offset += size
            arr = _from_binary(chunk, datatype, count, name)
        else:
            if "data" not in item:
                raise InvalidInput(
                    f"input '{name}' has no 'data' (nor parameters.binary_data_size)", field=name
                )
            arr = _from_json(item["data"], datatype, count, name)
        tensors.append(_Tensor(name=name, shape=shape, datatype=datatype, array=arr.reshape(shape)))
    if offset != len(binary):
        raise InvalidInput(
            f"the request has {len(binary) - offset} bytes of binary data that no input's "
            "binary_data_size accounts for",
            field="body",
        )
    return tensors


def _shape(value: Any, name: str) -> list[int]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    ):
        raise InvalidInput(
            f"input '{name}' has shape {value!r}; send a non-empty list of sizes (whole numbers "
            ">= 0)",
            field=name,
        )
    return value


def _from_binary(chunk: bytes, datatype: str, count: int, name: str) -> np.ndarray:
    if datatype == "BYTES":
        return _decode_bytes(chunk, count, name)
    dtype = DATATYPES[datatype]
    itemsize = 1 if datatype == "BOOL" else dtype.itemsize
    if len(chunk) != count * itemsize:
        raise InvalidInput(
            f"input '{name}' has {len(chunk)} bytes of binary data; its shape and datatype "
            f"({count} x {datatype}) need {count * itemsize}",
            field=name,
        )
    if datatype == "BOOL":
        raw = np.frombuffer(chunk, dtype=np.uint8)
        if raw.size and raw.max() > 1:
            raise InvalidInput(
                f"input '{name}' is BOOL but its binary data holds bytes other than 0 and 1",
                field=name,
            )
        return raw.astype(bool)
    return np.frombuffer(chunk, dtype=dtype).astype(dtype.newbyteorder("="), copy=True)


def _decode_bytes(chunk: bytes, count: int, name: str) -> np.ndarray:
    out = np.empty(count, dtype=object)
    pos = 0
    end = len(chunk)
    for i in range(count):
        if pos + 4 > end:
            raise InvalidInput(
                f"input '{name}' (BYTES) ends after {i} of its {count} elements", field=name
            )
        (length,) = struct.unpack_from("<I", chunk, pos)
        pos += 4
        if pos + length > end:
            raise InvalidInput(
                f"input '{name}' (BYTES): element {i} declares {length} bytes past the end of "
                "its data",
                field=name,
            )
        out[i] = _text(chunk[pos : pos + length], name)
        pos += length
    if pos != end:
        raise InvalidInput(
            f"input '{name}' (BYTES) has {end - pos} bytes after its {count} elements",
            field=name,
        )
    return out


def _text(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            f"input '{name}' (BYTES) holds bytes that are not UTF-8 text", field=name
        ) from None


def _from_json(data: Any, datatype: str, count: int, name: str) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        flat = _flatten(data, name)
        _check_count(len(flat), count, name)
        for v in flat:
            if v is not None and not isinstance(v, str):
                raise InvalidInput(
                    f"input '{name}' is BYTES; its data must be strings, got a JSON {json_type(v)}",
                    field=name,
                )
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(
            f"input '{name}': data is a ragged list (nested lists of different lengths); send "
            "it flat, or nested to match the shape",
            field=name,
        ) from None
    _check_count(arr.size, count, name)
    arr = arr.reshape(-1)
    target = DATATYPES[datatype]
    if arr.size == 0:
        return np.empty(0, dtype=target)
    kind = arr.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            _refuse_nulls(arr.tolist() if kind == "O" else [], datatype, name)
            raise _wrong_json(name, datatype, "true/false values", arr)
        return arr
    if target.kind in "iu":
        if kind not in "iu":
            # Nulls, fractions, or integers numpy could not type at once (e.g. beyond int64).
            return _exact_integers(_flatten(data, name), datatype, name)
        info = np.iinfo(target)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise _out_of_range(name, datatype)
        return arr.astype(target.newbyteorder("="))
    if kind == "O":
        values = arr.tolist()
        for v in values:
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise _wrong_json(name, datatype, "numbers or null", np.array([v], dtype=object))
        arr = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    elif kind not in "iuf":
        raise _wrong_json(name, datatype, "numbers", arr)
    with np.errstate(over="ignore"):
        out = arr.astype(target.newbyteorder("="))
    if np.isinf(out).any() and not np.isinf(arr.astype(np.float64)).any():
        raise InvalidInput(f"input '{name}' holds values too large for {datatype}", field=name)
    return out


def _refuse_nulls(values: list[Any], datatype: str, name: str) -> None:
    if any(v is None for v in values):
        raise InvalidInput(
            f"input '{name}' is {datatype} and holds null; only FP and BYTES tensors take null "
            "(as NaN / a null)",
            field=name,
        )


def _out_of_range(name: str, datatype: str) -> InvalidInput:
    info = np.iinfo(DATATYPES[datatype])
    return InvalidInput(
        f"input '{name}' holds values outside {datatype}'s range [{info.min}, {info.max}]",
        field=name,
    )


def _exact_integers(values: list[Any], datatype: str, name: str) -> np.ndarray:
    _refuse_nulls(values, datatype, name)
    info = np.iinfo(DATATYPES[datatype])
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            want = "whole numbers" if isinstance(v, float) else "numbers"
            raise _wrong_json(name, datatype, want, np.array([v], dtype=object))
        if not info.min <= v <= info.max:
            raise _out_of_range(name, datatype)
    return np.array(values, dtype=DATATYPES[datatype].newbyteorder("="))


def _wrong_json(name: str, datatype: str, want: str, arr: np.ndarray) -> InvalidInput:
    sample = arr.reshape(-1)[:1].tolist()
    got = json_type(sample[0]) if sample else "nothing"
    return InvalidInput(
        f"input '{name}' is {datatype}; its data must be {want}, got a JSON {got}",
        field=name,
        expected=datatype,
    )


def _flatten(data: list[Any], name: str) -> list[Any]:
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            if isinstance(v, dict):
                raise InvalidInput(
                    f"input '{name}': data holds an object; send values (flat or nested lists)",
                    field=name,
                )
            out.append(v)
        else:
            stack.pop()
    return out


def _check_count(got: int, want: int, name: str) -> None:
    if got != want:
        raise InvalidInput(
            f"input '{name}' has {got} data elements; its shape needs {want} (the product of "
            "the shape)",
            field=name,
        )


def _to_parsed_input(tensors: list[_Tensor], signature: Signature | None) -> ParsedInput:
    if signature is not None and isinstance(signature.inputs, TensorSpec):
        spec = signature.inputs
        if len(tensors) != 1:
            raise InvalidInput(
                f"the model takes one tensor; the request has {len(tensors)} inputs "
                f"({', '.join(t.name for t in tensors)})",
                field="inputs",
            )
        t = tensors[0]
        if spec.name is not None and t.name != spec.name:
            raise InvalidInput(
                f"input '{t.name}' is not an input of this model; its input is '{spec.name}'",
                field=t.name,
            )
        if t.datatype == "BYTES":
            raise InvalidInput(
                f"input '{t.name}' is BYTES; the model's tensor is {spec.dtype}: send a numeric "
                "datatype",
                field=t.name,
            )
        check_tensor_shape(t.shape, spec, f"input '{t.name}'")
        return array_input(t.array, signature, f"input '{t.name}'")
    if signature is not None:
        names = signature.column_names
        specs = signature.inputs if isinstance(signature.inputs, list) else []
        only = tensors[0]
        if (
            len(tensors) == 1
            and (only.name not in names or len(names) == 1)
            and (only.array.ndim == 2 or (only.array.ndim == 1 and len(names) == 1))
        ):
            # One tensor read by position; its one datatype must suit every column.
            parsed = array_input(only.array, signature, f"input '{only.name}'")
            for col in specs:
                _check_column_datatype(only.name, only.datatype, col.name, col.type)
            return parsed
        check_column_names([t.name for t in tensors], signature, "inference request")
        types = {c.name: c.type for c in specs}
        for t in tensors:
            _check_column_datatype(t.name, t.datatype, t.name, types[t.name])
    elif len(tensors) == 1:
        t = tensors[0]
        return array_input(t.array, None, f"input '{t.name}'")
    columns: dict[str, list[Any] | np.ndarray] = {}
    n_rows: int | None = None
    for t in tensors:
        if t.array.ndim > 2 or (t.array.ndim == 2 and t.array.shape[1] != 1):
            raise InvalidInput(
                f"input '{t.name}' has shape {t.shape}; a column takes shape [n] or [n, 1]",
                field=t.name,
            )
        n = int(t.array.shape[0])
        if n_rows is None:
            n_rows = n
        elif n != n_rows:
            raise InvalidInput(
                f"input '{t.name}' has {n} rows, input '{tensors[0].name}' has {n_rows}; "
                "every column needs the same number of rows",
                field=t.name,
            )
        columns[t.name] = t.array.reshape(-1)
    if not n_rows:
        raise InvalidInput(
            "the inference request is empty (0 rows); send at least one row", field="rows"
        )
    if signature is not None:
        columns = {name: columns[name] for name in signature.column_names}
    return ParsedInput(columns=columns, array=None, n_rows=n_rows)


def _check_column_datatype(tensor: str, datatype: str, column: str, kind: str) -> None:
    text = kind in ("string", "datetime")
    if text != (datatype == "BYTES"):
        want = (
            "BYTES (UTF-8 text)"
            if text
            else f"a numeric or BOOL datatype ({_COLUMN_DATATYPES[kind]})"
        )
        raise InvalidInput(
            f"input '{tensor}' is {datatype}; column '{column}' is {kind}: send {want}",
            field=column,
            expected=_COLUMN_DATATYPES[kind],
            got=datatype,
        )


def datatype_of(arr: np.ndarray) -> str:
    """The protocol datatype an array is answered as (text, objects and datetimes are BYTES)."""
    kind = arr.dtype.kind
    if kind == "b":
        return "BOOL"
    bits = arr.dtype.itemsize * 8
    if kind in "iu" and bits in (8, 16, 32, 64):
        return f"{'INT' if kind == 'i' else 'UINT'}{bits}"
    if kind == "f" and bits in (16, 32, 64):
        return f"FP{bits}"
    return "BYTES"


def prediction_outputs(predictions: Any, probabilities: Any = None) -> dict[str, np.ndarray]:
    """What a server answers for one prediction: ``predict`` and, when the model gave them,
    ``predict_proba``, each as ``np.asarray`` makes it (a one-column DataFrame stays 2-D)."""
    outputs = {"predict": np.asarray(predictions)}
    if probabilities is not None:
        outputs["predict_proba"] = np.asarray(probabilities)
    return outputs


def model_outputs(predictions: Any, probabilities: Any = None) -> dict[str, np.ndarray]:
    """The protocol outputs of one prediction: ``predict`` and, when given, ``predict_proba``.

    A DataFrame of one column gives that column; of several, a 2-D array (BYTES if mixed).
    """
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        frame = predictions
        predictions = frame.iloc[:, 0].to_numpy() if frame.shape[1] == 1 else frame.to_numpy()
    elif isinstance(predictions, pd.Series):
        predictions = predictions.to_numpy()
    outputs = {"predict": np.asarray(predictions)}
    if probabilities is not None:
        outputs["predict_proba"] = np.asarray(probabilities)
    return outputs


def encode_infer_response(
    model_name: str,
    model_version: str | int,
    request_id: str | None,
    outputs: dict[str, np.ndarray],
    binary: set[str],
) -> tuple[bytes, dict[str, str]]:
    """The ``/infer`` answer: (body, headers to add). Outputs in ``binary`` follow the JSON."""
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, value in outputs.items():
        arr = np.asarray(value)
        datatype = datatype_of(arr)
        tensor: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": datatype}
        if name in binary:
            raw = _to_binary(arr, datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = _to_json_data(arr, datatype)
        tensors.append(tensor)
    response: dict[str, Any] = {"model_name": model_name, "model_version": str(model_version)}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = tensors
    head = dumps(response)
    if not chunks:
        return head, {"content-type": "application/json"}
    return b"".join([head, *chunks]), {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(head)),
    }


def _to_json_data(arr: np.ndarray, datatype: str) -> Any:
    flat = arr.reshape(-1)
    if datatype != "BYTES":
        return np.ascontiguousarray(flat)
    return [_as_text(v) for v in flat.tolist()]


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _to_binary(arr: np.ndarray, datatype: str) -> bytes:
    flat = arr.reshape(-1)
    if datatype == "BOOL":
        return flat.astype(np.uint8).tobytes()
    if datatype != "BYTES":
        return flat.astype(DATATYPES[datatype], copy=False).tobytes()
    parts: list[bytes] = []
    for v in flat.tolist():
        raw = v if isinstance(v, bytes) else (_as_text(v) or "").encode("utf-8")
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def model_metadata(
    name: str,
    versions: Sequence[str | int],
    signature: Signature | None,
    platform: str,
    *,
    has_proba: bool = False,
    output_examples: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs from the signature; outputs' datatypes from examples.

    ``output_examples`` are outputs of a warm-up prediction (``predict``, ``predict_proba``);
    without them the datatype comes from the signature's outputs, else FP64.
    """
    inputs: list[dict[str, Any]] = []
    if signature is not None and isinstance(signature.inputs, TensorSpec):
        spec = signature.inputs
        inputs.append(
            {
                "name": spec.name or "input",
                "datatype": datatype_of(np.empty(0, dtype=spec.dtype)),
                "shape": list(spec.shape),
            }
        )
    elif signature is not None and isinstance(signature.inputs, list):
        inputs = [
            {"name": c.name, "datatype": _COLUMN_DATATYPES[c.type], "shape": [-1]}
            for c in signature.inputs
        ]
    examples = dict(output_examples or {})
    outputs = [_output_metadata("predict", examples.get("predict"), signature)]
    if has_proba:
        outputs.append(_output_metadata("predict_proba", examples.get("predict_proba"), None))
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": platform,
        "inputs": inputs,
        "outputs": outputs,
    }


def _output_metadata(
    name: str, example: np.ndarray | None, signature: Signature | None
) -> dict[str, Any]:
    if example is not None:
        arr = np.asarray(example)
        return {"name": name, "datatype": datatype_of(arr), "shape": [-1, *arr.shape[1:]]}
    spec = signature.outputs if signature is not None else None
    if isinstance(spec, TensorSpec):
        return {
            "name": name,
            "datatype": datatype_of(np.empty(0, dtype=spec.dtype)),
            "shape": list(spec.shape),
        }
    if isinstance(spec, list) and len(spec) == 1:
        return {"name": name, "datatype": _COLUMN_DATATYPES[spec[0].type], "shape": [-1]}
    shape = [-1, -1] if name == "predict_proba" else [-1]
    return {"name": name, "datatype": "FP64", "shape": shape}


def server_metadata() -> dict[str, Any]:
    """``GET /v2``: the server's name, version and protocol extensions."""
    from mloop import __version__

    return {"name": "mloop", "version": __version__, "extensions": ["binary_tensor_data"]}


def error_body(error: MloopError) -> dict[str, Any]:
    """The protocol's error shape, ``{"error": message}``, plus mloop's code and details.

    ``tritonclient`` shows the ``error`` string to its user, so it carries the message here.
    """
    body: dict[str, Any] = {"error": error.message, "code": error.code}
    if error.details:
        body["details"] = error.details
    return body
