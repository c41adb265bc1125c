"""``mloop demo``: the closed loop on a fraud (or demand) scenario, or a small tracked sweep
on breast-cancer data; each shows how to look at what was recorded."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from mloop.cli.render import emit_json, format_value, out, progress, short_id
from mloop.cli.session import CliSession, json_option, pass_session

if TYPE_CHECKING:
    from mloop.examples.closed_loop_report import LoopDemoResult, LoopEvent

__all__ = ["demo", "loop_next_commands", "next_commands"]

SCENARIOS = ("fraud", "demand", "breast-cancer")
#: Bars the fraud scenario is held to (issue 7): detection within 2 windows, no false alarm,
#: the promoted model at least this much better (ROC AUC) on post-change data.
MAX_DETECTION_WINDOWS = 2
MIN_AUC_GAIN = 0.05
#: Windows a stationary replay (``--stationary``) serves: the bar is no alarm over at least 50.
STATIONARY_WINDOWS = 50

#: The dataset and model the demo registers (here so that listing commands needs no sklearn).
DATASET = "breast-cancer"
MODEL = "breast-cancer-classifier"

SHOWN_METRICS = ("val_roc_auc", "roc_auc", "accuracy", "f1", "log_loss")


def _prefix(session: CliSession) -> str:
    prefix = "mloop"
    if session.tracking_uri:
        prefix += f" --tracking-uri {shlex.quote(session.tracking_uri)}"
    if session.artifact_uri:
        prefix += f" --artifact-uri {shlex.quote(session.artifact_uri)}"
    return prefix


def next_commands(
    session: CliSession, experiment: str, best_id: str, others: list[str]
) -> list[str]:
    """The commands that inspect the breast-cancer demo's results, ready to paste."""
    prefix = _prefix(session)
    # Double quotes hold the single-quoted value in every POSIX shell (no $, ` or \ inside).
    query = "\"params.model = 'HistGradientBoostingClassifier' or metrics.roc_auc > 0.99\""
    return [
        f"{prefix} runs list --experiment {experiment}",
        f"{prefix} runs search {query} --experiment {experiment} "
        "--order-by 'metrics.val_roc_auc DESC' --order-by 'metrics.val_log_loss ASC'",
        f"{prefix} runs show {best_id}",
        f"{prefix} runs compare {' '.join([best_id, *others])}",
        f"{prefix} artifacts ls {best_id}",
        f"{prefix} artifacts get {best_id} confusion_matrix.json --dest ./demo-artifacts",
        f"{prefix} data show {DATASET}",
        f"{prefix} models lineage models:/{MODEL}@champion",
        f"{prefix} models card models:/{MODEL}@champion",
        f"{prefix} serve {MODEL}@champion --port 8080",
        f"{prefix} deployments show {MODEL}",
        f"{prefix} audit verify",
    ]


@click.command()
@click.option(
    "--scenario",
    type=click.Choice(SCENARIOS),
    default="fraud",
    show_default=True,
    help="fraud or demand: the closed loop; breast-cancer: a tracked sweep, served.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--stationary",
    is_flag=True,
    help=f"Replay {STATIONARY_WINDOWS} windows with no change point (fraud or demand): every "
    "alarm is a false one; the summary counts them.",
)
@click.option(
    "--windows",
    type=click.IntRange(min=1),
    default=None,
    help=f"Windows replayed with --stationary (default {STATIONARY_WINDOWS}); otherwise the "
    "windows replayed after the episode ends, to watch the promoted model (default 2).",
)
@json_option
@pass_session
def demo(
    session: CliSession,
    *,
    scenario: str,
    seed: int,
    stationary: bool,
    windows: int | None,
    as_json: bool,
) -> None:
    """Run the closed loop on a simulated fraud-detection service (about 30 s).

    All real, on the configured store (./.mloop unless MLOOP_HOME or --tracking-uri say
    otherwise): generates card transactions whose fraud pattern changes at a known point,
    registers and validates the history as 'transactions@v1', trains a model through a
    pipeline, gates, approves and makes it the champion, serves it over HTTP on loopback, and
    creates a monitor (windows of 2,000 rows) and a policy. It then replays live traffic
    through the server with labels arriving late through /feedback, while the agent detects
    the drift, retrains on the fresh labelled rows, shows the challenger beating the champion
    on the same held-out rows, rolls it out as a canary and promotes it. Prints the timeline,
    a summary (detection delay, ROC AUC before and after), the path of an HTML report, and
    what to run next.

    --stationary replays 50 windows (--windows N) with no change point instead and reports
    the false alarms (alarms: 0 of 50 is the bar; under a minute on two cores). Without it,
    --windows N replays N windows after the episode ends (the summary counts the alarms in
    the windows the promoted model served alone).

    --scenario demand does the same for a demand-forecasting regression (gate on RMSE);
    --scenario breast-cancer trains a small tracked sweep on scikit-learn's breast-cancer data
    and serves the best model. Run again on a store that already holds the fraud (or demand)
    demo, it runs in a fresh embedded store under MLOOP_HOME/demo-runs/ and says where.

    \b
    Example:
      mloop demo && mloop policies episodes fraud-detector
    """
    if scenario == "breast-cancer":
        if stationary or windows is not None:
            raise click.UsageError(
                "--stationary and --windows replay the closed loop: use --scenario fraud or demand"
            )
        _sweep_demo(session, seed, as_json)
    elif stationary:
        _loop_demo(session, scenario, seed, as_json, stationary=windows or STATIONARY_WINDOWS)
    else:
        _loop_demo(session, scenario, seed, as_json, after_windows=windows)


