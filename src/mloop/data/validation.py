"""Validation: suites of expectations, lazy validation, YAML I/O, rendering and suggested suites.

``validate`` runs every expectation of a suite and collects all failures (it never stops at the
first). A suite is written in YAML as::

    suite: transactions
    expectations:
      - expect: not_null
        column: amount
        mostly: 0.99
      - expect: in_range
        column: amount
        min: 0

Parameters equal to their defaults are left out when saving; loading checks every name and
value and answers with ``InvalidInput`` naming the expectation's index and the field.

A ``ValidationResult`` is stored as plain JSON (``to_dict``; NaN and ±inf become the strings
"NaN", "Infinity" and "-Infinity") and read back with ``ValidationResult.from_dict``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from mloop.data.custom import Custom, registered_checks
from mloop.data.expectations import (
    BUILT_IN_EXPECTATIONS,
    ColumnExists,
    ColumnType,
    Expectation,
    ExpectationResult,
    InRange,
    InSet,
    MeanBetween,
    NotNull,
    RowCountBetween,
    Unique,
    as_frame,
    logical_type,
)
from mloop.errors import InvalidInput, NotFound

__all__ = [
    "EXPECTATIONS",
    "Suite",
    "ValidationResult",
    "suggest_expectations",
    "validate",
]

EXPECTATIONS: Mapping[str, type[Expectation]] = {**BUILT_IN_EXPECTATIONS, Custom.kind: Custom}
"""Every expectation class by its YAML name, the built-in ones and ``custom``."""

_SUITE_KEYS = ("suite", "expectations")
# How to_dict writes non-finite floats; from_dict turns them back into floats where numbers go.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass(frozen=True)
class Suite:
    """A named list of expectations, validated together; saved and loaded as YAML."""

    name: str
    expectations: Sequence[Expectation] = ()
    """The expectations, in order (stored as a tuple)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(f"suite: 'name' must be a non-empty string, got {self.name!r}")
        expectations = tuple(self.expectations)
        for i, exp in enumerate(expectations):
            if not isinstance(exp, Expectation):
                raise InvalidInput(
                    f"suite '{self.name}': expectations[{i}] is a {type(exp).__name__}, "
                    "not an Expectation",
                    index=i,
                )
        object.__setattr__(self, "expectations", expectations)

    def to_dict(self) -> dict[str, Any]:
        """The suite as plain data (the YAML document); custom checks must be registered."""
        items: list[dict[str, Any]] = []
        for i, exp in enumerate(self.expectations):
            if isinstance(exp, Custom) and not exp.is_registered:
                raise InvalidInput(
                    f"suite '{self.name}': expectations[{i}] is custom check '{exp.name}', "
                    "whose function is not registered; call "
                    f"register_check({exp.name!r}, fn) to save it by name",
                    index=i,
                    field="name",
                )
            items.append({"expect": exp.kind, **exp.params()})
        return {"suite": self.name, "expectations": items}

    def to_yaml(self) -> str:
        """The suite as a readable YAML document."""
        try:
            return yaml.dump(
                self.to_dict(),
                Dumper=_SuiteDumper,
                sort_keys=False,
                allow_unicode=True,
                default_flow_style=False,
            )
        except yaml.YAMLError as exc:
            raise InvalidInput(
                f"suite '{self.name}' holds a value YAML cannot represent: {exc}; "
                "use strings, numbers, booleans or null"
            ) from None

    @classmethod
    def from_dict(cls, doc: Any) -> Suite:
        """Build a suite from plain data shaped like the YAML document."""
        if not isinstance(doc, dict):
            raise InvalidInput(
                "a suite must be a mapping with keys 'suite' and 'expectations', "
                f"got {type(doc).__name__}"
            )
        unknown = sorted(str(k) for k in doc if k not in _SUITE_KEYS)
        if unknown:
            raise InvalidInput(
                f"suite: unknown key(s) {', '.join(unknown)}; the keys are 'suite' and "
                "'expectations'",
                field=unknown[0],
            )
        if "suite" not in doc:
            raise InvalidInput("suite: missing 'suite' (the suite's name)", field="suite")
        items = doc.get("expectations") or []
        if not isinstance(items, list):
            raise InvalidInput(
                "suite: 'expectations' must be a list of mappings", field="expectations"
            )
        expectations = tuple(_expectation_from_dict(i, item) for i, item in enumerate(items))
        return cls(doc["suite"], expectations)

    @classmethod
    def from_yaml(cls, text: str) -> Suite:
        """Parse a suite from YAML text (``yaml.safe_load`` only)."""
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            if mark is None:
                raise InvalidInput(f"suite YAML does not parse: {problem}") from None
            line, column = mark.line + 1, mark.column + 1
            raise InvalidInput(
                f"suite YAML does not parse at line {line}, column {column}: {problem}",
                line=line,
                column=column,
            ) from None
        return cls.from_dict(doc)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Suite:
        """Read a suite from a YAML file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"no suite file at {os.fspath(path)!r}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read suite file {os.fspath(path)!r}: {exc}") from None
        return cls.from_yaml(text)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the suite to a YAML file."""
        Path(path).write_text(self.to_yaml(), encoding="utf-8")


