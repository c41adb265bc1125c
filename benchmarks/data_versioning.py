"""Data-versioning benchmark: ``mloop data add`` against ``dvc add`` on the same folders.

    python benchmarks/data_versioning.py            # both trees, about 3 minutes
    python benchmarks/data_versioning.py --quick    # smoke run, small trees; not comparable
    python benchmarks/data_versioning.py --only small

For each tree (2,000 files of about 1 MiB; 50,000 files of 1-4 KiB), each tool gets its own
freshly generated copy of the same bytes in its own fresh project folder, and the benchmark
times, as wall-clock of the command-line process: the first add, then the add after one file
was overwritten. DVC runs from its own virtualenv (benchmarks/.venv-dvc, made on first use, or
``--dvc-python``); it is never a dependency of mloop. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    announce,
    ensure_tool_python,
    environment,
    fmt_ratio,
    package_version,
    python_version_of,
    table,
    write_results,
)
from _versioning_workload import FULL, QUICK, Tree, change_one_file, make_tree

DVC_VERSION = "3.67.1"
DVC_VENV = BENCH_DIR / ".venv-dvc"
#: mloop must be at least this many times faster than DVC.
BARS = {"first add": 5.0, "re-add, one file changed": 50.0}


def _bin(python: str, name: str) -> Path:
    return Path(python).parent / (f"{name}.exe" if os.name == "nt" else name)


def ensure_dvc_python(explicit: str | None) -> str:
    """The interpreter that runs DVC: ``explicit``, or benchmarks/.venv-dvc made on demand."""
    python = ensure_tool_python(
        explicit,
        dist="dvc",
        version=DVC_VERSION,
        venv=DVC_VENV,
        requirements=[f"dvc=={DVC_VERSION}"],
        flag="--dvc-python",
    )
    if explicit is None:
        # Keep the virtualenv out of git whatever the repository's ignore files say.
        (DVC_VENV / ".gitignore").write_text("*\n")
    return python


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "DVC_"))}
    env.update(extra)
    return env


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Run a command; return its wall-clock seconds and the last line it printed."""
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return seconds, (lines[-1].strip() if lines else "")


def _settle() -> None:
    # Both tools start from the same state: the new tree written to disk, nothing dirty.
    os.sync()
    time.sleep(0.5)


class Dvc:
    """``dvc add`` in a fresh ``dvc init --no-scm`` project."""

    name = "DVC"

    def __init__(self, python: str) -> None:
        self.exe = str(_bin(python, "dvc"))

    def prepare(self, project: Path) -> dict[str, str]:
        env = _clean_env({"DVC_NO_ANALYTICS": "1"})
        subprocess.run([self.exe, "init", "--no-scm", "-q"], cwd=project, env=env, check=True)
        # DVC's state and index databases go inside the project, removed with it.
        subprocess.run(
            [self.exe, "config", "core.site_cache_dir", str(project / ".dvc-site-cache")],
            cwd=project,
            env=env,
            check=True,
        )
        subprocess.run(
            [self.exe, "config", "core.analytics", "false"], cwd=project, env=env, check=True
        )
        return env

    def add(self, project: Path, env: dict[str, str], dataset: str) -> tuple[float, str]:
        return _timed([self.exe, "add", "-q", "tree"], project, env)

    def floor(self, project: Path, env: dict[str, str]) -> float:
        return _timed([self.exe, "--version"], project, env)[0]


class Mloop:
    """``mloop data add NAME tree`` with MLOOP_HOME in a fresh folder."""

    name = "mloop"

    def __init__(self) -> None:
        # The console script next to this interpreter, as a user runs it (no pyenv-style shim).
        script = _bin(sys.executable, "mloop")
        if not script.exists():
            raise SystemExit(f"no mloop command next to {sys.executable}; pip install -e .")
        self.command = [str(script)]

    def prepare(self, project: Path) -> dict[str, str]:
        return _clean_env({"MLOOP_HOME": str(project / "home")})

    def add(self, project: Path, env: dict[str, str], dataset: str) -> tuple[float, str]:
        return _timed([*self.command, "data", "add", dataset, "tree"], project, env)

    def floor(self, project: Path, env: dict[str, str]) -> float:
        return _timed([*self.command, "--version"], project, env)[0]


def _sync_seconds() -> float:
    """How long flushing what a command left unwritten takes (0 if it made its writes durable)."""
    start = time.perf_counter()
    os.sync()
    return time.perf_counter() - start


#: The folder work of ``mloop data add`` without the command: for the breakdown, not the bars.
_LIBRARY = """
import os, sys, time
from pathlib import Path
from mloop.artifacts import open_artifact_store
from mloop.data.manifest import HashCache, scan_folder, store_folder
home = Path(os.environ["MLOOP_HOME"])
start = time.perf_counter()
cache = HashCache(home / "cache" / "hashes.db")
found = scan_folder("tree", cache=cache)
scanned = time.perf_counter()
store = open_artifact_store(str(home / "artifacts"))
copied = store_folder(store, "tree", found)
store.put_bytes(found.to_bytes())
done = time.perf_counter()
print(f"{done - start:.4f} {scanned - start:.4f} {copied}")
"""


class MloopLibrary:
    """mloop's scan and store in-process, timed inside the process (no start-up, no database)."""

    name = "lib"

    def prepare(self, project: Path) -> dict[str, str]:
        return _clean_env({"MLOOP_HOME": str(project / "home")})

    def add(self, project: Path, env: dict[str, str], dataset: str) -> tuple[float, str]:
        _, said = _timed([sys.executable, "-c", _LIBRARY], project, env)
        total, scan, copied = said.split()
        return float(total), f"scan {float(scan):.3f} s, {int(copied):,} blobs copied"

    def floor(self, project: Path, env: dict[str, str]) -> float:
        return 0.0


