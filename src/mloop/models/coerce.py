"""Turn what a caller passes to ``predict`` into exactly what the signature describes.

Accepted input: a pandas DataFrame, a numpy array, a list of JSON records (dicts), a dict of
columns (name -> list) or one record (name -> scalar). The rules (also in docs/models.md):

Column signatures
  - Every signature column must be present: a missing one is refused, naming it.
  - Columns that the signature does not name are refused (``extra_columns="error"``, the
    default) or dropped (``extra_columns="drop"``).
  - A 2-D array is read by position: its width must equal the number of signature columns.
  - bool <- bool only (Python bools in records included); numbers and strings are refused.
  - int32/int64 <- any integer that fits the width; floats only when every value is a whole
    number in range; bools and strings are refused. A nullable integer column that holds nulls
    becomes float64 with NaN (the way pandas stores it).
  - float32/float64 <- floats (float64 -> float32 rounds; a value too large for float32 is
    refused) and integers that the float holds exactly (|v| <= 2**24 for float32, 2**53 for
    float64); bools and strings are refused.
  - string <- strings (and categoricals of strings); numbers and bools are refused.
  - datetime <- datetimes, or ISO 8601 strings that parse; anything else is refused.
  - A null (None, NaN, NaT) in a column that is not nullable is refused, naming the column.

Tensor signatures
  - A DataFrame becomes its values; a list becomes an array.
  - The number of dimensions must match and every fixed dimension must equal the signature's.
  - Casts follow the same rules: integers widen to floats when exact, floats become integers only
    when whole, bool only from bool; NaN is refused in an integer or bool tensor.

Empty input (no rows) is refused everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import numpy as np

from mloop.errors import InvalidInput
from mloop.models.signature import ColumnSpec, Signature, TensorSpec

__all__ = ["ExtraColumns", "coerce_input", "to_frame_or_array"]

ExtraColumns = Literal["error", "drop"]

_EXACT_INT_IN_FLOAT = {"float16": 2**11, "float32": 2**24, "float64": 2**53}
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def to_frame_or_array(data: Any, *, what: str = "input") -> Any:
    """A DataFrame for tabular input (records, dict of columns, DataFrame), else an ndarray."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, Mapping):
        if not data:
            raise InvalidInput(f"the {what} is an empty object; send at least one column")
        if not all(isinstance(k, str) for k in data):
            raise InvalidInput(f"the {what} must have string column names")
        values = list(data.values())
        if all(_is_scalar(v) for v in values):
            return pd.DataFrame([dict(data)])
        if any(_is_scalar(v) for v in values):
            bad = next(k for k, v in data.items() if _is_scalar(v))
            raise InvalidInput(
                f"column '{bad}' of the {what} is a single value while others are lists; "
                "send every column as a list of the same length",
                field=bad,
            )
        lengths = {k: len(v) for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidInput(
                f"the columns of the {what} have different lengths "
                f"({', '.join(f'{k}={n}' for k, n in lengths.items())}); send equal lengths"
            )
        return pd.DataFrame({k: list(v) for k, v in data.items()})
    if isinstance(data, list | tuple):
        if not data:
            raise InvalidInput(f"the {what} is empty; send at least one row")
        if all(isinstance(r, Mapping) for r in data):
            return pd.DataFrame.from_records(list(data))
        if any(isinstance(r, Mapping) for r in data):
            raise InvalidInput(f"the {what} mixes records (objects) with other values")
        try:
            return np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"the {what} is a ragged list: {exc}") from None
    raise InvalidInput(
        f"cannot read the {what} from a {type(data).__name__}; pass a DataFrame, a numpy array, "
        "a list of records or a dict of columns"
    )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bytes | int | float | bool | np.generic)


def coerce_input(data: Any, signature: Signature, *, extra_columns: ExtraColumns = "error") -> Any:
    """Return ``data`` as a DataFrame (column signature) or ndarray (tensor signature)."""
    if extra_columns not in ("error", "drop"):
        raise InvalidInput(f"extra_columns must be 'error' or 'drop', got {extra_columns!r}")
    if isinstance(signature.inputs, list) and isinstance(data, Mapping):
        fast = _coerce_numeric_columns(data, signature.inputs, extra_columns)
        if fast is not None:
            return fast
    value = to_frame_or_array(data)
    if isinstance(signature.inputs, TensorSpec):
        return _coerce_tensor(value, signature.inputs)
    return _coerce_frame(value, signature.inputs, extra_columns)


def _coerce_numeric_columns(
    data: Mapping[str, Any], columns: list[ColumnSpec], extra_columns: ExtraColumns
) -> Any:
    """A dict of 1-D numpy columns that already fit the signature, without an intermediate
    DataFrame (a server's hot path); None hands the input to the general path, which also
    words every refusal."""
    import pandas as pd

    values = list(data.values())
    if not values or not all(
        isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "fiub" for v in values
    ):
        return None
    rows = len(values[0])
    if rows == 0 or any(len(v) != rows for v in values):
        return None
    names = [c.name for c in columns]
    if any(n not in data for n in names) or (extra_columns == "error" and len(data) != len(names)):
        return None
    out = {}
    for spec in columns:
        coerced = _coerce_numeric(data[spec.name], spec)
        if coerced is None:
            return None
        out[spec.name] = coerced
    return pd.DataFrame(out)


