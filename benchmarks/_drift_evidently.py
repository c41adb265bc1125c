"""Evidently side of the drift benchmark. Runs in Evidently's own virtualenv (pandas < 3).

Reads the reference and current Parquet files into pandas DataFrames and wraps them in Evidently
``Dataset`` objects with a ``DataDefinition`` that declares the numeric and categorical columns
(both untimed), then times ``Report([DataDriftPreset()]).run(current, reference)``. The report is
built with ``include_tests=True`` only so that each column's drift verdict comes from Evidently
itself (its ``ValueDrift`` test status) rather than from a rule re-implemented here.
"""

from __future__ import annotations

import time
from typing import Any

from _common import current_rss_mib, maybe_profile, peak_rss_mib, progress, worker_main

perf = time.perf_counter


def _memory(label: str) -> dict[str, Any]:
    rss = current_rss_mib()
    return {
        f"rss_{label}_mib": None if rss is None else round(rss, 1),
        f"peak_rss_{label}_mib": round(peak_rss_mib(), 1),
    }


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    return {d: md.version(d) for d in ("evidently", "pandas", "numpy", "pyarrow", "scipy")}


def _verdicts(snapshot: Any) -> dict[str, dict[str, Any]]:
    """Per-column verdicts from the ValueDrift metrics and their tests."""
    data = snapshot.dict()
    failed: set[str] = set()
    for test in data["tests"]:
        config = test.get("metric_config", {}).get("params", {})
        column = config.get("column")
        status = test.get("status")
        if column is not None and str(getattr(status, "value", status)).upper() == "FAIL":
            failed.add(column)
    out: dict[str, dict[str, Any]] = {}
    for metric in data["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith(":ValueDrift"):
            column = config["column"]
            out[column] = {
                "drifted": column in failed,
                "test": config.get("method"),
                "score": metric.get("value"),
                "threshold": config.get("threshold"),
            }
    return out


def compare(spec: dict[str, Any]) -> dict[str, Any]:
    """Evidently's default DataDriftPreset on the benchmark's reference and current data."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    t0 = perf()
    reference_df = pd.read_parquet(spec["reference"])
    current_df = pd.read_parquet(spec["current"])
    read_seconds = perf() - t0
    t0 = perf()
    definition = DataDefinition(
        numerical_columns=spec["numeric_columns"],
        categorical_columns=spec["categorical_columns"],
    )
    reference = Dataset.from_pandas(reference_df, data_definition=definition)
    current = Dataset.from_pandas(current_df, data_definition=definition)
    dataset_seconds = perf() - t0
    before = _memory("before")
    progress(
        f"Evidently: read {len(reference_df):,} + {len(current_df):,} rows in "
        f"{read_seconds:.2f} s, Datasets in {dataset_seconds:.2f} s"
    )
    with maybe_profile(spec.get("profile")):
        t0 = perf()
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            current_data=current, reference_data=reference
        )
        seconds = perf() - t0
    progress(f"Evidently: drift in {seconds:.2f} s")
    verdicts = _verdicts(snapshot)
    return {
        "tool": "evidently",
        "versions": _versions(),
        "read_seconds": read_seconds,
        "dataset_seconds": dataset_seconds,
        "seconds": seconds,
        **before,
        "verdicts": verdicts,
        "drifted_columns": sorted(c for c, v in verdicts.items() if v["drifted"]),
    }


if __name__ == "__main__":
    worker_main({"compare": compare})
