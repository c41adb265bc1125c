"""Expectations: declarative, vectorised checks on a data frame, each giving an ExpectationResult.

Conventions every expectation follows:

- A check never raises on data: a missing column, a column of the wrong type or an empty frame
  give a *failed* (or vacuously passed) result with a message, so validation stays lazy.
- Value checks (``in_range``, ``in_set``, ``matches_regex``, ``unique``) skip nulls: NaN, None,
  NaT and pd.NA are not counted in ``element_count``; use ``not_null`` to constrain them.
  ``not_null`` counts NaN as null. ``+inf``/``-inf`` are values, not nulls: they fail any finite
  range.
- ``observed`` is the share of unexpected values for row checks (for ``not_null``, the null
  fraction), the [min, max] of the numeric values for ``in_range``, the statistic for aggregate
  checks, the logical type for ``column_type`` and the row count for ``row_count_between``.
- ``in_range`` compares numbers: strings in object or string columns are converted where they
  parse (others are unexpected); booleans, datetimes and categoricals are not numbers, so every
  value is unexpected.
- ``mostly`` is the fraction (0..1) of evaluated elements that must pass; with no elements to
  evaluate (an empty frame or an all-null column) a ``mostly`` check passes vacuously.
- Aggregate checks (``mean_between``, ``median_between``, ``std_between``) fail when there is no
  finite statistic to compare (no non-null values, a non-numeric column, or an infinite value).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput

__all__ = [
    "BUILT_IN_EXPECTATIONS",
    "LOGICAL_TYPES",
    "ColumnExists",
    "ColumnType",
    "Expectation",
    "ExpectationResult",
    "InRange",
    "InSet",
    "MatchesRegex",
    "MeanBetween",
    "MedianBetween",
    "NotNull",
    "RowCountBetween",
    "StdBetween",
    "Unique",
    "as_frame",
    "check_fraction",
    "failing_sample",
    "logical_type",
]

LOGICAL_TYPES: tuple[str, ...] = (
    "integer",
    "float",
    "numeric",
    "string",
    "boolean",
    "datetime",
    "categorical",
)

# What ``infer_dtype`` says about an object column, mapped to our logical types.
_INFERRED: dict[str, str] = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
    "empty": "empty",
}

_FRACTION: Any = object()  # "report the unexpected fraction as the observed value"


def as_frame(data: Any) -> pd.DataFrame:
    """Return ``data`` as a pandas DataFrame; accepts a DataFrame or a pyarrow Table."""
    if isinstance(data, pd.DataFrame):
        return data
    to_pandas = getattr(data, "to_pandas", None)
    if type(data).__module__.startswith("pyarrow") and callable(to_pandas):
        frame = to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    raise InvalidInput(
        f"expected a pandas DataFrame or a pyarrow Table, got {type(data).__name__}; "
        "convert the data to one of them first"
    )


def logical_type(series: pd.Series) -> str:
    """The logical type of a column: integer, float, string, boolean, datetime, categorical, …

    Object columns are inferred from their non-null values; ``"mixed"`` means several types,
    ``"empty"`` means no non-null values.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_object_dtype(dtype):
        return _INFERRED.get(pd.api.types.infer_dtype(series, skipna=True), "mixed")
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype):
        return "string"
    return str(dtype)


def _type_matches(observed: str, expected: str) -> bool:
    if observed == "empty":  # no values, so no evidence against any type
        return True
    if expected == "numeric":
        return observed in ("integer", "float")
    return observed == expected


@dataclass(frozen=True)
class ExpectationResult:
    """The outcome of one expectation on one frame."""

    expectation: Expectation
    success: bool
    observed: Any
    element_count: int
    unexpected_count: int
    message: str
    sample: tuple[dict[str, Any], ...] = ()

    @property
    def unexpected_fraction(self) -> float:
        """Share of evaluated elements that failed (0.0 when nothing was evaluated)."""
        if self.element_count == 0:
            return 0.0
        return self.unexpected_count / self.element_count

    @property
    def kind(self) -> str:
        """The expectation's name, as written in YAML (e.g. ``in_range``)."""
        return self.expectation.kind

    @property
    def column(self) -> str | None:
        """The column checked, or None for table-level expectations."""
        return getattr(self.expectation, "column", None)


def _python(value: Any) -> Any:
    """A NumPy scalar as the matching Python scalar; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def check_fraction(kind: str, name: str, value: Any) -> None:
    """Refuse a ``mostly``-like parameter that is not a number in [0, 1], naming ``kind``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInput(
            f"{kind}: '{name}' must be a number between 0 and 1 (the fraction of rows that "
            f"must pass), got {value!r}",
            field=name,
        )


