"""The plain protocol: /predict bodies and answers, /feedback bodies."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from mloop.errors import InvalidInput
from mloop.models import ColumnSpec, Signature, TensorSpec
from mloop.serving.protocols.plain import (
    Feedback,
    PredictRequest,
    encode_predict_response,
    parse_feedback,
    parse_predict,
)

SIG = Signature(inputs=[ColumnSpec("amount", "float64"), ColumnSpec("country", "string")])
ROW = {"amount": 1.5, "country": "FR"}


def predict(payload: Any, signature: Signature | None = SIG) -> PredictRequest:
    return parse_predict(orjson.dumps(payload), signature)


def bad_predict(payload: Any, signature: Signature | None = SIG) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        predict(payload, signature)
    return info.value


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ([ROW, ROW], None),
        ({"records": [ROW, ROW]}, None),
        ({"records": [ROW, ROW], "key": "user-7"}, "user-7"),
        ({"records": [ROW, ROW], "key": 42}, "42"),
        ({"records": [[1.5, "FR"], [1.5, "FR"]]}, None),
        ([[1.5, "FR"], [1.5, "FR"]], None),
    ],
)
def test_predict_shapes(payload: Any, key: str | None) -> None:
    req = predict(payload)
    assert req.key == key
    assert req.inputs.n_rows == 2
    assert req.inputs.columns == {"amount": [1.5, 1.5], "country": ["FR", "FR"]}


def test_one_record_with_or_without_a_key() -> None:
    req = predict(ROW)
    assert req.key is None and req.inputs.n_rows == 1
    assert req.inputs.columns == {"amount": [1.5], "country": ["FR"]}
    req = predict({**ROW, "key": "u1"})
    assert req.key == "u1" and req.inputs.columns == {"amount": [1.5], "country": ["FR"]}
    req = predict({**ROW, "key": None})
    assert req.key is None


def test_a_column_named_key_or_records_stays_a_column() -> None:
    sig = Signature(inputs=[ColumnSpec("key", "string"), ColumnSpec("records", "int64")])
    req = predict({"key": "k", "records": 3}, sig)
    assert req.key is None
    assert req.inputs.columns == {"key": ["k"], "records": [3]}


def test_tensor_and_no_signature() -> None:
    tensor = Signature(inputs=TensorSpec("float64", (-1, 2)))
    req = predict({"records": [[1, 2], [3, 4]], "key": "k"}, tensor)
    assert req.inputs.array is not None and req.inputs.array.shape == (2, 2)
    req = predict([{"a": 1}], None)
    assert req.inputs.columns == {"a": [1]}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("x", "body"),
        (3, "body"),
        ([], "rows"),
        ({"records": []}, "rows"),
        ({"records": {"a": 1}}, "records"),
        ({"records": [ROW], "other": 1}, "other"),
        ({"records": [ROW], "key": [1]}, "key"),
        ({"records": [ROW], "key": True}, "key"),
        ({**ROW, "key": 1.5}, "key"),
        ({}, "body"),
        ({"key": "k"}, "body"),
        ({"amount": [1.5, 2], "country": ["a", "b"]}, "amount"),
        ({"amount": {"v": 1}, "country": "FR"}, "amount"),
        ({**ROW, "zip": "1"}, "zip"),
        ({"amount": 1.5}, "country"),
        ([ROW, 1], "body[1]"),
        ([[1.5]], "body[0]"),
    ],
)
def test_bad_predict_bodies(payload: Any, field: str) -> None:
    err = bad_predict(payload)
    assert err.http_status == 400
    assert err.details["field"] == field


def test_malformed_predict_json() -> None:
    for body in (b"", b"[", b'{"amount": NaN, "country": "FR"}'):
        with pytest.raises(InvalidInput, match="JSON"):
            parse_predict(body, SIG)


def test_encode_predict_response() -> None:
    body = encode_predict_response("r1", 3, np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert orjson.loads(body) == {
        "request_id": "r1",
        "model_version": 3,
        "predictions": [0, 1],
        "probabilities": [[0.9, 0.1], [0.2, 0.8]],
    }
    body = encode_predict_response("r2", 1, np.array(["a"], dtype=object))
    assert orjson.loads(body) == {"request_id": "r2", "model_version": 1, "predictions": ["a"]}
    body = encode_predict_response("r3", 1, pd.DataFrame({"y": [1.0, np.nan]}))
    assert orjson.loads(body)["predictions"] == [{"y": 1.0}, {"y": None}]


@pytest.mark.parametrize(
    ("payload", "want"),
    [
        ({"request_id": "r1", "label": 1}, [Feedback("r1", [1])]),
        ({"request_id": "r1", "label": None}, [Feedback("r1", [None])]),
        ({"request_id": "r1", "label": [1, 0, "x"]}, [Feedback("r1", [1, 0, "x"])]),
        (
            {"feedback": [{"request_id": "a", "label": True}, {"request_id": "b", "label": [2]}]},
            [Feedback("a", [True]), Feedback("b", [2])],
        ),
    ],
)
def test_feedback(payload: Any, want: list[Feedback]) -> None:
    assert parse_feedback(orjson.dumps(payload)) == want


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([{"request_id": "a", "label": 1}], "body"),
        ({"request_id": "a"}, "label"),
        ({"label": 1}, "request_id"),
        ({"request_id": "", "label": 1}, "request_id"),
        ({"request_id": 5, "label": 1}, "request_id"),
        ({"request_id": "x" * 129, "label": 1}, "request_id"),
        ({"request_id": "a", "label": []}, "label"),
        ({"request_id": "a", "label": 1, "extra": 2}, "extra"),
        ({"feedback": []}, "feedback"),
        ({"feedback": {"request_id": "a"}}, "feedback"),
        ({"feedback": [3]}, "feedback[0]"),
        ({"feedback": [{"request_id": "a", "label": 1}], "request_id": "b"}, "request_id"),
        ({"feedback": [{"request_id": "a", "label": 1}, {"request_id": "b"}]}, "label"),
    ],
)
def test_bad_feedback(payload: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_feedback(orjson.dumps(payload))
    assert info.value.details["field"] == field


def test_malformed_feedback_json() -> None:
    with pytest.raises(InvalidInput, match="JSON"):
        parse_feedback(b"{request_id: 1}")
