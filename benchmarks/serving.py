"""Model serving benchmark: `mloop serve` against `mlflow models serve`, same model, same load.

    python benchmarks/serving.py                 # 15 s per load at concurrency 16 (about 2 minutes)
    python benchmarks/serving.py --quick         # 3 s per load: a smoke run, figures not comparable
    python benchmarks/serving.py --skip-mlflow   # mloop alone (no ratios)

Both tools serve the same HistGradientBoostingClassifier (trained with the same seed on
``make_classification(n_samples=20000, n_features=20)``, once in each tool's environment) with
one worker on 127.0.0.1, one server at a time. The same load generator (benchmarks/_loadgen.py,
its own process: asyncio over raw keep-alive HTTP/1.1, closed loop) POSTs MLflow
``dataframe_split`` bodies to /invocations, 1-row bodies then 100-row bodies, after a warm-up;
the server's whole process tree's RSS is sampled every 0.5 s meanwhile. The mloop 1-row load
then runs again on a server started with ``--no-log`` to show the prediction log's cost. MLflow
runs from its own virtualenv (benchmarks/.venv-mlflow, or ``--mlflow-python``). See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
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
    python_version_of,
    run_worker,
    table,
    write_results,
)
from _serving_workload import MODEL_NAME, payloads

LOADGEN = BENCH_DIR / "_loadgen.py"
MLOOP_WORKER = BENCH_DIR / "_serving_mloop.py"
MLFLOW_WORKER = BENCH_DIR / "_serving_mlflow.py"

HOST = "127.0.0.1"
#: The two payload sizes, in the order they are driven.
ROW_SIZES = (1, 100)
#: Seconds between two samples of the server's RSS.
RSS_INTERVAL_S = 0.5
#: Longest wait for a server to answer /ping with 200.
READY_TIMEOUT_S = 180.0

# The bars, measured in the same run.
BAR_1ROW_RATIO = 10.0
BAR_1ROW_P99_MS = 25.0
BAR_100ROW_RATIO = 3.0
BAR_LOG_COST = 0.10


# -- servers -------------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


#: Set in both servers' environments by --server-env (diagnosis only).
SERVER_ENV: dict[str, str] = {}


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """A server's environment: this process's without any MLOOP_*/MLFLOW_* setting, plus
    ``extra`` and what --server-env sets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "MLFLOW_"))}
    return {**env, **extra, **SERVER_ENV}


MLFLOW_ENV = {
    # Telemetry off: no network calls while serving.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
}


class Server:
    """A server process started in its own session, so that its children can be stopped too."""

    def __init__(self, label: str, cmd: list[str], env: dict[str, str], folder: Path) -> None:
        self.label = label
        self.cmd = cmd
        self.port = int(cmd[cmd.index("--port" if "--port" in cmd else "-p") + 1])
        self.log_path = folder / f"server-{label}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server printed."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Wait until GET /ping answers 200; seconds taken. Raises if the process dies."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.label} server exited with {self.proc.returncode} before it was "
                    f"ready; its output:\n{self.log_tail()}"
                )
            try:
                status, _ = request(self.port, "GET", "/ping", None, timeout=2.0)
            except OSError:
                status = 0
            if status == 200:
                return time.perf_counter() - t0
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.label} server not ready after {timeout:.0f} s; its output:\n{self.log_tail()}"
        )

    def stop(self) -> int | None:
        """Stop the server gracefully (SIGINT to its process group), then by force."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        # Children that outlived their parent (same session, same group).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
        return self.proc.returncode


def request(port: int, method: str, path: str, body: Any, timeout: float = 30.0) -> tuple[int, Any]:
    """One HTTP request to the server; its status and its JSON body (or text)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode("utf-8", "replace")


