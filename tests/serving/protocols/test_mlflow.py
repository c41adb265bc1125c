"""MLflow's scoring protocol: every payload shape MLflow clients send, good and bad."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from mloop.errors import InvalidInput, UnsupportedMediaType
from mloop.models import ColumnSpec, Signature, TensorSpec, coerce_input
from mloop.serving.protocols.common import ParsedInput
from mloop.serving.protocols.mlflow import encode_predictions, parse_invocations

SIG = Signature(
    inputs=[
        ColumnSpec("amount", "float64"),
        ColumnSpec("country", "string", nullable=True),
        ColumnSpec("flag", "bool"),
    ]
)
TENSOR = Signature(inputs=TensorSpec("float32", (-1, 2)))
JSON = "application/json"
ROWS: list[dict[str, Any]] = [
    {"amount": 1.5, "country": "FR", "flag": True},
    {"amount": 2, "country": None, "flag": False},
]
WANT = {"amount": [1.5, 2], "country": ["FR", None], "flag": [True, False]}


def parse(payload: Any, signature: Signature | None = SIG, content_type: str = JSON) -> ParsedInput:
    return parse_invocations(orjson.dumps(payload), content_type, signature)


def columns(parsed: ParsedInput) -> dict[str, list[Any]]:
    assert parsed.array is None and parsed.columns is not None
    return {k: list(v) for k, v in parsed.columns.items()}


def bad(payload: Any, signature: Signature | None = SIG, match: str | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput, match=match) as info:
        parse(payload, signature)
    assert info.value.http_status == 400
    return info.value


@pytest.mark.parametrize(
    "payload",
    [
        {
            "dataframe_split": {
                "columns": ["amount", "country", "flag"],
                "data": [[1.5, "FR", True], [2, None, False]],
            }
        },
        {
            "dataframe_split": {
                "columns": ["flag", "amount", "country"],
                "data": [[True, 1.5, "FR"], [False, 2, None]],
                "index": [7, 8],
            }
        },
        {"dataframe_split": {"data": [[1.5, "FR", True], [2, None, False]]}},
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"instances": [[1.5, "FR", True], [2, None, False]]},
        {"inputs": WANT},
        {"inputs": [[1.5, "FR", True], [2, None, False]]},
        {"inputs": ROWS},
        {"dataframe_records": ROWS, "params": {}},
        {"dataframe_records": ROWS, "params": None},
    ],
)
def test_every_json_shape_gives_the_same_columns_in_signature_order(payload: Any) -> None:
    parsed = parse(payload)
    assert parsed.n_rows == 2
    assert columns(parsed) == WANT
    assert list(parsed.columns or {}) == ["amount", "country", "flag"]


def test_one_row_fast_path_keeps_python_values() -> None:
    parsed = parse({"inputs": {"amount": 1.5, "country": "FR", "flag": True}})
    assert parsed.n_rows == 1
    assert parsed.columns == {"amount": [1.5], "country": ["FR"], "flag": [True]}


def test_records_with_a_missing_key_give_a_null() -> None:
    parsed = parse({"dataframe_records": [ROWS[0], {"amount": 3.0, "flag": True}]})
    assert columns(parsed)["country"] == ["FR", None]


def test_parsed_columns_coerce_to_the_signature() -> None:
    parsed = parse({"dataframe_split": {"data": [[1, "FR", True], [2.5, None, False]]}})
    frame = coerce_input(pd.DataFrame(parsed.columns), SIG)
    assert [str(t) for t in frame.dtypes] == ["float64", "object", "bool"]


def test_legacy_mlflow1_format_parameter() -> None:
    split = {"columns": ["amount", "country", "flag"], "data": [[1.5, "FR", True]]}
    assert parse(split, content_type="application/json; format=pandas-split").n_rows == 1
    parsed = parse(ROWS, content_type="application/json;format=pandas-records")
    assert columns(parsed) == WANT
    with pytest.raises(UnsupportedMediaType):
        parse(ROWS, content_type="application/json; format=tf-serving")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF8"],
)
def test_json_content_types(content_type: str) -> None:
    assert parse({"dataframe_records": ROWS}, content_type=content_type).n_rows == 2


@pytest.mark.parametrize(
    "content_type",
    ["", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_other_content_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse({"dataframe_records": ROWS}, content_type=content_type)
    assert info.value.http_status == 415
    assert isinstance(info.value, InvalidInput)
    assert info.value.details["field"] == "content-type"


def test_tensor_signature_takes_instances_inputs_and_split() -> None:
    for payload in (
        {"instances": [[1, 2], [3, 4.5]]},
        {"inputs": [[1, 2], [3, 4.5]]},
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4.5]]}},
        {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4.5}]},
    ):
        parsed = parse(payload, TENSOR)
        assert parsed.columns is None and parsed.array is not None
        assert parsed.n_rows == 2
        np.testing.assert_array_equal(parsed.array, [[1, 2], [3, 4.5]])


def test_tensor_signature_takes_a_named_inputs_object() -> None:
    named = Signature(inputs=TensorSpec("float64", (-1, 2), name="x"))
    parsed = parse({"inputs": {"x": [[1, 2]]}}, named)
    assert parsed.array is not None and parsed.array.shape == (1, 2)
    bad({"inputs": {"y": [[1, 2]]}}, named, match="one tensor")


def test_tensor_shape_is_checked_per_request() -> None:
    bad({"instances": [[1, 2, 3]]}, TENSOR, match=r"shape \[1, 3\]")
    bad({"instances": [1, 2]}, TENSOR, match="shape")
    bad({"instances": [[1, 2], [3]]}, TENSOR, match="ragged")
    bad({"instances": [[1, {"a": 1}]]}, TENSOR, match="objects")


def test_records_for_a_tensor_need_the_same_keys() -> None:
    bad({"dataframe_records": [{"a": 1, "b": 2}, {"b": 1, "a": 2}]}, TENSOR, match="same keys")


def test_without_a_signature() -> None:
    parsed = parse({"instances": [[1, 2], [3, 4]]}, None)
    assert parsed.array is not None and parsed.array.shape == (2, 2)
    parsed = parse({"instances": [1, 2, 3]}, None)
    assert parsed.array is not None and parsed.array.shape == (3,)
    parsed = parse({"dataframe_records": [{"x": 1}, {"y": "a"}]}, None)
    assert columns(parsed) == {"x": [1, None], "y": [None, "a"]}


def test_single_column_signature_takes_a_list_of_values() -> None:
    one = Signature(inputs=[ColumnSpec("x", "float64")])
    assert columns(parse({"instances": [1.0, 2.0]}, one)) == {"x": [1.0, 2.0]}
    assert columns(parse({"dataframe_split": {"columns": ["x"], "data": [1, 2]}}, one)) == {
        "x": [1, 2]
    }
    bad({"instances": [1.0, 2.0]}, SIG, match="list of single values")


@pytest.mark.parametrize(
    ("payload", "field", "match"),
    [
        ([ROWS], "body", "JSON list"),
        ("text", "body", "JSON string"),
        ({}, "body", "exactly one"),
        ({"dataframe_records": ROWS, "instances": ROWS}, "body", "exactly one"),
        ({"dataframe_records": ROWS, "extra": 1}, "extra", "unknown key"),
        ({"dataframe_records": ROWS, "params": {"k": 1}}, "params", "not supported"),
        ({"dataframe_records": {"a": 1}}, "dataframe_records", "list of objects"),
        ({"dataframe_records": [ROWS[0], [1, 2]]}, "dataframe_records[1]", "must be an object"),
        ({"dataframe_records": []}, "rows", "empty"),
        ({"dataframe_records": [{}]}, "dataframe_records", "empty objects"),
        ({"instances": {"amount": [1]}}, "instances", "send a list"),
        ({"instances": []}, "rows", "empty"),
        ({"inputs": "x"}, "inputs", "JSON string"),
        ({"inputs": {}}, "inputs", "empty object"),
        ({"inputs": {"amount": [1], "country": "FR", "flag": [True]}}, "country", "single value"),
        ({"inputs": {"amount": [1, 2], "country": ["FR"], "flag": [True]}}, "inputs", "lengths"),
        ({"inputs": {"amount": [], "country": [], "flag": []}}, "rows", "empty"),
        ({"inputs": {"amount": {"a": 1}, "country": "FR", "flag": True}}, "amount", "object"),
        ({"dataframe_split": [1]}, "dataframe_split", "JSON list"),
        ({"dataframe_split": {"data": [[1, "a", True]], "x": 1}}, "dataframe_split.x", "unknown"),
        ({"dataframe_split": {"columns": ["amount"]}}, "dataframe_split.data", "list of rows"),
        ({"dataframe_split": {"columns": "amount", "data": [[1]]}}, "dataframe_split.columns", ""),
        ({"dataframe_split": {"columns": [1], "data": [[1]]}}, "dataframe_split.columns", ""),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, "a", "twice"),
        ({"dataframe_split": {"columns": ["amount", "country", "flag"], "data": []}}, "rows", ""),
        (
            {"dataframe_split": {"columns": ["amount", "country", "flag"], "data": [[1, "FR"]]}},
            "dataframe_split.data[0]",
            "2 values",
        ),
        (
            {"dataframe_split": {"columns": ["amount", "country", "flag"], "data": [1]}},
            "dataframe_split.data[0]",
            "list of 3",
        ),
        (
            {"dataframe_split": {"data": [[1, "a", True]], "index": [1, 2]}},
            "dataframe_split.index",
            "as long as data",
        ),
        ({"dataframe_split": {"data": [[1, "a"]]}}, "dataframe_split.data[0]", "by position"),
        ({"instances": [[1, "FR", True], "x"]}, "instances[1]", "a string"),
        ({"instances": [ROWS[0], 3]}, "instances[1]", "must be an object"),
    ],
)
def test_bad_shapes_name_the_field(payload: Any, field: str, match: str) -> None:
    err = bad(payload, match=match or None)
    assert err.details["field"] == field


def test_unknown_and_missing_columns_are_refused_against_the_signature() -> None:
    err = bad({"dataframe_records": [{**ROWS[0], "zip": "75001"}]}, match="does not name")
    assert err.details == {"field": "zip", "extra": ["zip"]}
    err = bad({"dataframe_records": [{"amount": 1.0}]}, match="missing")
    assert err.details["missing"] == ["country", "flag"]
    err = bad({"inputs": {"amount": [1.0], "flag": [True], "x": [1]}}, match="does not name")
    assert err.details["field"] == "x"
    cols = ["amount", "country", "flag", "zip"]
    err = bad({"dataframe_split": {"columns": cols, "data": [[1, "a", True, 1]]}})
    assert err.details["field"] == "zip"


@pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"\xff\xfe", b'{"a": 1} x'])
def test_malformed_json_is_400(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="JSON") as info:
        parse_invocations(body, JSON, SIG)
    assert info.value.details["field"] == "body"


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_are_refused_with_a_hint(token: bytes) -> None:
    body = b'{"dataframe_split": {"data": [[' + token + b', "FR", true]]}}'
    with pytest.raises(InvalidInput, match="send null for a missing value"):
        parse_invocations(body, JSON, SIG)


def test_null_is_a_null() -> None:
    parsed = parse({"dataframe_split": {"data": [[None, None, True]]}})
    assert columns(parsed) == {"amount": [None], "country": [None], "flag": [True]}


def test_csv_with_a_header_row() -> None:
    body = b"\nflag,amount,country\ntrue,1.5,007\n\nfalse,2,\n"
    parsed = parse_invocations(body, "text/csv; charset=utf-8", SIG)
    assert parsed.n_rows == 2
    cols = columns(parsed)
    assert list(cols) == ["amount", "country", "flag"]
    assert cols["country"] == ["007", None]  # text stays text; an empty cell is a null
    frame = coerce_input(pd.DataFrame(parsed.columns), SIG)
    assert frame["amount"].tolist() == [1.5, 2.0]
    assert frame["flag"].tolist() == [True, False]


def test_csv_without_signature_and_for_a_tensor() -> None:
    parsed = parse_invocations(b"a,b\n1,2\n3,4\n", "text/csv", None)
    assert columns(parsed) == {"a": [1, 3], "b": [2, 4]}
    parsed = parse_invocations(b"a,b\n1,2\n3,4\n", "text/csv", TENSOR)
    assert parsed.array is not None and parsed.array.shape == (2, 2)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"amount,country,flag\n", "no rows"),
        (b"amount,country,flag\n1,2\n1,2,3,4\n", "line 2 .* 2 fields"),
        (b"amount,country,flag,zip\n1,a,true,1\n", "does not name"),
        (b"amount,,flag\n1,a,true\n", "header row"),
        (b"amount,amount,flag\n1,2,true\n", "header row"),
        (b"amount,country\n1,a,true\n", "line 2 of the CSV body has 3 fields"),
        (b"amount,country,flag\n1,a,true\n1,a\n", "line 3 of the CSV body has 2 fields"),
        (b'amount,country,flag\n1,"a,true\n', "2 fields"),
        (b"amount,country,flag\n1,\xff,true\n", "not UTF-8"),
    ],
)
def test_bad_csv(body: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse_invocations(body, "text/csv", SIG)


def test_encode_predictions() -> None:
    assert orjson.loads(encode_predictions(np.array([0, 1]))) == {"predictions": [0, 1]}
    assert orjson.loads(encode_predictions(np.array([0.5, np.nan], dtype=np.float32))) == {
        "predictions": [0.5, None]
    }
    assert orjson.loads(encode_predictions(np.array(["a", None], dtype=object))) == {
        "predictions": ["a", None]
    }
    assert orjson.loads(encode_predictions(np.array([[1, 2]], dtype=np.int64).T)) == {
        "predictions": [[1], [2]]
    }
    frame = pd.DataFrame({"label": ["a", "b"], "score": [0.5, np.nan]})
    assert orjson.loads(encode_predictions(frame)) == {
        "predictions": [{"label": "a", "score": 0.5}, {"label": "b", "score": None}]
    }
    dates = np.array(["2024-01-02"], dtype="datetime64[ns]")
    assert orjson.loads(encode_predictions(dates))["predictions"][0].startswith("2024-01-02")
