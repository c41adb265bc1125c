"""Plumbing shared by the benchmarks: environment report, worker subprocesses, MLflow venv, output.

Standard library only: this module is imported both by the orchestrators (which run in mloop's
environment) and by the anchor-tool workers (which run in the anchor tool's own virtualenv, where
mloop is not installed).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / ".results"

MLFLOW_VERSION = "3.17.2"
MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"

EVIDENTLY_VERSION = "0.7.23"
EVIDENTLY_VENV = BENCH_DIR / ".venv-evidently"
#: Evidently 0.7 does not support pandas 3; pyarrow reads the benchmark's Parquet files.
EVIDENTLY_REQUIREMENTS = (f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow")


# -- inside a worker -----------------------------------------------------------------------------
def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss is KiB on Linux)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def current_rss_mib() -> float | None:
    """Current resident set size in MiB, where /proc tells it (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def progress(msg: str) -> None:
    """A progress line on stderr (stdout stays free for the tools' own chatter)."""
    print(f"    {msg}", file=sys.stderr, flush=True)


@contextmanager
def maybe_profile(out: str | None) -> Iterator[None]:
    """Run the block under cProfile and write the top functions to ``out`` when it is set."""
    if not out:
        yield
        return
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        Path(out).write_text(buf.getvalue())


def worker_main(workloads: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """Entry point of a worker: ``worker.py SPEC_JSON``; writes its result to spec['result']."""
    spec = json.loads(sys.argv[1])
    result = workloads[spec["workload"]](spec)
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    Path(spec["result"]).write_text(json.dumps(result))


# -- in the orchestrator -------------------------------------------------------------------------
def run_worker(
    python: str, script: Path, spec: dict[str, Any], env: dict[str, str]
) -> dict[str, Any]:
    """Run one workload in a fresh interpreter and return the JSON it wrote."""
    result_file = Path(spec["workdir"]) / f"result-{spec['workload']}.json"
    spec = {**spec, "result": str(result_file)}
    full_env = {**os.environ, **env}
    # A benchmark must not pick up the caller's stores or telemetry settings by accident.
    for name in list(full_env):
        if name.startswith(("MLOOP_", "MLFLOW_")) and name not in env:
            del full_env[name]
    proc = subprocess.run(
        [python, str(script), json.dumps(spec)],
        env=full_env,
        cwd=spec["workdir"],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"{script.name} {spec['workload']} failed (exit {proc.returncode})")
    return json.loads(result_file.read_text())  # type: ignore[no-any-return]


def python_version_of(python: str) -> str:
    """The Python version of another interpreter."""
    out = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def package_version(python: str, dist: str) -> str | None:
    """Installed version of a distribution in another interpreter, or None."""
    code = (
        "import importlib.metadata as m, sys\n"
        "try: print(m.version(sys.argv[1]))\n"
        "except m.PackageNotFoundError: pass\n"
    )
    out = subprocess.run([python, "-c", code, dist], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def ensure_tool_python(
    explicit: str | None,
    *,
    dist: str,
    version: str,
    venv: Path,
    requirements: Sequence[str],
    flag: str,
) -> str:
    """The interpreter that runs an anchor tool: ``explicit``, or its own virtualenv ``venv``
    (made on demand, ``requirements`` installed when ``dist`` is not at ``version``).

    Anchor tools are never installed into mloop's own environment.
    """
    if explicit:
        if package_version(explicit, dist) is None:
            raise SystemExit(f"{flag} {explicit}: {dist} is not installed there")
        return explicit
    bindir = "Scripts" if os.name == "nt" else "bin"
    python = venv / bindir / ("python.exe" if os.name == "nt" else "python")
    if not python.exists():
        print(f"creating the {dist} virtualenv in benchmarks/{venv.name} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if package_version(str(python), dist) != version:
        print(
            f"installing {' '.join(requirements)} into benchmarks/{venv.name} (a few minutes) ...",
            flush=True,
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *requirements,
            ],
            check=True,
        )
    return str(python)


def ensure_mlflow_python(explicit: str | None) -> str:
    """The interpreter that runs MLflow: ``explicit``, or benchmarks/.venv-mlflow."""
    return ensure_tool_python(
        explicit,
        dist="mlflow",
        version=MLFLOW_VERSION,
        venv=MLFLOW_VENV,
        requirements=[f"mlflow=={MLFLOW_VERSION}"],
        flag="--mlflow-python",
    )


def ensure_evidently_python(explicit: str | None) -> str:
    """The interpreter that runs Evidently: ``explicit``, or benchmarks/.venv-evidently, made on
    demand with pandas < 3, which Evidently 0.7 requires."""
    return ensure_tool_python(
        explicit,
        dist="evidently",
        version=EVIDENTLY_VERSION,
        venv=EVIDENTLY_VENV,
        requirements=EVIDENTLY_REQUIREMENTS,
        flag="--evidently-python",
    )


def announce(title: str, env: dict[str, Any], *, quick: bool) -> None:
    """Print the benchmark's title and environment, and a warning for a quick run."""
    print(title)
    for key, value in env.items():
        print(f"  {key}: {value}")
    if quick:
        print("  *** QUICK RUN: small sizes; the figures below are a smoke test only ***")


def profile_folder(enabled: bool) -> Path | None:
    """Where --profile writes cProfile reports (benchmarks/.results), or None."""
    if not enabled:
        return None
    folder = BENCH_DIR / ".results"
    folder.mkdir(exist_ok=True)
    return folder


def environment(extra: dict[str, Any]) -> dict[str, Any]:
    """What a reader needs to compare figures between machines."""
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **extra,
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write a result file under benchmarks/.results/ and return its path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def fmt_rate(x: float | None) -> str:
    """A rate with a thousands separator."""
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_ratio(x: float | None) -> str:
    """A ratio like '123.4x'."""
    if x is None:
        return "n/a"
    return f"{x:,.0f}x" if x >= 100 else f"{x:,.1f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with right-aligned columns after the first."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])
