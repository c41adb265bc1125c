"""Rendering of a drift report: a one-screen terminal table and one self-contained HTML file.

Both read only the report's aggregates (histogram counts, category counts), never raw rows, so
their size does not grow with the data. The HTML has inline CSS and inline SVG, no script and no
external asset, and every string from the data (column names, categories) is escaped.
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from mloop.data.drift_report import ColumnDrift, DriftReport

__all__ = ["render_text", "save_html", "summary_table", "to_html"]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _verdict(column: ColumnDrift) -> tuple[str, str]:
    if column.status != "ok":
        return column.status.upper(), "yellow"
    return ("DRIFT", "red") if column.drifted else ("ok", "green")


def _notes(column: ColumnDrift) -> str:
    """The reason, and whether the statistic was computed on bins rather than raw values."""
    return "; ".join(filter(None, [column.reason, "binned" if column.approximate else ""]))


def _headline(report: DriftReport) -> str:
    verdict = "DRIFTED" if report.drifted else "no drift"
    return (
        f"Dataset {verdict}: {len(report.drifted_columns)} of {len(report.tested)} tested columns "
        f"drifted ({report.drifted_share:.0%}; threshold {report.drift_share:.0%}) - "
        f"reference {report.reference_rows:,} rows"
        f"{' (profile)' if report.reference_is_profile else ''}, "
        f"current {report.current_rows:,} rows"
    )


def summary_table(report: DriftReport) -> Table:
    """A rich table: column, kind, test, score, threshold, verdict and notes."""
    table = Table(title=Text(_headline(report)), title_justify="left")
    for header in ("column", "kind", "test", "score", "threshold", "verdict", "notes"):
        table.add_column(
            header,
            justify="right" if header in ("score", "threshold") else "left",
            no_wrap=header not in ("column", "notes"),
        )
    for col in report.columns:
        word, style = _verdict(col)
        table.add_row(
            Text(col.column),
            col.kind,
            Text(col.test or "-"),
            _number(col.score),
            _number(col.threshold),
            Text(word, style=style),
            Text(_notes(col)),
        )
    return table


def render_text(report: DriftReport, *, width: int = 120, color: bool = False) -> str:
    """The summary as text (with ANSI colours only when ``color`` is true)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system=None)
    if color:
        console = Console(file=buffer, width=width, force_terminal=True)
    console.print(summary_table(report))
    return buffer.getvalue()


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}.drift{color:#b00}.ok{color:#070}.other{color:#a60}
table{border-collapse:collapse;margin-bottom:2em}
td,th{padding:.25em .75em;border-bottom:1px solid #ddd;text-align:left}
.card{display:inline-block;vertical-align:top;margin:0 1.5em 1.5em 0}
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em}
""".strip()
_REF, _CUR = "#4878a8", "#e0884a"
_W, _H = 360, 120


def _bars(col: ColumnDrift) -> str:
    ref, cur = col.reference_hist, col.current_hist
    if not ref or not cur:
        return ""
    ref_total, cur_total = max(sum(ref), 1), max(sum(cur), 1)
    shares = [(r / ref_total, c / cur_total) for r, c in zip(ref, cur, strict=True)]
    top = max(max(s) for s in shares) or 1.0
    slot = _W / len(shares)
    parts = [f'<svg width="{_W}" height="{_H + 16}" role="img">']
    for i, (r, c) in enumerate(shares):
        x = i * slot
        for j, (share, colour) in enumerate(((r, _REF), (c, _CUR))):
            height = _H * share / top
            label = html.escape(col.categories[i] if col.categories else f"bin {i + 1}", quote=True)
            parts.append(
                f'<rect x="{x + j * slot / 2:.1f}" y="{_H - height:.1f}" '
                f'width="{max(slot / 2 - 1, 0.5):.1f}" height="{height:.1f}" fill="{colour}">'
                f"<title>{label}: {share:.2%}</title></rect>"
            )
    if col.edges:
        lo, hi = _number(col.edges[0]), _number(col.edges[-1])
        parts.append(f'<text x="0" y="{_H + 13}" font-size="11">{html.escape(lo)}</text>')
        parts.append(
            f'<text x="{_W}" y="{_H + 13}" font-size="11" text-anchor="end">'
            f"{html.escape(hi)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def to_html(report: DriftReport, *, title: str = "Data drift report") -> str:
    """The report as one self-contained HTML document (inline CSS and SVG, no script)."""
    esc = html.escape
    rows = []
    for col in report.columns:
        word, _ = _verdict(col)
        css = "drift" if col.drifted else ("ok" if col.status == "ok" else "other")
        rows.append(
            "<tr>"
            f"<td>{esc(col.column)}</td><td>{esc(col.kind)}</td><td>{esc(col.test or '-')}</td>"
            f"<td>{esc(_number(col.score))}</td><td>{esc(_number(col.threshold))}</td>"
            f'<td class="{css}">{esc(word)}</td><td>{esc(_notes(col))}</td>'
            "</tr>"
        )
    cards = [
        f'<div class="card"><h3>{esc(col.column)}</h3>{_bars(col)}</div>'
        for col in report.columns
        if col.reference_hist
    ]
    verdict_css = "drift" if report.drifted else "ok"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        f'<p class="{verdict_css}">{esc(_headline(report))}</p>'
        "<table><tr><th>column</th><th>kind</th><th>test</th><th>score</th>"
        "<th>threshold</th><th>verdict</th><th>notes</th></tr>" + "".join(rows) + "</table>"
        f'<p class="legend"><span style="background:{_REF}"></span>reference'
        f'<span style="background:{_CUR}"></span>current</p>' + "".join(cards) + "</body></html>"
    )


def save_html(report: DriftReport, path: str | Path) -> None:
    """Write :func:`to_html` to ``path`` (UTF-8)."""
    Path(path).write_text(to_html(report), encoding="utf-8")
