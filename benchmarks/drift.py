"""Drift benchmark: mloop's drift engine against Evidently's DataDriftPreset on the same data.

    python benchmarks/drift.py                 # full comparison (about 2 minutes, mostly Evidently)
    python benchmarks/drift.py --quick         # smoke run, small sizes (figures not comparable)
    python benchmarks/drift.py --large         # also: mloop alone, 10M current rows, from a profile
    python benchmarks/drift.py --only large --large-columns 100   # the large check alone

The data (20 numeric + 5 categorical columns, 5 numeric and 1 categorical shifted) is generated
from a fixed seed and written once to Parquet; each tool reads the same files in its own
subprocess. Evidently's timer covers its drift computation on DataFrames read before it; mloop's
covers reading the current Parquet file too, since mloop streams it in batches. Evidently runs
from its own virtualenv (benchmarks/.venv-evidently, made on first use, or
``--evidently-python``); it is never a dependency of mloop. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    EVIDENTLY_VERSION,
    announce,
    ensure_evidently_python,
    environment,
    fmt_ratio,
    package_version,
    profile_folder,
    python_version_of,
    run_worker,
    table,
    write_results,
)
from _drift_workload import FULL, LARGE, QUICK, Sizes, chunks

WORKLOADS = ("compare", "large")
#: mloop must be at least this many times faster than Evidently.
SPEED_BAR = 20.0
#: mloop's peak RSS must be at most this fraction of Evidently's.
MEMORY_BAR = 1 / 3

MLOOP_WORKER = BENCH_DIR / "_drift_mloop.py"
EVIDENTLY_WORKER = BENCH_DIR / "_drift_evidently.py"


def _write_parquet(sizes: Sizes, path: Path, *, current: bool) -> float:
    """Write one data set in row groups of ``sizes.chunk_rows``; return the seconds it took."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    writer: pq.ParquetWriter | None = None
    try:
        for df in chunks(sizes, current=current):
            part = pa.Table.from_pandas(df, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, part.schema)
            writer.write_table(part, row_group_size=sizes.chunk_rows)
    finally:
        if writer is not None:
            writer.close()
    return time.perf_counter() - t0


