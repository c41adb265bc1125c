"""Tracking benchmark: mloop against MLflow on the same work, in one run, with ratios.

    python benchmarks/tracking.py                # full workload (about 10 minutes, mostly MLflow)
    python benchmarks/tracking.py --quick        # smoke run, small sizes (figures not comparable)
    python benchmarks/tracking.py --only search  # one workload (repeatable)
    python benchmarks/tracking.py --mlflow-sample 0.1  # time MLflow on 1 run in 10 (labelled)

Each tool runs each workload in its own subprocess, on a SQLite store in its own fresh temporary
folder (all on the same disk). MLflow runs from its own virtualenv (benchmarks/.venv-mlflow, made
on first use, or ``--mlflow-python``); it is never a dependency of mloop. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    MLFLOW_VERSION,
    announce,
    ensure_mlflow_python,
    environment,
    fmt_rate,
    fmt_ratio,
    package_version,
    profile_folder,
    python_version_of,
    run_worker,
    table,
    write_results,
)
from _tracking_workload import FULL, QUICK, SEARCH_FILTER, Sizes

WORKLOADS = ("per-call", "batched", "runs", "search", "memory")
#: mloop must be at least this many times faster than MLflow.
BARS = {"per-call": 100.0, "batched": 10.0, "runs": 20.0, "search": 20.0}
#: The memory workload passes when peak RSS grows less than this from 10% to 100% of the points.
MEMORY_GROWTH_LIMIT_MIB = 32.0

MLOOP_WORKER = BENCH_DIR / "_tracking_mloop.py"
MLFLOW_WORKER = BENCH_DIR / "_tracking_mlflow.py"


def _folder(base: Path, tool: str, workload: str) -> Path:
    # search reads the runs that the run-creation workload stored
    folder = base / tool / ("runs" if workload in ("runs", "search") else workload)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run_mloop(base: Path, workload: str, sizes: Sizes, profile_dir: Path | None) -> dict[str, Any]:
    folder = _folder(base, "mloop", workload)
    spec: dict[str, Any] = {"workload": workload, "workdir": str(folder), "sizes": asdict(sizes)}
    if profile_dir is not None:
        spec["profile"] = str(profile_dir / f"profile-tracking-{workload}.txt")
    env = {
        "MLOOP_HOME": str(folder),
        "MLOOP_TRACKING_URI": f"sqlite:///{folder / 'mloop.db'}",
        "MLOOP_ARTIFACT_URI": str(folder / "artifacts"),
    }
    return run_worker(sys.executable, MLOOP_WORKER, spec, env)


def _run_mlflow(
    python: str, base: Path, workload: str, sizes: Sizes, sample: float
) -> dict[str, Any]:
    folder = _folder(base, "mlflow", workload)
    spec = {
        "workload": workload,
        "workdir": str(folder),
        "sizes": asdict(sizes),
        "mlflow_sample": sample,
    }
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        # Telemetry off: no network calls inside MLflow's timings.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
    }
    return run_worker(python, MLFLOW_WORKER, spec, env)


def _verdict(ratio: float | None, bar: float, *, valid: bool = True) -> str:
    if ratio is None:
        return "n/a"
    if not valid:
        return "INVALID (results differ)"
    return "MET" if ratio >= bar else "MISSED"


def _sample_note(res: dict[str, Any], total: int, unit: str) -> str:
    if not res.get("sampled"):
        return ""
    return f"  [SAMPLED rate: MLflow timed on {res['runs']:,} of {total:,} {unit}]"


def _logging(
    kind: str, res_mloop: dict[str, Any], res_mlflow: dict[str, Any] | None, sizes: Sizes
) -> dict[str, Any]:
    print(
        f"  mloop : {res_mloop['points']:,} points in {res_mloop['seconds']:.2f} s "
        f"-> {fmt_rate(res_mloop['rate'])} points/s, durable"
        + (
            f" (log calls return at {fmt_rate(res_mloop['calls_return_rate'])}/s)"
            if "calls_return_rate" in res_mloop
            else ""
        )
    )
    if kind == "batched":
        print(f"          via {res_mloop['verb']} ({res_mloop['batch_calls']:,} calls)")
    if res_mlflow is None:
        return {"mloop": res_mloop}
    print(
        f"  MLflow: {res_mlflow['points']:,} points in {res_mlflow['seconds']:.2f} s "
        f"-> {fmt_rate(res_mlflow['rate'])} points/s"
        + _sample_note(res_mlflow, sizes.log_runs, "runs")
    )
    ratio = res_mloop["rate"] / res_mlflow["rate"]
    print(
        f"  ratio mloop/MLflow: {fmt_ratio(ratio)}   bar >= {BARS[kind]:.0f}x: "
        f"{_verdict(ratio, BARS[kind])}"
    )
    return {"mloop": res_mloop, "mlflow": res_mlflow, "ratio": ratio}


def _runs(
    res_mloop: dict[str, Any], res_mlflow: dict[str, Any] | None, sizes: Sizes
) -> dict[str, Any]:
    print(
        f"  mloop : {res_mloop['runs']:,} runs in {res_mloop['seconds']:.2f} s "
        f"-> {fmt_rate(res_mloop['rate'])} runs/s"
    )
    if res_mlflow is None:
        return {"mloop": res_mloop}
    print(
        f"  MLflow: {res_mlflow['runs']:,} runs in {res_mlflow['seconds']:.2f} s "
        f"-> {res_mlflow['rate']:,.1f} runs/s" + _sample_note(res_mlflow, sizes.create_runs, "runs")
    )
    if res_mlflow["filled_runs"]:
        print(
            f"          the other {res_mlflow['filled_runs']:,} MLflow runs were created untimed "
            f"for the search (create_run + log_batch + set_terminated, "
            f"{res_mlflow['fill_seconds']:.1f} s)"
        )
    ratio = res_mloop["rate"] / res_mlflow["rate"]
    print(
        f"  ratio mloop/MLflow: {fmt_ratio(ratio)}   bar >= {BARS['runs']:.0f}x: "
        f"{_verdict(ratio, BARS['runs'])}"
    )
    return {"mloop": res_mloop, "mlflow": res_mlflow, "ratio": ratio}


def _search(res_mloop: dict[str, Any], res_mlflow: dict[str, Any] | None) -> dict[str, Any]:
    def line(name: str, res: dict[str, Any]) -> None:
        print(
            f"  {name}: median {res['median_ms']:.2f} ms over {res['repeats']} "
            f"(min {res['min_ms']:.2f}, max {res['max_ms']:.2f}), {res['results']} results"
        )

    line("mloop ", res_mloop)
    if res_mlflow is None:
        return {"mloop": res_mloop}
    line("MLflow", res_mlflow)
    same = res_mloop["result_names"] == res_mlflow["result_names"]
    print(f"  same runs in the same order from both tools: {'yes' if same else 'NO'}")
    ratio = res_mlflow["median_ms"] / res_mloop["median_ms"]
    print(
        f"  speed-up (MLflow time / mloop time): {fmt_ratio(ratio)}   "
        f"bar >= {BARS['search']:.0f}x: {_verdict(ratio, BARS['search'], valid=same)}"
    )
    return {"mloop": res_mloop, "mlflow": res_mlflow, "ratio": ratio, "same_results": same}


def _memory(res: dict[str, Any]) -> dict[str, Any]:
    print(
        f"  {res['points']:,} points in {res['seconds']:.2f} s "
        f"-> {fmt_rate(res['rate'])} points/s, durable"
    )
    for cp in res["checkpoints"]:
        rss = "" if cp["rss_mib"] is None else f", current RSS {cp['rss_mib']:.1f} MiB"
        print(
            f"    {cp['at']:>6} ({cp['points']:>9,} points): peak RSS {cp['peak_rss_mib']:.1f} MiB"
            + rss
        )
    by_at = {cp["at"]: cp["peak_rss_mib"] for cp in res["checkpoints"]}
    growth = by_at["after"] - by_at["10%"]
    bounded = growth < MEMORY_GROWTH_LIMIT_MIB
    print(
        f"  peak RSS growth over the second half of the points: "
        f"{by_at['after'] - by_at['50%']:.1f} MiB"
    )
    print(
        f"  peak RSS growth from 10% to 100% of the points: {growth:.1f} MiB "
        f"(bounded if < {MEMORY_GROWTH_LIMIT_MIB:.0f} MiB): {'MET' if bounded else 'MISSED'}"
    )
    return {
        "mloop": res,
        "growth_mib": growth,
        "bounded": bounded,
        "second_half_growth_mib": by_at["after"] - by_at["50%"],
    }


def _headline(name: str, out: dict[str, Any]) -> list[str]:
    """One row of the final table."""
    m, f, ratio = out["mloop"], out.get("mlflow"), out.get("ratio")
    if name == "memory":
        return [
            name,
            f"{fmt_rate(m['rate'])} pts/s, peak {m['checkpoints'][-1]['peak_rss_mib']} MiB",
            "-",
            "-",
            "bounded",
            "MET" if out["bounded"] else "MISSED",
        ]
    if name == "search":
        cells = [f"{m['median_ms']:.2f} ms", f"{f['median_ms']:.2f} ms" if f else "-"]
    elif name == "runs":
        cells = [
            f"{fmt_rate(m['rate'])} runs/s",
            f"{f['rate']:,.1f} runs/s" + (" (sampled)" if f.get("sampled") else "") if f else "-",
        ]
    else:
        cells = [
            f"{fmt_rate(m['rate'])} pts/s",
            f"{fmt_rate(f['rate'])} pts/s" + (" (sampled)" if f.get("sampled") else "")
            if f
            else "-",
        ]
    verdict = _verdict(ratio, BARS[name], valid=out.get("same_results", True))
    return [name, *cells, fmt_ratio(ratio), f">= {BARS[name]:.0f}x", verdict]


def _describe(name: str, sizes: Sizes) -> str:
    return {
        "per-call": f"per-call logging: {sizes.log_runs} runs x 5 metrics x {sizes.log_steps:,} "
        f"steps = {sizes.log_points:,} points, one call per point",
        "batched": f"batched logging: the same {sizes.log_points:,} points in batches of "
        f"{sizes.batch_points:,}",
        "runs": f"run creation: {sizes.create_runs:,} runs, each 5 params, 3 metrics, 2 tags",
        "search": f'search over {sizes.create_runs:,} runs: "{SEARCH_FILTER}", '
        f"order by acc desc, 100 results, median of {sizes.search_repeats}",
        "memory": f"memory: mloop alone logs {sizes.memory_points:,} points, one call per point",
    }[name]


def main(argv: list[str] | None = None) -> int:
    """Run the selected workloads for both tools and print figures, ratios and a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run (figures are NOT comparable)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=WORKLOADS,
        metavar="NAME",
        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--mlflow-sample",
        type=float,
        default=1.0,
        metavar="FRACTION",
        help="time MLflow on this fraction of the runs of the per-call and "
        "run-creation workloads (default 1: all); reported as sampled",
    )
    parser.add_argument(
        "--mlflow-python",
        metavar="PATH",
        help="a Python with mlflow installed (default: benchmarks/.venv-mlflow, "
        f"made on first use with mlflow=={MLFLOW_VERSION})",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="where the temporary stores go (default: the system temp folder)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    parser.add_argument(
        "--no-mlflow",
        action="store_true",
        help="run the mloop side only (no ratios; for profiling mloop)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the mloop side with cProfile (reports in benchmarks/.results)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.mlflow_sample <= 1:
        parser.error("--mlflow-sample must be in (0, 1]")

    sizes = QUICK if args.quick else FULL
    selected = [w for w in WORKLOADS if not args.only or w in args.only]
    needs_mlflow = not args.no_mlflow and any(w != "memory" for w in selected)
    mlflow_python = ensure_mlflow_python(args.mlflow_python) if needs_mlflow else None

    env = environment(
        {
            "mloop": package_version(sys.executable, "mloop"),
            "sqlalchemy (mloop side)": package_version(sys.executable, "sqlalchemy"),
        }
    )
    if mlflow_python:
        env["mlflow"] = package_version(mlflow_python, "mlflow")
        env["sqlalchemy (MLflow side)"] = package_version(mlflow_python, "sqlalchemy")
        env["python (MLflow side)"] = python_version_of(mlflow_python)
    env["mode"] = "QUICK (smoke sizes, not comparable)" if args.quick else "full"
    env["mlflow_sample"] = args.mlflow_sample
    announce("mloop vs MLflow: experiment tracking", env, quick=args.quick)
    profile_dir = profile_folder(args.profile)
    base = Path(tempfile.mkdtemp(prefix="mloop-bench-tracking-", dir=args.workdir))
    results: dict[str, Any] = {}
    try:
        for i, name in enumerate(selected, 1):
            print(f"\n[{i}/{len(selected)}] {_describe(name, sizes)}", flush=True)
            res_mloop = _run_mloop(base, name, sizes, profile_dir)
            if name == "memory":
                results[name] = _memory(res_mloop)
                continue
            res_mlflow = None
            if mlflow_python is not None:
                res_mlflow = _run_mlflow(mlflow_python, base, name, sizes, args.mlflow_sample)
            if name == "runs":
                results[name] = _runs(res_mloop, res_mlflow, sizes)
            elif name == "search":
                results[name] = _search(res_mloop, res_mlflow)
            else:
                results[name] = _logging(name, res_mloop, res_mlflow, sizes)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    rows = [_headline(name, out) for name, out in results.items()]
    title = "Summary" + (" (QUICK: not comparable)" if args.quick else "")
    print(
        f"\n{title}\n"
        + table(["workload", "mloop", "MLflow", "mloop vs MLflow", "bar", "verdict"], rows)
    )
    path = write_results(
        "tracking",
        {
            "environment": env,
            "sizes": asdict(sizes),
            "bars": BARS,
            "results": results,
        },
    )
    print(f"\nresults written to benchmarks/.results/{path.name}")
    if profile_dir is not None:
        print("mloop profiles written to benchmarks/.results/profile-tracking-*.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
