"""The Open Inference Protocol: typed tensors in JSON and binary, outputs, metadata, bad input."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from mloop.errors import InvalidInput
from mloop.models import ColumnSpec, Signature, TensorSpec
from mloop.serving.protocols.oip import (
    DATATYPES,
    HEADER_LENGTH,
    InferRequest,
    RequestedOutput,
    datatype_of,
    encode_infer_response,
    error_body,
    model_metadata,
    model_outputs,
    parse_infer_request,
    server_metadata,
)

COLS = Signature(
    inputs=[
        ColumnSpec("amount", "float64"),
        ColumnSpec("count", "int64"),
        ColumnSpec("country", "string", nullable=True),
    ]
)
NUMERIC = Signature(inputs=[ColumnSpec("a", "float64"), ColumnSpec("b", "float64")])
TENSOR = Signature(inputs=TensorSpec("float32", (-1, 3)))
NUMERIC_TYPES = [t for t in DATATYPES if t not in ("BYTES", "BOOL")]


def request(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": list(inputs), **extra})


def tensor(name: str, shape: Any, datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def parse(body: bytes, signature: Signature | None = None, **headers: str) -> InferRequest:
    return parse_infer_request(
        body, {k.replace("_", "-"): v for k, v in headers.items()}, signature
    )


def bad(body: bytes, signature: Signature | None = None, match: str | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput, match=match) as info:
        parse(body, signature)
    assert info.value.http_status == 400
    return info.value


def binary_body(json_part: dict[str, Any], *chunks: bytes) -> tuple[bytes, dict[str, str]]:
    head = orjson.dumps(json_part)
    return head + b"".join(chunks), {HEADER_LENGTH: str(len(head))}


# --- JSON tensors ---------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", NUMERIC_TYPES)
def test_every_numeric_datatype_in_json(datatype: str) -> None:
    parsed = parse(request(tensor("x", [2, 2], datatype, [1, 2, 3, 4]))).inputs
    assert parsed.array is not None and parsed.columns is None and parsed.n_rows == 2
    assert parsed.array.dtype == DATATYPES[datatype]
    np.testing.assert_array_equal(parsed.array, [[1, 2], [3, 4]])


def test_bool_and_bytes_in_json() -> None:
    parsed = parse(request(tensor("b", [3], "BOOL", [True, False, True]))).inputs
    assert parsed.array is not None and parsed.array.tolist() == [True, False, True]
    parsed = parse(request(tensor("s", [2, 1], "BYTES", [["hé"], [None]]))).inputs
    assert parsed.array is not None and parsed.array.dtype == object
    assert parsed.array.tolist() == [["hé"], [None]]


def test_data_may_be_nested_or_flat() -> None:
    flat = parse(request(tensor("x", [2, 3], "FP32", [1, 2, 3, 4, 5, 6])), TENSOR).inputs
    nested = parse(request(tensor("x", [2, 3], "FP32", [[1, 2, 3], [4, 5, 6]])), TENSOR).inputs
    assert flat.array is not None and nested.array is not None
    np.testing.assert_array_equal(flat.array, nested.array)
    assert flat.array.shape == (2, 3) and flat.array.dtype == np.float32


def test_null_is_nan_in_fp_and_refused_elsewhere() -> None:
    parsed = parse(request(tensor("x", [2], "FP64", [1.5, None]))).inputs
    assert parsed.array is not None and np.isnan(parsed.array[1]) and parsed.array[0] == 1.5
    for datatype, value in (("INT64", 1), ("BOOL", True), ("UINT8", 1)):
        bad(request(tensor("x", [2], datatype, [value, None])), match="null")


@pytest.mark.parametrize(
    ("datatype", "data", "match"),
    [
        ("INT32", [1.5, 2], "whole numbers"),
        ("INT64", ["1", 2], "numbers"),
        ("INT64", [True, False], "numbers"),
        ("FP32", [True, False], "numbers"),
        ("FP64", ["a", "b"], "numbers"),
        ("FP64", [{"a": 1}, 2], "numbers"),
        ("BOOL", [1, 0], "true/false"),
        ("BOOL", ["true", "false"], "true/false"),
        ("BYTES", [1, "a"], "strings"),
        ("BYTES", [{"a": 1}, "a"], "object"),
        ("INT8", [127, 128], "range"),
        ("UINT8", [-1, 2], "range"),
        ("UINT64", [-1, 18446744073709551615], "range"),
        ("INT64", [1, 2.0], "whole numbers"),
        ("INT64", [1, "2"], "numbers"),
        ("INT64", [9223372036854775808, 1], "range"),
        ("FP16", [70000.0, 1.0], "too large"),
        ("FP32", [1e39, 1.0], "too large"),
    ],
)
def test_wrong_json_values_for_the_datatype(datatype: str, data: list[Any], match: str) -> None:
    err = bad(request(tensor("x", [2], datatype, data)), match=match)
    assert err.details["field"] == "x"


def test_integers_beyond_64_bits_are_refused() -> None:
    x = b'{"name": "x", "shape": [1], "datatype": "UINT64", "data": [18446744073709551616]}'
    body = b'{"inputs": [' + x + b"]}"
    bad(body, match="whole numbers")


@pytest.mark.parametrize(
    ("body", "field", "match"),
    [
        (b"[]", "body", "JSON list"),
        (orjson.dumps({"inputs": []}), "inputs", "non-empty list"),
        (orjson.dumps({}), "inputs", "non-empty list"),
        (orjson.dumps({"inputs": {"x": 1}}), "inputs", "non-empty list"),
        (request(tensor("x", [1], "FP32", [1]), extra=1), "extra", "unknown key"),
        (request(tensor("x", [1], "FP32", [1]), id=3), "id", "string"),
        (orjson.dumps({"inputs": [3]}), "inputs[0]", "JSON number"),
        (request({**tensor("x", [1], "FP32", [1]), "foo": 1}), "inputs[0].foo", "unknown"),
        (request(tensor("", [1], "FP32", [1])), "inputs[0].name", "name"),
        (request(tensor("x", [1], "FP32", [1]), tensor("x", [1], "FP32", [1])), "x", "twice"),
        (request(tensor("x", [1], "FLOAT", [1])), "x", "datatype 'FLOAT'"),
        (request(tensor("x", [1], "BF16", [1])), "x", "datatype"),
        (request(tensor("x", [-1], "FP32", [1])), "x", "shape"),
        (request(tensor("x", [], "FP32", [1])), "x", "shape"),
        (request(tensor("x", "2", "FP32", [1])), "x", "shape"),
        (request(tensor("x", [True], "FP32", [1])), "x", "shape"),
        (request(tensor("x", [1.5], "FP32", [1])), "x", "shape"),
        (request(tensor("x", [3], "FP32", [1, 2])), "x", "2 data elements"),
        (request(tensor("x", [2, 2], "FP32", [[1, 2], [3]])), "x", "ragged"),
        (request(tensor("s", [2], "BYTES", ["a"])), "s", "1 data elements"),
        (request({"name": "x", "shape": [1], "datatype": "FP32"}), "x", "no 'data'"),
        (request(tensor("x", [0, 3], "FP32", [])), "rows", "empty"),
        (request(tensor("x", [0], "INT64", [])), "rows", "empty"),
        (
            request(tensor("x", [1], "FP32", [1]), parameters={"binary_data_output": 1}),
            "parameters.binary_data_output",
            "true or false",
        ),
        (request(tensor("x", [1], "FP32", [1]), parameters=[1]), "parameters", "object"),
        (
            request({**tensor("x", [1], "FP32", [1]), "parameters": {"shared_memory_region": "r"}}),
            "inputs[0].parameters.shared_memory_region",
            "shared memory",
        ),
        (request(tensor("x", [1], "FP32", [1]), outputs={"predict": 1}), "outputs", "list"),
        (request(tensor("x", [1], "FP32", [1]), outputs=[{"nam": "p"}]), "outputs[0]", "name"),
        (
            request(tensor("x", [1], "FP32", [1]), outputs=[{"name": "p"}, {"name": "p"}]),
            "p",
            "twice",
        ),
        (
            request(
                tensor("x", [1], "FP32", [1]),
                outputs=[{"name": "p", "parameters": {"classification": 2}}],
            ),
            "outputs[0].parameters.classification",
            "classification",
        ),
        (
            request(
                tensor("x", [1], "FP32", [1]),
                outputs=[{"name": "p", "parameters": {"binary_data": "yes"}}],
            ),
            "outputs[0].parameters.binary_data",
            "true or false",
        ),
    ],
)
def test_bad_requests_name_the_field(body: bytes, field: str, match: str) -> None:
    assert bad(body, match=match).details["field"] == field


@pytest.mark.parametrize("body", [b"", b"{", b"\x00\x01", b'{"inputs": [NaN]}'])
def test_malformed_json(body: bytes) -> None:
    bad(body, match="JSON")


# --- signatures ------------------------------------------------------------------------------


def test_column_signature_one_tensor_per_column() -> None:
    body = request(
        tensor("country", [2], "BYTES", ["FR", None]),
        tensor("amount", [2, 1], "FP64", [[1.5], [2.0]]),
        tensor("count", [2], "INT32", [3, 4]),
    )
    parsed = parse(body, COLS).inputs
    assert parsed.array is None and parsed.columns is not None and parsed.n_rows == 2
    assert list(parsed.columns) == ["amount", "count", "country"]
    assert [list(v) for v in parsed.columns.values()] == [[1.5, 2.0], [3, 4], ["FR", None]]
    assert all(isinstance(v, np.ndarray) and v.ndim == 1 for v in parsed.columns.values())


def test_column_signature_one_2d_tensor_by_position() -> None:
    parsed = parse(request(tensor("input", [2, 2], "FP32", [1, 2, 3, 4])), NUMERIC).inputs
    assert parsed.columns is not None and parsed.n_rows == 2
    assert {k: list(v) for k, v in parsed.columns.items()} == {"a": [1, 3], "b": [2, 4]}
    bad(request(tensor("input", [2, 3], "FP32", [1] * 6)), NUMERIC, match="2 columns")
    one = Signature(inputs=[ColumnSpec("a", "float64")])
    parsed = parse(request(tensor("input__0", [2], "FP64", [1, 2])), one).inputs
    assert parsed.columns is not None and list(parsed.columns["a"]) == [1, 2]
    # One tensor cannot carry both text and numbers.
    bad(request(tensor("input", [1, 3], "FP64", [1, 2, 3])), COLS, match="column 'country'")


@pytest.mark.parametrize(
    ("inputs", "field", "match"),
    [
        ([tensor("amount", [1], "FP64", [1.0])], "count", "missing"),
        (
            [
                tensor("amount", [1], "FP64", [1]),
                tensor("count", [1], "INT64", [1]),
                tensor("country", [1], "BYTES", ["a"]),
                tensor("zip", [1], "BYTES", ["a"]),
            ],
            "zip",
            "does not name",
        ),
        (
            [
                tensor("amount", [2], "FP64", [1, 2]),
                tensor("count", [1], "INT64", [1]),
                tensor("country", [2], "BYTES", ["a", "b"]),
            ],
            "count",
            "1 rows",
        ),
        (
            [
                tensor("amount", [1, 2], "FP64", [1, 2]),
                tensor("count", [1], "INT64", [1]),
                tensor("country", [1], "BYTES", ["a"]),
            ],
            "amount",
            r"\[n\] or \[n, 1\]",
        ),
        (
            [
                tensor("amount", [1], "BYTES", ["1.5"]),
                tensor("count", [1], "INT64", [1]),
                tensor("country", [1], "BYTES", ["a"]),
            ],
            "amount",
            "numeric",
        ),
        (
            [
                tensor("amount", [1], "FP64", [1.5]),
                tensor("count", [1], "INT64", [1]),
                tensor("country", [1], "INT64", [1]),
            ],
            "country",
            "BYTES",
        ),
    ],
)
def test_column_signature_bad_tensors(inputs: list[dict[str, Any]], field: str, match: str) -> None:
    assert bad(request(*inputs), COLS, match=match).details["field"] == field


def test_tensor_signature() -> None:
    parsed = parse(request(tensor("anything", [1, 3], "FP64", [1, 2, 3])), TENSOR).inputs
    assert parsed.array is not None and parsed.array.shape == (1, 3)
    bad(request(tensor("x", [1, 4], "FP32", [1, 2, 3, 4])), TENSOR, match=r"shape \[-1, 3\]")
    bad(request(tensor("x", [3], "FP32", [1, 2, 3])), TENSOR, match="shape")
    bad(request(tensor("x", [1, 3], "BYTES", ["a"] * 3)), TENSOR, match="numeric")
    two = request(tensor("x", [1, 3], "FP32", [1] * 3), tensor("y", [1, 3], "FP32", [1] * 3))
    bad(two, TENSOR, match="one tensor")
    named = Signature(inputs=TensorSpec("float32", (-1, 3), name="pixels"))
    assert parse(request(tensor("pixels", [1, 3], "FP32", [1, 2, 3])), named).inputs.n_rows == 1
    err = bad(request(tensor("x", [1, 3], "FP32", [1, 2, 3])), named, match="'pixels'")
    assert err.details["field"] == "x"


def test_without_signature() -> None:
    one = parse(request(tensor("x", [2, 3], "FP32", [1] * 6))).inputs
    assert one.array is not None and one.array.shape == (2, 3)
    many = parse(
        request(tensor("a", [2], "FP32", [1, 2]), tensor("b", [2, 1], "BYTES", ["x", "y"]))
    )
    assert many.inputs.columns is not None
    assert {k: list(v) for k, v in many.inputs.columns.items()} == {"a": [1, 2], "b": ["x", "y"]}


# --- outputs and parameters ------------------------------------------------------------------


def test_outputs_and_binary_selection() -> None:
    x = tensor("x", [1, 3], "FP32", [1, 2, 3])
    req = parse(request(x, id="abc", parameters={"priority": 1}), TENSOR)
    assert req.id == "abc" and req.outputs is None and req.parameters == {"priority": 1}
    assert req.select_outputs(["predict", "predict_proba"]) == (
        ["predict", "predict_proba"],
        set(),
    )
    req = parse(request(x, parameters={"binary_data_output": True}), TENSOR)
    assert req.select_outputs(["predict"]) == (["predict"], {"predict"})
    outputs = [
        {"name": "predict_proba", "parameters": {"binary_data": True}},
        {"name": "predict"},
    ]
    req = parse(request(x, outputs=outputs), TENSOR)
    assert req.outputs == [RequestedOutput("predict_proba", True), RequestedOutput("predict")]
    assert req.select_outputs(["predict", "predict_proba"]) == (
        ["predict_proba", "predict"],
        {"predict_proba"},
    )
    req = parse(request(x, outputs=[{"name": "score"}]), TENSOR)
    with pytest.raises(InvalidInput, match="'score' is not an output") as info:
        req.select_outputs(["predict"])
    assert info.value.details["field"] == "score"


# --- binary tensor data extension ------------------------------------------------------------


@pytest.mark.parametrize("datatype", NUMERIC_TYPES)
def test_binary_numeric_inputs(datatype: str) -> None:
    values = np.array([[1, 2], [3, 4]], dtype=DATATYPES[datatype])
    raw = values.tobytes()
    x = {"name": "x", "shape": [2, 2], "datatype": datatype}
    body, headers = binary_body(
        {"inputs": [{**x, "parameters": {"binary_data_size": len(raw)}}]}, raw
    )
    parsed = parse_infer_request(body, headers, None).inputs
    assert parsed.array is not None and parsed.array.dtype == values.dtype
    np.testing.assert_array_equal(parsed.array, values)
    assert parsed.array.flags.writeable


def test_binary_bool_and_bytes_and_json_mixed() -> None:
    strings = b"".join(struct.pack("<I", len(s)) + s for s in (b"h\xc3\xa9", b""))
    inputs = [
        {"name": "b", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}},
        tensor("j", [2], "INT64", [5, 6]),
        {
            "name": "s",
            "shape": [2, 1],
            "datatype": "BYTES",
            "parameters": {"binary_data_size": len(strings)},
        },
    ]
    body, headers = binary_body({"inputs": inputs}, b"\x01\x00", strings)
    parsed = parse_infer_request(body, {k.lower(): v for k, v in headers.items()}, None).inputs
    assert parsed.columns is not None
    assert {k: list(v) for k, v in parsed.columns.items()} == {
        "b": [True, False],
        "j": [5, 6],
        "s": ["hé", ""],
    }


def binary_input(name: str, shape: list[int], datatype: str, size: int) -> dict[str, Any]:
    return {
        "name": name,
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }


@pytest.mark.parametrize(
    ("inputs", "chunks", "match"),
    [
        ([binary_input("x", [2], "FP32", 8)], [b"\x00" * 4], "only 4 remain"),
        ([binary_input("x", [2], "FP32", 4)], [b"\x00" * 4], "need 8"),
        ([binary_input("x", [1], "FP32", 4)], [b"\x00" * 6], "2 bytes of binary data that no"),
        ([binary_input("x", [2], "BOOL", 2)], [b"\x01\x02"], "other than 0 and 1"),
        ([binary_input("x", [1], "FP32", -4)], [b""], "whole number"),
        ([binary_input("x", [1], "FP32", True)], [b"\x00"], "whole number"),
        ([binary_input("s", [2], "BYTES", 5)], [b"\x01\x00\x00\x00a"], "ends after 1"),
        ([binary_input("s", [1], "BYTES", 5)], [b"\x09\x00\x00\x00a"], "past the end"),
        ([binary_input("s", [1], "BYTES", 6)], [b"\x01\x00\x00\x00ab"], "1 bytes after"),
        ([binary_input("s", [1], "BYTES", 5)], [b"\x01\x00\x00\x00\xff"], "not UTF-8"),
        ([binary_input("s", [1], "BYTES", 2)], [b"\x01\x00"], "ends after 0"),
        (
            [{**tensor("x", [1], "FP32", [1]), "parameters": {"binary_data_size": 4}}],
            [b"\x00" * 4],
            "both",
        ),
    ],
)
def test_bad_binary_data(inputs: list[dict[str, Any]], chunks: list[bytes], match: str) -> None:
    body, headers = binary_body({"inputs": inputs}, *chunks)
    with pytest.raises(InvalidInput, match=match):
        parse_infer_request(body, headers, None)


def test_binary_needs_the_header_and_a_sane_length() -> None:
    head = orjson.dumps({"inputs": [binary_input("x", [1], "FP32", 4)]})
    with pytest.raises(InvalidInput, match=HEADER_LENGTH):
        parse_infer_request(head + b"\x00" * 4, {}, None)
    for value in ("-1", "abc", str(len(head) + 10)):
        with pytest.raises(InvalidInput, match=HEADER_LENGTH) as info:
            parse_infer_request(head + b"\x00" * 4, {HEADER_LENGTH: value}, None)
        assert info.value.details["field"] == HEADER_LENGTH
    # The header cutting the JSON short is a JSON error, not a crash.
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_infer_request(head + b"\x00" * 4, {HEADER_LENGTH: "10"}, None)


# --- responses and metadata ------------------------------------------------------------------


def test_json_response() -> None:
    outputs = {
        "predict": np.array(["a", None, "b"], dtype=object),
        "predict_proba": np.array([[0.25, 0.75], [np.nan, 1.0], [1.0, 0.0]]),
        "flags": np.array([True, False, True]),
        "half": np.array([1.5, 2, 3], dtype=np.float16),
    }
    body, headers = encode_infer_response("fraud", 3, "rid", outputs, set())
    assert headers == {"content-type": "application/json"}
    doc = orjson.loads(body)
    assert doc["model_name"] == "fraud" and doc["model_version"] == "3" and doc["id"] == "rid"
    by_name = {o["name"]: o for o in doc["outputs"]}
    assert by_name["predict"] == {
        "name": "predict",
        "shape": [3],
        "datatype": "BYTES",
        "data": ["a", None, "b"],
    }
    assert by_name["predict_proba"]["shape"] == [3, 2]
    assert by_name["predict_proba"]["data"] == [0.25, 0.75, None, 1.0, 1.0, 0.0]
    assert by_name["flags"]["datatype"] == "BOOL" and by_name["flags"]["data"] == [
        True,
        False,
        True,
    ]
    assert by_name["half"]["datatype"] == "FP16" and by_name["half"]["data"] == [1.5, 2.0, 3.0]
    body, _ = encode_infer_response("fraud", "3", None, {"predict": np.array([1])}, set())
    assert "id" not in orjson.loads(body)


def test_binary_response_layout() -> None:
    outputs = {"predict": np.array([1, 2], dtype=np.int64), "label": np.array(["x"], dtype=object)}
    body, headers = encode_infer_response("m", 1, None, outputs, {"predict", "label"})
    n = int(headers[HEADER_LENGTH])
    assert headers["content-type"] == "application/octet-stream"
    doc = orjson.loads(body[:n])
    assert [o["parameters"]["binary_data_size"] for o in doc["outputs"]] == [16, 5]
    assert "data" not in doc["outputs"][0]
    assert body[n:] == np.array([1, 2], dtype="<i8").tobytes() + b"\x01\x00\x00\x00x"


def test_model_outputs() -> None:
    import pandas as pd

    out = model_outputs(np.array([1, 0]), np.array([[0.1, 0.9], [0.8, 0.2]]))
    assert list(out) == ["predict", "predict_proba"] and out["predict_proba"].shape == (2, 2)
    assert list(model_outputs(pd.Series([1, 2]))) == ["predict"]
    one = model_outputs(pd.DataFrame({"y": ["a", "b"]}))["predict"]
    assert one.tolist() == ["a", "b"]
    two = model_outputs(pd.DataFrame({"y": [1.0, 2.0], "z": [3.0, 4.0]}))["predict"]
    assert two.shape == (2, 2) and datatype_of(two) == "FP64"
    mixed = model_outputs(pd.DataFrame({"y": [1.0], "z": ["a"]}))["predict"]
    assert datatype_of(mixed) == "BYTES"


@pytest.mark.parametrize(
    ("dtype", "want"),
    [
        (bool, "BOOL"),
        (np.int8, "INT8"),
        (np.int16, "INT16"),
        (np.int32, "INT32"),
        (np.int64, "INT64"),
        (np.uint8, "UINT8"),
        (np.uint16, "UINT16"),
        (np.uint32, "UINT32"),
        (np.uint64, "UINT64"),
        (np.float16, "FP16"),
        (np.float32, "FP32"),
        (np.float64, "FP64"),
        (object, "BYTES"),
        ("U3", "BYTES"),
        ("datetime64[ns]", "BYTES"),
    ],
)
def test_datatype_of(dtype: Any, want: str) -> None:
    assert datatype_of(np.empty(1, dtype=dtype)) == want


def test_datetimes_and_text_arrays_are_written_as_text() -> None:
    outputs = {
        "d": np.array(["2024-01-02T03:04:05"], dtype="datetime64[s]").astype(object),
        "u": np.array(["ab"]),
    }
    doc = orjson.loads(encode_infer_response("m", 1, None, outputs, set())[0])
    assert doc["outputs"][0]["data"] == ["2024-01-02T03:04:05"]
    assert doc["outputs"][1]["data"] == ["ab"]


def test_model_metadata() -> None:
    meta = model_metadata("fraud", [1, 2], COLS, "mloop_sklearn", has_proba=True)
    assert meta["name"] == "fraud" and meta["versions"] == ["1", "2"]
    assert meta["platform"] == "mloop_sklearn"
    assert meta["inputs"] == [
        {"name": "amount", "datatype": "FP64", "shape": [-1]},
        {"name": "count", "datatype": "INT64", "shape": [-1]},
        {"name": "country", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert meta["outputs"][1]["shape"] == [-1, -1]
    examples = {"predict": np.array([0, 1]), "predict_proba": np.zeros((2, 2), dtype=np.float32)}
    meta = model_metadata("f", ["3"], TENSOR, "p", has_proba=True, output_examples=examples)
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP32", "shape": [-1, 2]},
    ]
    with_out = Signature(inputs=TENSOR.inputs, outputs=[ColumnSpec("label", "string")])
    assert model_metadata("f", [], with_out, "p")["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]}
    ]
    tensor_out = Signature(inputs=TENSOR.inputs, outputs=TensorSpec("int32", (-1,)))
    assert model_metadata("f", [], tensor_out, "p")["outputs"][0]["datatype"] == "INT32"
    assert model_metadata("f", [], None, "p")["inputs"] == []


def test_server_metadata_and_error_body() -> None:
    meta = server_metadata()
    assert meta["name"] == "mloop" and "binary_tensor_data" in meta["extensions"]
    assert isinstance(meta["version"], str)
    err = InvalidInput("input 'x' is wrong", field="x")
    assert error_body(err) == {
        "error": "input 'x' is wrong",
        "code": "InvalidInput",
        "details": {"field": "x"},
    }


# --- compatibility with tritonclient's own encoders ------------------------------------------


def test_tritonclient_binary_requests_parse() -> None:
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import np_to_triton_dtype

    arrays: dict[str, np.ndarray] = {
        "f": np.array([[1.5, 2.5, 3.5]], dtype=np.float32),
        "h": np.array([[1.5], [2]], dtype=np.float16),
        "i": np.array([-3, 4], dtype=np.int8),
        "u": np.array([7, 2**64 - 1], dtype=np.uint64),
        "b": np.array([True, False]),
        "s": np.array(["hé", b"raw"], dtype=object),
    }
    for binary in (True, False):
        for name, arr in arrays.items():
            inp = http.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
            inp.set_data_from_numpy(arr, binary_data=binary)
            outputs = [http.InferRequestedOutput("predict", binary_data=binary)]
            body, json_size = http.InferenceServerClient.generate_request_body(
                [inp], outputs=outputs, request_id="r1"
            )
            headers = {} if json_size is None else {HEADER_LENGTH: str(json_size)}
            assert (json_size is not None) == binary
            req = parse_infer_request(body, headers, None)
            assert req.id == "r1"
            assert req.select_outputs(["predict"]) == (
                ["predict"],
                {"predict"} if binary else set(),
            )
            got = req.inputs.array
            assert got is not None
            if name == "s":
                assert got.tolist() == ["hé", "raw"]
            else:
                assert got.dtype == arr.dtype
                np.testing.assert_array_equal(got, arr)


def test_tritonclient_reads_our_responses() -> None:
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

    outputs = {
        "predict": np.array(["yes", "no"], dtype=object),
        "predict_proba": np.array([[0.2, 0.8], [0.9, 0.1]]),
        "n": np.array([1, 2], dtype=np.int32),
        "ok": np.array([True, False]),
    }
    for binary in (set(outputs), set(), {"predict_proba"}):
        body, headers = encode_infer_response("fraud", 2, "r9", outputs, binary)
        length = headers.get(HEADER_LENGTH)
        result = http.InferenceServerClient.parse_response_body(
            body, header_length=None if length is None else int(length)
        )
        assert result.get_response()["id"] == "r9"
        np.testing.assert_array_equal(result.as_numpy("predict_proba"), outputs["predict_proba"])
        np.testing.assert_array_equal(result.as_numpy("n"), outputs["n"])
        np.testing.assert_array_equal(result.as_numpy("ok"), outputs["ok"])
        labels = result.as_numpy("predict")
        assert [v.decode() if isinstance(v, bytes) else v for v in labels.tolist()] == ["yes", "no"]
    # Our BYTES encoding is byte-for-byte tritonclient's.
    body, headers = encode_infer_response("m", 1, None, {"p": outputs["predict"]}, {"p"})
    raw = body[int(headers[HEADER_LENGTH]) :]
    assert raw == serialize_byte_tensor(outputs["predict"]).item()
    assert deserialize_bytes_tensor(raw).tolist() == [b"yes", b"no"]