def _coerce_frame(value: Any, columns: list[ColumnSpec], extra_columns: ExtraColumns) -> Any:
    import pandas as pd

    names = [c.name for c in columns]
    if isinstance(value, pd.Series):
        value = value.to_frame()
    if isinstance(value, np.ndarray):
        if value.ndim == 1 and len(names) == 1:
            value = value.reshape(-1, 1)
        if value.ndim != 2:
            raise InvalidInput(
                f"input array has shape {value.shape}; the signature expects a 2-D array with "
                f"{len(names)} columns ({', '.join(names)}) or named columns",
                field="shape",
            )
        if value.shape[1] != len(names):
            raise InvalidInput(
                f"input array has {value.shape[1]} columns; the signature expects {len(names)} "
                f"({', '.join(names)}), read by position",
                field="shape",
            )
        value = pd.DataFrame({name: value[:, i] for i, name in enumerate(names)})
    frame = cast(pd.DataFrame, value)
    if frame.shape[0] == 0:
        raise InvalidInput("the input is empty (0 rows); send at least one row", field="rows")
    present = [str(c) for c in frame.columns]
    if len(set(present)) != len(present):
        dup = sorted({c for c in present if present.count(c) > 1})
        raise InvalidInput(f"input names column(s) {', '.join(dup)} twice", field=dup[0])
    missing = [n for n in names if n not in present]
    if missing:
        raise InvalidInput(
            f"input is missing column(s) {', '.join(repr(m) for m in missing)} that the model's "
            f"signature requires; expected columns: {', '.join(names)}",
            field=missing[0],
            missing=missing,
        )
    extra = [c for c in present if c not in names]
    if extra and extra_columns == "error":
        raise InvalidInput(
            f"input has column(s) {', '.join(repr(e) for e in extra)} that the model's signature "
            "does not name; remove them or pass extra_columns='drop'",
            field=extra[0],
            extra=extra,
        )
    frame.columns = present
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        frame = frame.reset_index(drop=True)  # the coerced columns line up by position
    out = {spec.name: _coerce_column(frame[spec.name], spec) for spec in columns}
    return pd.DataFrame(out, index=range(frame.shape[0]))


def _refuse(spec: ColumnSpec, got: str, hint: str = "") -> InvalidInput:
    tail = f"; {hint}" if hint else ""
    return InvalidInput(
        f"column '{spec.name}' must be {spec.type}, got {got}{tail}",
        field=spec.name,
        expected=spec.type,
        got=got,
    )


def _coerce_numeric(arr: np.ndarray[Any, Any], spec: ColumnSpec) -> Any:
    """The common case on plain numpy numbers, without pandas; None when it does not apply."""
    kind, target = arr.dtype.kind, spec.type
    if target in ("float32", "float64") and kind in "fiu":
        if kind == "f":
            finite = np.isfinite(arr)
            if not finite.all():
                n_null = int(np.isnan(arr).sum())
                if n_null and not spec.nullable:
                    return None  # the general path words the error
                finite_values = arr[finite]
            else:
                finite_values = arr
            too_big = finite_values.size and np.abs(finite_values).max() > np.finfo(np.float32).max
            if target == "float32" and too_big:
                return None
            return arr.astype(target, copy=False)
        if arr.size and np.abs(arr).max() > _EXACT_INT_IN_FLOAT[target]:
            return None
        return arr.astype(target)
    if target in ("int32", "int64") and kind in "iu":
        lo, hi = _INT_RANGE[target]
        if arr.size and (arr.min() < lo or arr.max() > hi):
            return None
        return arr.astype(target, copy=False)
    if target == "bool" and kind == "b":
        return arr
    return None


