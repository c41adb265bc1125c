"""Signatures: what a model takes (named, typed columns or one tensor) and what it returns.

A signature is inferred from an input example (:func:`infer_signature`) or written by hand, is
stored in the package manifest, and is enforced at predict time by :mod:`mloop.models.coerce`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import numpy as np

from mloop.errors import InvalidInput

__all__ = [
    "COLUMN_TYPES",
    "TENSOR_DTYPES",
    "ColumnSpec",
    "ColumnType",
    "Signature",
    "TensorSpec",
    "infer_signature",
]

ColumnType = Literal["bool", "int32", "int64", "float32", "float64", "string", "datetime"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
"""The types a column of a signature may have."""

TENSOR_DTYPES: tuple[str, ...] = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)
"""The numpy dtypes a tensor of a signature may have."""


@dataclass(frozen=True)
class ColumnSpec:
    """One named, typed column; ``nullable`` says whether nulls (None, NaN, NaT) are accepted."""

    name: str
    type: ColumnType
    nullable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(f"signature column name {self.name!r} must be a non-empty string")
        if self.type not in COLUMN_TYPES:
            raise InvalidInput(
                f"signature column '{self.name}' has type {self.type!r}; "
                f"use one of {', '.join(COLUMN_TYPES)}",
                field=self.name,
            )
        if not isinstance(self.nullable, bool):
            raise InvalidInput(f"signature column '{self.name}': nullable must be true or false")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "type": self.type, "nullable": self.nullable}

    @classmethod
    def from_dict(cls, data: Any) -> ColumnSpec:
        """Parse the form written by :meth:`to_dict`; raise InvalidInput naming what is wrong."""
        if not isinstance(data, dict):
            raise InvalidInput(f"signature column must be an object, got {data!r}")
        unknown = set(data) - {"name", "type", "nullable"}
        if unknown:
            raise InvalidInput(f"signature column has unknown keys: {', '.join(sorted(unknown))}")
        return cls(
            name=data.get("name", ""),
            type=data.get("type", ""),
            nullable=data.get("nullable", False),
        )


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: a numpy dtype and a shape where ``-1`` is a free dimension (the batch)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        label = f"tensor '{self.name}'" if self.name else "tensor"
        if self.dtype not in TENSOR_DTYPES:
            raise InvalidInput(
                f"signature {label} has dtype {self.dtype!r}; "
                f"use one of {', '.join(TENSOR_DTYPES)}",
                field=self.name or "tensor",
            )
        shape = tuple(self.shape)
        if not shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and (d == -1 or d >= 0) for d in shape
        ):
            raise InvalidInput(
                f"signature {label} has shape {list(self.shape)!r}; use a non-empty list of "
                "sizes, -1 for a free dimension",
                field=self.name or "tensor",
            )
        object.__setattr__(self, "shape", shape)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        body: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape)}
        if self.name is not None:
            body["name"] = self.name
        return body

    @classmethod
    def from_dict(cls, data: Any) -> TensorSpec:
        """Parse the form written by :meth:`to_dict`; raise InvalidInput naming what is wrong."""
        if not isinstance(data, dict):
            raise InvalidInput(f"signature tensor must be an object, got {data!r}")
        unknown = set(data) - {"dtype", "shape", "name"}
        if unknown:
            raise InvalidInput(f"signature tensor has unknown keys: {', '.join(sorted(unknown))}")
        shape = data.get("shape")
        if not isinstance(shape, list):
            raise InvalidInput(f"signature tensor shape must be a list, got {shape!r}")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"signature tensor name must be a string, got {name!r}")
        return cls(dtype=data.get("dtype", ""), shape=tuple(shape), name=name)


Inputs = list[ColumnSpec] | TensorSpec


@dataclass(frozen=True)
class Signature:
    """A model's inputs (columns or one tensor) and, optionally, its outputs."""

    inputs: list[ColumnSpec] | TensorSpec
    outputs: list[ColumnSpec] | TensorSpec | None = field(default=None)

    def __post_init__(self) -> None:
        for label, spec in (("inputs", self.inputs), ("outputs", self.outputs)):
            if isinstance(spec, list):
                if not spec:
                    raise InvalidInput(f"signature {label} has no columns")
                seen: set[str] = set()
                for col in spec:
                    if not isinstance(col, ColumnSpec):
                        raise InvalidInput(f"signature {label} must hold ColumnSpec, got {col!r}")
                    if col.name in seen:
                        raise InvalidInput(
                            f"signature {label} names column '{col.name}' twice", field=col.name
                        )
                    seen.add(col.name)
            elif spec is not None and not isinstance(spec, TensorSpec):
                raise InvalidInput(
                    f"signature {label} must be a list of ColumnSpec or a TensorSpec, got {spec!r}"
                )

    @property
    def is_tensor(self) -> bool:
        """True when the inputs are one tensor rather than named columns."""
        return isinstance(self.inputs, TensorSpec)

    @property
    def column_names(self) -> list[str]:
        """Names of the input columns, in order ([] for a tensor signature)."""
        return [] if isinstance(self.inputs, TensorSpec) else [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"inputs": {"columns": [...]} or {"tensor": {...}}, ...}``."""
        return {"inputs": _spec_to_dict(self.inputs), "outputs": _spec_to_dict(self.outputs)}

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        """Parse the form written by :meth:`to_dict`; raise InvalidInput naming what is wrong."""
        if not isinstance(data, dict):
            raise InvalidInput(f"signature must be an object, got {data!r}")
        unknown = set(data) - {"inputs", "outputs"}
        if unknown:
            raise InvalidInput(f"signature has unknown keys: {', '.join(sorted(unknown))}")
        inputs = _spec_from_dict(data.get("inputs"), "inputs")
        if inputs is None:
            raise InvalidInput("signature has no inputs")
        return cls(inputs=inputs, outputs=_spec_from_dict(data.get("outputs"), "outputs"))


def _spec_to_dict(spec: list[ColumnSpec] | TensorSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    if isinstance(spec, TensorSpec):
        return {"tensor": spec.to_dict()}
    return {"columns": [c.to_dict() for c in spec]}


def _spec_from_dict(data: Any, label: str) -> list[ColumnSpec] | TensorSpec | None:
    if data is None:
        return None
    if not isinstance(data, dict) or len(data) != 1 or not ({"columns", "tensor"} & set(data)):
        raise InvalidInput(
            f"signature {label} must be {{'columns': [...]}} or {{'tensor': {{...}}}}, got {data!r}"
        )
    if "tensor" in data:
        return TensorSpec.from_dict(data["tensor"])
    columns = data["columns"]
    if not isinstance(columns, list):
        raise InvalidInput(f"signature {label} columns must be a list, got {columns!r}")
    return [ColumnSpec.from_dict(c) for c in columns]


def infer_signature(input_example: Any, output_example: Any = None) -> Signature:
    """Infer a signature from an input example (and an output example, when given).

    A DataFrame, a dict of columns or a list of records gives named columns; a numpy array (or a
    nested list of numbers) gives a tensor whose first dimension is free (-1). A column is
    nullable when the example holds a null in it.
    """
    inputs = _infer_spec(input_example, "input example")
    outputs = None if output_example is None else _infer_spec(output_example, "output example")
    return Signature(inputs=inputs, outputs=outputs)


def _infer_spec(example: Any, label: str) -> list[ColumnSpec] | TensorSpec:
    import pandas as pd

    from mloop.models.coerce import to_frame_or_array

    data = to_frame_or_array(example, what=label)
    if isinstance(data, pd.Series):
        data = data.to_frame(name=str(data.name) if data.name is not None else "output")
    if isinstance(data, pd.DataFrame):
        if data.shape[0] == 0:
            raise InvalidInput(f"the {label} is empty; give at least one row")
        return [_infer_column(str(name), data[name], label) for name in data.columns]
    arr = cast(np.ndarray[Any, Any], data)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise InvalidInput(f"the {label} is empty; give at least one row")
    dtype = arr.dtype.name
    if dtype not in TENSOR_DTYPES:
        raise InvalidInput(
            f"the {label} has dtype {dtype}; a tensor must be one of {', '.join(TENSOR_DTYPES)} "
            "(use a DataFrame for strings or mixed columns)"
        )
    return TensorSpec(dtype=dtype, shape=(-1, *arr.shape[1:]))


def _infer_column(name: str, series: Any, label: str) -> ColumnSpec:
    import pandas as pd
    from pandas.api import types as ptypes

    nullable = bool(series.isna().any())
    dtype = series.dtype
    kind: ColumnType
    if ptypes.is_bool_dtype(dtype):
        kind = "bool"
    elif ptypes.is_integer_dtype(dtype):
        np_dtype = np.dtype(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype)
        small = np_dtype.itemsize < 4 or (np_dtype.itemsize == 4 and np_dtype.kind == "i")
        kind = "int32" if small else "int64"
    elif ptypes.is_float_dtype(dtype):
        np_dtype = np.dtype(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype)
        kind = "float64" if np_dtype.itemsize >= 8 else "float32"
    elif ptypes.is_datetime64_any_dtype(dtype):
        kind = "datetime"
    elif isinstance(dtype, pd.CategoricalDtype) or ptypes.is_string_dtype(dtype):
        values = series.dropna()
        if not all(isinstance(v, str) for v in values.tolist()):
            kinds = sorted({type(v).__name__ for v in values.tolist()})
            # A column of Python bools or ints (JSON records) is typed by its values.
            if kinds == ["bool"]:
                kind = "bool"
            elif kinds == ["int"]:
                kind = "int64"
            elif set(kinds) <= {"int", "float"} and "float" in kinds:
                kind = "float64"
            else:
                raise InvalidInput(
                    f"column '{name}' of the {label} mixes Python types ({', '.join(kinds)}); "
                    "convert it to one type first",
                    field=name,
                )
        else:
            kind = "string"
    else:
        raise InvalidInput(
            f"column '{name}' of the {label} has dtype {dtype}, which a signature cannot "
            f"describe; use one of {', '.join(COLUMN_TYPES)}",
            field=name,
        )
    return ColumnSpec(name=name, type=kind, nullable=nullable)
