"""mloop side of the tracking benchmark. Runs in mloop's environment, one workload per process.

The orchestrator (tracking.py) gives each workload a fresh folder holding a SQLite store and an
artifact folder. Each workload opens the store and warms up one run in a separate experiment
before its timer starts. Logging calls return at once and are written in the background; a run's
``flush()`` and the end of a run return only once the data is durable, so every timer below stops
after the end of the run.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from _common import current_rss_mib, maybe_profile, peak_rss_mib, progress, worker_main
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


def _client(spec: dict[str, Any]) -> Any:
    """A client on this workload's folder, warmed up (store created, migrations run)."""
    import mloop

    folder = Path(spec["workdir"])
    client = mloop.TrackingClient(
        tracking_uri=f"sqlite:///{folder / 'mloop.db'}",
        artifact_uri=str(folder / "artifacts"),
    )
    # With source capture (the default), so its one-time environment scan is not timed.
    with client.start_run(experiment=EXPERIMENT_WARMUP, run_name="warmup") as run:
        run.log_params({"p": "1"})
        run.log_metric("m", 1.0, step=0)
        run.log_metrics({"a": 1.0, "b": 2.0}, step=0)
        run.set_tags({"t": "1"})
    return client


def _history_len(client: Any, run: Any, key: str) -> int | None:
    """How many points of ``key`` the store holds for ``run`` (a durability check), if the
    client can tell."""
    run_id = getattr(run, "id", None) or getattr(run, "run_id", None)
    for owner in (client, getattr(client, "store", None)):
        fn = getattr(owner, "get_metric_history", None)
        if fn is not None and run_id is not None:
            return len(fn(run_id, key))
    return None


def per_call(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``run.log_metric`` call per point; the timer stops when the run has ended (durable)."""
    sizes = sizes_from(spec)
    client = _client(spec)
    keys = list(enumerate(METRIC_KEYS))
    elapsed = calls_elapsed = 0.0
    last = None
    with maybe_profile(spec.get("profile")):
        for r in range(sizes.log_runs):
            t0 = perf()
            with client.start_run(experiment=EXPERIMENT_LOGGING, run_name=f"r{r}") as run:
                log_metric = run.log_metric
                for step in range(sizes.log_steps):
                    for ki, key in keys:
                        log_metric(key, point_value(ki, step), step=step)
                calls_elapsed += perf() - t0
            elapsed += perf() - t0
            last = run
    points = sizes.log_points
    return {
        "points": points,
        "runs": sizes.log_runs,
        "seconds": elapsed,
        "rate": points / elapsed,
        "calls_return_rate": points / calls_elapsed,
        "check_points_stored": _history_len(client, last, METRIC_KEYS[0]),
    }


def batched(spec: dict[str, Any]) -> dict[str, Any]:
    """Batches of 1,000 points through ``run.log_batch`` when mloop has it, else ``log_metrics``
    once per step (5 points per call) as the closest equivalent."""
    sizes = sizes_from(spec)
    client = _client(spec)
    keys = list(enumerate(METRIC_KEYS))
    elapsed = 0.0
    calls = 0
    last = None
    verb = None
    with maybe_profile(spec.get("profile")):
        for r in range(sizes.log_runs):
            t0 = perf()
            with client.start_run(experiment=EXPERIMENT_LOGGING, run_name=f"r{r}") as run:
                log_batch = getattr(run, "log_batch", None)
                if log_batch is not None:
                    verb = "run.log_batch(metrics=[(key, value, step), ...])"
                    batch: list[tuple[str, float, int]] = []
                    for step in range(sizes.log_steps):
                        for ki, key in keys:
                            batch.append((key, point_value(ki, step), step))
                        if len(batch) >= sizes.batch_points:
                            log_batch(metrics=batch)
                            calls += 1
                            batch = []
                    if batch:
                        log_batch(metrics=batch)
                        calls += 1
                else:
                    verb = "run.log_metrics({5 keys}, step=step), one call per step"
                    log_metrics = run.log_metrics
                    for step in range(sizes.log_steps):
                        log_metrics({key: point_value(ki, step) for ki, key in keys}, step=step)
                        calls += 1
            elapsed += perf() - t0
            last = run
    points = sizes.log_points
    return {
        "points": points,
        "runs": sizes.log_runs,
        "seconds": elapsed,
        "rate": points / elapsed,
        "batch_calls": calls,
        "verb": verb,
        "check_points_stored": _history_len(client, last, METRIC_KEYS[0]),
    }


def _create_runs(client: Any, start: int, stop: int) -> None:
    for i in range(start, stop):
        rec = run_record(i)
        with client.start_run(experiment=EXPERIMENT_RUNS, run_name=rec.name) as run:
            run.log_params(rec.params)
            run.log_metrics(rec.metrics)
            run.set_tags(rec.tags)


def runs(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs through the natural API: start_run + log_params + log_metrics + set_tags + end."""
    sizes = sizes_from(spec)
    client = _client(spec)
    with maybe_profile(spec.get("profile")):
        t0 = perf()
        _create_runs(client, 0, sizes.create_runs)
        elapsed = perf() - t0
    Path(spec["workdir"], RUNS_READY).write_text(json.dumps({"runs": sizes.create_runs}))
    return {"runs": sizes.create_runs, "seconds": elapsed, "rate": sizes.create_runs / elapsed}


def search(spec: dict[str, Any]) -> dict[str, Any]:
    """``client.search_runs`` over the run-creation workload's runs; median of N."""
    sizes = sizes_from(spec)
    client = _client(spec)
    filled = 0
    if not Path(spec["workdir"], RUNS_READY).exists():
        progress(f"mloop search: no stored runs yet, creating {sizes.create_runs}")
        _create_runs(client, 0, sizes.create_runs)
        filled = sizes.create_runs

    def once() -> list[Any]:
        found = client.search_runs(
            SEARCH_FILTER,
            experiments=[EXPERIMENT_RUNS],
            order_by=list(SEARCH_ORDER_BY),
            max_results=SEARCH_MAX_RESULTS,
        )
        return list(getattr(found, "items", found))

    once()  # warm-up
    times = []
    with maybe_profile(spec.get("profile")):
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
        "result_names": [r.name for r in found],
        "filled_runs": filled,
    }