class _SuiteDumper(yaml.SafeDumper):
    """Safe YAML, with block lists indented under their key and lists of scalars inline."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Indent block sequences under their key (``- expect:`` sits two spaces in)."""
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_SuiteDumper.add_representer(list, _represent_list)


def _expectation_from_dict(
    index: int, item: Any, *, where: str = "", stored: bool = False
) -> Expectation:
    """One expectation from its YAML mapping; ``stored``: an unregistered custom check is kept."""
    where = where or f"expectations[{index}]"
    if not isinstance(item, dict):
        raise InvalidInput(
            f"{where}: each expectation must be a mapping with an 'expect' key, "
            f"got {type(item).__name__}",
            index=index,
        )
    params = dict(item)
    kind = params.pop("expect", None)
    if kind not in EXPECTATIONS:
        known = ", ".join(sorted(EXPECTATIONS))
        what = "missing 'expect'" if kind is None else f"unknown expectation {kind!r}"
        raise InvalidInput(f"{where}: {what}; known expectations: {known}", index=index)
    cls = EXPECTATIONS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "fn"}
    unknown = sorted(str(k) for k in params if k not in fields)
    if unknown:
        raise InvalidInput(
            f"{where} ({kind}): unknown parameter '{unknown[0]}'; {kind} takes {', '.join(fields)}",
            index=index,
            field=unknown[0],
        )
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in params:
            raise InvalidInput(
                f"{where} ({kind}): missing parameter '{name}'", index=index, field=name
            )
    try:
        if cls is Custom:
            check = params.get("name")
            if stored and not (isinstance(check, str) and check in registered_checks()):
                return Custom(fn=_not_registered, **params)
            return Custom.registered(**params)
        return cls(**params)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}", index=index, **exc.details) from None


def _not_registered(frame: pd.DataFrame) -> Any:
    """Stands in for a custom check read back from storage whose function is not registered."""
    raise InvalidInput(
        "this check was read from a stored result and its function is not registered in this "
        "process; call register_check(name, fn) before reading the result to run it again"
    )