def _sweep_demo(session: CliSession, seed: int, as_json: bool) -> None:
    """The breast-cancer sweep: train, register, gate, serve."""
    # scikit-learn is imported here, not at start-up, so that other commands stay quick.
    from mloop.examples.breast_cancer import run_demo, sweep_plan

    client = session.client
    plan = sweep_plan(seed)
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("training", total=sum(c.steps for c in plan))

        def advance(name: str, steps: int) -> None:
            bar.update(task, advance=steps, description=f"training {name}")

        result = run_demo(client, seed=seed, on_progress=advance)
        bar.update(task, description="trained")
    client.flush()

    ranked = sorted(result.children, key=lambda c: -c.metrics[result.selection_metric])
    others = [c.run_id for c in ranked if c.run_id != result.best.run_id][:2]
    commands = next_commands(session, result.experiment, result.best.run_id, others)
    if as_json:
        emit_json(
            {
                "experiment": result.experiment,
                "parent_run_id": result.parent_run_id,
                "best_run_id": result.best.run_id,
                "best_run_name": result.best.name,
                "selection_metric": result.selection_metric,
                "best_metrics": result.best.metrics,
                "children": [
                    {
                        "run_id": c.run_id,
                        "name": c.name,
                        "family": c.family,
                        "params": c.params,
                        "metrics": c.metrics,
                    }
                    for c in result.children
                ],
                "dataset": result.extra["dataset"],
                "validation": result.extra["validation"],
                "model": result.extra["model"],
                "gate": result.extra["gate"],
                "champion": result.extra["champion"],
                "served": result.extra["served"],
                "seconds": round(result.seconds, 3),
                "next_commands": commands,
            }
        )
        return

    console = out()
    table = Table(
        title=f"{result.experiment}: {len(result.children)} runs under 'sweep' "
        f"({result.seconds:.1f}s); best chosen on {result.selection_metric}",
        title_justify="left",
    )
    table.add_column("run", no_wrap=True)
    table.add_column("name")
    for key in SHOWN_METRICS:
        table.add_column(key + (" (test)" if not key.startswith("val_") else ""), justify="right")
    for child in ranked:
        style = "bold green" if child is result.best else ""
        table.add_row(
            Text(short_id(child.run_id), style=style),
            Text(child.name + (" ★" if child is result.best else ""), style=style),
            *(Text(format_value(child.metrics[k]), style=style) for k in SHOWN_METRICS),
        )
    console.print(table)
    console.print(f"parent run: {result.parent_run_id}    best run: {result.best.run_id}")
    console.print(
        f"data: {result.extra['dataset']} (read by the sweep); {result.extra['validation']}"
    )
    verdict = "now the champion" if result.extra["champion"] else "not promoted"
    console.print(f"model: {result.extra['model']}, gate {result.extra['gate']}: {verdict}")
    served = result.extra["served"]
    console.print(
        f"served: deployment {served['deployment']} (v{served['version']}) on {served['url']}: "
        f"{served['requests']} requests in 3 protocols, p50 {served['p50_ms']} ms; "
        f"prediction log {served['logged_rows']} rows, {served['labelled_rows']} labelled "
        f"(accuracy {served['labelled_accuracy']})"
    )
    console.print()
    console.print("Look at what was recorded:", style="bold")
    for command in commands:
        console.print(Text("  " + command), soft_wrap=True)


