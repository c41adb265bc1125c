"""MLflow side of the tracking benchmark. Runs in MLflow's own virtualenv, one workload per process.

The orchestrator (tracking.py) sets MLFLOW_TRACKING_URI to a ``sqlite:///`` file in a fresh folder.
Each workload creates the store (running MLflow's Alembic migrations) and warms up one run in a
separate experiment before its timer starts. Every MLflow call against the SQL store commits, so
the data is durable when a call returns.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from _common import progress, worker_main
from _tracking_workload import (
    EXPERIMENT_LOGGING,
    EXPERIMENT_RUNS,
    EXPERIMENT_WARMUP,
    METRIC_KEYS,
    RUNS_READY,
    SEARCH_FILTER,
    SEARCH_MAX_RESULTS,
    SEARCH_ORDER_BY,
    point_value,
    run_record,
    sizes_from,
)

perf = time.perf_counter


def _setup(spec: dict[str, Any], experiment: str) -> tuple[Any, Any, str]:
    """Create the store and the experiment, and warm up, all before any timer starts."""
    uri = os.environ["MLFLOW_TRACKING_URI"]
    if not uri.startswith("sqlite:///"):
        raise SystemExit(f"MLFLOW_TRACKING_URI must be sqlite:///..., got {uri}")
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    artifacts = (Path(spec["workdir"]) / "mlartifacts").as_uri()
    ids = {}
    for name in (EXPERIMENT_WARMUP, experiment):
        exp = client.get_experiment_by_name(name)  # first call: creates the DB, runs migrations
        ids[name] = exp.experiment_id if exp else client.create_experiment(name, artifacts)
    with mlflow.start_run(experiment_id=ids[EXPERIMENT_WARMUP], run_name="warmup"):
        mlflow.log_param("p", "1")
        mlflow.log_metric("m", 1.0, step=0)
        mlflow.log_metrics({"a": 1.0, "b": 2.0}, step=0)
        mlflow.set_tags({"t": "1"})
    return mlflow, client, ids[experiment]


def _sampled(total: int, fraction: float) -> int:
    return max(1, min(total, round(total * fraction)))


def per_call(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``mlflow.log_metric`` call per point."""
    sizes = sizes_from(spec)
    mlflow, client, exp_id = _setup(spec, EXPERIMENT_LOGGING)
    runs = _sampled(sizes.log_runs, spec["mlflow_sample"])
    log_metric = mlflow.log_metric
    keys = list(enumerate(METRIC_KEYS))
    elapsed = 0.0
    run_ids = []
    for r in range(runs):
        t0 = perf()
        with mlflow.start_run(experiment_id=exp_id, run_name=f"r{r}") as run:
            for step in range(sizes.log_steps):
                for ki, key in keys:
                    log_metric(key, point_value(ki, step), step=step)
        elapsed += perf() - t0
        run_ids.append(run.info.run_id)
        progress(f"mlflow per-call: run {r + 1}/{runs} done, {elapsed:.1f}s so far")
    points = runs * len(keys) * sizes.log_steps
    stored = len(client.get_metric_history(run_ids[-1], METRIC_KEYS[0]))
    return {
        "points": points,
        "runs": runs,
        "seconds": elapsed,
        "rate": points / elapsed,
        "sampled": runs < sizes.log_runs,
        "check_points_stored": stored,
    }


def batched(spec: dict[str, Any]) -> dict[str, Any]:
    """``MlflowClient.log_batch`` with 1,000 Metric objects per call."""
    from mlflow.entities import Metric

    sizes = sizes_from(spec)
    mlflow, client, exp_id = _setup(spec, EXPERIMENT_LOGGING)
    keys = list(enumerate(METRIC_KEYS))
    elapsed = 0.0
    run_ids = []
    calls = 0
    for r in range(sizes.log_runs):
        t0 = perf()
        with mlflow.start_run(experiment_id=exp_id, run_name=f"r{r}") as run:
            run_id = run.info.run_id
            batch: list[Any] = []
            ts = int(time.time() * 1000)
            for step in range(sizes.log_steps):
                for ki, key in keys:
                    batch.append(Metric(key, point_value(ki, step), ts, step))
                if len(batch) >= sizes.batch_points:
                    client.log_batch(run_id, metrics=batch)
                    calls += 1
                    batch = []
                    ts = int(time.time() * 1000)
            if batch:
                client.log_batch(run_id, metrics=batch)
                calls += 1
        elapsed += perf() - t0
        run_ids.append(run_id)
    points = sizes.log_points
    stored = len(client.get_metric_history(run_ids[-1], METRIC_KEYS[0]))
    return {
        "points": points,
        "runs": sizes.log_runs,
        "seconds": elapsed,
        "rate": points / elapsed,
        "batch_calls": calls,
        "check_points_stored": stored,
    }


