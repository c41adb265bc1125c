"""What a closed-loop demo did and measured (:class:`LoopDemoResult`, its timeline of
:class:`LoopEvent` and its :class:`WindowInfo`), and its HTML report: one self-contained page
(no script, no external file) with the summary, the share of drifted features per window as an
inline SVG, the gate's evidence, the canary steps and the whole timeline."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LoopDemoResult",
    "LoopEvent",
    "WindowInfo",
    "drift_chart",
    "render_report",
    "write_report",
]


@dataclass(frozen=True)
class LoopEvent:
    """One line of the demo's timeline: what happened, at which simulated time."""

    sim_ms: int
    kind: str
    message: str
    wall_s: float
    data: dict[str, Any] = field(default_factory=dict)
    #: How the simulated time is shown (``strftime``): hours for fraud, days for demand.
    time_format: str = "%a %H:%M"

    def sim_time(self) -> str:
        """The simulated time as ``Mon 06:00`` (UTC; ``Mon 13 Nov`` for daily scenarios)."""
        return dt.datetime.fromtimestamp(self.sim_ms / 1000, tz=dt.UTC).strftime(self.time_format)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "sim_ms": self.sim_ms, "sim_time": self.sim_time(), "kind": self.kind,
            "message": self.message, "wall_s": round(self.wall_s, 3), "data": self.data,
        }  # fmt: skip


@dataclass
class WindowInfo:
    """One monitor window as the demo saw it: its rows in the replay, whether they come before
    or after the change, and the monitor's verdict."""

    index: int
    report_id: int
    first_row: int
    last_row: int
    rows: int
    post_change_rows: int
    status: str
    drift_share: float | None
    checks: list[str]
    sim_start_ms: int
    sim_end_ms: int
    #: Rows of each model version in the window (the report's ``model_versions``).
    model_versions: dict[str, int] = field(default_factory=dict)
    #: The model version whose reference the window was judged against.
    reference_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass
