"""Shared protocol pieces: JSON in and out, joining requests into one batch."""

from __future__ import annotations

import contextlib
import datetime as dt

import numpy as np
import orjson
import pandas as pd
import pytest

from mloop.errors import InvalidInput
from mloop.models import ColumnSpec, Signature, TensorSpec, coerce_input
from mloop.serving.protocols import (
    ParsedInput,
    concat_inputs,
    parse_infer_request,
    parse_invocations,
    parse_predict,
)
from mloop.serving.protocols.common import dumps, loads, to_json_values

SIG = Signature(
    inputs=[
        ColumnSpec("amount", "float64"),
        ColumnSpec("count", "int64"),
        ColumnSpec("country", "string", nullable=True),
    ]
)


def test_loads() -> None:
    assert loads(b'{"a": [1, null]}') == {"a": [1, None]}
    with pytest.raises(InvalidInput, match="empty") as info:
        loads(b"")
    assert info.value.details == {"field": "body"}
    with pytest.raises(InvalidInput, match="not valid JSON") as info:
        loads(b'{"a": ')
    assert "NaN" not in info.value.message
    with pytest.raises(InvalidInput, match="send null"):
        loads(b'{"a": NaN}')


def test_dumps_and_to_json_values() -> None:
    assert orjson.loads(dumps({"a": np.float32(1.5), "b": np.int64(2), "c": np.bool_(True)})) == {
        "a": 1.5,
        "b": 2,
        "c": True,
    }
    assert orjson.loads(dumps(to_json_values(np.array([1.0, np.nan])))) == [1.0, None]
    assert orjson.loads(dumps(to_json_values(np.array([[1, 2], [3, 4]]).T))) == [[1, 3], [2, 4]]
    assert orjson.loads(dumps(to_json_values(pd.Series(["a", None])))) == ["a", None]
    when = np.array(["2024-05-06T07:08:09", "NaT"], dtype="datetime64[ns]")
    assert orjson.loads(dumps(to_json_values(when))) == ["2024-05-06T07:08:09", None]
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None]), "n": [1, 2]})
    assert orjson.loads(dumps(to_json_values(frame))) == [
        {"t": "2024-01-01T00:00:00", "n": 1},
        {"t": None, "n": 2},
    ]
    assert orjson.loads(dumps([b"ab", dt.date(2024, 1, 2), np.array(["x"], dtype=object)])) == [
        "ab",
        "2024-01-02",
        ["x"],
    ]
    with pytest.raises(TypeError):
        dumps(object())


def test_concat_arrays() -> None:
    parts = [
        ParsedInput(columns=None, array=np.ones((1, 2)), n_rows=1),
        ParsedInput(columns=None, array=np.zeros((2, 2)), n_rows=2),
    ]
    joined = concat_inputs(parts)
    assert joined.n_rows == 3 and joined.array is not None
    assert joined.array.tolist() == [[1, 1], [0, 0], [0, 0]]
    assert concat_inputs(parts[:1]) is parts[0]
    with pytest.raises(ValueError):
        concat_inputs([])
    with pytest.raises(ValueError):
        concat_inputs([parts[0], ParsedInput(columns={"a": [1]}, array=None, n_rows=1)])


def test_concat_columns_from_every_protocol_then_coerce() -> None:
    """The batcher's path: JSON lists and typed tensors join, then one coercion."""
    from_mlflow = parse_invocations(
        orjson.dumps({"dataframe_records": [{"amount": 1, "count": 2, "country": "FR"}]}),
        "application/json",
        SIG,
    )
    from_plain = parse_predict(orjson.dumps({"country": None, "count": 5, "amount": 2.5}), SIG)
    tensors = [
        {"name": "amount", "shape": [2], "datatype": "FP32", "data": [3, 4]},
        {"name": "count", "shape": [2, 1], "datatype": "INT32", "data": [7, 8]},
        {"name": "country", "shape": [2], "datatype": "BYTES", "data": ["DE", "IT"]},
    ]
    from_oip = parse_infer_request(orjson.dumps({"inputs": tensors}), {}, SIG)
    joined = concat_inputs([from_mlflow, from_plain.inputs, from_oip.inputs])
    assert joined.n_rows == 4 and joined.columns is not None
    assert list(joined.columns) == ["amount", "count", "country"]
    frame = coerce_input(pd.DataFrame(joined.columns), SIG)
    assert frame["amount"].tolist() == [1.0, 2.5, 3.0, 4.0]
    assert frame["count"].tolist() == [2, 5, 7, 8]
    assert str(frame["count"].dtype) == "int64"
    assert frame["country"].tolist() == ["FR", None, "DE", "IT"]
    # Two tensor requests keep typed arrays.
    both = concat_inputs([from_oip.inputs, from_oip.inputs])
    assert both.columns is not None
    assert isinstance(both.columns["amount"], np.ndarray)
    assert both.columns["amount"].dtype == np.float32


