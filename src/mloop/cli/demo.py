"""``mloop demo``: train a small real sweep, tracked, and show how to look at what was recorded."""

from __future__ import annotations

import shlex

import click
from rich.table import Table
from rich.text import Text

from mloop.cli.render import emit_json, format_value, out, progress, short_id
from mloop.cli.session import CliSession, json_option, pass_session

__all__ = ["demo", "next_commands"]

#: The dataset and model the demo registers (here so that listing commands needs no sklearn).
DATASET = "breast-cancer"
MODEL = "breast-cancer-classifier"

SHOWN_METRICS = ("val_roc_auc", "roc_auc", "accuracy", "f1", "log_loss")


def next_commands(
    session: CliSession, experiment: str, best_id: str, others: list[str]
) -> list[str]:
    """The commands that inspect the demo's results, ready to paste."""
    prefix = "mloop"
    if session.tracking_uri:
        prefix += f" --tracking-uri {shlex.quote(session.tracking_uri)}"
    if session.artifact_uri:
        prefix += f" --artifact-uri {shlex.quote(session.artifact_uri)}"
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
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for splits.")
@json_option
@pass_session
def demo(session: CliSession, seed: int, as_json: bool) -> None:
    """Train, register and serve a small model on scikit-learn's breast-cancer data (~15 s).

    Registers the data as the dataset version 'breast-cancer@v1' (profiled, validated against
    a suggested expectation suite), then creates the experiment 'breast-cancer-demo' with a
    parent run 'sweep' that reads it and one nested run per candidate (logistic regression
    over C, gradient boosting over depth and learning rate), each with training curves, test
    metrics and artifacts. The best model is registered, gated against the champion and
    promoted, then served on a free loopback port and called through /invocations, the Open
    Inference Protocol and /predict, with labels sent to /feedback. Uses the configured store
    (./.mloop unless MLOOP_HOME or --tracking-uri say otherwise).

    \b
    Example:
      mloop demo && mloop runs list --experiment breast-cancer-demo
    """
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
