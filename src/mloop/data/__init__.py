"""Data: column profiles, drift between a reference and current data, and validation.

``profile`` summarises a table per column (counts, nulls, quantiles, a histogram with stored bin
edges, top categories) so that later data can be compared with the stored profile instead of the
raw reference. ``drift`` tests each column with the test its kind and size call for (or one
named) and gives a dataset verdict. ``validate`` runs a ``Suite`` of expectations and collects
every failure; ``suggest_expectations`` drafts a suite from reference data.
"""

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from mloop.data.versions import (
        DatasetDiff,
        diff,
        get,
        list_datasets,
        list_versions,
        load,
        lookup,
        record_validation,
        register,
    )
    from mloop.store.base import DatasetVersion

__all__ = [
    "TESTS",
    "ColumnDrift",
    "ColumnExists",
    "ColumnProfile",
    "ColumnType",
    "Custom",
    "DatasetDiff",
    "DatasetProfile",
    "DatasetVersion",
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
    "diff",
    "drift",
    "get",
    "list_datasets",
    "list_versions",
    "load",
    "lookup",
    "profile",
    "record_validation",
    "register",
    "register_check",
    "suggest_expectations",
    "validate",
]

#: Public name → the module defining it, imported on first access: `mloop data add` of a
#: folder then never loads SciPy or pandas.
_LAZY: dict[str, str] = {
    "ColumnDrift": "mloop.data.drift",
    "ColumnExists": "mloop.data.expectations",
    "ColumnProfile": "mloop.data.profile",
    "ColumnType": "mloop.data.expectations",
    "Custom": "mloop.data.custom",
    "DatasetDiff": "mloop.data.versions",
    "DatasetProfile": "mloop.data.profile",
    "DatasetVersion": "mloop.store.base",
    "DriftReport": "mloop.data.drift",
    "Expectation": "mloop.data.expectations",
    "ExpectationResult": "mloop.data.expectations",
    "Histogram": "mloop.data.profile",
    "InRange": "mloop.data.expectations",
    "InSet": "mloop.data.expectations",
    "MatchesRegex": "mloop.data.expectations",
    "MeanBetween": "mloop.data.expectations",
    "MedianBetween": "mloop.data.expectations",
    "NotNull": "mloop.data.expectations",
    "RowCountBetween": "mloop.data.expectations",
    "StdBetween": "mloop.data.expectations",
    "Suite": "mloop.data.validation",
    "TESTS": "mloop.data.stattests",
    "Unique": "mloop.data.expectations",
    "ValidationResult": "mloop.data.validation",
    "diff": "mloop.data.versions",
    "drift": "mloop.data.drift",
    "get": "mloop.data.versions",
    "list_datasets": "mloop.data.versions",
    "list_versions": "mloop.data.versions",
    "load": "mloop.data.versions",
    "lookup": "mloop.data.versions",
    "profile": "mloop.data.profile",
    "record_validation": "mloop.data.versions",
    "register": "mloop.data.versions",
    "register_check": "mloop.data.custom",
    "suggest_expectations": "mloop.data.validation",
    "validate": "mloop.data.validation",
}


def __getattr__(name: str) -> object:
    """Import a public name's module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps ``profile`` and ``drift`` the functions: importing the submodules of the same
    name would otherwise set the package attributes to the modules."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and name in _LAZY:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