def _check_bounds(kind: str, low: Any, high: Any, names: tuple[str, str] = ("min", "max")) -> None:
    for name, value in zip(names, (low, high), strict=True):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise InvalidInput(
                f"{kind}: '{name}' must be a number or null, got {value!r}", field=name
            )
    if low is None and high is None:
        raise InvalidInput(
            f"{kind}: give at least one of '{names[0]}' and '{names[1]}'", field=names[0]
        )
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            f"{kind}: '{names[0]}' ({low!r}) is greater than '{names[1]}' ({high!r}); "
            "swap them or fix one",
            field=names[0],
        )


def _check_column(kind: str, column: Any) -> None:
    if not isinstance(column, str) or not column:
        raise InvalidInput(
            f"{kind}: 'column' must be a non-empty string, got {column!r}", field="column"
        )


@dataclass(frozen=True)
class Expectation:
    """Base of every expectation: a frozen set of parameters and a vectorised ``check``."""

    kind: ClassVar[str] = ""
    counts_rows: ClassVar[bool] = False
    """True when the check counts passing and failing rows (its result has a failing sample)."""

    def check(self, frame: Any, *, sample_size: int = 5) -> ExpectationResult:
        """Evaluate the expectation on a DataFrame or pyarrow Table."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The parameters that differ from their defaults, as written in YAML."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def _result(
        self,
        success: bool,
        message: str,
        *,
        observed: Any = None,
        element_count: int = 0,
        unexpected_count: int = 0,
        sample: tuple[dict[str, Any], ...] = (),
    ) -> ExpectationResult:
        return ExpectationResult(
            expectation=self,
            success=bool(success),
            observed=_python(observed),
            element_count=int(element_count),
            unexpected_count=int(unexpected_count),
            message=message,
            sample=sample,
        )


def failing_sample(
    frame: pd.DataFrame, columns: Sequence[str], failing: Any, n: int
) -> tuple[dict[str, Any], ...]:
    """Up to ``n`` failing rows: their index and the values of ``columns``."""
    if n <= 0:
        return ()
    rows = frame.loc[failing, list(columns)].head(n)
    # By position, so that a duplicated column name cannot turn a column into a frame.
    values = [rows.iloc[:, j].tolist() for j in range(len(columns))]
    return tuple(
        {"index": _python(idx), **{c: _python(values[j][i]) for j, c in enumerate(columns)}}
        for i, idx in enumerate(rows.index.tolist())
    )


@dataclass(frozen=True)
class _ColumnExpectation(Expectation):
    """An expectation about one column."""

    column: str

    def __post_init__(self) -> None:
        _check_column(self.kind, self.column)

    def check(self, frame: Any, *, sample_size: int = 5) -> ExpectationResult:
        """Evaluate the expectation; a missing column gives a failed result."""
        frame = as_frame(frame)
        if self.column not in frame.columns:
            return self._result(False, f"column '{self.column}' is missing")
        copies = int((frame.columns == self.column).sum())
        if copies > 1:
            return self._result(False, f"column '{self.column}' appears {copies} times")
        return self._check_column(frame, frame[self.column], sample_size)

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        raise NotImplementedError

    def _mask_result(
        self,
        frame: pd.DataFrame,
        unexpected: Any,
        *,
        element_count: int,
        mostly: float,
        n: int,
        what: str,
        observed: Any = _FRACTION,
    ) -> ExpectationResult:
        """Result from a boolean mask of unexpected rows, honouring ``mostly``."""
        unexpected_mask = np.asarray(unexpected, dtype=bool)
        bad = int(unexpected_mask.sum())
        success = element_count == 0 or (element_count - bad) / element_count >= mostly
        fraction = bad / element_count if element_count else 0.0
        sample = failing_sample(frame, [self.column], unexpected_mask, n) if bad else ()
        need = "" if mostly == 1 else f" (mostly={mostly} allows {1 - mostly:.4g})"
        message = (
            f"{bad} of {element_count} values {what} ({fraction:.2%}){need}"
            if bad
            else f"all {element_count} values pass"
        )
        return self._result(
            success,
            message,
            observed=fraction if observed is _FRACTION else observed,
            element_count=element_count,
            unexpected_count=bad,
            sample=sample,
        )


@dataclass(frozen=True)
class ColumnExists(_ColumnExpectation):
    """The column is present."""

    kind: ClassVar[str] = "column_exists"

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        return self._result(True, f"column '{self.column}' exists", observed=True)


@dataclass(frozen=True)
class ColumnType(_ColumnExpectation):
    """The column has a logical type: integer, float, numeric, string, boolean, datetime, …"""

    kind: ClassVar[str] = "column_type"
    type: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.type not in LOGICAL_TYPES:
            raise InvalidInput(
                f"{self.kind}: unknown 'type' {self.type!r}; use one of {', '.join(LOGICAL_TYPES)}",
                field="type",
            )

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        observed = logical_type(series)
        ok = _type_matches(observed, self.type)
        verb = "is" if ok else "is not"
        return self._result(
            ok, f"column {verb} {self.type} (observed {observed})", observed=observed
        )


@dataclass(frozen=True)
class NotNull(_ColumnExpectation):
    """At least ``mostly`` of the rows are not null (NaN, None, NaT and pd.NA are null)."""

    kind: ClassVar[str] = "not_null"
    counts_rows: ClassVar[bool] = True
    mostly: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction(self.kind, "mostly", self.mostly)

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        nulls = series.isna().to_numpy(dtype=bool)
        return self._mask_result(
            frame, nulls, element_count=len(series), mostly=self.mostly, n=n, what="are null"
        )


@dataclass(frozen=True)
class Unique(_ColumnExpectation):
    """Non-null values are unique; every row of a duplicated value counts as unexpected."""

    kind: ClassVar[str] = "unique"
    counts_rows: ClassVar[bool] = True

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        present = series.notna().to_numpy(dtype=bool)
        dup = series.duplicated(keep=False).to_numpy(dtype=bool) & present
        return self._mask_result(
            frame, dup, element_count=int(present.sum()), mostly=1.0, n=n, what="are duplicated"
        )


def _as_numeric(series: pd.Series) -> pd.Series | None:
    """The column as numbers (bools excluded); non-numeric values become NaN; None if impossible."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return None
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series
    if not (
        pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)
    ):
        return None  # datetimes, timedeltas, categoricals: not numbers, not coerced
    try:
        return pd.to_numeric(series, errors="coerce")
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class InRange(_ColumnExpectation):
    """Non-null values lie in [min, max] (inclusive unless ``strict``); ±inf fails finite bounds."""

    kind: ClassVar[str] = "in_range"
    counts_rows: ClassVar[bool] = True
    min: float | None = None
    max: float | None = None
    strict: bool = False
    mostly: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_bounds(self.kind, self.min, self.max)
        if not isinstance(self.strict, bool):
            raise InvalidInput(f"{self.kind}: 'strict' must be true or false", field="strict")
        check_fraction(self.kind, "mostly", self.mostly)

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        present = series.notna().to_numpy(dtype=bool)
        numbers = _as_numeric(series)
        if numbers is None:
            bad = present
        else:
            values = numbers.to_numpy(dtype="float64", na_value=np.nan)
            # A value that was present but is not a number counts as out of range.
            bad = present & np.isnan(values)
            with np.errstate(invalid="ignore"):
                if self.min is not None:
                    bad |= present & ~(values > self.min if self.strict else values >= self.min)
                if self.max is not None:
                    bad |= present & ~(values < self.max if self.strict else values <= self.max)
        observed: list[Any] | None = None
        if numbers is not None and bool(present.any()):
            numeric = values[present & ~np.isnan(values)]
            if numeric.size:
                observed = [float(numeric.min()), float(numeric.max())]
        low = "(" if self.strict else "["
        high = ")" if self.strict else "]"
        what = f"are outside {low}{self.min}, {self.max}{high}"
        return self._mask_result(
            frame,
            bad,
            element_count=int(present.sum()),
            mostly=self.mostly,
            n=n,
            what=what,
            observed=observed,
        )


