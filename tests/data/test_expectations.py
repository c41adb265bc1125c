"""Each expectation: pass and fail, counts, samples, ``mostly``, NaN and inf, bad parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mloop.data import custom as custom_checks
from mloop.data.custom import Custom, register_check
from mloop.data.expectations import (
    ColumnExists,
    ColumnType,
    InRange,
    InSet,
    MatchesRegex,
    MeanBetween,
    MedianBetween,
    NotNull,
    RowCountBetween,
    StdBetween,
    Unique,
    logical_type,
)
from mloop.errors import InvalidInput


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "amount": [1.0, 2.0, np.nan, 4.0, -5.0, 6.0, np.inf, 8.0, 9.0, -np.inf],
            "cat": ["a", "b", "a", "c", "a", None, "b", "z", "a", "b"],
            "code": ["AB-1", "AB-2", "XY-3", "AB-4", None, "AB-6", "ab-7", "AB-8", "AB-9", "AB-10"],
        },
        index=list(range(100, 110)),
    )


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(custom_checks._REGISTRY)
    yield
    custom_checks._REGISTRY.clear()
    custom_checks._REGISTRY.update(saved)


def test_column_exists(frame: pd.DataFrame) -> None:
    assert ColumnExists("id").check(frame).success
    result = ColumnExists("nope").check(frame)
    assert not result.success
    assert "missing" in result.message


@pytest.mark.parametrize(
    ("column", "type_", "ok"),
    [
        ("id", "integer", True),
        ("id", "numeric", True),
        ("id", "float", False),
        ("amount", "float", True),
        ("amount", "numeric", True),
        ("amount", "integer", False),
        ("cat", "string", True),
        ("cat", "categorical", False),
        ("code", "boolean", False),
    ],
)
def test_column_type(frame: pd.DataFrame, column: str, type_: str, ok: bool) -> None:
    assert ColumnType(column, type_).check(frame).success is ok


def test_logical_types_of_other_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "b": [True, False],
            "nb": pd.array([True, None], dtype="boolean"),
            "ni": pd.array([1, None], dtype="Int64"),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "c": pd.Categorical(["x", "y"]),
            "o": pd.Series(["x", "y"], dtype=object),
            "mixed": pd.Series([1, "a"], dtype=object),
            "none": pd.Series([None, None], dtype=object),
        }
    )
    assert [logical_type(frame[c]) for c in frame.columns] == [
        "boolean",
        "boolean",
        "integer",
        "datetime",
        "categorical",
        "string",
        "mixed",
        "empty",
    ]
    assert ColumnType("b", "boolean").check(frame).success
    assert not ColumnType("b", "numeric").check(frame).success
    assert ColumnType("t", "datetime").check(frame).success
    assert ColumnType("c", "categorical").check(frame).success
    mixed = ColumnType("mixed", "string").check(frame)
    assert not mixed.success
    assert mixed.observed == "mixed"
    # No values, no evidence against any type.
    assert ColumnType("none", "integer").check(frame).success


def test_not_null_counts_nan_and_keeps_inf(frame: pd.DataFrame) -> None:
    result = NotNull("amount").check(frame)
    assert not result.success
    assert (result.element_count, result.unexpected_count) == (10, 1)
    assert result.unexpected_fraction == pytest.approx(0.1)
    assert result.observed == pytest.approx(0.1)
    assert result.sample == ({"index": 102, "amount": None},) or np.isnan(
        result.sample[0]["amount"]
    )
    assert result.sample[0]["index"] == 102


def test_not_null_mostly(frame: pd.DataFrame) -> None:
    assert NotNull("amount", mostly=0.9).check(frame).success
    assert not NotNull("amount", mostly=0.91).check(frame).success
    assert NotNull("cat", mostly=0.0).check(frame).success


def test_unique(frame: pd.DataFrame) -> None:
    assert Unique("id").check(frame).success
    result = Unique("cat").check(frame)
    assert not result.success
    # Nulls are skipped; every row of a duplicated value counts (a, a, a, a, b, b, b).
    assert (result.element_count, result.unexpected_count) == (9, 7)
    assert Unique("code").check(frame).success


def test_in_range_nan_excluded_inf_fails(frame: pd.DataFrame) -> None:
    result = InRange("amount", min=-10, max=10).check(frame)
    assert not result.success
    assert result.element_count == 9  # the NaN is not evaluated
    assert result.unexpected_count == 2  # +inf and -inf
    assert [row["index"] for row in result.sample] == [106, 109]
    assert result.observed == [-np.inf, np.inf]


def test_in_range_bounds_strict_and_mostly(frame: pd.DataFrame) -> None:
    assert InRange("id", min=1, max=10).check(frame).success
    strict = InRange("id", min=1, max=10, strict=True).check(frame)
    assert strict.unexpected_count == 2
    assert InRange("id", min=1, max=10, strict=True, mostly=0.8).check(frame).success
    assert not InRange("id", min=1, max=10, strict=True, mostly=0.81).check(frame).success
    only_min = InRange("amount", min=0).check(frame)
    assert only_min.unexpected_count == 2  # -5 and -inf; +inf passes an open maximum
    assert InRange("id", max=5, mostly=0.5).check(frame).success


def test_in_range_sample_size(frame: pd.DataFrame) -> None:
    result = InRange("id", min=100).check(frame, sample_size=3)
    assert result.unexpected_count == 10
    assert [row["id"] for row in result.sample] == [1, 2, 3]
    assert InRange("id", min=100).check(frame, sample_size=0).sample == ()


def test_in_range_on_mixed_and_string_columns() -> None:
    frame = pd.DataFrame({"m": pd.Series([1, "a", 2.5, None, "7"], dtype=object)})
    result = InRange("m", min=0, max=5).check(frame)
    # 'a' is not a number and '7' is out of range; None is skipped; the string '7' is coerced.
    assert (result.element_count, result.unexpected_count) == (4, 2)
    text = pd.DataFrame({"s": ["x", "y"]})
    assert InRange("s", min=0).check(text).unexpected_count == 2
    flags = pd.DataFrame({"b": [True, False]})
    assert InRange("b", min=0).check(flags).unexpected_count == 2


def test_in_set(frame: pd.DataFrame) -> None:
    result = InSet("cat", ["a", "b", "c"]).check(frame)
    assert not result.success
    assert (result.element_count, result.unexpected_count) == (9, 1)
    assert result.sample == ({"index": 107, "cat": "z"},)
    assert InSet("cat", ("a", "b", "c"), mostly=0.8).check(frame).success
    assert InSet("id", range(1, 11)).check(frame).success
    assert InSet("cat", {"a", "b", "c", "z"}).check(frame).success


def test_matches_regex(frame: pd.DataFrame) -> None:
    result = MatchesRegex("code", r"^AB-\d+$").check(frame)
    assert (result.element_count, result.unexpected_count) == (9, 2)
    assert [row["code"] for row in result.sample] == ["XY-3", "ab-7"]
    assert MatchesRegex("code", r"^AB-\d+$", mostly=0.75).check(frame).success
    # search semantics: an unanchored pattern matches anywhere
    assert MatchesRegex("code", r"\d").check(frame).success


def test_matches_regex_non_strings() -> None:
    frame = pd.DataFrame({"m": pd.Series(["a1", 5, None, "b"], dtype=object), "n": [1, 2, 3, 4]})
    result = MatchesRegex("m", r"\w").check(frame)
    assert (result.element_count, result.unexpected_count) == (3, 1)  # 5 is not a string
    assert MatchesRegex("n", r"\d").check(frame).unexpected_count == 4


def test_row_count_between(frame: pd.DataFrame) -> None:
    assert RowCountBetween(min=10, max=10).check(frame).success
    result = RowCountBetween(min=11).check(frame)
    assert not result.success
    assert result.observed == 10
    assert RowCountBetween(max=9).check(frame).success is False


def test_statistics_between() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, np.nan], "s": ["a"] * 5})
    mean = MeanBetween("x", min=2.4, max=2.6).check(frame)
    assert mean.success
    assert mean.observed == pytest.approx(2.5)
    assert mean.element_count == 4
    assert not MeanBetween("x", min=3).check(frame).success
    assert MedianBetween("x", min=2.5, max=2.5).check(frame).success
    std = StdBetween("x", max=1).check(frame)
    assert not std.success
    assert std.observed == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    not_numeric = MeanBetween("s", min=0).check(frame)
    assert not not_numeric.success
    assert "not numeric" in not_numeric.message


def test_statistics_with_inf_and_too_few_values() -> None:
    frame = pd.DataFrame({"x": [1.0, np.inf], "one": [1.0, np.nan]})
    result = MeanBetween("x", min=0, max=10).check(frame)
    assert not result.success
    assert result.observed == np.inf
    assert not StdBetween("one", min=0).check(frame).success  # std of one value is NaN


def test_missing_column_fails_without_raising(frame: pd.DataFrame) -> None:
    checks: list[Any] = [
        ColumnType("gone", "integer"),
        NotNull("gone"),
        Unique("gone"),
        InRange("gone", min=0),
        InSet("gone", [1]),
        MatchesRegex("gone", "x"),
        MeanBetween("gone", min=0),
        MedianBetween("gone", min=0),
        StdBetween("gone", min=0),
    ]
    for check in checks:
        result = check.check(frame)
        assert not result.success
        assert result.message == "column 'gone' is missing"


def test_duplicated_column_name_fails_without_raising() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    result = NotNull("a").check(frame)
    assert not result.success
    assert "appears 2 times" in result.message


def test_empty_frame() -> None:
    """0 rows: row checks pass vacuously, statistics fail (no values), row counts compare."""
    frame = pd.DataFrame({"x": pd.Series([], dtype="float64"), "s": pd.Series([], dtype=object)})
    for check in (
        NotNull("x"),
        Unique("x"),
        InRange("x", min=0, max=1),
        InSet("s", ["a"]),
        MatchesRegex("s", "a"),
        ColumnType("x", "float"),
        ColumnType("s", "string"),
    ):
        result = check.check(frame)
        assert result.success, check
        assert result.element_count == 0
        assert result.unexpected_fraction == 0.0
    assert not MeanBetween("x", min=0).check(frame).success
    assert RowCountBetween(min=0, max=0).check(frame).success
    assert not RowCountBetween(min=1).check(frame).success


def test_all_null_column() -> None:
    frame = pd.DataFrame({"x": [np.nan, np.nan, np.nan]})
    result = NotNull("x").check(frame)
    assert (result.unexpected_count, result.observed) == (3, 1.0)
    assert NotNull("x", mostly=0).check(frame).success
    in_range = InRange("x", min=0, max=1).check(frame)
    assert in_range.success
    assert in_range.element_count == 0
    assert in_range.observed is None
    assert not MeanBetween("x", min=0).check(frame).success


def test_arrow_table_input() -> None:
    table = pa.table({"x": [1, 2, None]})
    result = NotNull("x").check(table)
    assert result.unexpected_count == 1
    with pytest.raises(InvalidInput, match="DataFrame or a pyarrow Table"):
        NotNull("x").check([1, 2, 3])


def test_nullable_dtypes() -> None:
    frame = pd.DataFrame(
        {"i": pd.array([1, None, 50], dtype="Int64"), "s": pd.array(["a", None, "b"], "string")}
    )
    assert InRange("i", min=0, max=10).check(frame).unexpected_count == 1
    assert NotNull("i").check(frame).unexpected_count == 1
    assert MatchesRegex("s", "^a$").check(frame).unexpected_count == 1
    assert InSet("s", ["a"]).check(frame).unexpected_count == 1


def test_custom_check_by_function(frame: pd.DataFrame) -> None:
    check = Custom(
        "id_below_amount",
        lambda f: (f["id"] <= f["amount"]) | f["amount"].isna(),
        "id never exceeds amount",
        columns=("id", "amount"),
    )
    result = check.check(frame)
    assert not result.success
    assert result.unexpected_count == 2  # -5 and -inf
    assert result.sample[0] == {"index": 104, "id": 5, "amount": -5.0}
    assert Custom("all", lambda f: np.ones(len(f), dtype=bool)).check(frame).success


def test_custom_check_mostly_and_full_row_sample(frame: pd.DataFrame) -> None:
    check = Custom("small_id", lambda f: f["id"].to_numpy() < 9, mostly=0.8)
    result = check.check(frame, sample_size=1)
    assert result.success
    assert result.unexpected_count == 2
    assert set(result.sample[0]) == {"index", "id", "amount", "cat", "code"}


def test_custom_check_errors_become_failed_results(frame: pd.DataFrame) -> None:
    def broken(f: pd.DataFrame) -> Any:
        raise KeyError("nope")

    result = Custom("broken", broken).check(frame)
    assert not result.success
    assert "raised KeyError" in result.message
    wrong = Custom("wrong", lambda f: np.array([1, 2])).check(frame)
    assert not wrong.success
    assert "one boolean per row" in wrong.message


def test_registered_custom_check(clean_registry: None, frame: pd.DataFrame) -> None:
    def positive(f: pd.DataFrame) -> Any:
        return f["id"] > 0

    register_check("positive_id", positive, description="ids are positive")
    check = Custom.registered("positive_id")
    assert check.is_registered
    assert check.description == "ids are positive"
    assert check.check(frame).success
    assert not Custom("positive_id", lambda f: f["id"] > 0).is_registered
    with pytest.raises(InvalidInput, match="not registered"):
        Custom.registered("nope")
    with pytest.raises(InvalidInput, match="callable"):
        register_check("x", 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="non-empty"):
        register_check("", positive)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: NotNull("x", mostly=1.5), "mostly"),
        (lambda: NotNull("x", mostly=-0.1), "mostly"),
        (lambda: NotNull("x", mostly=True), "mostly"),
        (lambda: NotNull("x", mostly="0.5"), "mostly"),  # type: ignore[arg-type]
        (lambda: NotNull(""), "column"),
        (lambda: NotNull(3), "column"),  # type: ignore[arg-type]
        (lambda: InRange("x", min=5, max=1), "min"),
        (lambda: InRange("x"), "min"),
        (lambda: InRange("x", min="a"), "min"),  # type: ignore[arg-type]
        (lambda: InRange("x", max=float("nan")), "max"),
        (lambda: InRange("x", min=0, strict="yes"), "strict"),  # type: ignore[arg-type]
        (lambda: ColumnType("x", "text"), "type"),
        (lambda: InSet("x", "abc"), "values"),
        (lambda: InSet("x", 5), "values"),  # type: ignore[arg-type]
        (lambda: MatchesRegex("x", "(unclosed"), "pattern"),
        (lambda: MatchesRegex("x", ""), "pattern"),
        (lambda: RowCountBetween(min=-1), "min"),
        (lambda: RowCountBetween(min=1.5), "min"),  # type: ignore[arg-type]
        (lambda: RowCountBetween(min=5, max=2), "min"),
        (lambda: MeanBetween("x", min=2, max=1), "min"),
        (lambda: Custom("", lambda f: f), "name"),
        (lambda: Custom("c", 5), "fn"),  # type: ignore[arg-type]
        (lambda: Custom("c", lambda f: f, columns="abc"), "columns"),
        (lambda: Custom("c", lambda f: f, mostly=2), "mostly"),
    ],
)
def test_bad_parameters(make: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make()
    assert info.value.details["field"] == field
    assert f"'{field}'" in info.value.message


def test_unknown_type_lists_known_types() -> None:
    with pytest.raises(InvalidInput, match="integer, float, numeric"):
        ColumnType("x", "text")


def test_invalid_regex_message_names_pattern() -> None:
    with pytest.raises(InvalidInput, match=r"not a valid regular expression"):
        MatchesRegex("x", "[a-")


def test_expectations_are_frozen_and_comparable() -> None:
    a = InSet("x", [1, 2])
    assert a == InSet("x", (1, 2))
    assert a.values == (1, 2)
    with pytest.raises(AttributeError):
        a.column = "y"  # type: ignore[misc]
    assert InSet("x", [np.int64(3)]).values == (3,)
    (only,) = InSet("x", [np.int64(3)]).values
    assert type(only) is int


def test_in_range_on_datetime_and_categorical_columns() -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None]), "c": pd.Categorical([1, 2])})
    assert InRange("t", min=0).check(frame).unexpected_count == 1  # not numbers; NaT skipped
    assert InRange("c", min=0).check(frame).unexpected_count == 2


def test_custom_check_mask_types() -> None:
    frame = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"])
    floats = Custom("floats", lambda f: f.iloc[:, 0] * 1.0).check(frame)
    assert not floats.success
    assert "one boolean per row" in floats.message
    nullable = Custom("na", lambda f: pd.Series(pd.array([True, None], dtype="boolean")))
    result = nullable.check(frame)
    assert result.unexpected_count == 1
    assert result.sample == ({"index": 1, "a": 4},)  # duplicated names: the last one wins
