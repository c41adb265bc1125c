"""Signatures: inference from examples, JSON round trips, and refusal of malformed specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInput
from mloop.models import ColumnSpec, Signature, TensorSpec, infer_signature


def test_infer_from_frame_types_and_nullable() -> None:
    df = pd.DataFrame(
        {
            "f": [1.5, np.nan],
            "f32": np.array([1, 2], dtype="float32"),
            "i": [1, 2],
            "i8": np.array([1, 2], dtype="int8"),
            "b": [True, False],
            "s": ["x", None],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    sig = infer_signature(df)
    assert isinstance(sig.inputs, list)
    got = {c.name: (c.type, c.nullable) for c in sig.inputs}
    assert got == {
        "f": ("float64", True),
        "f32": ("float32", False),
        "i": ("int64", False),
        "i8": ("int32", False),
        "b": ("bool", False),
        "s": ("string", True),
        "t": ("datetime", False),
    }
    assert sig.outputs is None


def test_infer_from_records_and_dict_of_columns() -> None:
    records = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    sig = infer_signature(records)
    assert sig.column_names == ["a", "b"]
    assert infer_signature({"a": [1, 2], "b": ["x", "y"]}) == sig


def test_infer_tensor_and_outputs() -> None:
    sig = infer_signature(np.zeros((4, 3, 2), dtype="float32"), np.zeros(4, dtype="int64"))
    assert sig.inputs == TensorSpec(dtype="float32", shape=(-1, 3, 2))
    assert sig.outputs == TensorSpec(dtype="int64", shape=(-1,))
    assert sig.is_tensor


def test_round_trip_through_dict() -> None:
    sig = Signature(
        inputs=[ColumnSpec("a", "float64", nullable=True), ColumnSpec("b", "string")],
        outputs=TensorSpec("float32", (-1, 2), name="proba"),
    )
    assert Signature.from_dict(sig.to_dict()) == sig


@pytest.mark.parametrize(
    ("example", "match"),
    [
        (pd.DataFrame({"a": []}), "empty"),
        (np.zeros((0, 3)), "empty"),
        (pd.DataFrame({"m": [1, "x"]}), "column 'm'.*mixes"),
        (np.array([["a", "b"]]), "dtype"),
        (42, "cannot read"),
    ],
)
def test_infer_refuses_what_it_cannot_describe(example: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        infer_signature(example)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"inputs": {"columns": [{"name": "a", "type": "decimal"}]}}, "column 'a'.*decimal"),
        ({"inputs": {"columns": [{"name": "", "type": "bool"}]}}, "name"),
        ({"inputs": {"tensor": {"dtype": "float64", "shape": []}}}, "shape"),
        ({"inputs": {"tensor": {"dtype": "complex64", "shape": [-1]}}}, "dtype"),
        ({"inputs": {"columns": []}}, "no columns"),
        ({"inputs": None}, "no inputs"),
        ({"inputs": {"rows": []}}, "inputs must be"),
        ({"inputs": {"columns": [{"name": "a", "type": "bool"}] * 2}}, "'a' twice"),
        ({"inputs": {"tensor": {"dtype": "bool", "shape": [1]}}, "x": 1}, "unknown keys: x"),
    ],
)
def test_from_dict_refuses_malformed(data: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Signature.from_dict(data)