class LoopDemoResult:
    """What :func:`run_closed_loop` did and measured."""

    scenario: str
    seed: int
    dataset: str
    model: str
    deployment: str
    monitor: str
    policy: str
    url: str
    #: None on a stationary replay (no change point).
    change_sim_ms: int | None
    change_row: int
    window_rows: int
    metric: str
    champion_version: int
    events: list[LoopEvent] = field(default_factory=list)
    windows: list[WindowInfo] = field(default_factory=list)
    episode: dict[str, Any] = field(default_factory=dict)
    promoted_version: int | None = None
    detection_window: int | None = None
    detection_delay_windows: int | None = None
    detection_delay_rows: int | None = None
    pre_change_windows: int = 0
    pre_change_alarms: int = 0
    old_metric: float | None = None
    new_metric: float | None = None
    fresh_rows: int = 0
    gate: dict[str, Any] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)
    rows_replayed: int = 0
    requests: int = 0
    labels_sent: int = 0
    seconds: float = 0.0
    report_path: str = ""
    #: A replay with no change point: every alarm is a false one.
    stationary: bool = False

    @property
    def alarms(self) -> int:
        """Windows that raised an alert."""
        return sum(1 for w in self.windows if w.status == "alert")

    @property
    def gain(self) -> float | None:
        """How much better the promoted model is on fresh post-change rows (positive: better,
        whatever the metric's direction)."""
        if self.old_metric is None or self.new_metric is None:
            return None
        diff = self.new_metric - self.old_metric
        return diff if self.metric != "rmse" else -diff

    @property
    def after_promotion(self) -> list[WindowInfo]:
        """The windows served by the promoted version alone and judged against its reference
        (none if nothing was promoted); a window of a 100 % canary step, before the promotion,
        is not one."""
        if self.promoted_version is None:
            return []
        only = {str(self.promoted_version)}
        return [
            w
            for w in self.windows
            if set(w.model_versions) == only and w.reference_version == self.promoted_version
        ]

    @property
    def after_promotion_alarms(self) -> int:
        """Alarms in :attr:`after_promotion` windows: the monitor, moved to the promoted
        version's training data, should see nothing there."""
        return sum(1 for w in self.after_promotion if w.status == "alert")

    @property
    def promoted(self) -> bool:
        """Whether the episode promoted the challenger."""
        return self.episode.get("state") == "promoted"

    def summary(self) -> dict[str, Any]:
        """The figures, JSON-ready (what ``mloop demo --json`` prints)."""
        return {
            "scenario": self.scenario, "seed": self.seed, "dataset": f"{self.dataset}@v1",
            "model": self.model, "deployment": self.deployment, "monitor": self.monitor,
            "policy": self.policy, "url": self.url, "metric": self.metric,
            "champion_version": self.champion_version,
            "promoted_version": self.promoted_version, "promoted": self.promoted,
            "change_row": self.change_row, "window_rows": self.window_rows,
            "windows": len(self.windows), "detection_window": self.detection_window,
            "detection_delay_windows": self.detection_delay_windows,
            "detection_delay_rows": self.detection_delay_rows,
            "pre_change_windows": self.pre_change_windows,
            "pre_change_alarms": self.pre_change_alarms,
            "after_promotion_windows": len(self.after_promotion),
            "after_promotion_alarms": self.after_promotion_alarms,
            "old_model_metric": _round(self.old_metric),
            "new_model_metric": _round(self.new_metric),
            "gain": _round(self.gain), "fresh_rows": self.fresh_rows,
            "episode": self.episode, "gate": self.gate, "initial": self.initial,
            "rows_replayed": self.rows_replayed, "requests": self.requests,
            "labels_sent": self.labels_sent, "seconds": round(self.seconds, 1),
            "report": self.report_path, "stationary": self.stationary, "alarms": self.alarms,
        }  # fmt: skip


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; } .bad { color: #c62828; } .muted { color: #666; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def drift_chart(result: LoopDemoResult, *, width: int = 900, height: int = 260) -> str:
    """An inline SVG: the share of drifted features of each window (bars, red when the window
    alerted), the drift-share threshold, and the change point."""
    windows = result.windows
    left, right, top, bottom = 48, 12, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(windows), 1)
    step = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="drifted features per window">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{tick:.0%}</text>"
        )
    for i, window in enumerate(windows):
        share = window.drift_share or 0.0
        x = left + i * step + step * 0.15
        h = plot_h * share
        colour = "#c62828" if window.status == "alert" else "#4c78a8"
        title = (
            f"window {window.index}: rows {window.first_row}-{window.last_row}, "
            f"{share:.0%} drifted, {window.status}"
            + (f" ({', '.join(window.checks)})" if window.checks else "")
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{max(h, 1):.1f}" fill="{colour}"><title>{_e(title)}</title></rect>'
        )
        if n <= 40 or i % 5 == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{top + plot_h + 14}" font-size="10" '
                f'text-anchor="middle">{window.index}</text>'
            )
    threshold = top + plot_h * 0.5
    parts.append(
        f'<line x1="{left}" y1="{threshold}" x2="{left + plot_w}" y2="{threshold}" '
        'stroke="#c62828" stroke-dasharray="4 3"/>'
        f'<text x="{left + plot_w}" y="{top - 6}" font-size="11" text-anchor="end">'
        '<tspan fill="#4c78a8">■ ok</tspan>   <tspan fill="#c62828">■ alert   '
        '- - drift_share 50%</tspan>   <tspan fill="#1a7f37">¦ promoted</tspan></text>'
    )
    change = next((i for i, w in enumerate(windows) if w.post_change_rows > 0), None)
    if change is not None:
        x = left + change * step
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#222" '
            f'stroke-width="2"/><text x="{x + 4:.1f}" y="{top + 12}" font-size="11">change</text>'
        )
    promoted = next(
        (
            e.sim_ms
            for e in result.events
            if e.kind == "episode" and e.data.get("state") == "promoted"
        ),
        None,
    )
    at = None
    if promoted is not None:
        later = [i for i, w in enumerate(windows) if w.sim_end_ms >= promoted]
        at = later[0] if later else len(windows)  # in the last rows, not reported yet
    if at is not None:
        x = min(left + at * step + 2, left + plot_w - 2)
        anchor = "end" if at >= len(windows) - 1 else "start"
        label_x = x - 4 if anchor == "end" else x + 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#1a7f37" '
            f'stroke-width="2" stroke-dasharray="6 3"/><text x="{label_x:.1f}" y="{top + 26}" '
            f'font-size="11" fill="#1a7f37" text-anchor="{anchor}">promoted</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
        f"monitor window ({result.window_rows:,} rows each)</text></svg>"
    )
    return "".join(parts)


def _summary_rows(result: LoopDemoResult) -> list[tuple[str, str, str]]:
    gain = result.gain
    return [
        ("scenario", result.scenario, ""),
        (
            "change point",
            "none: a stationary replay, every alarm is a false one"
            if result.stationary
            else f"row {result.change_row:,} of the live traffic",
            "",
        ),
        (
            "drift detected in window",
            _fmt(result.detection_window),
            f"{_fmt(result.detection_delay_windows)} window(s) after the change (the alerting "
            f"one included), {_fmt(result.detection_delay_rows)} rows",
        ),
        (
            "alarms before the change",
            f"{result.pre_change_alarms} in {result.pre_change_windows} windows",
            "ok" if result.pre_change_alarms == 0 else "bad",
        ),
        ("episode", _fmt(result.episode.get("state")), _fmt(result.episode.get("reason"))),
        (
            "alarms after the promotion",
            f"{result.after_promotion_alarms} in {len(result.after_promotion)} windows"
            if result.promoted
            else "-",
            "windows served by the promoted version alone, against its training data"
            if result.promoted
            else "",
        ),
        (
            f"{result.metric} on {result.fresh_rows:,} fresh post-change rows",
            f"v{result.champion_version}: {_fmt(result.old_metric)} → "
            f"v{result.promoted_version or result.champion_version}: {_fmt(result.new_metric)}",
            f"gain {_fmt(gain)}",
        ),
        ("time", f"{result.seconds:.1f} s", f"{result.rows_replayed:,} rows replayed in "
         f"{result.requests} requests, {result.labels_sent:,} labels sent"),
    ]  # fmt: skip


