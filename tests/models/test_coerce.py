"""Coercion of predict input to the signature: every rule in docs/models.md, good and bad."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInput
from mloop.models import ColumnSpec, Signature, TensorSpec, coerce_input, infer_signature

SIG = Signature(
    inputs=[
        ColumnSpec("amount", "float64"),
        ColumnSpec("count", "int64"),
        ColumnSpec("flag", "bool"),
        ColumnSpec("country", "string", nullable=True),
    ]
)
ROW = {"amount": 1.5, "count": 3, "flag": True, "country": "FR"}


def test_accepts_frame_records_dict_and_single_record() -> None:
    want = coerce_input(pd.DataFrame([ROW]), SIG)
    assert list(want.columns) == ["amount", "count", "flag", "country"]
    assert [str(t) for t in want.dtypes] == ["float64", "int64", "bool", "object"]
    for data in ([ROW], {k: [v] for k, v in ROW.items()}, ROW):
        pd.testing.assert_frame_equal(coerce_input(data, SIG), want)


def test_columns_are_reordered_and_ints_widen_to_float() -> None:
    out = coerce_input([{"country": "FR", "flag": False, "count": 2, "amount": 7}], SIG)
    assert list(out.columns) == SIG.column_names
    assert out["amount"].dtype == np.float64 and out["amount"][0] == 7.0


def test_whole_floats_narrow_to_int() -> None:
    out = coerce_input([{**ROW, "count": 4.0}], SIG)
    assert out["count"].dtype == np.int64 and out["count"][0] == 4


def test_array_is_read_by_position() -> None:
    sig = Signature(inputs=[ColumnSpec("a", "float64"), ColumnSpec("b", "float64")])
    out = coerce_input(np.array([[1, 2], [3, 4]]), sig)
    assert out["b"].tolist() == [2.0, 4.0]
    with pytest.raises(InvalidInput, match=r"3 columns; the signature expects 2") as err:
        coerce_input(np.zeros((2, 3)), sig)
    assert err.value.details["field"] == "shape"


def test_missing_column_is_named() -> None:
    row = {k: v for k, v in ROW.items() if k != "count"}
    with pytest.raises(InvalidInput, match=r"missing column.*'count'") as err:
        coerce_input([row], SIG)
    assert err.value.details["field"] == "count"


def test_extra_column_is_refused_or_dropped() -> None:
    row = {**ROW, "customer_id": 17}
    with pytest.raises(InvalidInput, match=r"'customer_id'.*extra_columns='drop'") as err:
        coerce_input([row], SIG)
    assert err.value.details["field"] == "customer_id"
    out = coerce_input([row], SIG, extra_columns="drop")
    assert list(out.columns) == SIG.column_names
    with pytest.raises(InvalidInput, match=r"extra_columns"):
        coerce_input([row], SIG, extra_columns="keep")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("amount", "12.5", "column 'amount' must be float64, got str"),
        ("amount", True, "column 'amount' must be float64, got bool"),
        ("amount", 2**60, "column 'amount' must be float64.*beyond"),
        ("count", 2.5, "column 'count' must be int64.*fractional"),
        ("count", "3", "column 'count' must be int64, got str"),
        ("count", True, "column 'count' must be int64, got bool"),
        ("flag", 1, "column 'flag' must be bool, got int"),
        ("flag", "true", "column 'flag' must be bool, got str"),
        ("country", 33, "column 'country' must be string, got int"),
    ],
)
def test_lossy_conversions_are_refused(column: str, value: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as err:
        coerce_input([{**ROW, column: value}], SIG)
    assert err.value.details["field"] == column


def test_int_range_is_checked() -> None:
    sig = Signature(inputs=[ColumnSpec("n", "int32")])
    assert coerce_input({"n": [2**31 - 1]}, sig)["n"].dtype == np.int32
    with pytest.raises(InvalidInput, match=r"column 'n' must be int32.*out of range"):
        coerce_input({"n": [2**31]}, sig)


def test_float32_rounds_but_refuses_overflow() -> None:
    sig = Signature(inputs=[ColumnSpec("x", "float32")])
    assert coerce_input({"x": [0.1]}, sig)["x"].dtype == np.float32
    with pytest.raises(InvalidInput, match=r"column 'x'.*too large for float32"):
        coerce_input({"x": [1e300]}, sig)


def test_nulls_only_in_nullable_columns() -> None:
    out = coerce_input([{**ROW, "country": None}], SIG)
    assert out["country"][0] is None
    for column in ("amount", "count", "flag"):
        with pytest.raises(InvalidInput, match=f"column '{column}' has 1 null") as err:
            coerce_input([ROW, {**ROW, column: None}], SIG)
        assert err.value.details["field"] == column
    with pytest.raises(InvalidInput, match=r"column 'amount' has 1 null"):
        coerce_input(pd.DataFrame({**{k: [v] for k, v in ROW.items()}, "amount": [np.nan]}), SIG)


def test_nullable_int_with_nulls_becomes_float() -> None:
    sig = Signature(inputs=[ColumnSpec("n", "int64", nullable=True)])
    out = coerce_input([{"n": 1}, {"n": None}], sig)
    assert out["n"].dtype == np.float64 and np.isnan(out["n"][1])


def test_datetime_from_iso_strings() -> None:
    sig = Signature(inputs=[ColumnSpec("t", "datetime")])
    out = coerce_input({"t": ["2024-05-01T10:00:00", "2024-05-02"]}, sig)
    assert pd.api.types.is_datetime64_any_dtype(out["t"])
    with pytest.raises(InvalidInput, match=r"column 't' must be datetime.*ISO 8601"):
        coerce_input({"t": ["yesterday"]}, sig)
    with pytest.raises(InvalidInput, match=r"column 't' must be datetime"):
        coerce_input({"t": [5]}, sig)


@pytest.mark.parametrize("data", [pd.DataFrame(columns=list(ROW)), [], {}, {k: [] for k in ROW}])
def test_empty_input_is_refused(data: object) -> None:
    with pytest.raises(InvalidInput, match=r"empty"):
        coerce_input(data, SIG)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"amount": [1.0, 2.0], "count": [1]}, "different lengths"),
        ({"amount": 1.0, "count": [1]}, "column 'amount' of the input is a single value"),
        ([ROW, 3], "mixes records"),
        ("text", "cannot read the input from a str"),
        (np.zeros(4), "shape"),
    ],
)
def test_malformed_containers(data: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        coerce_input(data, SIG)


TENSOR = Signature(inputs=TensorSpec("float32", (-1, 3), name="pixels"))


def test_tensor_accepts_lists_frames_and_widens_ints() -> None:
    out = coerce_input([[1, 2, 3]], TENSOR)
    assert out.dtype == np.float32 and out.shape == (1, 3)
    out = coerce_input(pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}), TENSOR)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros((2, 4)), r"tensor 'pixels' has shape \[2, 4\].*dimension 1 must be 3, got 4"),
        (np.zeros(3), r"tensor 'pixels' has shape \[3\] \(1 dimensions\)"),
        (np.zeros((0, 3)), "tensor 'pixels' is empty"),
        (np.array([[True, False, True]]), "tensor 'pixels' has dtype bool"),
        (np.array([[2**30, 1, 1]]), "tensor 'pixels' has dtype int64"),
        (np.array([["a", "b", "c"]]), "tensor 'pixels' has dtype"),
    ],
)
def test_tensor_refusals_name_the_tensor(data: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as err:
        coerce_input(data, TENSOR)
    assert err.value.details["field"] == "pixels"


def test_tensor_float_to_int_only_when_whole() -> None:
    sig = Signature(inputs=TensorSpec("int64", (-1,)))
    assert coerce_input(np.array([1.0, 2.0]), sig).dtype == np.int64
    with pytest.raises(InvalidInput, match=r"tensor input has dtype float64"):
        coerce_input(np.array([1.5, np.nan]), sig)


def test_a_frame_with_any_index_keeps_its_values() -> None:
    frame = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0], "s": ["x", "y", "z"], "b": [None, 1.0, 2.0]}, index=[5, 6, 7]
    )
    out = coerce_input(frame, infer_signature(frame))
    assert out["s"].tolist() == ["x", "y", "z"] and out["a"].tolist() == [1.0, 2.0, 3.0]
    assert out["b"].isna().tolist() == [True, False, False]


def test_numpy_fast_path_still_refuses_what_it_must() -> None:
    sig = Signature(inputs=[ColumnSpec("x", "float32"), ColumnSpec("n", "int32")])
    with pytest.raises(InvalidInput, match=r"'x'.*null"):
        coerce_input(pd.DataFrame({"x": [np.nan], "n": [1]}), sig)
    with pytest.raises(InvalidInput, match="too large for float32"):
        coerce_input(pd.DataFrame({"x": [1e300], "n": [1]}), sig)
    with pytest.raises(InvalidInput, match="out of range"):
        coerce_input(pd.DataFrame({"x": [1.0], "n": [2**40]}), sig)
    with pytest.raises(InvalidInput, match="beyond"):
        coerce_input(pd.DataFrame({"x": [2**30], "n": [1]}), sig)
    out = coerce_input(pd.DataFrame({"x": [1, 2], "n": np.array([3, 4], dtype="int64")}), sig)
    assert out.dtypes.tolist() == [np.dtype("float32"), np.dtype("int32")]


def test_a_dict_of_numpy_columns_takes_the_fast_path_with_the_same_rules() -> None:
    sig = Signature(inputs=[ColumnSpec("x", "float64"), ColumnSpec("n", "int64")])
    out = coerce_input({"n": np.array([1, 2]), "x": np.array([0.5, 1.5])}, sig)
    assert list(out.columns) == ["x", "n"] and out["n"].dtype == np.int64
    with pytest.raises(InvalidInput, match="missing column"):
        coerce_input({"x": np.array([0.5])}, sig)
    with pytest.raises(InvalidInput, match="'zip'"):
        coerce_input({"x": np.array([0.5]), "n": np.array([1]), "zip": np.array([3])}, sig)
    with pytest.raises(InvalidInput, match="'n' must be int64"):
        coerce_input({"x": np.array([0.5]), "n": np.array([True])}, sig)
    with pytest.raises(InvalidInput, match=r"'n'.*fractional"):
        coerce_input({"x": np.array([0.5]), "n": np.array([1.5])}, sig)