def loop_next_commands(session: CliSession, result: LoopDemoResult) -> list[str]:
    """The commands that inspect what the closed-loop demo left in the store, ready to paste."""
    prefix = _prefix(session)
    feature = "amount" if result.scenario == "fraud" else "temperature_c"
    return [
        f"{prefix} monitor show {result.monitor}",
        f"{prefix} monitor history {result.monitor} --check feature_drift --feature {feature}",
        f"{prefix} policies show {result.policy}",
        f"{prefix} policies episodes {result.policy}",
        f"{prefix} deployments history {result.deployment}",
        f"{prefix} models lineage models:/{result.model}@champion",
        f"{prefix} data show {result.dataset}",
        f"{prefix} serve {result.model}@champion --port 8080",
        f"{prefix} agent --once",
        f"{prefix} audit verify",
    ]


_KIND_STYLE = {
    "window": "",
    "change": "bold yellow",
    "episode": "bold cyan",
    "measure": "bold",
    "error": "bold red",
}


def _event_line(event: LoopEvent) -> Text:
    style = _KIND_STYLE.get(event.kind, "dim")
    if event.kind == "window" and event.data.get("status") == "alert":
        style = "red"
    line = Text(f"{event.sim_time():>10}  {event.wall_s:5.1f}s  ", style="dim")
    line.append(f"{event.kind:<8} ", style="bold" if style else "")
    line.append(event.message, style=style)
    return line


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")


def _verdict(ok: bool) -> Text:
    return Text("✓", style="bold green") if ok else Text("✗", style="bold red")


def _summary_table(result: LoopDemoResult) -> Table:
    table = Table(title=f"{result.scenario}: the closed loop in {result.seconds:.1f} s",
                  title_justify="left")  # fmt: skip
    table.add_column("")
    table.add_column("measured")
    table.add_column("", justify="center")
    delay = result.detection_delay_windows
    detected = (
        f"in window {result.detection_window}, the {_ordinal(delay)} after the change "
        f"({result.detection_delay_rows:,} rows after it)"
        if delay is not None and result.detection_delay_rows is not None
        else "not detected"
    )
    table.add_row(
        "drift detected", detected, _verdict(delay is not None and delay <= MAX_DETECTION_WINDOWS)
    )
    table.add_row(
        "false alarms before the change",
        f"{result.pre_change_alarms} in {result.pre_change_windows} windows",
        _verdict(result.pre_change_alarms == 0),
    )
    gate = result.gate
    if gate.get("checks"):
        check = gate["checks"][0]
        table.add_row(
            "gate (same held-out fresh rows)",
            f"challenger {check.get('metric')} {float(check.get('observed') or 0):.3f} vs "
            f"champion {float(check.get('champion') or 0):.3f} on {gate.get('rows', 0):,} rows",
            _verdict(bool(gate.get("passed"))),
        )
    episode = result.episode
    table.add_row(
        "episode",
        f"{episode.get('state', 'none')}"
        + (f": version {result.promoted_version} serves" if result.promoted else ""),
        _verdict(result.promoted),
    )
    if result.promoted:
        served = len(result.after_promotion)
        table.add_row(
            "alarms after the promotion",
            f"{result.after_promotion_alarms} in {served} windows served by "
            f"v{result.promoted_version} (the monitor now compares with its training data)",
            _verdict(result.after_promotion_alarms == 0),
        )
    gain = result.gain
    bar = gain is not None and (gain >= MIN_AUC_GAIN if result.metric == "roc_auc" else gain > 0)
    table.add_row(
        f"{result.metric} on {result.fresh_rows:,} fresh post-change rows",
        f"old champion v{result.champion_version} {format_value(result.old_metric)} -> "
        f"v{result.promoted_version or result.champion_version} "
        f"{format_value(result.new_metric)} ({'+' if (gain or 0) >= 0 else ''}"
        f"{format_value(gain)} better)",
        _verdict(bar),
    )
    table.add_row(
        "traffic",
        f"{result.rows_replayed:,} rows in {result.requests} requests to {result.url}, "
        f"{result.labels_sent:,} labels through /feedback",
        Text(""),
    )
    return table


