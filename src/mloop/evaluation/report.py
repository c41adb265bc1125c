"""An evaluation as one self-contained HTML page: metrics, slices, fairness, gate, plots.

Inline CSS and the result's SVG plots as ``data:`` images; no script and no external asset.
Every string from the data (column names, slice values, class labels, notes) is escaped.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from mloop.evaluation.gates import GateDecision
from mloop.evaluation.results import EvaluationResult

__all__ = ["save_html", "to_html"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin-bottom:1em}
td,th{padding:.25em .75em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#070}.fail{color:#b00}.note{color:#a60}
.plot{display:inline-block;vertical-align:top;margin:0 1em 1em 0}
""".strip()

_esc = html.escape


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _table(headers: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_esc(c)}</td>' if i >= numeric_from else f"<td>{_esc(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _slices(result: EvaluationResult) -> str:
    parts = []
    for column, groups in result.slices.items():
        names = sorted({m for g in groups for m in g.metrics})
        rows = [[str(g.value), str(g.n), *(_num(g.metrics.get(m)) for m in names)] for g in groups]
        parts.append(f"<h3>{_esc(column)}</h3>" + _table(["value", "n", *names], rows))
        gaps = result.fairness.get(column)
        if gaps is not None:
            fair = [
                ["demographic parity difference", _num(gaps.demographic_parity_difference)],
                ["equal opportunity difference", _num(gaps.equal_opportunity_difference)],
                ["equalized odds difference", _num(gaps.equalized_odds_difference)],
            ]
            parts.append(_table(["fairness gap", "value"], fair))
    return "".join(parts)


def _gate(decision: GateDecision) -> str:
    verdict = "PASSED" if decision.passed else "FAILED"
    css = "pass" if decision.passed else "fail"
    rows = "".join(
        f'<tr><td class="{"pass" if c.passed else "fail"}">{"pass" if c.passed else "FAIL"}'
        f"</td><td>{_esc(c.name)}</td><td>{_esc(c.metric)}</td>"
        f'<td class="n">{_esc(_num(c.observed))}</td><td class="n">{_esc(_num(c.required))}'
        f"</td><td>{_esc(c.reason)}</td></tr>"
        for c in decision.checks
    )
    return (
        f'<h2>Gate: <span class="{css}">{verdict}</span></h2>'
        "<table><tr><th></th><th>check</th><th>metric</th><th>observed</th><th>required</th>"
        f"<th>reason</th></tr>{rows}</table>"
    )


def to_html(
    result: EvaluationResult,
    decision: GateDecision | None = None,
    *,
    title: str = "Model evaluation",
) -> str:
    """The result (and optionally a gate decision) as one self-contained HTML document."""
    summary = (
        f"{result.task} of {_esc(result.target)} on {result.n_rows:,} rows "
        f"(data digest {_esc(result.data_digest[:12])})"
    )
    if result.positive_label is not None:
        summary += f"; positive label {_esc(repr(result.positive_label))}"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1><p>{summary}</p>",
    ]
    if decision is not None:
        parts.append(_gate(decision))
    parts.append("<h2>Metrics</h2>")
    parts.append(_table(["metric", "value"], [[k, _num(v)] for k, v in result.metrics.items()]))
    if result.notes:
        items = "".join(f"<li>{_esc(n)}</li>" for n in result.notes)
        parts.append(f'<ul class="note">{items}</ul>')
    if result.slices:
        parts.append("<h2>Slices</h2>" + _slices(result))
    if result.importance:
        ranked = sorted(result.importance.items(), key=lambda kv: -kv[1].mean)
        rows = [[name, _num(imp.mean), _num(imp.std)] for name, imp in ranked]
        parts.append(
            f"<h2>Permutation importance ({_esc(result.importance_metric or '')})</h2>"
            + _table(["feature", "mean drop", "std"], rows)
        )
    if result.latency is not None:
        lat = result.latency
        rows = [
            ["p50 single-row (ms)", _num(lat.p50_ms)],
            ["p99 single-row (ms)", _num(lat.p99_ms)],
            ["batch rows per second", _num(lat.rows_per_s)],
        ]
        parts.append("<h2>Latency</h2>" + _table(["measure", "value"], rows))
    if result.plots:
        # as <img> data URIs: a plot read back from a stored dict cannot run script this way
        plots = "".join(
            f'<div class="plot"><img alt="{_esc(name, quote=True)}" '
            f'src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}"></div>'
            for name, svg in result.plots.items()
        )
        parts.append(f"<h2>Plots</h2>{plots}")
    parts.append("</body></html>")
    return "".join(parts)


def save_html(
    result: EvaluationResult, path: str | Path, decision: GateDecision | None = None
) -> None:
    """Write :func:`to_html` to ``path`` (UTF-8)."""
    Path(path).write_text(to_html(result, decision), encoding="utf-8")
