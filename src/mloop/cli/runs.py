"""``mloop runs``: list, search, show, compare, soft-delete and restore runs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mloop.cli.render import (
    emit_json,
    format_bytes,
    format_duration,
    format_time,
    format_value,
    out,
    short_id,
    sparkline,
)
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.store.base import Run

__all__ = ["SYSTEM_TAG_PREFIX", "key_metrics", "runs", "split_tags"]

F = TypeVar("F", bound=Callable[..., Any])

SYSTEM_TAG_PREFIX = "mloop."
VIEWS = click.Choice(["active", "deleted", "all"], case_sensitive=False)
STATUS_STYLE = {"RUNNING": "cyan", "FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}
KEY_METRICS_SHOWN = 4
BASE_TABLE_WIDTH = 78
METRIC_COLUMN_WIDTH = 11


@click.group()
def runs() -> None:
    """Find, inspect, compare and soft-delete runs."""


def _search_options(func: F) -> F:
    """The options ``runs list`` and ``runs search`` share."""
    options = [
        click.option(
            "--experiment",
            "-e",
            "experiments",
            multiple=True,
            metavar="NAME|ID",
            help="Only runs of this experiment (repeatable). Default: every experiment.",
        ),
        click.option(
            "--order-by",
            "-o",
            "order_by",
            multiple=True,
            metavar="CLAUSE",
            help="Sort key, e.g. 'metrics.roc_auc DESC' (repeatable; the first sorts first).",
        ),
        click.option(
            "--max-results",
            "-n",
            type=click.IntRange(min=1),
            default=100,
            show_default=True,
            help="Most runs on one page.",
        ),
        click.option(
            "--page-token", metavar="TOKEN", help="Continue from a previous page's next token."
        ),
        click.option(
            "--view", type=VIEWS, default="active", show_default=True, help="Which runs to show."
        ),
        json_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def key_metrics(found: Sequence[Run], order_by: Sequence[str], limit: int) -> list[str]:
    """The metric columns worth a table: those sorted on first, then the most common keys."""
    chosen: list[str] = []
    for clause in order_by:
        term = clause.strip()
        for suffix in (" asc", " desc", " ASC", " DESC"):
            term = term.removesuffix(suffix)
        term = term.strip()
        if term.startswith("metrics."):
            key = term.removeprefix("metrics.").strip('`"')
            if key not in chosen:
                chosen.append(key)
    counts = Counter(key for run in found for key in run.metrics)
    for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if key not in chosen:
            chosen.append(key)
    return chosen[:limit]


def _experiment_names(session: CliSession) -> dict[int, str]:
    return {e.id: e.name for e in session.client.list_experiments(view="all")}


def _status_text(run: Run) -> Text:
    status = str(run.status)
    text = Text(status, style=STATUS_STYLE.get(status, ""))
    if str(run.lifecycle) == "deleted":
        text.append(" (deleted)", style="dim")
    return text


def _print_runs_table(
    session: CliSession, found: Sequence[Run], order_by: Sequence[str], title: str
) -> None:
    names = _experiment_names(session)
    console = out()
    # As many metric columns as the terminal holds beside the fixed ones (about 80 columns).
    room = max(0, (console.width - BASE_TABLE_WIDTH) // METRIC_COLUMN_WIDTH)
    if any(clause.strip().startswith("metrics.") for clause in order_by):
        room = max(room, 1)  # the metric the runs are sorted on is always shown
    metric_keys = key_metrics(found, order_by, min(KEY_METRICS_SHOWN, room))
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True, style="bold", min_width=8)
    # Wrappable (at spaces) so that rich can narrow them to fit; long words get an ellipsis.
    table.add_column("name", min_width=8, max_width=32, overflow="ellipsis")
    table.add_column("status", no_wrap=True, min_width=8)
    table.add_column("experiment", min_width=8, max_width=24, overflow="ellipsis")
    table.add_column("start", no_wrap=True, min_width=16)
    table.add_column("duration", justify="right", no_wrap=True, min_width=7)
    for key in metric_keys:
        table.add_column(key, justify="right", overflow="ellipsis", min_width=6)
    ids_on_page = {run.id for run in found}
    for run in found:
        name = run.name if run.parent_id not in ids_on_page else f"└ {run.name}"
        table.add_row(
            short_id(run.id),
            name,
            _status_text(run),
            names.get(run.experiment_id, str(run.experiment_id)),
            format_time(run.start_time)[:16],
            format_duration(run.start_time, run.end_time),
            *(format_value(run.metrics.get(key)) for key in metric_keys),
        )
    console.print(table)


def _search(
    session: CliSession,
    *,
    filter_string: str,
    experiments: tuple[str, ...],
    order_by: tuple[str, ...],
    max_results: int,
    page_token: str | None,
    view: str,
    as_json: bool,
) -> None:
    page = session.client.search_runs(
        filter_string,
        experiments=list(experiments) or None,
        order_by=list(order_by) or None,
        max_results=max_results,
        page_token=page_token,
        view=view.lower(),
    )
    found = list(page)
    if as_json:
        emit_json({"runs": found, "next_page_token": page.next_token})
        return
    if not found:
        out().print("no runs match")
    else:
        title = f"Runs ({len(found)}{', more on the next page' if page.next_token else ''})"
        _print_runs_table(session, found, order_by, title)
    if page.next_token:
        out().print(f"next page: --page-token {page.next_token}", soft_wrap=True)


@runs.command("list")
@click.option(
    "--filter", "-f", "filter_string", default="", metavar="EXPR", help="Filter expression."
)
@_search_options
@pass_session
def list_(
    session: CliSession,
    *,
    filter_string: str,
    experiments: tuple[str, ...],
    order_by: tuple[str, ...],
    max_results: int,
    page_token: str | None,
    view: str,
    as_json: bool,
) -> None:
    """List runs, newest first (filter, order and page them like `runs search`).

    \b
    Examples:
      mloop runs list --experiment breast-cancer-demo
      mloop runs list -e demo --order-by 'metrics.roc_auc DESC' -n 5
      mloop runs list --view deleted --json
    """
    _search(
        session,
        filter_string=filter_string,
        experiments=experiments,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        view=view,
        as_json=as_json,
    )


@runs.command()
@click.argument("filter_expr", metavar="[FILTER]", required=False, default="")
@click.option(
    "--filter",
    "-f",
    "filter_string",
    default="",
    metavar="EXPR",
    help="Filter expression (the same as the FILTER argument).",
)
@_search_options
@pass_session
def search(
    session: CliSession,
    *,
    filter_expr: str,
    filter_string: str,
    experiments: tuple[str, ...],
    order_by: tuple[str, ...],
    max_results: int,
    page_token: str | None,
    view: str,
    as_json: bool,
) -> None:
    """Search runs with a filter: metrics, params, tags and attributes, AND/OR, parentheses.

    \b
    Examples:
      mloop runs search "metrics.roc_auc > 0.99 and params.model = 'logreg'"
      mloop runs search "tags.family = 'hgb' or (metrics.f1 >= 0.97 and status = 'FINISHED')" \\
          --order-by 'metrics.roc_auc DESC' --max-results 3
    See docs/search.md for the whole syntax.
    """
    if filter_expr and filter_string:
        raise click.UsageError("give the filter as the FILTER argument or --filter, not both")
    _search(
        session,
        filter_string=filter_expr or filter_string,
        experiments=experiments,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        view=view,
        as_json=as_json,
    )


def split_tags(tags: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split tags into (user tags, system ``mloop.*`` tags)."""
    user = {k: v for k, v in tags.items() if not k.startswith(SYSTEM_TAG_PREFIX)}
    system = {k: v for k, v in tags.items() if k.startswith(SYSTEM_TAG_PREFIX)}
    return user, system


