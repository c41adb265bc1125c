"""Monitoring bar of issue 7: one monitor pass over a window of 1,000,000 logged predictions.

No anchor tool: the issue asks for mloop's own figures. On a fresh MLOOP_HOME (SQLite store,
local artifact folder) a logistic regression on 25 float features is registered with a
20,000-row reference and deployed; 1,000,000 predictions (requests of 50 rows, all in one
hour, probabilities included) are written through ``mloop.serving.PredictionLog``, and a label
is sent for every row. Then a separate process (so that its peak memory is the pass's own)
creates nothing, runs ``mloop.monitors.run`` over that hour once — all four checks: feature
drift of the 25 features against the stored profile, prediction drift, data quality,
performance with its confidence-based estimate — and reports the wall time and the peak
resident memory (aim: <= 5 s and <= 1 GB).

    python benchmarks/monitoring.py            # 1,000,000 rows (about a minute to set up)
    python benchmarks/monitoring.py --quick    # 100,000 rows: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import announce, environment, table, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
T0 = 1_763_906_400_000  # 2025-11-23 14:00 UTC, an hour boundary
HOUR = 3_600_000
DEP = "fraud-api"
FEATURES = [f"f{i:02d}" for i in range(25)]
PER_REQUEST = 50
CHUNK = 100_000


def _client(home: Path) -> Any:
    from mloop.config import load_settings
    from mloop.tracking import TrackingClient

    return TrackingClient(load_settings(overrides={"home": str(home)}, environ={}))


def _frame(n: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    logit = 1.5 * frame["f00"] - frame["f01"] + 0.5 * frame["f02"]
    frame["label"] = (logit + rng.logistic(size=n) > 0).astype("int64")
    return frame


def setup(home: Path, rows: int) -> dict[str, float]:
    """Register, train, deploy, create the monitor and log ``rows`` predictions with labels."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop import data, registry
    from mloop.serving import create_deployment
    from mloop.serving.predlog import PredictionBatch, PredictionLog

    timings: dict[str, float] = {}
    with _client(home) as client:
        reference = _frame(20_000, seed=0)
        version = data.register("transactions", reference, client=client)
        with client.start_run(experiment="bench") as run:
            run.log_input(version, context="training")
            model = LogisticRegression().fit(reference[FEATURES], reference["label"])
            run.log_model(model, "fraud", input_example=reference[FEATURES][:5])
        registry.set_alias("fraud", "champion", 1, client=client)
        create_deployment(DEP, "fraud@champion", client=client)
        started = time.perf_counter()
        mloop.monitors.create(deployment=DEP, window="1h", client=client)
        timings["create_s"] = time.perf_counter() - started
        started = time.perf_counter()
        log = PredictionLog(DEP, client=client, flush_rows=CHUNK, max_buffer_rows=4 * CHUNK)
        labels: list[tuple[str, list[int]]] = []
        request = 0
        for at in range(0, rows, CHUNK):
            frame = _frame(min(CHUNK, rows - at), seed=1 + at)
            requests = len(frame) // PER_REQUEST
            ts = T0 + (at + np.arange(requests) * PER_REQUEST) * (HOUR - 1) // rows
            ids = [f"{int(t):013d}{request + i:016x}" for i, t in enumerate(ts)]
            request += requests
            x = frame[FEATURES]
            while not log.append(
                PredictionBatch(
                    model_version=1, role="primary", request_ids=ids,
                    row_counts=[PER_REQUEST] * requests, ts_ms=[int(t) for t in ts],
                    latency_ms=[1.0] * requests, inputs=x, predictions=model.predict(x),
                    probabilities=model.predict_proba(x), classes=[0, 1],
                )
            ):  # fmt: skip
                log.flush()
            y = frame["label"].to_numpy()
            labels += [(rid, y[i * PER_REQUEST : (i + 1) * PER_REQUEST].tolist())
                       for i, rid in enumerate(ids)]  # fmt: skip
            log.flush()
        for i, (rid, values) in enumerate(labels):
            log.append_feedback(rid, values)
            if (i + 1) % (CHUNK // PER_REQUEST) == 0:
                log.flush()  # the feedback buffer holds max_buffer_rows labels
        log.close()
        timings["log_s"] = time.perf_counter() - started
    return timings


def _hwm_mib() -> float:
    """Peak resident memory of this process image (VmHWM: unlike ru_maxrss, not inherited
    from the parent that started it)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(home: Path, profile: str | None) -> None:
    """One monitor pass over the hour; prints its figures as JSON."""
    import mloop

    with _client(home) as client:
        mloop.monitors.get(DEP, client=client)  # imports and the store opened, as in an agent
        import mloop.data.drift
        import mloop.monitoring.monitors

        baseline = _hwm_mib()
        started = time.perf_counter()
        if profile:
            import cProfile

            with cProfile.Profile() as prof:
                reports = mloop.monitors.run(DEP, end_ms=T0 + HOUR, client=client)
            prof.dump_stats(profile)
        else:
            reports = mloop.monitors.run(DEP, end_ms=T0 + HOUR, client=client)
        wall = time.perf_counter() - started
        peak = _hwm_mib()
    (report,) = reports
    print(json.dumps({
        "wall_s": wall, "peak_rss_mib": peak, "rss_before_mib": baseline,
        "rows": report.rows, "labelled_rows": report.labelled_rows, "status": report.status,
        "results": len(report.results), "alerts": report.alerts,
    }))  # fmt: skip


def main() -> None:
    """Set up the log, then time one monitor pass in a fresh process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows: a smoke test")
    parser.add_argument("--profile", metavar="OUT", help="write a cProfile of the pass to OUT")
    parser.add_argument("--worker", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker), args.profile)
        return
    import mloop

    rows = 100_000 if args.quick else 1_000_000
    env = environment({"mloop": mloop.__version__, "load_average": os.getloadavg()})
    announce("Monitoring: one pass over a window of logged predictions", env, quick=args.quick)
    with tempfile.TemporaryDirectory(prefix="mloop-bench-monitoring-") as scratch:
        home = Path(scratch) / "home"
        print(f"setting up: {rows:,} predictions with labels, 25 features ...", flush=True)
        timings = setup(home, rows)
        print(
            f"set up in {timings['log_s']:.1f} s (monitor created in {timings['create_s']:.2f} s)"
        )
        path = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
        done = subprocess.run(
            [sys.executable, __file__, "--worker", str(home),
             *(["--profile", args.profile] if args.profile else [])],
            capture_output=True, text=True,
            check=False, env={**os.environ, "PYTHONPATH": path},
        )  # fmt: skip
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            sys.exit(done.returncode)
        found = json.loads(done.stdout.strip().splitlines()[-1])
    load = os.getloadavg()
    results = {"environment": env, "quick": args.quick, "rows": rows, **timings, **found,
               "load_average_after": load}  # fmt: skip
    print()
    print(table(
        ["measurement", "mloop", "aim"],
        [
            [f"monitor pass, {found['rows']:,} rows x 25 features, 4 checks",
             f"{found['wall_s']:.2f} s", "<= 5 s"],
            ["peak memory of the pass's process", f"{found['peak_rss_mib']:.0f} MiB "
             f"({found['rss_before_mib']:.0f} MiB before the pass)", "<= 1 GB"],
        ],
    ))  # fmt: skip
    print(f"report: {found['status']}, {found['labelled_rows']:,} labelled rows, "
          f"{found['results']} results; load average {load[0]:.2f}")  # fmt: skip
    print(f"\nresults written to {write_results('monitoring', results)}")


if __name__ == "__main__":
    sys.exit(main())
