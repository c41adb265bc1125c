"""Suites: lazy validation, YAML round trips and errors, rendering, suggested suites."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from rich.console import Console

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
)
from mloop.data.validation import (
    EXPECTATIONS,
    Suite,
    ValidationResult,
    suggest_expectations,
    validate,
)
from mloop.errors import InvalidInput, NotFound


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(custom_checks._REGISTRY)
    yield
    custom_checks._REGISTRY.clear()
    custom_checks._REGISTRY.update(saved)


def _positive_amount(frame: pd.DataFrame) -> Any:
    return frame["amount"].fillna(0) >= 0


@pytest.fixture
def transactions() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 200
    return pd.DataFrame(
        {
            "tx_id": np.arange(n),
            "amount": rng.gamma(2.0, 50.0, n),
            "country": rng.choice(["DE", "FR", "US"], n),
            "email": [f"user{i}@example.com" for i in range(n)],
            "flag": rng.random(n) < 0.1,
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
        }
    )


def _every_kind(registered: bool = True) -> Suite:
    return Suite(
        "transactions",
        [
            ColumnExists("amount"),
            ColumnType("amount", "float"),
            NotNull("amount", mostly=0.99),
            Unique("tx_id"),
            InRange("amount", min=0),
            InRange("amount", min=0, max=1e6, strict=True, mostly=0.5),
            InSet("country", ["DE", "FR", "US"]),
            InSet("code", [1, "1", True, None, 2.5], mostly=0.9),
            MatchesRegex("email", r"^[^@]+@[^@]+$", mostly=0.95),
            RowCountBetween(min=10, max=1000),
            RowCountBetween(max=5),
            MeanBetween("amount", min=50, max=150),
            MedianBetween("amount", max=1000),
            StdBetween("amount", min=0.0, max=float("inf")),
            Custom.registered("positive_amount", columns=["amount"])
            if registered
            else Custom("positive_amount", _positive_amount),
        ],
    )


def test_suite_round_trips_every_expectation(clean_registry: None) -> None:
    register_check("positive_amount", _positive_amount, description="amounts are not negative")
    suite = _every_kind()
    text = suite.to_yaml()
    again = Suite.from_yaml(text)
    assert again == suite
    assert again.to_yaml() == text
    kinds = {e.kind for e in suite.expectations}
    assert kinds == set(EXPECTATIONS)


def test_yaml_is_readable(clean_registry: None) -> None:
    suite = Suite("transactions", [NotNull("amount", mostly=0.99), InRange("amount", min=0)])
    assert suite.to_yaml() == (
        "suite: transactions\n"
        "expectations:\n"
        "  - expect: not_null\n"
        "    column: amount\n"
        "    mostly: 0.99\n"
        "  - expect: in_range\n"
        "    column: amount\n"
        "    min: 0\n"
    )
    sets = Suite("s", [InSet("c", ["a", "b"])]).to_yaml()
    assert "values: [a, b]" in sets


def test_save_and_load(tmp_path: Path, clean_registry: None) -> None:
    register_check("positive_amount", _positive_amount)
    suite = _every_kind()
    path = tmp_path / "suite.yaml"
    suite.save(path)
    assert Suite.load(path) == suite
    assert Suite.load(str(path)) == suite
    with pytest.raises(NotFound, match="no suite file"):
        Suite.load(tmp_path / "missing.yaml")


def test_unregistered_custom_check_cannot_be_saved(clean_registry: None) -> None:
    suite = _every_kind(registered=False)
    with pytest.raises(InvalidInput, match=r"expectations\[14\].*register_check"):
        suite.to_yaml()


def test_registered_custom_check_loads_by_name(
    clean_registry: None, transactions: pd.DataFrame
) -> None:
    register_check("positive_amount", _positive_amount)
    suite = Suite.from_yaml(
        "suite: s\nexpectations:\n  - expect: custom\n    name: positive_amount\n"
    )
    check = suite.expectations[0]
    assert isinstance(check, Custom)
    assert check.fn is _positive_amount
    assert validate(transactions, suite).success
    with pytest.raises(InvalidInput, match=r"expectations\[0\].*'other' is not registered"):
        Suite.from_yaml("suite: s\nexpectations:\n  - expect: custom\n    name: other\n")


def test_unrepresentable_value_is_invalid_input() -> None:
    suite = Suite("s", [InSet("t", [pd.Timestamp("2024-01-01")])])
    with pytest.raises(InvalidInput, match="YAML cannot represent"):
        suite.to_yaml()


@pytest.mark.parametrize(
    ("text", "pattern", "details"),
    [
        (
            "suite: s\nexpectations:\n  - expect: nonsense\n",
            r"expectations\[0\]: unknown expectation 'nonsense'; known expectations: column_exists",
            {"index": 0},
        ),
        (
            "suite: s\nexpectations:\n  - column: x\n",
            r"expectations\[0\]: missing 'expect'",
            {"index": 0},
        ),
        (
            "suite: s\nexpectations:\n  - expect: not_null\n    column: x\n"
            "  - expect: in_range\n    column: x\n    minimum: 0\n",
            r"expectations\[1\] \(in_range\): unknown parameter 'minimum'; in_range takes column, "
            r"min, max, strict, mostly",
            {"index": 1, "field": "minimum"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: in_set\n    column: x\n",
            r"expectations\[0\] \(in_set\): missing parameter 'values'",
            {"index": 0, "field": "values"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: not_null\n",
            r"expectations\[0\] \(not_null\): missing parameter 'column'",
            {"index": 0, "field": "column"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: not_null\n    column: x\n    mostly: 2\n",
            r"expectations\[0\]: not_null: 'mostly' must be a number between 0 and 1",
            {"index": 0, "field": "mostly"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: in_range\n    column: x\n    min: 3\n"
            "    max: 1\n",
            r"expectations\[0\]: in_range: 'min' \(3\) is greater than 'max' \(1\)",
            {"index": 0, "field": "min"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: column_type\n    column: x\n    type: text\n",
            r"expectations\[0\]: column_type: unknown 'type' 'text'",
            {"index": 0, "field": "type"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: matches_regex\n    column: x\n"
            "    pattern: '(a'\n",
            r"expectations\[0\]: matches_regex: 'pattern' '\(a' is not a valid regular",
            {"index": 0, "field": "pattern"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: custom\n    name: c\n    columns: 5\n",
            r"expectations\[0\]: custom 'c': 'columns' must be a list",
            {"index": 0, "field": "columns"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: custom\n    name: [c]\n",
            r"expectations\[0\]: custom: 'name' must be a non-empty string",
            {"index": 0, "field": "name"},
        ),
        (
            "suite: s\nexpectations:\n  - expect: custom\n    name: c\n    columns: [a, 1]\n",
            r"'columns' must be a list of column names",
            {"index": 0, "field": "columns"},
        ),
        (
            "suite: s\nexpectations:\n  - not a mapping\n",
            r"expectations\[0\]: each expectation must be a mapping",
            {"index": 0},
        ),
        ("suite: s\nexpectations: 5\n", r"'expectations' must be a list", {}),
        ("expectations: []\n", r"missing 'suite'", {}),
        ("suite: s\nextra: 1\n", r"unknown key\(s\) extra", {}),
        ("suite: ''\n", r"'name' must be a non-empty string", {}),
        ("- a\n- b\n", r"a suite must be a mapping", {}),
        ("", r"a suite must be a mapping", {}),
    ],
)
def test_bad_yaml_suites(
    clean_registry: None, text: str, pattern: str, details: dict[str, Any]
) -> None:
    if "name: c" in text:
        register_check("c", _positive_amount)
    with pytest.raises(InvalidInput, match=pattern) as info:
        Suite.from_yaml(text)
    for key, value in details.items():
        assert info.value.details[key] == value


def test_malformed_yaml_reports_line_and_column() -> None:
    text = "suite: s\nexpectations:\n  - expect: not_null\n    column: [unclosed\n"
    with pytest.raises(InvalidInput, match=r"does not parse at line \d+, column \d+") as info:
        Suite.from_yaml(text)
    assert info.value.details["line"] >= 4
    with pytest.raises(InvalidInput, match="line 2, column"):
        Suite.from_yaml("suite: s\n\tbad: tab\n")


def test_yaml_never_constructs_python_objects() -> None:
    with pytest.raises(InvalidInput, match="does not parse"):
        Suite.from_yaml("suite: !!python/object/apply:os.system ['true']\n")


def test_suite_rejects_non_expectations() -> None:
    with pytest.raises(InvalidInput, match=r"expectations\[1\] is a str"):
        Suite("s", [NotNull("x"), "oops"])  # type: ignore[list-item]


def test_validate_is_lazy_and_counts(transactions: pd.DataFrame) -> None:
    frame = transactions.copy()
    frame.loc[[3, 10, 50], "amount"] = [-1.0, np.nan, np.inf]
    suite = Suite(
        "lazy",
        [
            NotNull("amount"),
            InRange("amount", min=0, max=10_000),
            ColumnExists("missing"),
            InSet("missing", ["x"]),
            Unique("tx_id"),
            InSet("country", ["DE", "FR", "US"]),
        ],
    )
    result = validate(frame, suite, sample_size=2)
    assert not result.success
    assert (result.evaluated, result.succeeded, result.failed) == (6, 2, 4)
    assert [r.success for r in result.results] == [False, False, False, False, True, True]
    in_range = result.results[1]
    assert in_range.unexpected_count == 2
    assert [row["index"] for row in in_range.sample] == [3, 50]
    assert result.row_count == 200
    assert len(result.failures) == 4


def test_validate_arrow_table(transactions: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(transactions, preserve_index=False)
    result = validate(table, Suite("s", [NotNull("amount"), ColumnType("when", "datetime")]))
    assert result.success


def test_validate_bad_arguments(transactions: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="must be a Suite"):
        validate(transactions, [NotNull("x")])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="sample_size"):
        validate(transactions, Suite("s"), sample_size=-1)
    with pytest.raises(InvalidInput, match="DataFrame or a pyarrow Table"):
        validate({"a": [1]}, Suite("s"))


def test_empty_suite_passes(transactions: pd.DataFrame) -> None:
    result = validate(transactions, Suite("empty"))
    assert result.success
    assert result.evaluated == 0


def test_to_dict_is_json_safe(clean_registry: None) -> None:
    register_check("positive_amount", _positive_amount)
    frame = pd.DataFrame(
        {
            "amount": [1.0, np.nan, np.inf, -np.inf, -2.0],
            "tx_id": [1, 1, 2, 3, 4],
            "country": ["DE", "XX", None, "US", "FR"],
            "email": ["a@b", "bad", "c@d", None, "e@f"],
            "when": pd.date_range("2024-01-01", periods=5),
        }
    )
    result = validate(frame, _every_kind(), sample_size=3)
    doc = result.to_dict()
    text = json.dumps(doc, allow_nan=False)
    assert '"Infinity"' in text
    assert '"NaN"' in text
    assert doc["statistics"] == {
        "evaluated": result.evaluated,
        "succeeded": result.succeeded,
        "failed": result.failed,
    }
    by_kind = {r["expectation"]: r for r in doc["results"]}
    assert by_kind["std_between"]["params"]["max"] == "Infinity"
    custom = validate(frame, Suite("c", [Custom("t", lambda f: f["tx_id"] > 1)]))
    json.dumps(custom.to_dict(), allow_nan=False)
    stamps = validate(frame, Suite("t", [InSet("when", [pd.Timestamp("2024-01-01")])]))
    sample = stamps.to_dict()["results"][0]["sample"]
    assert sample[0]["when"].startswith("2024-01-02")


def _through_json(result: ValidationResult) -> ValidationResult:
    text = json.dumps(result.to_dict(), allow_nan=False)
    return ValidationResult.from_dict(json.loads(text))


def test_result_round_trips_through_json(clean_registry: None, transactions: pd.DataFrame) -> None:
    register_check("positive_amount", _positive_amount, description="amounts are not negative")
    frame = transactions.assign(amount=transactions["amount"] - 20)  # some rows fail
    result = validate(frame, _every_kind(), sample_size=3)
    assert not result.success and result.failed > 0
    doc = result.to_dict()
    again = _through_json(result)
    assert again == result
    assert again.to_dict() == doc
    assert (again.suite, again.row_count, again.failed) == ("transactions", 200, result.failed)
    assert (
        doc["summary"]
        == again.summary
        == (
            f"suite 'transactions' FAILED: {result.succeeded}/{result.evaluated} expectations "
            "passed on 200 rows"
        )
    )
    assert validate(transactions, Suite("s", [NotNull("amount")])).summary.startswith(
        "suite 's' passed: 1/1"
    )
    empty = validate(transactions, Suite("empty"))
    assert _through_json(empty) == empty


def test_stored_non_finite_values_come_back_as_floats(clean_registry: None) -> None:
    register_check("positive_amount", _positive_amount)
    frame = pd.DataFrame(
        {
            "amount": [1.0, np.nan, np.inf, -np.inf, -2.0],
            "tx_id": [1, 1, 2, 3, 4],
            "country": ["DE", "XX", None, "US", "FR"],
            "email": ["a@b", "bad", "c@d", None, "e@f"],
            "when": pd.date_range("2024-01-01", periods=5),
        }
    )
    result = validate(frame, _every_kind(), sample_size=3)
    doc = result.to_dict()
    again = _through_json(result)
    assert again.to_dict() == doc
    by_kind = {r.kind: r for r in again.results}
    std = by_kind["std_between"].expectation
    assert isinstance(std, StdBetween) and std.max == float("inf")
    assert by_kind["mean_between"].observed != by_kind["mean_between"].observed  # NaN
    assert by_kind["in_range"].observed == [-np.inf, np.inf]
    assert by_kind["column_type"].observed == "float"
    # Sample values stay as JSON holds them: the strings "Infinity", "NaN", ISO timestamps.
    in_range = next(r for r in again.results if r.kind == "in_range")
    assert in_range.sample[0] == {"index": 3, "amount": "-Infinity"}


def test_a_stored_custom_check_loads_without_its_function(
    clean_registry: None, transactions: pd.DataFrame
) -> None:
    register_check("positive_amount", _positive_amount, description="amounts are not negative")
    suite = Suite("s", [Custom.registered("positive_amount", columns=["amount"], mostly=0.5)])
    doc = validate(transactions, suite).to_dict()
    custom_checks._REGISTRY.clear()
    again = ValidationResult.from_dict(doc)
    check = again.results[0].expectation
    assert isinstance(check, Custom) and not check.is_registered
    assert (check.name, check.columns, check.mostly) == ("positive_amount", ("amount",), 0.5)
    assert again.to_dict() == doc
    assert ValidationResult.from_dict(doc) == again  # one stand-in function for every load
    rerun = check.check(transactions)
    assert not rerun.success
    assert "not registered" in rerun.message
    unnamed = validate(transactions, Suite("u", [Custom("inline", lambda f: f["tx_id"] >= 0)]))
    assert _through_json(unnamed).to_dict() == unnamed.to_dict()


def _stored() -> dict[str, Any]:
    frame = pd.DataFrame({"a": [1, 2, None]})
    return validate(frame, Suite("s", [NotNull("a"), InRange("a", min=0)])).to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: [d], "must be a mapping"),
        (lambda d: d | {"suite": ""}, "'suite' must be a non-empty string"),
        (lambda d: {k: v for k, v in d.items() if k != "suite"}, "'suite'"),
        (lambda d: d | {"row_count": -1}, "'row_count' must be a whole number"),
        (lambda d: d | {"row_count": True}, "'row_count'"),
        (lambda d: d | {"results": {}}, "'results' must be a list"),
        (lambda d: d | {"results": ["x"]}, r"results\[0\]: each result must be a mapping"),
        (
            lambda d: d | {"results": [d["results"][0] | {"expectation": "nope"}]},
            r"results\[0\]: unknown expectation 'nope'",
        ),
        (
            lambda d: d | {"results": [d["results"][1] | {"params": {"column": "a", "min": "x"}}]},
            r"results\[0\]: in_range: 'min' must be a number",
        ),
        (
            lambda d: d | {"results": [d["results"][1] | {"params": {"column": "a", "lo": 1}}]},
            r"results\[0\] \(in_range\): unknown parameter 'lo'",
        ),
        (lambda d: d | {"results": [d["results"][0] | {"params": []}]}, "'params' must be"),
        (lambda d: d | {"results": [d["results"][0] | {"success": "yes"}]}, "'success'"),
        (lambda d: d | {"results": [d["results"][0] | {"message": 3}]}, "'message'"),
        (lambda d: d | {"results": [d["results"][0] | {"sample": [1]}]}, "'sample'"),
        (lambda d: d | {"results": [d["results"][0] | {"element_count": 1.5}]}, "element_count"),
        (
            lambda d: d | {"results": [d["results"][0] | {"unexpected_count": 99}]},
            "greater than 'element_count'",
        ),
    ],
)
def test_bad_stored_results_are_invalid_input(change: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ValidationResult.from_dict(change(_stored()))


def _render(result: ValidationResult, width: int = 120) -> str:
    console = Console(record=True, width=width, force_terminal=False)
    result.render(console)
    return console.export_text()


def test_render(transactions: pd.DataFrame) -> None:
    frame = transactions.copy()
    frame.loc[[3, 4], "amount"] = [-1.0, -2.0]
    suite = Suite(
        "transactions",
        [
            InRange("amount", min=0),
            ColumnExists("missing"),
            MeanBetween("amount", min=0),
            Custom("tx", lambda f: f["tx_id"] < 198, columns=["tx_id", "country"]),
        ],
    )
    text = _render(validate(frame, suite))
    assert "suite 'transactions': FAILED — 1/4 expectations passed on 200 rows" in text
    assert "in_range" in text
    assert "[3]=-1, [4]=-2" in text
    assert "column 'missing' is missing" in text
    assert "[198]=(198, " in text
    assert "FAIL" in text
    ok = _render(validate(frame, Suite("ok", [ColumnExists("amount")])), width=80)
    assert "passed" in ok


def test_suggested_suite_passes_on_source_and_fails_on_shift(
    transactions: pd.DataFrame,
) -> None:
    frame = transactions.copy()
    frame.loc[::10, "amount"] = np.nan
    suite = suggest_expectations(frame, name="ref")
    assert suite.name == "ref"
    kinds = {(e.kind, getattr(e, "column", None)) for e in suite.expectations}
    assert ("row_count_between", None) in kinds
    assert ("unique", "tx_id") in kinds
    assert ("unique", "email") in kinds
    assert ("unique", "amount") not in kinds  # floats are distinct by chance
    assert ("in_set", "country") in kinds
    assert ("in_set", "flag") in kinds
    assert ("in_set", "email") not in kinds
    assert ("mean_between", "amount") in kinds
    assert ("column_type", "when") in kinds
    not_null = next(
        e for e in suite.expectations if isinstance(e, NotNull) and e.column == "amount"
    )
    assert not_null.mostly == 0.9
    result = validate(frame, suite)
    assert result.success, [r.message for r in result.failures]
    assert Suite.from_yaml(suite.to_yaml()) == suite

    shifted = frame.assign(amount=frame["amount"] + 500, country="BR")
    failed = validate(shifted, suite)
    assert not failed.success
    failing = {(r.kind, r.column) for r in failed.failures}
    assert ("in_range", "amount") in failing
    assert ("mean_between", "amount") in failing
    assert ("in_set", "country") in failing
    assert not validate(frame.head(50), suite).success  # row count below half
    assert not validate(frame.drop(columns=["email"]), suite).success


def test_suggest_mostly_rounds_down() -> None:
    frame = pd.DataFrame({"x": [1.0] * 57 + [np.nan] * 43})
    suite = suggest_expectations(frame)
    not_null = next(e for e in suite.expectations if isinstance(e, NotNull))
    assert not_null.mostly <= 0.57
    assert not_null.mostly >= 0.56
    assert validate(frame, suite).success


def test_suggest_on_awkward_frames() -> None:
    frame = pd.DataFrame(
        {
            "all_null": [np.nan] * 4,
            "mixed": pd.Series([1, "a", 2.5, None], dtype=object),
            "inf": [1.0, np.inf, 2.0, 3.0],
            "one": [1, 1, 1, 1],
            "cat": pd.Categorical(["a", "b", "a", "b"]),
        }
    )
    suite = suggest_expectations(frame)
    assert validate(frame, suite).success
    kinds = {(e.kind, getattr(e, "column", None)) for e in suite.expectations}
    assert ("not_null", "all_null") not in kinds
    assert ("column_type", "mixed") not in kinds
    assert ("mean_between", "inf") not in kinds
    assert ("in_set", "cat") in kinds
    assert Suite.from_yaml(suite.to_yaml()) == suite
    empty = suggest_expectations(frame.iloc[:0])
    assert validate(frame.iloc[:0], empty).success
    assert not validate(frame, empty).success  # 4 rows is above 2 x 0


def test_suggest_from_arrow_table(transactions: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(transactions, preserve_index=False)
    suite = suggest_expectations(table)
    assert validate(table, suite).success


def test_render_does_not_interpret_markup_in_the_suite_name() -> None:
    from rich.console import Console

    from mloop.data import NotNull, Suite, validate

    frame = pd.DataFrame({"a": [1, None]})
    console = Console(record=True, width=120)
    validate(frame, Suite("[bold]x[/bold]", [NotNull("a")])).render(console)
    text = console.export_text()
    assert "[bold]x[/bold]" in text and "FAILED" in text


def test_suggested_suite_passes_on_a_fresh_sample() -> None:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 2000), "n": rng.poisson(3, 2000)})
    fresh = pd.DataFrame({"x": rng.normal(0, 1, 1500), "n": rng.poisson(3, 1500)})
    suite = suggest_expectations(reference)
    result = validate(fresh, suite)
    # A count with a tail gets a range, not an in-set check a rare unseen count would fail.
    assert not result.failures, [r.message for r in result.failures]
    assert not [e for e in suite.expectations if e.kind == "in_set" and e.column == "n"]
    (low_n,) = [e for e in suite.expectations if isinstance(e, InRange) and e.column == "n"]
    assert low_n.min == 0  # a count never goes below zero, however wide the margin


def test_suggest_in_set_on_integers_only_for_a_closed_set() -> None:
    rng = np.random.default_rng(8)
    rows = 20_000
    reference = pd.DataFrame({
        "rating": rng.integers(1, 6, rows),  # five values, every one common
        "txn_count_24h": rng.poisson(1.5, rows),  # few values, but a long tail
        "code": rng.choice(["a", "b", "c"], rows),
        "rare_code": rng.choice([0, 1, 2], rows, p=[0.995, 0.004, 0.001]),
    })  # fmt: skip
    suite = suggest_expectations(reference)
    sets = {e.column for e in suite.expectations if e.kind == "in_set"}
    assert sets == {"rating", "code"}
    ranges = {e.column for e in suite.expectations if e.kind == "in_range"}
    assert {"txn_count_24h", "rare_code"} <= ranges
    for seed in range(20):  # unchanged windows pass
        g = np.random.default_rng(100 + seed)
        window = pd.DataFrame({
            "rating": g.integers(1, 6, 2000), "txn_count_24h": g.poisson(1.5, 2000),
            "code": g.choice(["a", "b", "c"], 2000),
            "rare_code": g.choice([0, 1, 2], 2000, p=[0.995, 0.004, 0.001]),
        })  # fmt: skip
        kept = Suite("w", [e for e in suite.expectations if e.kind != "row_count_between"])
        result = validate(window, kept)
        assert result.success, [r.message for r in result.failures]
    assert not validate(reference.assign(rating=7), suite).success


def test_suggested_string_set_with_a_rare_tail_lets_new_rare_values_pass() -> None:
    # 40 countries, a few of them rare: a reference of 3,000 rows misses some, and a window of
    # 2,000 rows meets one it never held. The set holds for 99% of the rows, not every one.
    rng = np.random.default_rng(3)
    names = [f"C{i:02d}" for i in range(40)]
    weights = np.r_[np.full(10, 0.09), np.full(30, 0.1 / 30)]
    reference = pd.DataFrame({
        "country": rng.choice(names[:-1], 3000, p=weights[:-1] / weights[:-1].sum()),
        "channel": rng.choice(["web", "pos", "app"], 3000),
    })  # fmt: skip
    suite = suggest_expectations(reference)
    sets = {e.column: e for e in suite.expectations if isinstance(e, InSet)}
    assert sets["country"].mostly == 0.99  # a tail: some countries were seen a few times
    assert sets["channel"].mostly == 1.0  # no tail: a new channel is a quality problem
    window = pd.DataFrame({
        "country": ["C39"] * 5 + list(rng.choice(names[:10], 1995)),
        "channel": rng.choice(["web", "pos", "app"], 2000),
    })  # fmt: skip
    kept = Suite("w", [e for e in suite.expectations if e.kind != "row_count_between"])
    assert validate(window, kept).success
    assert not validate(window.assign(country="XX"), kept).success  # every row new: refused
    assert not validate(window.assign(channel=["fax"] * 5 + ["web"] * 1995), kept).success
