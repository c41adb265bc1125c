"""Drift results: one record per column (:class:`ColumnDrift`) and the dataset verdict.

:func:`mloop.data.drift.drift` builds these records; they hold only aggregates (statistics,
histogram and category counts), never raw rows, so they serialise to small JSON
(:meth:`DriftReport.to_dict`) and render to a terminal table or one HTML file through
:mod:`mloop.data.report`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console

from mloop.data.report import render_text, save_html, summary_table

if TYPE_CHECKING:
    from pathlib import Path

    from rich.table import Table

__all__ = ["ColumnDrift", "DriftReport", "Method", "Status"]

Status = Literal["ok", "skipped", "missing", "error"]
#: How a column was tested: ``exact`` (raw current values, or exact counts), ``binned`` (the
#: current data had more than ``max_rows_in_memory`` rows and was read in one binned pass), or
#: ``profile`` (the reference is a stored profile).
Method = Literal["exact", "binned", "profile"]


def _json_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict for one column, with the aggregates needed to plot both sides."""

    column: str
    kind: str
    status: Status
    drifted: bool = False
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    reason: str = ""
    approximate: bool = False
    method: Method = "exact"
    reference_count: int = 0
    current_count: int = 0
    edges: list[float] | None = None
    categories: list[str] | None = None
    reference_hist: list[int] = field(default_factory=list)
    current_hist: list[int] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        """The number compared with the threshold: the p-value, or else the statistic."""
        return self.p_value if self.p_value is not None else self.statistic

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (infinite statistics become the strings "inf"/"-inf")."""
        return {
            "column": self.column,
            "kind": self.kind,
            "status": self.status,
            "drifted": self.drifted,
            "test": self.test,
            "statistic": _json_float(self.statistic),
            "p_value": _json_float(self.p_value),
            "threshold": self.threshold,
            "reason": self.reason,
            "approximate": self.approximate,
            "method": self.method,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "edges": self.edges,
            "categories": self.categories,
            "reference_hist": self.reference_hist,
            "current_hist": self.current_hist,
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift results and the dataset verdict."""

    columns: list[ColumnDrift]
    drift_share: float
    reference_rows: int
    current_rows: int
    reference_is_profile: bool = False

    @property
    def tested(self) -> list[ColumnDrift]:
        """Columns that were actually tested (status ``ok``)."""
        return [c for c in self.columns if c.status == "ok"]

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns that drifted."""
        return [c.column for c in self.columns if c.drifted]

    @property
    def drifted_share(self) -> float:
        """Share of tested columns that drifted (0 when nothing was tested)."""
        tested = self.tested
        return len(self.drifted_columns) / len(tested) if tested else 0.0

    @property
    def drifted(self) -> bool:
        """Whether the data set drifted: drifted share ≥ ``drift_share`` (never if none tested)."""
        return bool(self.tested) and self.drifted_share >= self.drift_share

    def __getitem__(self, column: str) -> ColumnDrift:
        for result in self.columns:
            if result.column == column:
                return result
        raise KeyError(column)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole report."""
        return {
            "drifted": self.drifted,
            "drifted_share": self.drifted_share,
            "drift_share": self.drift_share,
            "n_tested": len(self.tested),
            "n_drifted": len(self.drifted_columns),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_is_profile": self.reference_is_profile,
            "columns": [c.to_dict() for c in self.columns],
        }

    def render(self, console: Console | None = None) -> None:
        """Print the one-screen summary table (to ``console``, else the terminal)."""
        (console or Console()).print(summary_table(self))

    def render_text(self) -> str:
        """The one-screen summary as plain text (see :func:`mloop.data.report.render_text`)."""
        return render_text(self)

    def __rich__(self) -> Table:
        """Rich renders a report as its summary table."""
        return summary_table(self)

    def save_html(self, path: str | Path) -> None:
        """Write one self-contained HTML file (see :func:`mloop.data.report.save_html`)."""
        save_html(self, path)
