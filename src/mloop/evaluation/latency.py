"""Prediction latency: timed single-row ``predict`` calls and whole-batch throughput.

Timings come from the wall clock of this process, so they describe the machine the evaluation
ran on; a gate on latency is only as portable as that machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mloop.evaluation.results import LatencyStats

__all__ = ["measure_latency"]

#: A whole-batch call faster than this is repeated (up to ``BATCH_REPEATS`` times in all).
BATCH_REPEAT_BELOW_S = 0.2
BATCH_REPEATS = 3


def measure_latency(
    predict: Callable[[pd.DataFrame], Any],
    frame: pd.DataFrame,
    *,
    first_batch_s: float,
    calls: int = 50,
    warmup: int = 3,
) -> LatencyStats:
    """Time ``calls`` single-row predictions (cycling over the first rows, after ``warmup``
    untimed calls) and the whole ``frame``; ``first_batch_s`` is a whole-frame call already
    timed by the caller."""
    n = len(frame)
    rows = [frame.iloc[[i % n]] for i in range(min(n, calls))]
    for i in range(warmup):
        predict(rows[i % len(rows)])
    timings = np.empty(calls, dtype=np.float64)
    for i in range(calls):
        row = rows[i % len(rows)]
        start = time.perf_counter_ns()
        predict(row)
        timings[i] = (time.perf_counter_ns() - start) / 1e6
    batch_s = first_batch_s
    if first_batch_s < BATCH_REPEAT_BELOW_S:
        for _ in range(BATCH_REPEATS - 1):
            start = time.perf_counter_ns()
            predict(frame)
            batch_s = min(batch_s, (time.perf_counter_ns() - start) / 1e9)
    batch_s = max(batch_s, 1e-9)
    return LatencyStats(
        p50_ms=float(np.percentile(timings, 50)),
        p99_ms=float(np.percentile(timings, 99)),
        mean_ms=float(timings.mean()),
        calls=calls,
        batch_rows=n,
        batch_ms=batch_s * 1000,
        rows_per_s=n / batch_s,
    )