def tree_memory(pid: int) -> tuple[float, float | None, list[dict[str, Any]]]:
    """RSS of a process and all its descendants, in MiB; their PSS (shared pages divided among
    the processes that share them) where Linux tells it; and each process's name and RSS."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, None, []
    mib = 1024 * 1024
    rss = 0
    pss: int | None = 0
    each = []
    for p in procs:
        try:
            one = p.memory_info().rss
            name = " ".join(Path(part).name for part in p.cmdline()[:3])
            if pss is not None:
                full = p.memory_full_info()
                pss = pss + full.pss if hasattr(full, "pss") else None
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += one
        each.append({"process": name, "rss_mib": round(one / mib, 1)})
    return rss / mib, None if pss is None else pss / mib, each


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its live descendants."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return total
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


# -- load ----------------------------------------------------------------------------------------
def run_load(
    server: Server, bodies_file: Path, rows: int, args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    """Drive ``server`` with the load generator and sample its memory meanwhile."""
    result_file = folder / f"load-{server.label}-{rows}.json"
    spec = {
        "host": HOST,
        "port": server.port,
        "path": "/invocations",
        "bodies": str(bodies_file),
        "rows": rows,
        "concurrency": args.concurrency,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "result": str(result_file),
    }
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = tree_cpu_seconds(server.proc.pid)
    t0 = time.perf_counter()
    gen = subprocess.Popen([sys.executable, str(LOADGEN), json.dumps(spec)], cwd=folder)
    peak_rss, peak_pss, procs = 0.0, 0.0, []
    while gen.poll() is None:
        rss, pss, each = tree_memory(server.proc.pid)
        if rss > peak_rss:
            peak_rss, procs = rss, each
        if pss is not None and pss > peak_pss:
            peak_pss = pss
        time.sleep(RSS_INTERVAL_S)
    wall = time.perf_counter() - t0
    cpu = tree_cpu_seconds(server.proc.pid) - cpu0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if gen.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"the load generator failed (exit {gen.returncode})")
    if server.proc.poll() is not None:
        raise RuntimeError(
            f"{server.label} server died under load (exit {server.proc.returncode}):\n"
            f"{server.log_tail()}"
        )
    out: dict[str, Any] = json.loads(result_file.read_text())
    gen_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    out.update(
        {
            "peak_rss_mib": round(peak_rss, 1),
            "peak_pss_mib": round(peak_pss, 1) if peak_pss else None,
            "server_processes": len(procs),
            "rss_by_process_at_peak": procs,
            "server_cpu_s": round(cpu, 2),
            "loadgen_cpu_s": round(gen_cpu, 2),
            "wall_s": round(wall, 2),
        }
    )
    return out


def report_load(label: str, rows: int, res: dict[str, Any]) -> None:
    """Print one load's figures."""
    print(
        f"  {label:<14} {rows:>3}-row: {res['req_per_s']:>9,.1f} req/s  "
        f"{res['rows_per_s']:>10,.0f} rows/s  p50 {res['p50_ms']} ms  p90 {res['p90_ms']} ms  "
        f"p99 {res['p99_ms']} ms  errors {res['errors']}  peak RSS {res['peak_rss_mib']} MiB "
        f"({res['server_processes']} proc)  server CPU {res['server_cpu_s']} s, "
        f"load generator CPU {res['loadgen_cpu_s']} s",
        flush=True,
    )
    if res["errors"] or res["connection_failures"]:
        print(f"    statuses: {res['statuses']}  reconnects: {res['reconnects']}")
        for sample in res["error_samples"]:
            print(f"    error: {sample}")
        for failure in res["connection_failures"]:
            print(f"    connection failed: {failure}")


def measure(
    server: Server,
    row_sizes: tuple[int, ...],
    bodies: dict[int, Path],
    args: argparse.Namespace,
    folder: Path,
) -> dict[str, Any]:
    """Wait for ``server``, check one prediction, drive each payload size; stop it."""
    out: dict[str, Any] = {"command": server.cmd}
    try:
        out["ready_s"] = round(server.wait_ready(), 2)
        idle_rss, idle_pss, each = tree_memory(server.proc.pid)
        n = len(each)
        out["idle_rss_mib"] = round(idle_rss, 1)
        out["idle_pss_mib"] = None if idle_pss is None else round(idle_pss, 1)
        print(
            f"  {server.label}: ready in {out['ready_s']:.1f} s, idle RSS {idle_rss:.1f} MiB "
            f"({n} processes)",
            flush=True,
        )
        first = json.loads(bodies[max(row_sizes)].read_text())[0]
        status, answer = request(server.port, "POST", "/invocations", first)
        if status != 200:
            raise RuntimeError(f"{server.label}: /invocations answered {status}: {answer}")
        out["check_predictions"] = answer.get("predictions") if isinstance(answer, dict) else None
        for rows in row_sizes:
            res = run_load(server, bodies[rows], rows, args, folder)
            report_load(server.label, rows, res)
            out[f"{rows}-row"] = res
    finally:
        out["exit_code"] = server.stop()
    return out