def _gate_table(gate: dict[str, Any]) -> str:
    if not gate:
        return '<p class="muted">No gate decision was recorded.</p>'
    verdict = "passed" if gate.get("passed") else "refused"
    rows = []
    for check in gate.get("checks", []):
        cells = [
            check.get("name"), check.get("metric"), check.get("observed"),
            check.get("champion"), check.get("required"),
            "passed" if check.get("passed") else "failed",
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{_e(_fmt(c))}</td>" for c in cells) + "</tr>")
    reasons = "".join(
        f"<li>{_e(r)}</li>"
        for r in [*gate.get("reasons", []), *(c.get("reason") for c in gate.get("checks", []))]
        if r
    )
    return (
        f"<p>The challenger and the champion were evaluated on the same {gate.get('rows', '?')} "
        f"held-out fresh labelled rows; the gate <b>{verdict}</b>.</p>"
        "<table><tr><th>check</th><th>metric</th><th>challenger</th><th>champion</th>"
        f"<th>required</th><th>result</th></tr>{''.join(rows)}</table><ul>{reasons}</ul>"
    )


def _health_table(health: dict[str, Any]) -> str:
    if not health:
        return '<p class="muted">No canary step was held.</p>'
    rows = []
    for key in sorted(health):
        step = health[key]
        rows.append(
            f"<tr><td>{_e(key.removeprefix('health_'))}</td><td>{_e(step.get('passed'))}</td>"
            f"<td class='num'>{_e(step.get('rows'))}</td>"
            f"<td class='num'>{_e(step.get('labelled'))}</td>"
            f"<td>{_e(step.get('reason'))}</td></tr>"
        )
    return (
        "<table><tr><th>step</th><th>healthy</th><th>canary rows</th><th>labelled</th>"
        f"<th>reason</th></tr>{''.join(rows)}</table>"
    )


def render_report(result: LoopDemoResult) -> str:
    """The report as one HTML document."""
    summary = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td><td class='muted'>{_e(note)}</td></tr>"
        for k, v, note in _summary_rows(result)
    )
    windows = "".join(
        f"<tr><td class='num'>{w.index}</td><td class='num'>{w.first_row:,}-{w.last_row:,}</td>"
        f"<td class='num'>{w.post_change_rows:,}</td><td class='num'>"
        f"{_e(_fmt(w.drift_share))}</td><td class='{'bad' if w.status == 'alert' else 'ok'}'>"
        f"{_e(w.status)}</td><td>{_e(', '.join(w.checks))}</td></tr>"
        for w in result.windows
    )
    timeline = "".join(
        f"<tr><td>{_e(e.sim_time())}</td><td class='num'>{e.wall_s:.1f}</td>"
        f"<td>{_e(e.kind)}</td><td>{_e(e.message)}</td></tr>"
        for e in result.events
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mloop closed loop: {_e(result.scenario)}</title><style>{_STYLE}</style></head>
<body>
<h1>mloop closed loop — {_e(result.scenario)} scenario</h1>
<p>Deployment <code>{_e(result.deployment)}</code> (model <code>{_e(result.model)}</code>),
monitor and policy <code>{_e(result.policy)}</code>, served on {_e(result.url)}; everything
below is recorded in the store.</p>
<h2>Summary</h2><table>{summary}</table>
<h2>Drifted features per window</h2>
<p>Bars: the share of the model's inputs whose distribution drifted from the training data
(red: the window raised an alert, by feature drift or another check). The feature-drift alert
is raised when the share reaches 50%. After the promotion the traffic still differs from the
data the monitor was created with (the first model's training data); the policy's cool-down
keeps those alerts from opening another episode.</p>
{drift_chart(result)}
<h2>The gate: challenger against champion</h2>{_gate_table(result.gate)}
<h2>Canary steps</h2>{_health_table(result.episode.get("health") or {})}
<h2>Windows</h2>
<table><tr><th>window</th><th>rows</th><th>after change</th><th>drift share</th>
<th>status</th><th>alerts</th></tr>{windows}</table>
<h2>Timeline</h2>
<table><tr><th>simulated time</th><th>s</th><th>what</th><th>detail</th></tr>{timeline}</table>
</body></html>
"""


def write_report(result: LoopDemoResult, path: Path) -> Path:
    """Write the report to ``path`` (its folder is created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(result), encoding="utf-8")
    return path