def _key_value_table(title: str, values: dict[str, str]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key in sorted(values):
        table.add_row(key, values[key])
    return table


def _children(session: CliSession, run: Run) -> list[Run]:
    page = session.client.search_runs(
        f"attributes.parent_id = '{run.id}'",
        order_by=["attributes.start_time ASC"],
        max_results=1000,
        view="all",
    )
    return list(page)


@runs.command()
@click.argument("run_id")
@json_option
@pass_session
def show(session: CliSession, run_id: str, as_json: bool) -> None:
    """Show one run: params, latest metrics with a sparkline, tags, artifacts, parent, children.

    \b
    Example:
      mloop runs show 3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8
    """
    client = session.client
    run = client.get_run(client.resolve_run_id(run_id))
    experiment = client.get_experiment(run.experiment_id)
    parent = client.get_run(run.parent_id) if run.parent_id else None
    children = _children(session, run)
    artifacts = client.list_artifacts(run.id)
    histories = {key: client.get_metric_history(run.id, key) for key in sorted(run.metrics)}
    user_tags, system_tags = split_tags(run.tags)

    if as_json:
        emit_json(
            {
                "run": run,
                "experiment": {"id": experiment.id, "name": experiment.name},
                "parent": None if parent is None else {"id": parent.id, "name": parent.name},
                "children": [
                    {"id": c.id, "name": c.name, "status": c.status, "metrics": c.metrics}
                    for c in children
                ],
                "artifacts": artifacts,
                "metric_history": {
                    key: {
                        "points": len(points),
                        "first_step": points[0].step if points else None,
                        "last_step": points[-1].step if points else None,
                        "min": min((p.value for p in points), default=None),
                        "max": max((p.value for p in points), default=None),
                    }
                    for key, points in histories.items()
                },
            }
        )
        return

    console = out()
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column(overflow="fold")
    header.add_row("id", run.id)
    header.add_row("name", run.name)
    header.add_row("status", _status_text(run))
    header.add_row("experiment", f"{experiment.name} (id {experiment.id})")
    header.add_row("user", run.user)
    header.add_row("host / pid", f"{run.host} / {run.pid}")
    header.add_row("start", format_time(run.start_time))
    header.add_row("end", format_time(run.end_time))
    header.add_row("duration", format_duration(run.start_time, run.end_time))
    if parent is not None:
        header.add_row("parent", f"{parent.id} ({parent.name})")
    console.print(Panel(header, title=f"run {short_id(run.id)}", title_align="left"))

    parts: list[Any] = []
    if run.params:
        parts.append(_key_value_table("Params", run.params))
    if run.metrics:
        metrics = Table(title="Metrics (latest)", title_justify="left")
        metrics.add_column("key", style="bold", no_wrap=True)
        metrics.add_column("latest", justify="right")
        metrics.add_column("min", justify="right")
        metrics.add_column("max", justify="right")
        metrics.add_column("steps", justify="right")
        metrics.add_column("history", no_wrap=True)
        for key, points in histories.items():
            values = [p.value for p in points]
            finite = [v for v in values if math.isfinite(v)]
            metrics.add_row(
                key,
                format_value(run.metrics[key]),
                format_value(min(finite)) if finite else "-",
                format_value(max(finite)) if finite else "-",
                str(len(points)),
                sparkline(values),
            )
        parts.append(metrics)
    if user_tags:
        parts.append(_key_value_table("Tags", user_tags))
    if system_tags:
        parts.append(_key_value_table("System tags (mloop.*)", system_tags))
    if artifacts:
        table = Table(title="Artifacts", title_justify="left")
        table.add_column("path", overflow="fold")
        table.add_column("size", justify="right")
        table.add_column("digest", no_wrap=True)
        for entry in artifacts:
            table.add_row(entry.path, format_bytes(entry.size), entry.digest[:12])
        parts.append(table)
    if children:
        table = Table(title="Child runs", title_justify="left")
        table.add_column("id", no_wrap=True)
        table.add_column("name")
        table.add_column("status")
        for child in children:
            table.add_row(short_id(child.id), child.name, _status_text(child))
        parts.append(table)
    for part in parts:
        console.print(part)
        console.print()
    if not parts:
        console.print("(nothing logged yet)")


def _differs(values: Sequence[object]) -> bool:
    present = [v for v in values if v is not None]
    if len(present) != len(values):
        return True
    first = present[0]
    if isinstance(first, float):
        return any(
            not (isinstance(v, float) and (v == first or (math.isnan(v) and math.isnan(first))))
            for v in present
        )
    return any(v != first for v in present)


@runs.command()
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID RUN_ID...")
@click.option("--only-diff", is_flag=True, help="Show only the params and metrics that differ.")
@json_option
@pass_session
def compare(session: CliSession, run_ids: tuple[str, ...], only_diff: bool, as_json: bool) -> None:
    """Compare runs side by side; differing params and metrics are highlighted.

    \b
    Example:
      mloop runs compare 3f2a9c1e 7b1d04aa 9c0e5f12
    """
    if len(run_ids) < 2:
        raise click.UsageError("give at least two run ids to compare")
    client = session.client
    found = [client.get_run(client.resolve_run_id(run_id)) for run_id in run_ids]
    param_keys = sorted({k for run in found for k in run.params})
    metric_keys = sorted({k for run in found for k in run.metrics})
    params = {k: [run.params.get(k) for run in found] for k in param_keys}
    metrics = {k: [run.metrics.get(k) for run in found] for k in metric_keys}
    differing_params = [k for k, values in params.items() if _differs(values)]
    differing_metrics = [k for k, values in metrics.items() if _differs(values)]

    if as_json:
        emit_json(
            {
                "runs": [{"id": r.id, "name": r.name, "status": r.status} for r in found],
                "params": {
                    k: dict(zip([r.id for r in found], v, strict=True)) for k, v in params.items()
                },
                "metrics": {
                    k: dict(zip([r.id for r in found], v, strict=True)) for k, v in metrics.items()
                },
                "differing": {"params": differing_params, "metrics": differing_metrics},
            }
        )
        return

    table = Table(title=f"Comparing {len(found)} runs", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("key", style="bold", overflow="fold")
    for run in found:
        table.add_column(f"{short_id(run.id)}\n{run.name}", justify="right", overflow="fold")
    table.add_row("", "status", *(_status_text(r) for r in found), end_section=True)
    for kind, rows, differing in (
        ("param", params, differing_params),
        ("metric", metrics, differing_metrics),
    ):
        for key, values in rows.items():
            differs = key in differing
            if only_diff and not differs:
                continue
            style = "bold yellow" if differs else "dim"
            table.add_row(
                kind,
                Text(key, style=style),
                *(Text(format_value(v), style=style) for v in values),
            )
        table.add_section()
    console = out()
    console.print(table)
    console.print(
        Group(
            Text(
                f"{len(differing_params)} of {len(param_keys)} params and "
                f"{len(differing_metrics)} of {len(metric_keys)} metrics differ "
                "(highlighted)."
            )
        )
    )


def _change_lifecycle(
    session: CliSession,
    run_ids: tuple[str, ...],
    as_json: bool,
    change: Callable[[str], object],
    *,
    done: str,
    hint: str = "",
) -> None:
    """Resolve every id first (a bad one changes nothing), apply ``change``, report."""
    resolved = [session.client.resolve_run_id(run_id) for run_id in run_ids]
    for run_id in resolved:
        change(run_id)
    if as_json:
        emit_json({done: resolved})
        return
    for run_id in resolved:
        out().print(f"{done} run {run_id}" + hint.format(run_id=run_id))


@runs.command()
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID...")
@json_option
@pass_session
def delete(session: CliSession, run_ids: tuple[str, ...], as_json: bool) -> None:
    """Soft-delete runs: hidden from lists and searches, kept until gc --purge-deleted.

    \b
    Example:
      mloop runs delete 3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8
    """
    _change_lifecycle(
        session,
        run_ids,
        as_json,
        session.client.delete_run,
        done="deleted",
        hint=" (undo with: mloop runs restore {run_id})",
    )


@runs.command()
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID...")
@json_option
@pass_session
def restore(session: CliSession, run_ids: tuple[str, ...], as_json: bool) -> None:
    """Restore soft-deleted runs.

    \b
    Example:
      mloop runs restore 3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8
    """
    _change_lifecycle(session, run_ids, as_json, session.client.restore_run, done="restored")