def _run_tool(tool: Dvc | Mloop | MloopLibrary, base: Path, tree: Tree) -> dict[str, Any]:
    project = base / f"{tool.name.lower()}-{tree.name}"
    project.mkdir(parents=True)
    total = make_tree(project / "tree", tree)
    env = tool.prepare(project)
    _settle()
    first, first_said = tool.add(project, env, tree.name)
    first_sync = _sync_seconds()
    print(
        f"  {tool.name:<5} first add            {first:8.2f} s   (then sync {first_sync:.2f} s)"
        f"   {first_said}",
        flush=True,
    )
    change_one_file(project / "tree", tree)
    _settle()
    again, again_said = tool.add(project, env, tree.name)
    again_sync = _sync_seconds()
    print(
        f"  {tool.name:<5} re-add, one changed  {again:8.2f} s   (then sync {again_sync:.2f} s)"
        f"   {again_said}",
        flush=True,
    )
    floors = [tool.floor(project, env) for _ in range(3)]
    # Free the memory and disk the project holds before the next tool runs (several GiB of
    # page cache would otherwise push the next tool's files out), and let the file system
    # finish freeing its blocks (sync) before the next timer starts.
    shutil.rmtree(project, ignore_errors=True)
    os.sync()
    return {
        "bytes": total,
        "first_add_s": first,
        "first_add_sync_after_s": first_sync,
        "readd_one_changed_s": again,
        "readd_sync_after_s": again_sync,
        "cli_floor_s": statistics.median(floors),
        "first_add_output": first_said,
        "readd_output": again_said,
    }


def _warm_up(base: Path, tree: Tree) -> None:
    # On a fresh VM the first use of memory and of new inodes costs far more than later uses;
    # writing and deleting one copy of the tree first keeps that cost off whichever tool runs
    # first. The sync after the deletion also lets the file system finish freeing the blocks
    # (discards) before any timer starts.
    folder = base / f"warm-up-{tree.name}"
    make_tree(folder, tree)
    os.sync()
    shutil.rmtree(folder)
    os.sync()


def _verdict(ratio: float, bar: float) -> str:
    return "MET" if ratio >= bar else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small trees: a smoke test")
    parser.add_argument("--only", action="append", choices=[t.name for t in FULL])
    parser.add_argument("--dvc-python", help="an interpreter that has DVC installed")
    parser.add_argument("--workdir", help="where the trees and stores go (default: temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()

    trees = [t for t in (QUICK if args.quick else FULL) if not args.only or t.name in args.only]
    dvc_python = ensure_dvc_python(args.dvc_python)
    env = environment(
        {
            "mloop": package_version(sys.executable, "mloop"),
            "dvc": package_version(dvc_python, "dvc"),
            "dvc_python": python_version_of(dvc_python),
        }
    )
    announce("Data versioning: mloop data add vs dvc add", env, quick=args.quick)
    base = Path(tempfile.mkdtemp(prefix="mloop-bench-versioning-", dir=args.workdir))
    print(f"  working folder: {base}")
    tools = (Dvc(dvc_python), Mloop(), MloopLibrary())
    results: dict[str, Any] = {}
    rows = []
    try:
        for tree in trees:
            print(f"\n[{tree.name}] {tree.describe()}", flush=True)
            _warm_up(base, tree)
            runs = {tool.name: _run_tool(tool, base, tree) for tool in tools}
            dvc, mloop, library = runs["DVC"], runs["mloop"], runs["lib"]
            figures: dict[str, Any] = {
                "tree": tree.as_dict(),
                "dvc": dvc,
                "mloop": mloop,
                "mloop_library_in_process": library,
            }
            for label, field in (
                ("first add", "first_add_s"),
                ("re-add, one file changed", "readd_one_changed_s"),
            ):
                ratio = dvc[field] / mloop[field]
                bar = BARS[label]
                figures[field.removesuffix("_s") + "_ratio"] = ratio
                rows.append(
                    [
                        f"{tree.name}: {label}",
                        f"{dvc[field]:.2f} s",
                        f"{mloop[field]:.2f} s",
                        fmt_ratio(ratio),
                        f">= {bar:.0f}x",
                        _verdict(ratio, bar),
                    ]
                )
            rows.append(
                [
                    f"{tree.name}: (mloop scan+store in-process, first / re-add)",
                    "",
                    f"{library['first_add_s']:.2f} / {library['readd_one_changed_s']:.3f} s",
                    "",
                    "",
                    "",
                ]
            )
            rows.append(
                [
                    f"{tree.name}: CLI start (--version)",
                    f"{dvc['cli_floor_s']:.2f} s",
                    f"{mloop['cli_floor_s']:.2f} s",
                    "",
                    "",
                    "",
                ]
            )
            results[tree.name] = figures
    finally:
        if args.keep:
            print(f"\nkept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    title = "Summary" + (" (QUICK: not comparable)" if args.quick else "")
    headers = ["tree: step", "DVC", "mloop", "mloop vs DVC", "bar", "verdict"]
    print(f"\n{title}\n" + table(headers, rows))
    path = write_results(
        "data_versioning",
        {"environment": env, "quick": args.quick, "bars": BARS, "results": results},
    )
    print(f"\nresults written to benchmarks/.results/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