def _stationary_table(result: LoopDemoResult) -> Table:
    table = Table(title=f"{result.scenario}, stationary: {len(result.windows)} windows with no "
                  f"change in {result.seconds:.1f} s", title_justify="left")  # fmt: skip
    table.add_column("")
    table.add_column("measured")
    table.add_column("", justify="center")
    alerting = [w for w in result.windows if w.status == "alert"]
    table.add_row(
        "alarms", f"alarms: {result.alarms} of {len(result.windows)}",
        _verdict(result.alarms == 0),
    )  # fmt: skip
    if alerting:
        table.add_row(
            "alerting windows",
            ", ".join(f"{w.index} ({', '.join(w.checks)})" for w in alerting[:10]),
            Text(""),
        )
    table.add_row("episode", str(result.episode.get("state", "none")), _verdict(not result.episode))
    table.add_row(
        "traffic",
        f"{result.rows_replayed:,} rows in {result.requests} requests to {result.url}, "
        f"{result.labels_sent:,} labels through /feedback",
        Text(""),
    )
    return table


def _store_for(session: CliSession, scenario: str) -> tuple[CliSession, str | None]:
    """``session`` when its store is free for ``scenario``'s demo; else a session on a fresh
    embedded store in ``<MLOOP_HOME>/demo-runs/<scenario>-N`` and that folder, so running the
    demo again just works and leaves the earlier run to inspect."""
    from pathlib import Path

    from mloop.config import load_settings
    from mloop.errors import AlreadyExists
    from mloop.examples.closed_loop import check_store_free

    try:
        check_store_free(session.client, scenario)
        return session, None
    except AlreadyExists:
        pass
    base = Path(session.settings.home).expanduser().resolve() / "demo-runs"
    number = 2
    while (base / f"{scenario}-{number}").exists():
        number += 1
    folder = base / f"{scenario}-{number}"
    folder.mkdir(parents=True)
    tracking = f"sqlite:///{folder / 'mloop.db'}"
    artifacts = str(folder / "artifacts")
    settings = load_settings(
        {"home": str(folder), "tracking_uri": tracking, "artifact_uri": artifacts}
    )
    return CliSession(tracking_uri=tracking, artifact_uri=artifacts, _settings=settings), str(
        folder
    )


def _loop_demo(
    session: CliSession,
    scenario: str,
    seed: int,
    as_json: bool,
    *,
    stationary: int | None = None,
    after_windows: int | None = None,
) -> None:
    """The closed loop: print each event as it happens, then the summary."""
    from mloop.examples.closed_loop import run_closed_loop

    console = out()

    def show(event: LoopEvent) -> None:
        if not as_json:
            console.print(_event_line(event), soft_wrap=True)

    session, folder = _store_for(session, scenario)
    if folder is not None and not as_json:
        console.print(
            f"this store already holds the {scenario} demo: this run uses a fresh embedded "
            f"store in {folder}"
        )
    try:
        result = run_closed_loop(
            session.client, scenario=scenario, seed=seed, on_event=show,
            stationary_windows=stationary, after_windows=after_windows,
        )  # fmt: skip
        session.client.flush()
    finally:
        if folder is not None:
            session.close()
    commands = loop_next_commands(session, result)
    if as_json:
        document: dict[str, Any] = result.summary()
        document["store"] = folder
        document["timeline"] = [e.to_dict() for e in result.events]
        document["windows_detail"] = [w.to_dict() for w in result.windows]
        document["next_commands"] = commands
        emit_json(document)
        return
    console.print()
    console.print(_stationary_table(result) if result.stationary else _summary_table(result))
    console.print(f"report: {result.report_path}")
    console.print()
    console.print("Look at what was recorded:", style="bold")
    for command in commands:
        console.print(Text("  " + command), soft_wrap=True)
