"""Canary health check of the loop: judging one hold over a busy deployment's prediction log.

No anchor tool (no other tool has the check): mloop's own figure, kept because the check was
made faster. On a fresh MLOOP_HOME a classifier is deployed and 1,000,000 predictions are
logged in one hour — half answered by the primary, half by the canary version 2, requests of
100 rows, a label for every row — then :func:`mloop.loop.check_health` judges the canary on
that stretch of log (rows, p99 latency, both error rates, the exact binomial test) three
times; the best and the first time are reported.

    python benchmarks/canary_health.py            # 1,000,000 rows
    python benchmarks/canary_health.py --quick    # 100,000 rows: a smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import announce, environment, peak_rss_mib, table, write_results

PER_REQUEST = 100
DEP = "fraud-api"


def setup(home: Path, rows: int) -> tuple[Any, int]:
    """Deploy a classifier and log ``rows`` labelled predictions; the client and the start."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mloop import registry
    from mloop.config import load_settings
    from mloop.serving import create_deployment
    from mloop.serving.predlog import PredictionBatch, PredictionLog
    from mloop.tracking import TrackingClient

    client = TrackingClient(load_settings(overrides={"home": str(home)}, environ={}))
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.random(200), "b": rng.random(200)})
    with client.start_run(experiment="bench") as run:
        model = LogisticRegression().fit(x, (x["a"] > 0.5).astype(int))
        run.log_model(model, "fraud", input_example=x[:5])
    registry.set_alias("fraud", "champion", 1, client=client)
    create_deployment(DEP, "fraud@champion", client=client)
    start = (time.time_ns() // 1_000_000) - 3_600_000
    log = PredictionLog(DEP, client=client, flush_rows=10**7, max_buffer_rows=10**8)
    for role, version in (("primary", 1), ("canary", 2)):
        n = rows // 2
        requests = n // PER_REQUEST
        ids = [f"{start + i:013d}{(version << 40) + i:016x}" for i in range(requests)]
        log.append(
            PredictionBatch(
                model_version=version, role=role, request_ids=ids,
                row_counts=[PER_REQUEST] * requests, ts_ms=[start + i for i in range(requests)],
                latency_ms=list(rng.gamma(2.0, 2.0, requests)),
                inputs=pd.DataFrame({"a": rng.random(n), "b": rng.random(n)}),
                predictions=rng.integers(0, 2, n), probabilities=None, classes=None,
            )
        )  # fmt: skip
        log.flush()
        for request_id in ids:
            log.append_feedback(request_id, rng.integers(0, 2, PER_REQUEST).tolist())
    log.close()
    return client, start


def main() -> None:
    """Set up the log, then time the health check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows: a smoke test")
    args = parser.parse_args()
    import mloop
    from mloop.loop import Canary, check_health

    rows = 100_000 if args.quick else 1_000_000
    env = environment({"mloop": mloop.__version__, "load_average": os.getloadavg()})
    announce("Canary health: one hold judged on the prediction log", env, quick=args.quick)
    with tempfile.TemporaryDirectory(prefix="mloop-bench-canary-") as scratch:
        print(f"setting up: {rows:,} labelled predictions, half of them the canary's ...")
        client, start = setup(Path(scratch) / "home", rows)
        canary = Canary(steps=[1.0], hold="1h", min_rows=100)
        times, health = [], None
        for _ in range(3):
            began = time.perf_counter()
            health = check_health(
                DEP, 2, canary, start_ms=start, end_ms=start + 7_200_000, client=client
            )
            times.append(time.perf_counter() - began)
        client.close()
    assert health is not None
    results = {"environment": env, "quick": args.quick, "rows": rows, "times_s": times,
               "peak_rss_mib": peak_rss_mib(), "health": health.to_dict()}  # fmt: skip
    print()
    print(table(
        ["measurement", "mloop"],
        [
            [f"check_health over {rows:,} logged rows, first call", f"{times[0]:.2f} s"],
            [f"check_health over {rows:,} logged rows, best of 3", f"{min(times):.2f} s"],
            ["peak memory of the process (set-up included)", f"{peak_rss_mib():.0f} MiB"],
        ],
    ))  # fmt: skip
    print(f"verdict: {health.reason}")
    print(f"\nresults written to {write_results('canary_health', results)}")


if __name__ == "__main__":
    sys.exit(main())