def memory(spec: dict[str, Any]) -> dict[str, Any]:
    """One run logging many points with one ``log_metric`` call each; peak RSS along the way."""
    sizes = sizes_from(spec)
    client = _client(spec)
    keys = list(enumerate(METRIC_KEYS))
    steps = sizes.memory_points // len(keys)
    marks = {steps // 10: "10%", steps // 2: "50%"}
    checkpoints = [
        {
            "at": "before",
            "points": 0,
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "rss_mib": current_rss_mib(),
        }
    ]
    t0 = perf()
    with client.start_run(experiment=EXPERIMENT_LOGGING, run_name="memory") as run:
        log_metric = run.log_metric
        for step in range(steps):
            for ki, key in keys:
                log_metric(key, point_value(ki, step), step=step)
            if step + 1 in marks:
                checkpoints.append(
                    {
                        "at": marks[step + 1],
                        "points": (step + 1) * len(keys),
                        "peak_rss_mib": round(peak_rss_mib(), 1),
                        "rss_mib": current_rss_mib(),
                    }
                )
                progress(f"mloop memory: {marks[step + 1]} ({checkpoints[-1]['peak_rss_mib']} MiB)")
    elapsed = perf() - t0
    points = steps * len(keys)
    checkpoints.append(
        {
            "at": "after",
            "points": points,
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "rss_mib": current_rss_mib(),
        }
    )
    return {
        "points": points,
        "seconds": elapsed,
        "rate": points / elapsed,
        "checkpoints": checkpoints,
        "check_points_stored": _history_len(client, run, METRIC_KEYS[0]),
    }


if __name__ == "__main__":
    worker_main(
        {"per-call": per_call, "batched": batched, "runs": runs, "search": search, "memory": memory}
    )