def _json_safe(value: Any) -> Any:
    """``value`` as JSON-safe data: NaN and ±inf become the strings "NaN", "Infinity", …"""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _short(value: Any, width: int = 24) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_short(v, width) for v in value) + "]"
    elif value is None:
        text = "—"
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class ValidationResult:
    """Every expectation's result for one suite on one frame."""

    suite: str
    row_count: int
    results: tuple[ExpectationResult, ...]

    @property
    def success(self) -> bool:
        """True when every expectation passed."""
        return all(r.success for r in self.results)

    @property
    def evaluated(self) -> int:
        """How many expectations ran."""
        return len(self.results)

    @property
    def succeeded(self) -> int:
        """How many expectations passed."""
        return sum(r.success for r in self.results)

    @property
    def failed(self) -> int:
        """How many expectations failed."""
        return self.evaluated - self.succeeded

    @property
    def failures(self) -> tuple[ExpectationResult, ...]:
        """The results that failed."""
        return tuple(r for r in self.results if not r.success)

    @property
    def summary(self) -> str:
        """One line: the suite, its verdict and how many expectations passed on how many rows."""
        verdict = "passed" if self.success else "FAILED"
        return (
            f"suite {self.suite!r} {verdict}: {self.succeeded}/{self.evaluated} expectations "
            f"passed on {self.row_count} rows"
        )

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data (NaN and ±inf encoded as strings); see ``from_dict``."""
        return {
            "suite": self.suite,
            "success": self.success,
            "summary": self.summary,
            "row_count": self.row_count,
            "statistics": {
                "evaluated": self.evaluated,
                "succeeded": self.succeeded,
                "failed": self.failed,
            },
            "results": [
                {
                    "expectation": r.kind,
                    "column": r.column,
                    "params": _json_safe(r.expectation.params()),
                    "success": r.success,
                    "observed": _json_safe(r.observed),
                    "element_count": r.element_count,
                    "unexpected_count": r.unexpected_count,
                    "unexpected_fraction": _json_safe(r.unexpected_fraction),
                    "sample": _json_safe(list(r.sample)),
                    "message": r.message,
                }
                for r in self.results
            ],
        }

    @classmethod
    def from_dict(cls, doc: Any) -> ValidationResult:
        """Rebuild a result from ``to_dict`` output, e.g. one read back from storage.

        ``success``, ``summary``, ``statistics`` and each ``unexpected_fraction`` are derived, so
        they are recomputed rather than read. "NaN", "Infinity" and "-Infinity" become floats
        again in ``min``/``max`` parameters and observed values; sample values stay as JSON
        gave them (a timestamp stays its ISO text). A custom check whose function is not
        registered comes back with a stand-in function that fails, naming the problem, when run.
        """
        if not isinstance(doc, Mapping):
            raise InvalidInput(
                f"a validation result must be a mapping (ValidationResult.to_dict output), "
                f"got {type(doc).__name__}"
            )
        suite = doc.get("suite")
        if not isinstance(suite, str) or not suite:
            raise InvalidInput(
                f"validation result: 'suite' must be a non-empty string, got {suite!r}",
                field="suite",
            )
        row_count = _count(doc.get("row_count"), "validation result", "row_count")
        items = doc.get("results")
        if not isinstance(items, list):
            raise InvalidInput(
                "validation result: 'results' must be a list of mappings", field="results"
            )
        results = tuple(_result_from_dict(i, item) for i, item in enumerate(items))
        return cls(suite=suite, row_count=row_count, results=results)

    def __rich__(self) -> RenderableType:
        """A table: one row per expectation, failing samples shown compactly."""
        # Text, not markup: a suite name is user input and may contain "[...]".
        title = Text(f"suite {self.suite!r}: ")
        title.append(*(("passed", "green") if self.success else ("FAILED", "red")))
        title.append(
            f" — {self.succeeded}/{self.evaluated} expectations passed on {self.row_count} rows"
        )
        table = Table(title=title, title_justify="left", expand=False)
        table.add_column("expectation")
        table.add_column("column")
        table.add_column("result")
        table.add_column("observed", justify="right")
        table.add_column("unexpected", justify="right")
        table.add_column("failing sample / message", overflow="ellipsis", max_width=60)
        for r in self.results:
            column = r.column
            if isinstance(r.expectation, Custom):
                column = r.expectation.name
            result = Text("pass", style="green") if r.success else Text("FAIL", style="bold red")
            counts_rows = r.expectation.counts_rows
            unexpected = f"{r.unexpected_fraction:.2%}" if counts_rows and r.element_count else ""
            # For row-counting checks the observed value is the unexpected share, shown already.
            observed = r.observed if not counts_rows or isinstance(r.observed, list) else None
            if r.success:
                detail = ""
            elif r.sample:
                detail = ", ".join(_sample_text(row) for row in r.sample)
            else:
                detail = r.message
            table.add_row(
                r.kind,
                Text(column or "—"),
                result,
                Text(_short(observed) if observed is not None else ""),
                unexpected,
                Text(detail, no_wrap=True, overflow="ellipsis"),
            )
        return table

    def render(self, console: Console | None = None) -> None:
        """Print the result as a one-screen table to ``console`` (the terminal by default)."""
        (console or Console()).print(self)


def _count(value: Any, where: str, name: str, **details: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(
            f"{where}: '{name}' must be a whole number ≥ 0, got {value!r}", field=name, **details
        )
    return value


def _decoded(value: Any) -> Any:
    """``value`` with the strings to_dict writes for NaN and ±inf turned back into floats."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def _result_from_dict(index: int, item: Any) -> ExpectationResult:
    """One ``results[i]`` entry of a stored validation result."""
    where = f"results[{index}]"
    if not isinstance(item, Mapping):
        raise InvalidInput(
            f"{where}: each result must be a mapping, got {type(item).__name__}", index=index
        )
    params = item.get("params", {})
    if not isinstance(params, Mapping):
        raise InvalidInput(f"{where}: 'params' must be a mapping", index=index, field="params")
    kind = item.get("expectation")
    spec = {
        **{k: _decoded(v) if k in ("min", "max") else v for k, v in params.items()},
        "expect": kind,
    }
    expectation = _expectation_from_dict(index, spec, where=where, stored=True)
    success = item.get("success")
    if not isinstance(success, bool):
        raise InvalidInput(
            f"{where}: 'success' must be true or false, got {success!r}",
            index=index,
            field="success",
        )
    message = item.get("message", "")
    if not isinstance(message, str):
        raise InvalidInput(f"{where}: 'message' must be a string", index=index, field="message")
    sample = item.get("sample", [])
    if not isinstance(sample, list) or not all(isinstance(row, Mapping) for row in sample):
        raise InvalidInput(
            f"{where}: 'sample' must be a list of mappings (failing rows)",
            index=index,
            field="sample",
        )
    observed = item.get("observed")
    element_count = _count(item.get("element_count", 0), where, "element_count", index=index)
    unexpected_count = _count(
        item.get("unexpected_count", 0), where, "unexpected_count", index=index
    )
    if unexpected_count > element_count:
        raise InvalidInput(
            f"{where}: 'unexpected_count' ({unexpected_count}) is greater than "
            f"'element_count' ({element_count})",
            index=index,
            field="unexpected_count",
        )
    return ExpectationResult(
        expectation=expectation,
        success=success,
        observed=observed if kind == ColumnType.kind else _decoded(observed),
        element_count=element_count,
        unexpected_count=unexpected_count,
        message=message,
        sample=tuple(dict(row) for row in sample),
    )