# -- the two tools -------------------------------------------------------------------------------
def mlflow_server(python: str, folder: Path) -> tuple[Server, dict[str, Any]]:
    """Train and save the model in MLflow's virtualenv, then start `mlflow models serve`."""
    folder.mkdir(parents=True)
    prep = run_worker(
        python, MLFLOW_WORKER, {"workload": "prepare", "workdir": str(folder)}, MLFLOW_ENV
    )
    cmd = [
        str(Path(python).parent / "mlflow"), "models", "serve", "-m", prep["model_path"],
        "--env-manager", "local", "-h", HOST, "-p", str(free_port()), "-w", "1",
    ]  # fmt: skip
    # As an activated virtualenv would: MLflow starts `uvicorn` found on PATH.
    bindir = str(Path(python).parent)
    env = clean_env(
        {
            **MLFLOW_ENV,
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "VIRTUAL_ENV": str(Path(bindir).parent),
        }
    )
    server = Server("MLflow", cmd, env, folder)
    return server, prep


def mloop_home(folder: Path) -> dict[str, str]:
    """The environment of a fresh mloop home in ``folder``."""
    return {"MLOOP_HOME": str(folder)}


def prepare_mloop(folder: Path) -> dict[str, Any]:
    """Train the model and register it (alias 'champion') in a fresh mloop home."""
    folder.mkdir(parents=True)
    spec = {"workload": "prepare", "workdir": str(folder)}
    return run_worker(sys.executable, MLOOP_WORKER, spec, mloop_home(folder))


def mloop_server(folder: Path, model_uri: str, *, log: bool, label: str) -> Server:
    """Start `mloop serve MODEL_URI` (1 worker) on the mloop home in ``folder``."""
    script = Path(sys.executable).parent / "mloop"
    base = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from mloop.cli.main import main; main()"]
    )
    cmd = [*base, "serve", model_uri, "--port", str(free_port()), "--workers", "1"]
    if not log:
        cmd.append("--no-log")
    return Server(label, cmd, clean_env(mloop_home(folder)), folder)


def check_log(folder: Path, res: dict[str, Any]) -> dict[str, Any]:
    """Count the rows the stopped server wrote to its prediction log, against the rows it
    answered (warm-up and the one check request included)."""
    answered = sum(
        res[f"{rows}-row"]["answered_total"] * rows for rows in ROW_SIZES if f"{rows}-row" in res
    )
    answered += max(ROW_SIZES)  # the check request
    spec = {"workload": "count_log", "workdir": str(folder), "deployment": MODEL_NAME}
    try:
        logged = run_worker(sys.executable, MLOOP_WORKER, spec, mloop_home(folder))["rows"]
    except RuntimeError as exc:
        print(f"  prediction log: could not be read ({exc})")
        return {"answered_rows": answered, "logged_rows": None}
    print(
        f"  prediction log: {logged:,} rows written for {answered:,} rows answered"
        + ("" if logged == answered else "  (MISMATCH)")
    )
    return {"answered_rows": answered, "logged_rows": logged}


# -- summary -------------------------------------------------------------------------------------
def verdict(ok: bool | None) -> str:
    """'met', 'missed' or 'n/a'."""
    return "n/a" if ok is None else ("met" if ok else "missed")


