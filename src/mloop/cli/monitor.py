"""``mloop monitor``: monitors of deployments, their runs over log windows, reports and history.

The commands call :mod:`mloop.monitoring`, the same functions a Python user calls.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click
from rich.panel import Panel
from rich.table import Table

from mloop.cli.render import emit_json, format_time, out
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import InvalidInput
from mloop.store.records import Monitor, MonitorReport, MonitorResult

__all__ = ["monitor"]

_CHECKS = ("feature_drift", "prediction_drift", "data_quality", "performance")


def _monitor_json(m: Monitor) -> dict[str, Any]:
    return dataclasses.asdict(m)


def _report_json(r: MonitorReport) -> dict[str, Any]:
    return dataclasses.asdict(r)


def _thresholds(items: tuple[str, ...]) -> dict[str, Any] | None:
    """``performance=0.03`` and ``feature_drift.amount=0.2`` → the thresholds mapping."""
    if not items:
        return None
    found: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        check, _, column = key.partition(".")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None or (check != "performance") == (not column):
            raise InvalidInput(
                f"--threshold {item!r}: write performance=0.03 or CHECK.COLUMN=VALUE "
                "(e.g. feature_drift.amount=0.2, prediction_drift.proba=0.25)",
                field="threshold",
            )
        if column:
            found.setdefault(check, {})[column] = number
        else:
            found[check] = number
    return found


def _alerts(r: MonitorReport) -> str:
    if r.status == "no_data":
        return str(r.summary.get("reason", ""))
    errors = [f"{k}: {v['error']}" for k, v in r.summary.items()
              if isinstance(v, dict) and "error" in v]  # fmt: skip
    return "; ".join([a["reason"] for a in r.alerts] + errors) or "-"


def _reports_table(title: str, reports: list[MonitorReport]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("window start", "window end", "rows", "labelled", "status", "alerts"):
        table.add_column(column, overflow="fold")
    for r in reports:
        table.add_row(
            format_time(r.window_start_ms), format_time(r.window_end_ms), str(r.rows),
            str(r.labelled_rows), r.status, _alerts(r),
        )  # fmt: skip
    return table


@click.group()
def monitor() -> None:
    """Monitors: drift, data quality and performance of a deployment's predictions, per window."""


@monitor.command("create")
@click.option("--deployment", required=True, help="The deployment whose prediction log to watch.")
@click.option("--name", default=None, help="The monitor's name (default: the deployment's).")
@click.option(
    "--reference", default="training", show_default=True,
    help="DATASET@vN, or 'training': the data the served version was trained on.",
)  # fmt: skip
@click.option("--window", default="1h", show_default=True, help="'1h', '15m', '30s' or 'N rows'.")
@click.option(
    "--check", "checks", multiple=True, type=click.Choice(_CHECKS),
    help="A check to run (repeat; default: all four).",
)  # fmt: skip
@click.option("--drift-share", default=0.5, show_default=True, type=float,
              help="Share of drifted features that raises a feature_drift alert.")  # fmt: skip
@click.option("--threshold", "thresholds", multiple=True, metavar="KEY=VALUE",
              help="performance=0.03, or CHECK.COLUMN=VALUE (repeat).")  # fmt: skip
@click.option("--metric", default=None, help="Performance metric: roc_auc, accuracy, rmse, mae.")
@click.option("--target", default=None, help="The label column of the reference data.")
@click.option(
    "--expectations",
    default=None,
    metavar="SUITE.yaml",
    help="Expectation suite for data_quality (default: drafted from the reference).",
)
@click.option("--min-rows", default=100, show_default=True, type=int,
              help="Fewer rows than this in a window: reported as no_data.")  # fmt: skip
@click.option("--min-class-rows", default=30, show_default=True, type=int,
              help="Labelled rows of each class the performance check needs to judge.")  # fmt: skip
@click.option("--trusted", is_flag=True, help="Load model formats that unpickle code.")
@json_option
@pass_session
def create(  # noqa: PLR0917
    session: CliSession,
    deployment: str,
    name: str | None,
    reference: str,
    window: str,
    checks: tuple[str, ...],
    drift_share: float,
    thresholds: tuple[str, ...],
    metric: str | None,
    target: str | None,
    expectations: str | None,
    min_rows: int,
    min_class_rows: int,
    trusted: bool,
    as_json: bool,
) -> None:
    """Create a monitor of a deployment against reference data.

    \b
    Examples:
      mloop monitor create --deployment fraud-api --reference transactions@v3 --window 1h
      mloop monitor create --deployment fraud-api --window "10000 rows" --check feature_drift
    """
    from mloop.monitoring import create as create_monitor

    made = create_monitor(
        name, deployment=deployment, reference=reference, window=window,
        checks=list(checks) or list(_CHECKS), drift_share=drift_share,
        thresholds=_thresholds(thresholds), performance_metric=metric, min_rows=min_rows,
        min_class_rows=min_class_rows, target=target, expectations=expectations,
        trusted=trusted, client=session.client,
    )  # fmt: skip
    if as_json:
        emit_json(_monitor_json(made))
        return
    out().print(
        f"monitor {made.name}: created; watches {made.deployment} in {made.window} windows "
        f"against {made.reference} ({', '.join(made.checks)})"
    )


