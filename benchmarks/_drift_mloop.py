"""mloop side of the drift benchmark. Runs in mloop's environment, one workload per process.

``compare``: reads the reference Parquet file into an Arrow table (timed apart), then times
``mloop.data.drift(reference, "current.parquet")`` with its defaults: drift reads the current file
itself, batch by batch, so reading and decoding it are inside the timer and the current data is
never held whole.
``large``: profiles the reference, then times ``mloop.data.drift(profile, "current.parquet")``
over a current data set written in row groups, streamed the same way.
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


def _current_arrow_mib(path: str) -> float:
    """Size the current numeric columns would take as one Arrow table, without reading them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path)
    numeric = [f.type for f in meta.schema_arrow if pa.types.is_integer(f.type)]
    numeric += [f.type for f in meta.schema_arrow if pa.types.is_floating(f.type)]
    width = sum(t.bit_width // 8 for t in numeric)
    return round(meta.metadata.num_rows * width / (1024 * 1024), 1)


def _methods(report: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in report.columns:
        counts[c.method] = counts.get(c.method, 0) + 1
    return counts


def compare(spec: dict[str, Any]) -> dict[str, Any]:
    """Drift of the current Parquet file, streamed by mloop, from the reference Arrow table."""
    import pyarrow.parquet as pq

    import mloop.data

    t0 = perf()
    reference = pq.read_table(spec["reference"])
    read_seconds = perf() - t0
    before = _memory("before")
    progress(f"mloop: read {reference.num_rows:,} reference rows in {read_seconds:.2f} s")
    with maybe_profile(spec.get("profile")):
        t0 = perf()
        report = mloop.data.drift(reference, spec["current"])
        seconds = perf() - t0
    progress(f"mloop: drift, streaming {report.current_rows:,} current rows, in {seconds:.2f} s")
    return {
        "tool": "mloop",
        "versions": _versions(),
        "read_seconds": read_seconds,
        "seconds": seconds,
        "current_rows": report.current_rows,
        "current_arrow_mib": _current_arrow_mib(spec["current"]),
        "methods": _methods(report),
        **before,
        "verdicts": _verdicts(report),
        "drifted_columns": sorted(report.drifted_columns),
        "dataset_drifted": report.drifted,
    }


def large(spec: dict[str, Any]) -> dict[str, Any]:
    """Drift of a large current Parquet file, streamed, from a profile of the reference."""
    import pyarrow.parquet as pq

    import mloop.data

    t0 = perf()
    reference = pq.read_table(spec["reference"])
    ref_profile = mloop.data.profile(reference)
    del reference
    profile_seconds = perf() - t0
    after_profile = _memory("after_profile")
    progress(f"mloop: reference profiled in {profile_seconds:.2f} s")

    before = _memory("before")
    with maybe_profile(spec.get("profile")):
        t0 = perf()
        report = mloop.data.drift(ref_profile, spec["current"])
        seconds = perf() - t0
    progress(
        f"mloop: drift from the profile, streaming {report.current_rows:,} rows, in {seconds:.2f} s"
    )
    return {
        "tool": "mloop",
        "versions": _versions(),
        "profile_seconds": profile_seconds,
        **after_profile,
        "read_seconds": 0.0,
        "current_rows": report.current_rows,
        "current_arrow_mib": _current_arrow_mib(spec["current"]),
        "methods": _methods(report),
        "seconds": seconds,
        **before,
        "verdicts": _verdicts(report),
        "drifted_columns": sorted(report.drifted_columns),
        "dataset_drifted": report.drifted,
    }


if __name__ == "__main__":
    worker_main({"compare": compare, "large": large})