def _sample_text(row: dict[str, Any]) -> str:
    values = [_short(v, 16) for k, v in row.items() if k != "index"]
    shown = values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"
    return f"[{row.get('index')}]={shown}"


def validate(data: Any, suite: Suite, *, sample_size: int = 5) -> ValidationResult:
    """Run every expectation of ``suite`` on a DataFrame or pyarrow Table; collect all results."""
    if not isinstance(suite, Suite):
        raise InvalidInput(f"validate: 'suite' must be a Suite, got {type(suite).__name__}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0:
        raise InvalidInput(
            f"validate: 'sample_size' must be a whole number ≥ 0, got {sample_size!r}",
            field="sample_size",
        )
    frame = as_frame(data)
    results = tuple(exp.check(frame, sample_size=sample_size) for exp in suite.expectations)
    return ValidationResult(suite=suite.name, row_count=len(frame), results=results)


# Thresholds of suggest_expectations, documented there.
_MAX_SET_SIZE = 20
_MAX_SET_SHARE = 0.05
_MAX_SET_HARD = 1000
_MIN_UNIQUE_ROWS = 20
_SET_TYPES = ("integer", "string", "boolean", "categorical")
_UNIQUE_TYPES = ("integer", "string")
#: An integer column is a closed set (codes, ratings) only with at most this many values...
_MAX_INT_SET_SIZE = 10
#: ... each seen at least this many times and in at least ``_MIN_SET_SHARE`` of the rows.
_MIN_SET_COUNT = 30
_MIN_SET_SHARE = 0.01


def _closed_set(values: pd.Series) -> bool:
    """Whether an integer column's values look like a closed set rather than a count: few
    values, every one common. A count with a long tail (a rare 9 or 12) is not: a new window
    meets values the reference never held, which is no quality problem (its range covers it)."""
    counts = values.value_counts()
    return len(counts) <= _MAX_INT_SET_SIZE and _no_tail(counts)


def _no_tail(counts: pd.Series) -> bool:
    """Whether every value of a column (its value counts) is common: seen at least 30 times
    and in at least 1% of the rows."""
    least = int(counts.min())
    return least >= _MIN_SET_COUNT and least >= _MIN_SET_SHARE * int(counts.sum())


def _mostly_from(fraction: float) -> float:
    """The observed non-null fraction rounded down to two decimals (never above it)."""
    if fraction >= 1.0:
        return 1.0
    mostly = math.floor(fraction * 100) / 100
    if mostly > fraction:  # float rounding pushed it up
        mostly -= 0.01
    return max(mostly, 0.0)


def suggest_expectations(data: Any, *, name: str = "suggested") -> Suite:
    """Infer a suite from a reference frame; it passes on that frame.

    For each column (string-named): it exists; its logical type (when it is one of the known
    types); not null with ``mostly`` = the observed non-null fraction rounded down to two
    decimals (1.0 when no value is null; skipped when all are null); for integer and float
    columns, in range [observed min, observed max] widened by ``RANGE_MARGIN`` (25%) of its
    width on each side (not below 0 for a column that has no negative value; integers rounded
    outwards) for ``RANGE_MOSTLY`` (99%) of the values, and mean within the observed mean ± 3
    standard errors of a difference of means with a new batch of ``BATCH_ROWS`` (100) rows or
    more, 3·std·sqrt(1/n + 1/100) (skipped under 2 values or when not finite); for string,
    boolean and categorical columns with at most 20 distinct values, or at most 5% of the rows
    (and at most 1000), in set of the observed values, for every value when each was seen at
    least 30 times and in at least 1% of the rows (no tail), else for ``SET_MOSTLY`` (99%) of
    them, since fresh data meets rare values the reference never held; integer columns get it
    only when they look like a closed set (at most 10 values, no tail), since a count meets
    new values; for integer and string columns with
    at least 20 non-null values, all distinct, unique (floats are left out: continuous values
    are distinct by chance). For the table: row count in [floor(rows / 2), ceil(2 * rows)].
    """
    frame = as_frame(data)
    rows = len(frame)
    out: list[Expectation] = [RowCountBetween(min=math.floor(0.5 * rows), max=math.ceil(2 * rows))]
    for column in frame.columns:
        if not isinstance(column, str) or not column:
            continue
        series = frame[column]
        if not isinstance(series, pd.Series):  # duplicated column name
            continue
        out.extend(_suggest_column(column, series, rows))
    return Suite(name, tuple(out))


def _suggest_column(column: str, series: pd.Series, rows: int) -> list[Expectation]:
    out: list[Expectation] = [ColumnExists(column)]
    kind = logical_type(series)
    if kind in ("integer", "float", "string", "boolean", "datetime", "categorical"):
        out.append(ColumnType(column, kind))
    values = series.dropna()
    present = len(values)
    if present == 0:
        return out
    out.append(NotNull(column, mostly=_mostly_from(present / rows)))
    if kind in ("integer", "float"):
        out.append(_suggested_range(column, values, integer=kind == "integer"))
        numbers = values.astype("float64")
        with np.errstate(invalid="ignore", over="ignore"):  # inf values give a NaN std
            mean, std = float(numbers.mean()), float(numbers.std(ddof=1))
        if present >= 2 and math.isfinite(mean) and math.isfinite(std):
            # Three standard errors of the difference between the reference mean and the mean
            # of a new batch of at least BATCH_ROWS rows, so a fresh sample passes.
            margin = 3 * std * math.sqrt(1 / present + 1 / BATCH_ROWS)
            out.append(MeanBetween(column, min=mean - margin, max=mean + margin))
    distinct = int(values.nunique())
    small = distinct <= _MAX_SET_SIZE or (
        distinct <= _MAX_SET_SHARE * rows and distinct <= _MAX_SET_HARD
    )
    if kind in _SET_TYPES and small and (kind != "integer" or _closed_set(values)):
        observed = pd.unique(values.to_numpy(dtype=object))
        # A set with a tail of rare values (a country seen twice) will meet values the
        # reference never held: they may be SET_MOSTLY's 1%. A set without a tail is strict.
        mostly = 1.0 if _no_tail(values.value_counts()) else SET_MOSTLY
        out.append(InSet(column, tuple(sorted(observed.tolist(), key=_sort_key)), mostly=mostly))
    if kind in _UNIQUE_TYPES and present >= _MIN_UNIQUE_ROWS and distinct == present:
        out.append(Unique(column))
    return out


#: The smallest new batch a suggested mean bound is made to accept (see suggest_expectations).
BATCH_ROWS = 100
#: How far a suggested range reaches past the observed one, as a share of its width each side.
RANGE_MARGIN = 0.25
#: The share of values a suggested range must hold: a rare tail value of fresh data passes.
RANGE_MOSTLY = 0.99
#: The share of values a suggested set with a tail of rare values must hold.
SET_MOSTLY = 0.99


def _suggested_range(column: str, values: pd.Series, *, integer: bool) -> InRange:
    """[min, max] widened by RANGE_MARGIN of the width each side; a non-negative column keeps a
    lower bound of at least 0; integer bounds are rounded outwards."""
    low, high = _number(values.min()), _number(values.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        return InRange(column, min=low, max=high, mostly=RANGE_MOSTLY)
    pad = RANGE_MARGIN * (high - low)
    wide_low, wide_high = low - pad, high + pad
    if low >= 0:
        wide_low = max(0.0, wide_low)
    if integer:
        return InRange(
            column, min=math.floor(wide_low), max=math.ceil(wide_high), mostly=RANGE_MOSTLY
        )
    return InRange(column, min=wide_low, max=wide_high, mostly=RANGE_MOSTLY)


def _number(value: Any) -> float | int:
    item = value.item() if isinstance(value, np.generic) else value
    return int(item) if isinstance(item, int) else float(item)


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)
