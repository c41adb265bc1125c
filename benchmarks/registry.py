"""Model registry benchmark: mloop against MLflow's registry on the same work, with ratios.

    python benchmarks/registry.py            # full workload (a few minutes, mostly MLflow's setup)
    python benchmarks/registry.py --quick    # smoke run, small sizes (figures not comparable)
    python benchmarks/registry.py --profile  # also write cProfile reports of the mloop side

Each tool runs in its own subprocess, on a SQLite store in its own fresh temporary folder (the
same disk): register N already-packaged models as versions of one name, move an alias between
them, resolve ``models:/name@alias``, download that URI to a local folder, and (end to end) log
trained models and register them in one call. MLflow runs from its own virtualenv
(benchmarks/.venv-mlflow, made on first use, or ``--mlflow-python``). See benchmarks/README.md.
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
    fmt_ratio,
    package_version,
    profile_folder,
    python_version_of,
    run_worker,
    table,
    write_results,
)
from _registry_workload import ALIAS, FULL, MODEL_NAME, PHASES, QUICK, Sizes, alias_target

#: The issue's aim: mloop at least this many times MLflow's operations per second.
BAR = 10.0

MLOOP_WORKER = BENCH_DIR / "_registry_mloop.py"
MLFLOW_WORKER = BENCH_DIR / "_registry_mlflow.py"


def _run_mloop(base: Path, sizes: Sizes, profile_dir: Path | None) -> dict[str, Any]:
    folder = base / "mloop"
    folder.mkdir(parents=True)
    spec: dict[str, Any] = {"workload": "all", "workdir": str(folder), "sizes": asdict(sizes)}
    if profile_dir is not None:
        spec["profile_dir"] = str(profile_dir)
    env = {
        "MLOOP_HOME": str(folder),
        "MLOOP_TRACKING_URI": f"sqlite:///{folder / 'mloop.db'}",
        "MLOOP_ARTIFACT_URI": str(folder / "artifacts"),
    }
    return run_worker(sys.executable, MLOOP_WORKER, spec, env)


def _run_mlflow(python: str, base: Path, sizes: Sizes, *, wal: bool) -> dict[str, Any]:
    folder = base / ("mlflow-wal" if wal else "mlflow")
    folder.mkdir(parents=True)
    spec = {"workload": "all", "workdir": str(folder), "sizes": asdict(sizes), "mlflow_wal": wal}
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        # Telemetry off: no network calls inside MLflow's timings.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
    }
    return run_worker(python, MLFLOW_WORKER, spec, env)


def _describe(phase: str, sizes: Sizes) -> str:
    return {
        "register": f"register {sizes.versions:,} versions of one name (already packaged models)",
        "alias": f"move the alias '{ALIAS}' {sizes.alias_moves:,} times, to another version each "
        "time",
        "resolve": f"resolve models:/{MODEL_NAME}@{ALIAS} to its version {sizes.resolves:,} times",
        "download": f"download models:/{MODEL_NAME}@{ALIAS} to a new local folder "
        f"{sizes.downloads:,} times",
        "log_model": f"log {sizes.logged_models:,} trained models to a run and register each, in "
        "one call per model (packaging and storing the files timed too)",
    }[phase]


def _line(tool: str, res: dict[str, Any]) -> str:
    return (
        f"  {tool:<14}: {res['ops']:,} in {res['seconds']:.2f} s -> {res['rate']:,.1f}/s "
        f"(median {res['median_ms']:.2f} ms, p95 {res['p95_ms']:.2f} ms)  via {res['verb']}"
    )


def _verdict(ratio: float | None, *, valid: bool = True) -> str:
    if ratio is None:
        return "n/a"
    if not valid:
        return "INVALID (results differ)"
    return "MET" if ratio >= BAR else "MISSED"


def _compare(
    phase: str,
    m: dict[str, Any],
    f: dict[str, Any] | None,
    f_wal: dict[str, Any] | None,
    sizes: Sizes,
) -> dict[str, Any]:
    res_m = m[phase]
    print(_line("mloop", res_m))
    out: dict[str, Any] = {"mloop": res_m}
    if f is None:
        return out
    res_f = f[phase]
    print(_line("MLflow", res_f))
    valid = True
    if phase == "register":
        fluent = f["register_fluent"]
        print(_line("MLflow fluent", fluent))
        out["mlflow_fluent"] = fluent
        # The headline compares with MLflow's faster way to register.
        if fluent["rate"] > res_f["rate"]:
            res_f = fluent
    if phase == "resolve":
        expected = alias_target(sizes.alias_moves - 1, sizes.versions)
        got = (res_m["resolved_version"], res_f["resolved_version"])
        valid = got == (expected, expected)
        same = "yes" if valid else f"NO (mloop, MLflow): {got}"
        print(f"  both resolve to version {expected}: {same}")
    if phase == "download":
        print(
            f"  each download: mloop {res_m['files']} files, {res_m['bytes']:,} bytes; "
            f"MLflow {res_f['files']} files, {res_f['bytes']:,} bytes"
        )
    ratio = res_m["rate"] / res_f["rate"]
    verdict = _verdict(ratio, valid=valid)
    print(f"  ratio mloop/MLflow: {fmt_ratio(ratio)}   aim >= {BAR:.0f}x: {verdict}")
    out.update({"mlflow": res_f, "ratio": ratio, "valid": valid})
    if f_wal is not None:
        res_w = f_wal[phase]
        if phase == "register" and f_wal["register_fluent"]["rate"] > res_w["rate"]:
            res_w = f_wal["register_fluent"]
        print(_line("MLflow WAL", res_w))
        out["mlflow_wal"] = res_w
        out["ratio_wal"] = res_m["rate"] / res_w["rate"]
        print(f"  ratio mloop/MLflow with WAL: {fmt_ratio(out['ratio_wal'])} (for reference)")
    return out


def _headline(phase: str, out: dict[str, Any]) -> list[str]:
    m, f = out["mloop"], out.get("mlflow")
    ratio = out.get("ratio")
    row = [
        phase,
        f"{m['rate']:,.1f}/s",
        f"{f['rate']:,.1f}/s" if f else "-",
        fmt_ratio(ratio),
        f">= {BAR:.0f}x",
        _verdict(ratio, valid=out.get("valid", True)),
    ]
    if "ratio_wal" in out:
        row.insert(4, fmt_ratio(out["ratio_wal"]))
    return row


def main(argv: list[str] | None = None) -> int:
    """Run both tools through the registry phases and print figures, ratios and a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (NOT comparable)"
    )
    parser.add_argument(
        "--mlflow-python",
        metavar="PATH",
        help="a Python with mlflow installed (default: benchmarks/.venv-mlflow, "
        f"made on first use with mlflow=={MLFLOW_VERSION})",
    )
    parser.add_argument(
        "--mlflow-wal",
        action="store_true",
        help="also run MLflow with mloop's SQLite settings (WAL, synchronous=NORMAL), "
        "reported for reference beside the default run",
    )
    parser.add_argument(
        "--workdir", metavar="DIR", help="where the temporary stores go (default: system temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    parser.add_argument(
        "--no-mlflow", action="store_true", help="run the mloop side only (no ratios)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile each mloop phase with cProfile (reports in benchmarks/.results)",
    )
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    mlflow_python = None if args.no_mlflow else ensure_mlflow_python(args.mlflow_python)
    env = environment(
        {
            "mloop": package_version(sys.executable, "mloop"),
            "scikit-learn (mloop side)": package_version(sys.executable, "scikit-learn"),
            "sqlalchemy (mloop side)": package_version(sys.executable, "sqlalchemy"),
        }
    )
    if mlflow_python:
        env["mlflow"] = package_version(mlflow_python, "mlflow")
        env["scikit-learn (MLflow side)"] = package_version(mlflow_python, "scikit-learn")
        env["sqlalchemy (MLflow side)"] = package_version(mlflow_python, "sqlalchemy")
        env["python (MLflow side)"] = python_version_of(mlflow_python)
    env["mode"] = "QUICK (smoke sizes, not comparable)" if args.quick else "full"
    announce("mloop vs MLflow: model registry", env, quick=args.quick)
    print(f"  sizes: {asdict(sizes)}")
    profile_dir = profile_folder(args.profile)
    base = Path(tempfile.mkdtemp(prefix="mloop-bench-registry-", dir=args.workdir))
    try:
        print("\nmloop: packaging the models (untimed), then the timed phases ...", flush=True)
        res_m = _run_mloop(base, sizes, profile_dir)
        res_f = res_w = None
        if mlflow_python is not None:
            print("MLflow: logging the models (untimed), then the timed phases ...", flush=True)
            res_f = _run_mlflow(mlflow_python, base, sizes, wal=False)
            if args.mlflow_wal:
                print("MLflow with WAL: the same again ...", flush=True)
                res_w = _run_mlflow(mlflow_python, base, sizes, wal=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print(
        f"\nuntimed setup: mloop packaged {sizes.versions} models in {res_m['setup_seconds']:.1f} s"
    )
    if res_f is not None:
        seconds = res_f["setup_seconds"]
        print(f"               MLflow logged {sizes.versions} models in {seconds:.1f} s")
    results: dict[str, Any] = {}
    for i, phase in enumerate(PHASES, 1):
        print(f"\n[{i}/{len(PHASES)}] {_describe(phase, sizes)}")
        results[phase] = _compare(phase, res_m, res_f, res_w, sizes)

    headers = ["operation", "mloop", "MLflow", "mloop vs MLflow", "aim", "verdict"]
    if res_w is not None:
        headers.insert(4, "vs MLflow WAL")
    rows = [_headline(phase, out) for phase, out in results.items()]
    title = "Summary (operations per second)" + (" (QUICK: not comparable)" if args.quick else "")
    print(f"\n{title}\n" + table(headers, rows))
    path = write_results(
        "registry",
        {
            "environment": env,
            "sizes": asdict(sizes),
            "bar": BAR,
            "results": results,
            "raw": {"mloop": res_m, "mlflow": res_f, "mlflow_wal": res_w},
        },
    )
    print(f"\nresults written to benchmarks/.results/{path.name}")
    if profile_dir is not None:
        print("mloop profiles written to benchmarks/.results/profile-registry-*.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
