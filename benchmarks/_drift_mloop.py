"""mloop side of the drift benchmark. Runs in mloop's environment, one workload per process.

``compare``: reads the reference and current Parquet files into pandas DataFrames (timed apart),
then times ``mloop.data.drift(reference, current)`` on Arrow tables with its defaults.
``large``: profiles the reference, then times ``mloop.data.drift(profile, current)`` over a
current data set written in row groups, read as one Arrow table (drift holds it in memory).
"""

from __future__ import annotations

import time
from typing import Any

from _common import current_rss_mib, maybe_profile, peak_rss_mib, progress, worker_main

perf = time.perf_counter


def _verdicts(report: Any) -> dict[str, dict[str, Any]]:
    return {
        c.column: {
            "drifted": bool(c.drifted),
            "kind": c.kind,
            "test": c.test,
            "score": c.score,
            "threshold": c.threshold,
            "status": c.status,
        }
        for c in report.columns
    }


def _memory(label: str) -> dict[str, Any]:
    rss = current_rss_mib()
    return {
        f"rss_{label}_mib": None if rss is None else round(rss, 1),
        f"peak_rss_{label}_mib": round(peak_rss_mib(), 1),
    }


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    return {d: md.version(d) for d in ("mloop", "pandas", "numpy", "pyarrow", "scipy")}


def compare(spec: dict[str, Any]) -> dict[str, Any]:
    """Drift of the current data from the reference data, both read as Arrow tables (mloop's
    native format, as pandas DataFrames are Evidently's)."""
    import pyarrow.parquet as pq

    import mloop.data

    t0 = perf()
    reference = pq.read_table(spec["reference"])
    current = pq.read_table(spec["current"])
    read_seconds = perf() - t0
    before = _memory("before")
    rows = f"{reference.num_rows:,} + {current.num_rows:,}"
    progress(f"mloop: read {rows} rows in {read_seconds:.2f} s")
    with maybe_profile(spec.get("profile")):
        t0 = perf()
        report = mloop.data.drift(reference, current)
        seconds = perf() - t0
    progress(f"mloop: drift in {seconds:.2f} s")
    return {
        "tool": "mloop",
        "versions": _versions(),
        "read_seconds": read_seconds,
        "seconds": seconds,
        **before,
        "verdicts": _verdicts(report),
        "drifted_columns": sorted(report.drifted_columns),
        "dataset_drifted": report.drifted,
    }


def large(spec: dict[str, Any]) -> dict[str, Any]:
    """Drift of a large current data set from a profile of the reference."""
    import pyarrow.parquet as pq

    import mloop.data

    t0 = perf()
    reference = pq.read_table(spec["reference"])
    ref_profile = mloop.data.profile(reference)
    del reference
    profile_seconds = perf() - t0
    after_profile = _memory("after_profile")
    progress(f"mloop: reference profiled in {profile_seconds:.2f} s")

    t0 = perf()
    current = pq.read_table(spec["current"])
    read_seconds = perf() - t0
    before = _memory("before")
    progress(f"mloop: read {current.num_rows:,} current rows in {read_seconds:.2f} s")
    with maybe_profile(spec.get("profile")):
        t0 = perf()
        report = mloop.data.drift(ref_profile, current)
        seconds = perf() - t0
    progress(f"mloop: drift from the profile in {seconds:.2f} s")
    return {
        "tool": "mloop",
        "versions": _versions(),
        "profile_seconds": profile_seconds,
        **after_profile,
        "read_seconds": read_seconds,
        "current_arrow_mib": round(current.nbytes / (1024 * 1024), 1),
        "seconds": seconds,
        **before,
        "verdicts": _verdicts(report),
        "drifted_columns": sorted(report.drifted_columns),
        "dataset_drifted": report.drifted,
    }


if __name__ == "__main__":
    worker_main({"compare": compare, "large": large})
