"""``mloop pipelines``: run a pipeline, list and show its runs, resume one, explain a re-run.

A pipeline is named by ``module:attribute`` (the module is imported with the current folder on
the path, as ``python -m`` would). The commands call :mod:`mloop.pipelines`, the same functions
a Python user calls.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
from rich.table import Table

from mloop.cli.render import emit_json, format_duration, format_time, out, short_id
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import InvalidInput, MloopError, NotFound

__all__ = ["load_pipeline", "parse_params", "pipelines"]

PIPELINE_TAG = "mloop.pipeline.name"
STEP_PREFIX = "mloop.pipeline.step."


def cwd_on_path() -> None:
    """Put the current folder on the import path, so ``module:attribute`` finds the user's code."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def load_pipeline(ref: str) -> Any:
    """Import ``module:attribute`` (the current folder on the path) and return the pipeline."""
    from mloop.pipelines.runner import import_pipeline

    cwd_on_path()
    return import_pipeline(ref)


def _run(pipeline: Any, **options: Any) -> Any:
    """Run, turning a step failure into one error line that says where the traceback is."""
    from mloop.pipelines.runner import StepFailed, run_pipeline

    try:
        return run_pipeline(pipeline, **options)
    except StepFailed as exc:
        failure, result = exc.failure, exc.result
        message = " ".join(failure.message.split()) or failure.type
        step_run = result.steps[exc.node_id].run_id
        where = f"mloop artifacts get {step_run} error.txt" if step_run else "the step run"
        raise MloopError(
            f"step {exc.node_id!r} of pipeline {result.pipeline!r} failed: {failure.type}: "
            f"{message} (traceback: {where}; then: mloop pipelines resume {result.run_id})",
            run_id=result.run_id,
            step=exc.node_id,
        ) from exc


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` strings from ``--param``; a VALUE that reads as JSON is that JSON."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {pair!r} is not KEY=VALUE (e.g. --param depth=8)")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


@click.group()
def pipelines() -> None:
    """Run pipelines (tracked, cached, local or on a process pool or Ray) and inspect runs."""


def _steps_table(session: CliSession, run_id: str) -> tuple[list[dict[str, Any]], Table]:
    client = session.client
    parent = client.get_run(run_id)
    ids = {k[len(STEP_PREFIX) :]: v for k, v in parent.tags.items() if k.startswith(STEP_PREFIX)}
    runs = {r.id: r for r in client.store.get_runs(list(ids.values()))}
    rows = []
    table = Table(title=f"Steps of {parent.name} run {short_id(parent.id)}", title_justify="left")
    for column in ("step", "status", "cached", "attempts", "seconds", "run"):
        table.add_column(column)
    for node, child_id in ids.items():
        child = runs.get(child_id)
        if child is None:
            continue
        cached = child.tags.get("mloop.step.cached", "false") == "true"
        row = {
            "step": node,
            "run_id": child.id,
            "status": child.status.value,
            "cached": cached,
            "attempts": int(child.tags.get("mloop.step.attempts", "0") or 0),
            "seconds": child.metrics.get("seconds"),
            "why_rerun": child.tags.get("mloop.step.why_rerun"),
        }
        rows.append(row)
        seconds = row["seconds"]
        table.add_row(
            node, child.status.value, "yes" if cached else "", str(row["attempts"]),
            "-" if seconds is None else f"{seconds:.3f}", short_id(child.id),
        )  # fmt: skip
    return rows, table


@pipelines.command("run")
@click.argument("ref", metavar="MODULE:PIPELINE")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A pipeline parameter.")
@click.option(
    "--executor",
    type=click.Choice(["local", "process", "ray"]),
    default="local",
    show_default=True,
    help="Where steps run.",
)
@click.option("--max-workers", type=click.IntRange(min=1), default=None, help="Parallel steps.")
@json_option
@pass_session
def run(
    session: CliSession,
    *,
    ref: str,
    params: tuple[str, ...],
    executor: str,
    max_workers: int | None,
    as_json: bool,
) -> None:
    """Run a pipeline as a tracked run; steps whose cache key matches are not run again.

    \b
    Examples:
      mloop pipelines run flows.training:training --param depth=8
      mloop pipelines run flows.training:training --executor process --max-workers 2
    """
    pipeline = load_pipeline(ref)
    result = _run(
        pipeline, params=parse_params(params), executor=executor, client=session.client,
        max_workers=max_workers,
    )  # fmt: skip
    rows, table = _steps_table(session, result.run_id)
    if as_json:
        emit_json({"run_id": result.run_id, "status": result.status.value, "steps": rows})
        return
    console = out()
    console.print(table)
    cached = sum(1 for r in rows if r["cached"])
    console.print(f"run {result.run_id}: {result.status.value}, {cached}/{len(rows)} steps cached")


@pipelines.command("list")
@click.option("--pipeline", "name", default=None, help="Only runs of this pipeline.")
@click.option(
    "--max-results", type=click.IntRange(min=1), default=50, show_default=True,
    help="Most runs shown.",
)  # fmt: skip
@json_option
@pass_session
def list_(session: CliSession, name: str | None, max_results: int, as_json: bool) -> None:
    """List pipeline runs, newest first.

    \b
    Example:
      mloop pipelines list --pipeline training
    """
    query = f"tags.`{PIPELINE_TAG}` = '{name}'" if name else f"tags.`{PIPELINE_TAG}` LIKE '%'"
    if name and "'" in name:
        raise InvalidInput("--pipeline must not contain a quote")
    page = session.client.search_runs(
        query, order_by=["attributes.start_time DESC"], max_results=max_results
    )
    runs = list(page)
    if as_json:
        emit_json(
            [
                {"run_id": r.id, "pipeline": r.tags.get(PIPELINE_TAG), "status": r.status.value,
                 "start_time": r.start_time, "end_time": r.end_time, "params": r.params}
                for r in runs
            ]
        )  # fmt: skip
        return
    table = Table(title="Pipeline runs", title_justify="left")
    for column in ("run", "pipeline", "status", "started", "duration", "params"):
        table.add_column(column)
    for r in runs:
        table.add_row(
            short_id(r.id), r.tags.get(PIPELINE_TAG, ""), r.status.value,
            format_time(r.start_time), format_duration(r.start_time, r.end_time),
            ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())),
        )  # fmt: skip
    out().print(table)


@pipelines.command("show")
@click.argument("run_id")
@json_option
@pass_session
def show(session: CliSession, run_id: str, as_json: bool) -> None:
    """Show a pipeline run's steps: status, cached or not, attempts, seconds.

    \b
    Example:
      mloop pipelines show 3f2a9c1e
    """
    client = session.client
    run_id = client.resolve_run_id(run_id)
    parent = client.get_run(run_id)
    if PIPELINE_TAG not in parent.tags:
        raise InvalidInput(f"run {run_id} is not a pipeline run")
    rows, table = _steps_table(session, run_id)
    if as_json:
        emit_json(
            {
                "run_id": run_id,
                "pipeline": parent.tags[PIPELINE_TAG],
                "status": parent.status.value,
                "params": parent.params,
                "steps": rows,
            }
        )
        return
    out().print(table)


@pipelines.command("resume")
@click.argument("run_id")
@click.option(
    "--executor", type=click.Choice(["local", "process", "ray"]), default="local",
    show_default=True, help="Where steps run.",
)  # fmt: skip
@json_option
@pass_session
def resume(session: CliSession, run_id: str, executor: str, as_json: bool) -> None:
    """Re-run a failed pipeline run with its params, reusing every step that finished.

    \b
    Example:
      mloop pipelines resume 3f2a9c1e
    """
    client = session.client
    run_id = client.resolve_run_id(run_id)
    ref = client.get_run(run_id).tags.get("mloop.pipeline.ref")
    if not ref:
        raise InvalidInput(f"run {run_id} records no pipeline to import (tag mloop.pipeline.ref)")
    result = _run(load_pipeline(ref), executor=executor, client=client, resume_from=run_id)
    rows, table = _steps_table(session, result.run_id)
    if as_json:
        emit_json({"run_id": result.run_id, "status": result.status.value, "steps": rows})
        return
    out().print(table)
    out().print(f"run {result.run_id} (resuming {short_id(run_id)}): {result.status.value}")


@pipelines.command("why-rerun")
@click.argument("run_id")
@click.argument("step")
@json_option
@pass_session
def why_rerun(session: CliSession, run_id: str, step: str, as_json: bool) -> None:
    """Explain why STEP of a pipeline run ran instead of reusing a cached result.

    \b
    Example:
      mloop pipelines why-rerun 3f2a9c1e train
    """
    client = session.client
    run_id = client.resolve_run_id(run_id)
    rows, _ = _steps_table(session, run_id)
    found = next((r for r in rows if r["step"] == step), None)
    if found is None:
        known = ", ".join(r["step"] for r in rows) or "none"
        raise NotFound(f"run {run_id} has no step {step!r} (steps: {known})")
    if found["cached"]:
        reasons = ["it did not run: its cached result was reused"]
    else:
        text = found["why_rerun"] or ""
        reasons = [line for line in text.splitlines() if line] or [
            "no earlier cached result of this step was found"
        ]
    if as_json:
        emit_json({"run_id": run_id, "step": step, "cached": found["cached"], "reasons": reasons})
        return
    for line in reasons:
        out().print(f"- {line}")
