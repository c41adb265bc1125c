"""Data: column profiles, drift between a reference and current data, and validation.

``profile`` summarises a table per column (counts, nulls, quantiles, a histogram with stored bin
edges, top categories) so that later data can be compared with the stored profile instead of the
raw reference. ``drift`` tests each column with the test its kind and size call for (or one
named) and gives a dataset verdict. ``validate`` runs a ``Suite`` of expectations and collects
every failure; ``suggest_expectations`` drafts a suite from reference data.
"""

from mloop.data.custom import Custom, register_check
from mloop.data.drift import ColumnDrift, DriftReport, drift
from mloop.data.expectations import (
    ColumnExists,
    ColumnType,
    Expectation,
    ExpectationResult,
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
from mloop.data.profile import ColumnProfile, DatasetProfile, Histogram, profile
from mloop.data.stattests import TESTS
from mloop.data.validation import Suite, ValidationResult, suggest_expectations, validate

__all__ = [
    "TESTS",
    "ColumnDrift",
    "ColumnExists",
    "ColumnProfile",
    "ColumnType",
    "Custom",
    "DatasetProfile",
    "DriftReport",
    "Expectation",
    "ExpectationResult",
    "Histogram",
    "InRange",
    "InSet",
    "MatchesRegex",
    "MeanBetween",
    "MedianBetween",
    "NotNull",
    "RowCountBetween",
    "StdBetween",
    "Suite",
    "Unique",
    "ValidationResult",
    "drift",
    "profile",
    "register_check",
    "suggest_expectations",
    "validate",
]