def summary_rows(
    m: dict[str, Any] | None, f: dict[str, Any] | None, nolog: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The headline rows: figures of both tools, ratio, bar and verdict."""

    def get(side: dict[str, Any] | None, rows: int, key: str) -> float | None:
        if side is None or f"{rows}-row" not in side:
            return None
        value = side[f"{rows}-row"][key]
        return None if value is None else float(value)

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    def lower(r: float | None) -> str:
        if r is None:
            return "n/a"
        return f"{fmt_ratio(r)} lower" if r >= 1 else f"{fmt_ratio(1 / r)} higher"

    out = []
    m1, f1 = get(m, 1, "req_per_s"), get(f, 1, "req_per_s")
    r = ratio(m1, f1)
    out.append(
        {
            "workload": "1-row payloads: req/s",
            "mloop": m1, "mlflow": f1, "ratio": r, "ratio_text": fmt_ratio(r),
            "bar": f">= {BAR_1ROW_RATIO:.0f}x MLflow",
            "met": None if r is None else r >= BAR_1ROW_RATIO,
        }
    )  # fmt: skip
    mp, fp = get(m, 1, "p99_ms"), get(f, 1, "p99_ms")
    r = ratio(fp, mp)
    out.append(
        {
            "workload": "1-row payloads: p99 latency, ms",
            "mloop": mp, "mlflow": fp, "ratio": r,
            "ratio_text": lower(r),
            "bar": f"mloop <= {BAR_1ROW_P99_MS:.0f} ms",
            "met": None if mp is None else mp <= BAR_1ROW_P99_MS,
        }
    )  # fmt: skip
    for key, label in (("p50_ms", "p50"), ("p90_ms", "p90")):
        a, b = get(m, 1, key), get(f, 1, key)
        r = ratio(b, a)
        out.append(
            {
                "workload": f"1-row payloads: {label} latency, ms",
                "mloop": a, "mlflow": b, "ratio": r,
                "ratio_text": lower(r),
                "bar": "", "met": None,
            }
        )  # fmt: skip
    m100, f100 = get(m, 100, "rows_per_s"), get(f, 100, "rows_per_s")
    r = ratio(m100, f100)
    out.append(
        {
            "workload": "100-row payloads: rows/s",
            "mloop": m100, "mlflow": f100, "ratio": r, "ratio_text": fmt_ratio(r),
            "bar": f">= {BAR_100ROW_RATIO:.0f}x MLflow",
            "met": None if r is None else r >= BAR_100ROW_RATIO,
        }
    )  # fmt: skip
    a, b = get(m, 100, "p99_ms"), get(f, 100, "p99_ms")
    r = ratio(b, a)
    out.append(
        {
            "workload": "100-row payloads: p99 latency, ms",
            "mloop": a, "mlflow": b, "ratio": r,
            "ratio_text": lower(r),
            "bar": "", "met": None,
        }
    )  # fmt: skip

    def peak(side: dict[str, Any] | None) -> float | None:
        if side is None:
            return None
        peaks = [side[k]["peak_rss_mib"] for k in side if k.endswith("-row")]
        return max(peaks) if peaks else None

    def largest(side: dict[str, Any] | None) -> float | None:
        if side is None:
            return None
        sizes = [
            p["rss_mib"]
            for k in side
            if k.endswith("-row")
            for p in side[k]["rss_by_process_at_peak"]
        ]
        return max(sizes) if sizes else None

    mr, fr = peak(m), peak(f)
    r = ratio(mr, fr)
    out.append(
        {
            "workload": "server RSS under load (process tree peak), MiB",
            "mloop": mr, "mlflow": fr, "ratio": r,
            "ratio_text": "n/a" if r is None else f"{r:.2f}x of MLflow's",
            "bar": "mloop <= MLflow",
            "met": None if r is None else r <= 1.0,
        }
    )  # fmt: skip
    ml, fl = largest(m), largest(f)
    r = ratio(ml, fl)
    out.append(
        {
            "workload": "server RSS under load, largest single process, MiB",
            "mloop": ml, "mlflow": fl, "ratio": r,
            "ratio_text": "n/a" if r is None else f"{r:.2f}x of MLflow's",
            "bar": "", "met": None,
        }
    )  # fmt: skip
    mi = None if m is None else m.get("idle_rss_mib")
    fi = None if f is None else f.get("idle_rss_mib")
    r = ratio(mi, fi)
    out.append(
        {
            "workload": "server RSS idle (process tree, once ready), MiB",
            "mloop": mi, "mlflow": fi, "ratio": r,
            "ratio_text": "n/a" if r is None else f"{r:.2f}x of MLflow's",
            "bar": "", "met": None,
        }
    )  # fmt: skip
    ms = None if m is None else m.get("ready_s")
    fs = None if f is None else f.get("ready_s")
    r = ratio(fs, ms)
    out.append(
        {
            "workload": "start to ready (/ping 200), s",
            "mloop": ms, "mlflow": fs, "ratio": r, "ratio_text": lower(r),
            "bar": "", "met": None,
        }
    )  # fmt: skip
    on, off = m1, get(nolog, 1, "req_per_s")
    cost = None if on is None or off is None or off == 0 else 1 - on / off
    out.append(
        {
            "workload": "prediction log cost, 1-row req/s: log on vs --no-log",
            "mloop": on, "mlflow": off, "ratio": cost,
            "ratio_text": "n/a" if cost is None else f"{cost:+.1%} cost",
            "bar": f"aim <= {BAR_LOG_COST:.0%}",
            "met": None if cost is None else cost <= BAR_LOG_COST,
        }
    )  # fmt: skip
    return out


def fmt_value(x: float | None) -> str:
    """A figure for the table."""
    if x is None:
        return "-"
    return f"{x:,.1f}" if x < 1000 else f"{x:,.0f}"


def main(argv: list[str] | None = None) -> int:
    """Serve the same model with both tools, drive the same load and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 s per load: a smoke run (NOT comparable)"
    )
    parser.add_argument("--duration", type=float, help="seconds of measured load (default 15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument(
        "--mlflow-python",
        metavar="PATH",
        help="a Python with mlflow installed (default: benchmarks/.venv-mlflow, "
        f"made on first use with mlflow=={MLFLOW_VERSION})",
    )
    parser.add_argument("--skip-mlflow", action="store_true", help="mloop only (no ratios)")
    parser.add_argument("--skip-mloop", action="store_true", help="MLflow only (no ratios)")
    parser.add_argument(
        "--skip-log-cost", action="store_true", help="do not run the mloop --no-log load"
    )
    parser.add_argument(
        "--server-env",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="set an environment variable in BOTH servers (e.g. OMP_NUM_THREADS=1); for "
        "diagnosis, not the default comparison; repeatable",
    )
    parser.add_argument(
        "--workdir", metavar="DIR", help="where the temporary stores go (default: system temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores and logs")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 3.0 if args.quick else 15.0
    if args.duration <= 0 or args.warmup < 0 or args.concurrency < 1:
        parser.error("--duration must be > 0, --warmup >= 0 and --concurrency >= 1")
    if args.skip_mlflow and args.skip_mloop:
        parser.error("--skip-mlflow and --skip-mloop leave nothing to measure")
    for item in args.server_env:
        name, sep, _ = item.partition("=")
        if not sep or not name:
            parser.error(f"--server-env {item!r}: expected NAME=VALUE")
    SERVER_ENV.update(dict(item.split("=", 1) for item in args.server_env))

    mlflow_python = None if args.skip_mlflow else ensure_mlflow_python(args.mlflow_python)
    env = environment(
        {
            "mloop": package_version(sys.executable, "mloop"),
            "uvicorn (mloop side)": package_version(sys.executable, "uvicorn"),
            "scikit-learn (mloop side)": package_version(sys.executable, "scikit-learn"),
            "uvloop (load generator)": package_version(sys.executable, "uvloop") or "absent",
        }
    )
    if mlflow_python:
        env["mlflow"] = package_version(mlflow_python, "mlflow")
        env["uvicorn (MLflow side)"] = package_version(mlflow_python, "uvicorn")
        env["scikit-learn (MLflow side)"] = package_version(mlflow_python, "scikit-learn")
        env["python (MLflow side)"] = python_version_of(mlflow_python)
    env["server environment"] = (
        " ".join(args.server_env) + " (set in both servers: NOT the default comparison)"
        if args.server_env
        else "as inherited (OMP_NUM_THREADS: " + os.environ.get("OMP_NUM_THREADS", "unset") + ")"
    )
    env["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    env["mode"] = "QUICK (3 s loads, not comparable)" if args.quick else "full"
    announce("mloop serve vs mlflow models serve", env, quick=args.quick)
    print(
        f"  load: {args.concurrency} connections, {args.warmup:g} s warm-up then "
        f"{args.duration:g} s measured, per payload size {ROW_SIZES}"
    )

    base = Path(tempfile.mkdtemp(prefix="mloop-bench-serving-", dir=args.workdir))
    bodies: dict[int, Path] = {}
    for rows in ROW_SIZES:
        bodies[rows] = base / f"bodies-{rows}.json"
        bodies[rows].write_text(json.dumps(payloads(rows)))
    res_f = res_m = res_nolog = None
    errors: list[str] = []
    try:
        if mlflow_python is not None:
            print("\nMLflow: training and saving the model (untimed), then serving ...", flush=True)
            try:
                server, prep_f = mlflow_server(mlflow_python, base / "mlflow")
                res_f = measure(server, ROW_SIZES, bodies, args, base / "mlflow")
                res_f["prepare"] = prep_f
            except RuntimeError as exc:
                errors.append(f"MLflow: {exc}")
                print(f"  FAILED: {exc}", flush=True)
        if not args.skip_mloop:
            print("\nmloop: training and registering the model (untimed), then serving ...")
            try:
                prep_m = prepare_mloop(base / "mloop")
                uri = prep_m["model_uri"]
                server = mloop_server(base / "mloop", uri, log=True, label="mloop")
                res_m = measure(server, ROW_SIZES, bodies, args, base / "mloop")
                res_m["prepare"] = prep_m
                res_m["prediction_log"] = check_log(base / "mloop", res_m)
                if not args.skip_log_cost:
                    print("\nmloop --no-log: the 1-row load again without the prediction log ...")
                    server = mloop_server(base / "mloop", uri, log=False, label="mloop-nolog")
                    res_nolog = measure(server, (1,), bodies, args, base / "mloop")
            except RuntimeError as exc:
                errors.append(f"mloop: {exc}")
                print(f"  FAILED: {exc}", flush=True)
    finally:
        if args.keep:
            print(f"\nstores and server logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    same = None
    if res_m is not None and res_f is not None:
        same = res_m.get("check_predictions") == res_f.get("check_predictions")
        print(f"\nboth servers answer the same 100 predictions: {'yes' if same else 'NO'}")
    summary = summary_rows(res_m, res_f, res_nolog)
    headers = ["workload", "mloop", "MLflow", "ratio", "bar", "verdict"]
    text_rows = [
        [
            r["workload"],
            fmt_value(r["mloop"]),
            fmt_value(r["mlflow"]),
            r["ratio_text"],
            r["bar"],
            verdict(r["met"]) if r["bar"] else "",
        ]
        for r in summary
    ]
    title = "Summary" + (" (QUICK: not comparable)" if args.quick else "")
    print(f"\n{title}\n" + table(headers, text_rows))
    print(
        "  (last row: the mloop column is log on, the MLflow column is mloop with --no-log; "
        "latency and RSS ratios are MLflow's figure over mloop's, or mloop's over MLflow's)"
    )
    env["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    path = write_results(
        "serving",
        {
            "environment": env,
            "settings": {
                "concurrency": args.concurrency,
                "warmup_s": args.warmup,
                "duration_s": args.duration,
                "row_sizes": list(ROW_SIZES),
                "quick": args.quick,
            },
            "summary": summary,
            "same_predictions": same,
            "errors": errors,
            "raw": {"mloop": res_m, "mlflow": res_f, "mloop_nolog": res_nolog},
        },
    )
    print(f"\nresults written to benchmarks/.results/{path.name}")
    for e in errors:
        print(f"\nERROR {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