def _coerce_column(series: Any, spec: ColumnSpec) -> Any:
    import pandas as pd
    from pandas.api import types as ptypes

    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiub":
        fast = _coerce_numeric(series.to_numpy(), spec)
        if fast is not None:
            return fast
    nulls = series.isna()
    n_null = int(nulls.sum())
    if n_null and not spec.nullable:
        raise InvalidInput(
            f"column '{spec.name}' has {n_null} null value(s) (None/NaN) but the signature says "
            "it is not nullable; fill them or save the model with nullable=True for this column",
            field=spec.name,
        )
    dtype = series.dtype
    values = series.dropna()
    target = spec.type
    got = str(dtype)
    if dtype is np.dtype(object) or isinstance(dtype, pd.StringDtype):
        py_kinds = {type(v).__name__ for v in values.tolist()}
        got = "/".join(sorted(py_kinds)) or got
        # Records from JSON arrive as object columns: type them by their Python values.
        if py_kinds and py_kinds <= {"bool"}:
            series = series.astype("boolean") if n_null else series.astype(bool)
            dtype = series.dtype
        elif py_kinds and py_kinds <= {"int", "float"}:
            series = pd.to_numeric(series)
            dtype = series.dtype
    if target == "bool":
        if not ptypes.is_bool_dtype(dtype):
            raise _refuse(spec, got, "send true/false values")
        return series.astype(object).where(~nulls, None) if n_null else series.astype(bool)
    if target in ("int32", "int64"):
        if ptypes.is_bool_dtype(dtype) or not ptypes.is_numeric_dtype(dtype):
            raise _refuse(spec, got, "send whole numbers")
        numbers = pd.to_numeric(series.dropna())
        if ptypes.is_float_dtype(numbers.dtype):
            arr = numbers.to_numpy(dtype="float64")
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
                raise _refuse(
                    spec, got + " with fractional or infinite values", "send whole numbers"
                )
        lo, hi = _INT_RANGE[target]
        if len(numbers) and (numbers.min() < lo or numbers.max() > hi):
            raise _refuse(spec, got + " out of range", f"values must lie in [{lo}, {hi}]")
        if n_null:
            return pd.to_numeric(series).astype("float64")
        return pd.to_numeric(series).astype(target)
    if target in ("float32", "float64"):
        if ptypes.is_bool_dtype(dtype) or not ptypes.is_numeric_dtype(dtype):
            raise _refuse(spec, got, "send numbers")
        numbers = pd.to_numeric(series)
        if ptypes.is_integer_dtype(numbers.dtype) and len(values):
            limit = _EXACT_INT_IN_FLOAT[target]
            if numbers.abs().max() > limit:
                raise _refuse(
                    spec,
                    got + f" with values beyond ±{limit}",
                    f"{target} cannot hold them exactly",
                )
        arr = numbers.to_numpy(dtype="float64", na_value=np.nan)
        if target == "float32":
            finite = arr[np.isfinite(arr)]
            if finite.size and np.abs(finite).max() > np.finfo(np.float32).max:
                raise _refuse(spec, got + " too large for float32")
        return pd.Series(arr.astype(target), index=series.index)
    if target == "string":
        if isinstance(dtype, pd.CategoricalDtype):
            series = series.astype(object)
            values = series.dropna()
        if not all(isinstance(v, str) for v in values.tolist()):
            raise _refuse(spec, got, "send text values")
        return series.astype(object).where(~nulls, None)
    # datetime
    if ptypes.is_datetime64_any_dtype(dtype):
        return series
    if all(isinstance(v, str) for v in values.tolist()):
        try:
            return pd.to_datetime(series, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise _refuse(spec, "text that is not an ISO 8601 date", str(exc)) from None
    raise _refuse(spec, got, "send datetimes or ISO 8601 strings")


def _coerce_tensor(value: Any, spec: TensorSpec) -> np.ndarray[Any, Any]:
    import pandas as pd

    label = f"tensor '{spec.name}'" if spec.name else "tensor input"
    field = spec.name or "tensor"
    if isinstance(value, pd.DataFrame | pd.Series):
        try:
            value = value.to_numpy()
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{label}: cannot read the DataFrame as an array: {exc}") from None
    arr = np.asarray(value)
    if arr.ndim != len(spec.shape):
        raise InvalidInput(
            f"{label} has shape {list(arr.shape)} ({arr.ndim} dimensions); the signature expects "
            f"{list(spec.shape)} ({len(spec.shape)} dimensions, -1 = any size)",
            field=field,
        )
    for i, (got, want) in enumerate(zip(arr.shape, spec.shape, strict=True)):
        if want not in (-1, got):
            raise InvalidInput(
                f"{label} has shape {list(arr.shape)}; the signature expects {list(spec.shape)}: "
                f"dimension {i} must be {want}, got {got}",
                field=field,
            )
    if arr.shape[0] == 0:
        raise InvalidInput(f"{label} is empty (0 rows); send at least one row", field=field)
    target = np.dtype(spec.dtype)
    src = arr.dtype
    if src == target:
        return arr
    refuse = InvalidInput(
        f"{label} has dtype {src}, which does not convert to {target} without losing "
        f"information; send {target} values",
        field=field,
        expected=str(target),
        got=str(src),
    )
    if src.kind == "O" or src.kind in "USV":
        try:
            arr = arr.astype("float64")
        except (ValueError, TypeError):
            raise refuse from None
        src = arr.dtype
    if target.kind == "b":
        if src.kind != "b":
            raise refuse
        return arr.astype(target)
    if src.kind == "b":
        raise refuse
    if target.kind in "iu":
        if src.kind == "f" and (not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr))):
            raise refuse
        info = np.iinfo(target)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise refuse
        return arr.astype(target)
    if target.kind == "f":
        if src.kind in "iu" and arr.size:
            limit = _EXACT_INT_IN_FLOAT.get(target.name, 2**53)
            if np.abs(arr.astype("float64")).max() > limit:
                raise refuse
        if src.kind == "f" and target.itemsize < src.itemsize:
            finite = arr[np.isfinite(arr)]
            if finite.size and np.abs(finite).max() > np.finfo(target).max:
                raise refuse
        return arr.astype(target)
    raise refuse