@dataclass(frozen=True)
class InSet(_ColumnExpectation):
    """Non-null values are among ``values``."""

    kind: ClassVar[str] = "in_set"
    counts_rows: ClassVar[bool] = True
    values: Collection[Any]
    """The allowed values (a list, tuple or set; stored as a tuple)."""
    mostly: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        values = self.values
        if isinstance(values, str | bytes) or not isinstance(
            values, Sequence | set | frozenset | np.ndarray
        ):
            raise InvalidInput(
                f"{self.kind}: 'values' must be a list of allowed values, got {values!r}",
                field="values",
            )
        object.__setattr__(self, "values", tuple(_python(v) for v in values))
        check_fraction(self.kind, "mostly", self.mostly)

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        present = series.notna().to_numpy(dtype=bool)
        inside = series.isin(list(self.values)).to_numpy(dtype=bool)
        bad = present & ~inside
        return self._mask_result(
            frame,
            bad,
            element_count=int(present.sum()),
            mostly=self.mostly,
            n=n,
            what="are not in the set",
        )


@dataclass(frozen=True)
class MatchesRegex(_ColumnExpectation):
    """Non-null values are strings in which ``pattern`` is found (``re.search``; anchor with ^$)."""

    kind: ClassVar[str] = "matches_regex"
    counts_rows: ClassVar[bool] = True
    pattern: str
    mostly: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.pattern, str) or not self.pattern:
            raise InvalidInput(
                f"{self.kind}: 'pattern' must be a non-empty regular expression", field="pattern"
            )
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise InvalidInput(
                f"{self.kind}: 'pattern' {self.pattern!r} is not a valid regular expression: "
                f"{exc}; fix the pattern",
                field="pattern",
            ) from None
        check_fraction(self.kind, "mostly", self.mostly)

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        present = series.notna().to_numpy(dtype=bool)
        try:
            found = series.str.contains(self.pattern, regex=True, na=False)
            matched = found.to_numpy(dtype=bool, na_value=False)
        except AttributeError:  # not a string column: no value can match
            matched = np.zeros(len(series), dtype=bool)
        bad = present & ~matched
        return self._mask_result(
            frame,
            bad,
            element_count=int(present.sum()),
            mostly=self.mostly,
            n=n,
            what="do not match the pattern",
        )