def test_concat_signature_less_columns_fills_nulls() -> None:
    a = ParsedInput(columns={"x": [1]}, array=None, n_rows=1)
    b = ParsedInput(columns={"y": np.array(["q", "r"], dtype=object)}, array=None, n_rows=2)
    joined = concat_inputs([a, b])
    assert joined.columns == {"x": [1, None, None], "y": [None, "q", "r"]}


def test_tensor_batches_concatenate() -> None:
    tensor = Signature(inputs=TensorSpec("float32", (-1, 2)))
    one = parse_invocations(b'{"instances": [[1, 2]]}', "application/json", tensor)
    two = parse_infer_request(
        orjson.dumps(
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [0] * 4}]}
        ),
        {},
        tensor,
    )
    joined = concat_inputs([one, two.inputs])
    assert joined.array is not None and joined.array.shape == (3, 2)
    assert coerce_input(joined.array, tensor).dtype == np.float32


def _random_json(rng: np.random.Generator, depth: int = 0) -> object:
    kind = int(rng.integers(0, 9 if depth < 4 else 5))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(0, 2))
    if kind == 2:
        return int(rng.integers(-300, 300))
    if kind == 3:
        return float(rng.normal())
    if kind == 4:
        return str(rng.choice(["amount", "count", "country", "x", "", "FR", "FP32", "data"]))
    keys = [
        "amount", "count", "country", "inputs", "instances", "dataframe_split", "data",
        "dataframe_records", "columns", "name", "shape", "datatype", "records", "key",
        "request_id", "label", "feedback", "parameters", "outputs",
    ]  # fmt: skip
    if kind in (5, 6):
        return [_random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    return {
        str(rng.choice(keys)): _random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))
    }


VALID: list[object] = [
    {"dataframe_split": {"columns": ["amount", "count", "country"], "data": [[1.5, 2, "FR"]]}},
    {"dataframe_records": [{"amount": 1.5, "count": 2, "country": "FR"}]},
    {"instances": [[1.5, 2, "FR"], [1, 2, None]]},
    {"inputs": {"amount": [1.5], "count": [2], "country": ["FR"]}},
    {
        "id": "r",
        "parameters": {"binary_data_output": True},
        "inputs": [
            {"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.5]},
            {"name": "count", "shape": [1, 1], "datatype": "INT64", "data": [[2]]},
            {"name": "country", "shape": [1], "datatype": "BYTES", "data": ["FR"]},
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    },
    {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]},
    {"records": [{"amount": 1.5, "count": 2, "country": "FR"}], "key": "k"},
    {"amount": 1.5, "count": 2, "country": "FR"},
    {"feedback": [{"request_id": "r", "label": [1]}]},
]


def _mutate(value: object, rng: np.random.Generator) -> object:
    """``value`` with one node (or key) replaced by random JSON."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = list(value)[int(rng.integers(0, len(value)))]
        out = dict(value)
        if rng.random() < 0.15:
            del out[key]
        else:
            out[key] = _mutate(value[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = int(rng.integers(0, len(value)))
        return [*value[:i], _mutate(value[i], rng), *value[i + 1 :]]
    return _random_json(rng, 2)


SIGNATURES = [SIG, Signature(inputs=TensorSpec("float32", (-1, 2))), None]


@pytest.mark.parametrize("signature", SIGNATURES)
def test_random_json_never_escapes_as_another_error(signature: Signature | None) -> None:
    """Whatever the JSON, a parser answers rows or InvalidInput: never a KeyError or TypeError."""
    from mloop.serving.protocols import parse_feedback

    parsers = [
        lambda b: parse_invocations(b, "application/json", signature),
        lambda b: parse_infer_request(b, {}, signature),
        lambda b: parse_predict(b, signature),
        parse_feedback,
    ]
    rng = np.random.default_rng(7)
    bodies = [orjson.dumps(_random_json(rng)) for _ in range(300)]
    for _ in range(1500):
        value = VALID[int(rng.integers(0, len(VALID)))]
        for _ in range(int(rng.integers(1, 3))):
            value = _mutate(value, rng)
        bodies.append(orjson.dumps(value))
    for body in bodies:
        for parse in parsers:
            with contextlib.suppress(InvalidInput):
                parse(body)
