"""The drift benchmark's data: the same reference and current tables for every tool.

Standard library, NumPy and pandas only: imported by the orchestrator (which writes the data to
Parquet once) and by each worker (for the column names and the expected verdicts), in mloop's
environment and in Evidently's alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SEED = 20_261_123
N_CATEGORIES = 10
#: Numeric shapes, cycled over the numeric columns: drift tests must not rely on normality.
SHAPES = ("normal", "lognormal", "uniform", "exponential", "poisson")


@dataclass(frozen=True)
class Sizes:
    """How much data each side gets."""

    reference_rows: int = 100_000
    current_rows: int = 1_000_000
    numeric: int = 20
    categorical: int = 5
    #: Rows per Parquet row group (and per generated chunk).
    chunk_rows: int = 1_000_000

    @property
    def numeric_columns(self) -> list[str]:
        """Names of the numeric columns: n00, n01, ..."""
        return [f"n{i:02d}" for i in range(self.numeric)]

    @property
    def categorical_columns(self) -> list[str]:
        """Names of the categorical (string) columns: c0, c1, ..."""
        return [f"c{i}" for i in range(self.categorical)]

    @property
    def shifted_columns(self) -> list[str]:
        """The columns whose distribution moves in the current data: 5 numeric, 1 categorical."""
        return self.numeric_columns[:5] + self.categorical_columns[:1]


FULL = Sizes()
QUICK = Sizes(reference_rows=20_000, current_rows=100_000)
#: ``--large``: mloop alone, 10M current rows; the column count is set on the command line.
LARGE = Sizes(reference_rows=100_000, current_rows=10_000_000, numeric=20, categorical=0)


def sizes_from(spec: dict[str, Any]) -> Sizes:
    """The Sizes a worker was asked to use."""
    return Sizes(**spec["sizes"])


def _numeric(rng: np.random.Generator, shape: str, n: int) -> np.ndarray:
    if shape == "normal":
        return rng.normal(10.0, 2.0, n)
    if shape == "lognormal":
        return rng.lognormal(0.0, 0.5, n)
    if shape == "uniform":
        return rng.uniform(-5.0, 5.0, n)
    if shape == "exponential":
        return rng.exponential(3.0, n)
    return rng.poisson(20.0, n).astype(np.float64)


def _shift(column_index: int, values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Move a shifted column: even indexes get mean + 0.5 std, odd ones scale x 1.5."""
    if column_index % 2 == 0:
        return values + 0.5 * std
    return (values - mean) * 1.5 + mean


#: Category frequencies: reference skewed one way, shifted current data the other way.
_WEIGHTS = np.arange(1, N_CATEGORIES + 1, dtype=np.float64)
REFERENCE_P = _WEIGHTS / _WEIGHTS.sum()
SHIFTED_P = REFERENCE_P[::-1].copy()
CATEGORIES = np.array([f"cat_{i}" for i in range(N_CATEGORIES)], dtype=object)


def _reference_moments(shape: str) -> tuple[float, float]:
    """Exact mean and standard deviation of each shape (so chunks need not see the whole column)."""
    return {
        "normal": (10.0, 2.0),
        "lognormal": (float(np.exp(0.125)), float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25)))),
        "uniform": (0.0, 10.0 / np.sqrt(12.0)),
        "exponential": (3.0, 3.0),
        "poisson": (20.0, float(np.sqrt(20.0))),
    }[shape]


def frame(sizes: Sizes, rows: int, *, current: bool, chunk: int = 0) -> pd.DataFrame:
    """One chunk of the reference (``current=False``) or current data, from a fixed seed."""
    rng = np.random.default_rng([SEED, int(current), chunk])
    shifted = set(sizes.shifted_columns) if current else set()
    data: dict[str, Any] = {}
    for i, name in enumerate(sizes.numeric_columns):
        shape = SHAPES[i % len(SHAPES)]
        values = _numeric(rng, shape, rows)
        if name in shifted:
            values = _shift(i, values, *_reference_moments(shape))
        data[name] = values
    for name in sizes.categorical_columns:
        p = SHIFTED_P if name in shifted else REFERENCE_P
        data[name] = CATEGORIES[rng.choice(N_CATEGORIES, size=rows, p=p)]
    return pd.DataFrame(data)


def chunks(sizes: Sizes, *, current: bool) -> Iterator[pd.DataFrame]:
    """The whole reference or current data set, in chunks of ``sizes.chunk_rows`` rows."""
    total = sizes.current_rows if current else sizes.reference_rows
    for index, start in enumerate(range(0, total, sizes.chunk_rows)):
        yield frame(sizes, min(sizes.chunk_rows, total - start), current=current, chunk=index)