@dataclass(frozen=True)
class RowCountBetween(Expectation):
    """The frame has between ``min`` and ``max`` rows (inclusive)."""

    kind: ClassVar[str] = "row_count_between"
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InvalidInput(
                    f"{self.kind}: '{name}' must be a whole number ≥ 0 or null, got {value!r}",
                    field=name,
                )
        _check_bounds(self.kind, self.min, self.max)

    def check(self, frame: Any, *, sample_size: int = 5) -> ExpectationResult:
        """Compare the number of rows with the bounds."""
        rows = len(as_frame(frame))
        ok = (self.min is None or rows >= self.min) and (self.max is None or rows <= self.max)
        verb = "is" if ok else "is not"
        return self._result(
            ok,
            f"row count {rows} {verb} in [{self.min}, {self.max}]",
            observed=rows,
            element_count=rows,
        )


@dataclass(frozen=True)
class _StatBetween(_ColumnExpectation):
    """A column statistic of the non-null values lies in [min, max] (inclusive)."""

    min: float | None = None
    max: float | None = None
    statistic: ClassVar[str] = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_bounds(self.kind, self.min, self.max)

    def _statistic(self, values: pd.Series) -> float:
        raise NotImplementedError

    def _check_column(self, frame: pd.DataFrame, series: pd.Series, n: int) -> ExpectationResult:
        observed_type = logical_type(series)
        if observed_type not in ("integer", "float"):
            return self._result(False, f"column is not numeric (observed {observed_type})")
        values = series.dropna().astype("float64")
        count = len(values)
        if count == 0:
            return self._result(False, f"no non-null values to take the {self.statistic} of")
        with np.errstate(invalid="ignore", over="ignore"):
            stat = float(self._statistic(values))
        if not math.isfinite(stat):
            return self._result(
                False,
                f"{self.statistic} is {stat} (infinite values or too few rows)",
                observed=stat,
                element_count=count,
            )
        ok = (self.min is None or stat >= self.min) and (self.max is None or stat <= self.max)
        verb = "is" if ok else "is not"
        return self._result(
            ok,
            f"{self.statistic} {stat:.6g} {verb} in [{self.min}, {self.max}]",
            observed=stat,
            element_count=count,
        )


@dataclass(frozen=True)
class MeanBetween(_StatBetween):
    """The mean of the non-null values lies in [min, max]."""

    kind: ClassVar[str] = "mean_between"
    statistic: ClassVar[str] = "mean"

    def _statistic(self, values: pd.Series) -> float:
        return float(values.mean())


@dataclass(frozen=True)
class MedianBetween(_StatBetween):
    """The median of the non-null values lies in [min, max]."""

    kind: ClassVar[str] = "median_between"
    statistic: ClassVar[str] = "median"

    def _statistic(self, values: pd.Series) -> float:
        return float(values.median())


@dataclass(frozen=True)
class StdBetween(_StatBetween):
    """The sample standard deviation (ddof=1) of the non-null values lies in [min, max]."""

    kind: ClassVar[str] = "std_between"
    statistic: ClassVar[str] = "std"

    def _statistic(self, values: pd.Series) -> float:
        return float(values.std(ddof=1))


BUILT_IN_EXPECTATIONS: Mapping[str, type[Expectation]] = {
    cls.kind: cls
    for cls in (
        ColumnExists,
        ColumnType,
        NotNull,
        Unique,
        InRange,
        InSet,
        MatchesRegex,
        RowCountBetween,
        MeanBetween,
        MedianBetween,
        StdBetween,
    )
}
"""The column and table expectations by their YAML name (``custom`` lives in ``custom.py``)."""