def _fill_runs(client: Any, exp_id: str, start: int, stop: int) -> float:
    """Create runs ``start..stop-1`` the quickest way MLflow's client offers (not timed as the
    run-creation figure): create_run + one log_batch with params, metrics and tags + terminate."""
    from mlflow.entities import Metric, Param, RunTag

    t0 = perf()
    for i in range(start, stop):
        rec = run_record(i)
        run = client.create_run(exp_id, run_name=rec.name)
        ts = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in rec.metrics.items()],
            params=[Param(k, v) for k, v in rec.params.items()],
            tags=[RunTag(k, v) for k, v in rec.tags.items()],
        )
        client.set_terminated(run.info.run_id)
        if (i - start + 1) % 500 == 0:
            progress(f"mlflow fill: {i - start + 1}/{stop - start} runs")
    return perf() - t0


def runs(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs through the fluent API: start_run + log_params + log_metrics + set_tags + end."""
    sizes = sizes_from(spec)
    mlflow, client, exp_id = _setup(spec, EXPERIMENT_RUNS)
    timed = _sampled(sizes.create_runs, spec["mlflow_sample"])
    t0 = perf()
    for i in range(timed):
        rec = run_record(i)
        with mlflow.start_run(experiment_id=exp_id, run_name=rec.name):
            mlflow.log_params(rec.params)
            mlflow.log_metrics(rec.metrics)
            mlflow.set_tags(rec.tags)
        if (i + 1) % 500 == 0:
            progress(f"mlflow runs: {i + 1}/{timed}, {perf() - t0:.1f}s so far")
    elapsed = perf() - t0
    fill_seconds = _fill_runs(client, exp_id, timed, sizes.create_runs)
    Path(spec["workdir"], RUNS_READY).write_text(json.dumps({"runs": sizes.create_runs}))
    return {
        "runs": timed,
        "seconds": elapsed,
        "rate": timed / elapsed,
        "sampled": timed < sizes.create_runs,
        "filled_runs": sizes.create_runs - timed,
        "fill_seconds": fill_seconds,
    }


def search(spec: dict[str, Any]) -> dict[str, Any]:
    """``MlflowClient.search_runs`` over the run-creation workload's runs; median of N."""
    sizes = sizes_from(spec)
    _mlflow, client, exp_id = _setup(spec, EXPERIMENT_RUNS)
    filled = 0
    if not Path(spec["workdir"], RUNS_READY).exists():
        progress(f"mlflow search: no stored runs yet, creating {sizes.create_runs}")
        _fill_runs(client, exp_id, 0, sizes.create_runs)
        filled = sizes.create_runs

    def once() -> list[Any]:
        return list(
            client.search_runs(
                [exp_id],
                filter_string=SEARCH_FILTER,
                order_by=list(SEARCH_ORDER_BY),
                max_results=SEARCH_MAX_RESULTS,
            )
        )

    once()  # warm-up
    times = []
    for _ in range(sizes.search_repeats):
        t0 = perf()
        found = once()
        times.append(perf() - t0)
    return {
        "median_ms": statistics.median(times) * 1000,
        "min_ms": min(times) * 1000,
        "max_ms": max(times) * 1000,
        "repeats": len(times),
        "results": len(found),
        "result_names": [r.info.run_name for r in found],
        "filled_runs": filled,
    }


if __name__ == "__main__":
    worker_main({"per-call": per_call, "batched": batched, "runs": runs, "search": search})