def _generate(sizes: Sizes, folder: Path) -> float:
    """Write both data sets from a separate process, so this one stays small.

    A worker's peak RSS (``getrusage`` maxrss) starts from this process's peak when it is
    started (Linux keeps the high-water mark across fork and exec), so generating the data here
    would put a floor under every tool's figure.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        ref = pool.submit(_write_parquet, sizes, folder / "reference.parquet", current=False)
        cur = pool.submit(_write_parquet, sizes, folder / "current.parquet", current=True)
        return ref.result() + cur.result()


def _spec(workload: str, folder: Path, sizes: Sizes, profile: Path | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "workload": workload,
        "workdir": str(folder),
        "sizes": asdict(sizes),
        "reference": str(folder / "reference.parquet"),
        "current": str(folder / "current.parquet"),
        "numeric_columns": sizes.numeric_columns,
        "categorical_columns": sizes.categorical_columns,
    }
    if profile is not None:
        spec["profile"] = str(profile)
    return spec


def _worker(python: str, script: Path, spec: dict[str, Any], tool: str) -> dict[str, Any]:
    folder = Path(spec["workdir"]) / tool
    folder.mkdir(exist_ok=True)
    # No network call (Evidently's telemetry) inside the timings.
    env = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    return run_worker(python, script, {**spec, "workdir": str(folder)}, env)


def _line(name: str, res: dict[str, Any]) -> None:
    extra = f", Dataset wrap {res['dataset_seconds']:.2f} s" if "dataset_seconds" in res else ""
    if "methods" in res:
        extra += f"; current streamed from Parquet inside the timer, methods {res['methods']}"
    print(
        f"  {name}: drift {res['seconds']:.2f} s (read {res['read_seconds']:.2f} s{extra}); "
        f"RSS before {res['rss_before_mib']} MiB, peak before {res['peak_rss_before_mib']} MiB, "
        f"peak {res['peak_rss_mib']} MiB; drifted: {', '.join(res['drifted_columns']) or '-'}"
    )


def _verdict_table(sizes: Sizes, m: dict[str, Any], e: dict[str, Any] | None) -> str:
    expected = set(sizes.shifted_columns)
    rows = []
    for column in [*sizes.numeric_columns, *sizes.categorical_columns]:
        mv = m["verdicts"][column]
        row = [
            column,
            "shifted" if column in expected else "-",
            f"{mv['test']} {mv['score']:.4f}",
            "DRIFT" if mv["drifted"] else "ok",
        ]
        if e is not None:
            ev = e["verdicts"].get(column)
            row += (
                ["(missing)", "?"]
                if ev is None
                else [f"{ev['score']:.4f}", "DRIFT" if ev["drifted"] else "ok"]
            )
        rows.append(row)
    headers = ["column", "expected", "mloop test/score", "mloop"]
    if e is not None:
        headers += ["Evidently score", "Evidently"]
    return table(headers, rows)


def _compare(sizes: Sizes, m: dict[str, Any], e: dict[str, Any] | None) -> dict[str, Any]:
    _line("mloop    ", m)
    expected = sorted(sizes.shifted_columns)
    mloop_right = m["drifted_columns"] == expected
    out: dict[str, Any] = {"mloop": m, "expected_drifted": expected, "mloop_expected": mloop_right}
    if e is None:
        print(_verdict_table(sizes, m, None))
        print(f"  mloop flags exactly the {len(expected)} shifted columns: {_yes(mloop_right)}")
        return out
    _line("Evidently", e)
    print(_verdict_table(sizes, m, e))
    same = m["drifted_columns"] == e["drifted_columns"]
    speed = e["seconds"] / m["seconds"]
    memory = m["peak_rss_mib"] / e["peak_rss_mib"]
    print(
        f"  same drifted columns from both tools: {_yes(same)}; "
        f"both exactly the {len(expected)} shifted ones: {_yes(same and mloop_right)}"
    )
    print(
        f"  speed-up (Evidently time / mloop time): {fmt_ratio(speed)}   "
        f"bar >= {SPEED_BAR:.0f}x: {'MET' if speed >= SPEED_BAR else 'MISSED'}"
    )
    print(
        f"  peak RSS mloop / Evidently: {memory:.3f} (1/{1 / memory:.1f})   bar <= 1/3: "
        f"{'MET' if memory <= MEMORY_BAR else 'MISSED'}"
    )
    out.update(
        {
            "evidently": e,
            "same_verdicts": same,
            "speedup": speed,
            "speed_met": speed >= SPEED_BAR,
            "peak_rss_ratio": memory,
            "memory_met": memory <= MEMORY_BAR,
            "verdicts_met": same and mloop_right,
        }
    )
    return out


def _large(sizes: Sizes, res: dict[str, Any]) -> dict[str, Any]:
    arrow = res["current_arrow_mib"]
    growth = res["peak_rss_mib"] - res["peak_rss_after_profile_mib"]
    # Bounded means the current data is never held whole: peak growth below half its size.
    bounded = growth < arrow / 2
    expected = sorted(c for c in sizes.shifted_columns if c in sizes.numeric_columns)
    print(
        f"  mloop: reference profiled in {res['profile_seconds']:.2f} s "
        f"(peak RSS {res['peak_rss_after_profile_mib']} MiB); current data {arrow:,.0f} MiB as "
        f"Arrow, streamed from Parquet by drift (methods: {res.get('methods')})"
    )
    print(
        f"  mloop: drift(profile, current.parquet) {res['seconds']:.2f} s "
        f"({sizes.current_rows / res['seconds']:,.0f} rows/s, reading included); "
        f"peak RSS {res['peak_rss_mib']} MiB"
    )
    right = res["drifted_columns"] == expected
    print(f"  drifted: {', '.join(res['drifted_columns'])}; as expected: {_yes(right)}")
    held = "NOT bounded (MISSED): memory grew with the current data"
    print(
        f"  peak RSS growth after the profile: {growth:,.0f} MiB for {arrow:,.0f} MiB of current "
        f"data: {'bounded (MET)' if bounded else held}"
    )
    return {
        "mloop": res,
        "expected_drifted": expected,
        "growth_mib": growth,
        "bounded": bounded,
        "verdicts_expected": right,
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _summary(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    cmp = results.get("compare")
    if cmp is not None:
        m, e = cmp["mloop"], cmp.get("evidently")
        rows.append(
            [
                "drift time",
                f"{m['seconds']:.2f} s",
                f"{e['seconds']:.2f} s" if e else "-",
                fmt_ratio(cmp.get("speedup")) + " faster" if e else "-",
                f">= {SPEED_BAR:.0f}x",
                ("MET" if cmp["speed_met"] else "MISSED") if e else "n/a",
            ]
        )
        rows.append(
            [
                "peak RSS",
                f"{m['peak_rss_mib']:,.0f} MiB",
                f"{e['peak_rss_mib']:,.0f} MiB" if e else "-",
                f"1/{1 / cmp['peak_rss_ratio']:.1f}" if e else "-",
                "<= 1/3",
                ("MET" if cmp["memory_met"] else "MISSED") if e else "n/a",
            ]
        )
        rows.append(
            [
                "drifted columns",
                str(len(m["drifted_columns"])),
                str(len(e["drifted_columns"])) if e else "-",
                ("same" if cmp["same_verdicts"] else "DIFFER") if e else "-",
                "same, the 6 shifted",
                ("MET" if cmp["verdicts_met"] else "MISSED") if e else "n/a",
            ]
        )
    large = results.get("large")
    if large is not None:
        m = large["mloop"]
        rows.append(
            [
                "large: drift from profile",
                f"{m['seconds']:.2f} s, peak {m['peak_rss_mib']:,.0f} MiB",
                "-",
                "-",
                "bounded",
                "MET" if large["bounded"] else "MISSED",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Generate the data, run each tool on it in its own process, print figures and verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (NOT comparable)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=WORKLOADS,
        metavar="NAME",
        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="also run the large check: mloop alone, 10M current rows, drift from a profile",
    )
    parser.add_argument(
        "--large-columns",
        type=int,
        default=LARGE.numeric,
        metavar="N",
        help=f"numeric columns of the large check (default {LARGE.numeric}; 100 writes ~8 GB "
        "of Parquet to the work folder)",
    )
    parser.add_argument(
        "--evidently-python",
        metavar="PATH",
        help="a Python with evidently installed (default: benchmarks/.venv-evidently, "
        f"made on first use with evidently=={EVIDENTLY_VERSION} and pandas<3)",
    )
    parser.add_argument(
        "--workdir", metavar="DIR", help="where the Parquet files go (default: system temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the Parquet files")
    parser.add_argument(
        "--no-evidently", action="store_true", help="mloop side only (no ratios; for profiling)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the mloop side with cProfile (reports in benchmarks/.results)",
    )
    args = parser.parse_args(argv)
    if args.large_columns < 1:
        parser.error("--large-columns must be at least 1")

    selected = list(args.only) if args.only else ["compare", *(["large"] if args.large else [])]
    selected = [w for w in WORKLOADS if w in selected]
    sizes = QUICK if args.quick else FULL
    large_sizes = replace(LARGE, numeric=args.large_columns)
    if args.quick:
        large_sizes = replace(large_sizes, current_rows=1_000_000, chunk_rows=250_000)
    needs_evidently = "compare" in selected and not args.no_evidently
    evidently_python = ensure_evidently_python(args.evidently_python) if needs_evidently else None

    env = environment(
        {
            "mloop": package_version(sys.executable, "mloop"),
            "pandas (mloop side)": package_version(sys.executable, "pandas"),
            "numpy (mloop side)": package_version(sys.executable, "numpy"),
            "pyarrow (mloop side)": package_version(sys.executable, "pyarrow"),
            "scipy (mloop side)": package_version(sys.executable, "scipy"),
        }
    )
    if evidently_python:
        env["evidently"] = package_version(evidently_python, "evidently")
        for dist in ("pandas", "numpy", "pyarrow", "scipy"):
            env[f"{dist} (Evidently side)"] = package_version(evidently_python, dist)
        env["python (Evidently side)"] = python_version_of(evidently_python)
    env["mode"] = "QUICK (smoke sizes, not comparable)" if args.quick else "full"
    announce("mloop vs Evidently: data drift", env, quick=args.quick)
    profile_dir = profile_folder(args.profile)
    base = Path(tempfile.mkdtemp(prefix="mloop-bench-drift-", dir=args.workdir))
    results: dict[str, Any] = {}
    try:
        for i, name in enumerate(selected, 1):
            folder = base / name
            folder.mkdir()
            s = sizes if name == "compare" else large_sizes
            print(
                f"\n[{i}/{len(selected)}] {name}: reference {s.reference_rows:,} rows, current "
                f"{s.current_rows:,} rows, {s.numeric} numeric + {s.categorical} categorical "
                f"columns; shifted: {', '.join(s.shifted_columns)}",
                flush=True,
            )
            gen = _generate(s, folder)
            print(f"  data generated and written to Parquet in {gen:.1f} s (untimed)", flush=True)
            prof = None if profile_dir is None else profile_dir / f"profile-drift-{name}.txt"
            spec = _spec(name, folder, s, prof)
            res_mloop = _worker(sys.executable, MLOOP_WORKER, spec, "mloop")
            if name == "large":
                results[name] = _large(s, res_mloop)
                continue
            res_ev = None
            if evidently_python is not None:
                res_ev = _worker(
                    evidently_python, EVIDENTLY_WORKER, {**spec, "profile": None}, "evidently"
                )
            results[name] = _compare(s, res_mloop, res_ev)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"\ndata kept in {base}")

    title = "Summary" + (" (QUICK: not comparable)" if args.quick else "")
    print(
        f"\n{title}\n"
        + table(
            ["figure", "mloop", "Evidently", "mloop vs Evidently", "bar", "verdict"],
            _summary(results),
        )
    )
    path = write_results(
        "drift",
        {
            "environment": env,
            "sizes": {"compare": asdict(sizes), "large": asdict(large_sizes)},
            "bars": {"speedup": SPEED_BAR, "peak_rss_ratio": MEMORY_BAR},
            "results": results,
        },
    )
    print(f"\nresults written to benchmarks/.results/{path.name}")
    if profile_dir is not None:
        print("mloop profiles written to benchmarks/.results/profile-drift-*.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