@monitor.command("run")
@click.argument("name")
@click.option("--end-ms", type=int, default=None,
              help="Evaluate windows ending by this time (epoch ms; default: now).")  # fmt: skip
@json_option
@pass_session
def run(session: CliSession, name: str, end_ms: int | None, as_json: bool) -> None:
    """Evaluate every complete window not yet reported and store a report for each.

    \b
    Example:
      mloop monitor run fraud-api
    """
    from mloop.monitoring import run as run_monitor

    reports = run_monitor(name, end_ms=end_ms, client=session.client)
    if as_json:
        emit_json([_report_json(r) for r in reports])
        return
    if not reports:
        out().print(f"monitor {name}: no complete window to evaluate")
        return
    alerts = sum(r.status == "alert" for r in reports)
    out().print(_reports_table(f"monitor {name}: {len(reports)} new report(s)", reports))
    out().print(f"{alerts} window(s) with alerts")


@monitor.command("list")
@json_option
@pass_session
def list_(session: CliSession, as_json: bool) -> None:
    """List monitors: deployment, reference, window, checks and the newest report.

    \b
    Example:
      mloop monitor list
    """
    from mloop.monitoring import list_monitors, reports

    found = [
        (m, reports(m.name, limit=1, newest_first=True, client=session.client))
        for m in list_monitors(client=session.client)
    ]
    if as_json:
        emit_json([
            {**_monitor_json(m), "last_report": _report_json(last[0]) if last else None}
            for m, last in found
        ])  # fmt: skip
        return
    table = Table(title="Monitors", title_justify="left")
    for column in ("name", "deployment", "reference", "window", "checks", "last window", "status"):
        table.add_column(column)
    for m, last in found:
        table.add_row(
            m.name, m.deployment, m.reference, m.window, ", ".join(m.checks),
            format_time(last[0].window_end_ms) if last else "-",
            last[0].status if last else "-",
        )  # fmt: skip
    out().print(table)


@monitor.command("show")
@click.argument("name")
@click.option("--last", default=10, show_default=True, type=int, help="Reports to show.")
@json_option
@pass_session
def show(session: CliSession, name: str, last: int, as_json: bool) -> None:
    """Show a monitor and its newest reports.

    \b
    Example:
      mloop monitor show fraud-api --last 5
    """
    from mloop.monitoring import get, reports

    if last < 1:
        raise InvalidInput(f"--last must be at least 1, got {last}", field="last")
    found = get(name, client=session.client)
    newest = reports(name, limit=last, newest_first=True, with_results=as_json,
                     client=session.client)[::-1]  # fmt: skip
    if as_json:
        emit_json({**_monitor_json(found), "reports": [_report_json(r) for r in newest]})
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    config = found.config
    grid.add_row("deployment", found.deployment)
    grid.add_row("reference", f"{found.reference} (given as {config.get('reference_given')})")
    grid.add_row(
        "model version", f"{config.get('model_version')} (its predictions on the reference)"
    )
    note = config.get("reference_note")
    if note:
        grid.add_row("reference note", str(note.get("reason")))
    grid.add_row("window", found.window)
    grid.add_row("checks", ", ".join(found.checks))
    grid.add_row("drift share", f"{config.get('drift_share')}")
    grid.add_row("metric", f"{config.get('performance_metric')}")
    grid.add_row("min rows", f"{config.get('min_rows')}")
    grid.add_row("min class rows", f"{config.get('min_class_rows')}")
    grid.add_row("created", f"{format_time(found.created_at)} by {found.created_by}")
    out().print(Panel(grid, title=f"monitor {found.name}", title_align="left"))
    out().print(_reports_table("newest reports", newest))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@monitor.command("history")
@click.argument("name")
@click.option("--check", type=click.Choice(_CHECKS), default=None, help="Only this check.")
@click.option("--feature", default=None, help="Only this feature (or metric).")
@click.option("--since-ms", type=int, default=None, help="Only windows ending after this time.")
@json_option
@pass_session
def history(  # noqa: PLR0917
    session: CliSession,
    name: str,
    check: str | None,
    feature: str | None,
    since_ms: int | None,
    as_json: bool,
) -> None:
    """Per-feature results over time, oldest window first.

    \b
    Example:
      mloop monitor history fraud-api --check feature_drift --feature amount
    """
    from mloop.monitoring import history as monitor_history

    points: list[MonitorResult] = monitor_history(
        name, check=check, feature=feature, since_ms=since_ms, client=session.client
    )
    if as_json:
        emit_json([dataclasses.asdict(p) for p in points])
        return
    table = Table(title=f"History of {name}", title_justify="left")
    for column in ("window start", "check", "feature", "statistic", "value", "threshold",
                   "p-value", "drifted"):  # fmt: skip
        table.add_column(column)
    for p in points:
        table.add_row(
            format_time(p.window_start_ms), p.check, p.feature, p.statistic, _num(p.value),
            _num(p.threshold), _num(p.p_value), "-" if p.drifted is None else str(p.drifted),
        )  # fmt: skip
    out().print(table)
