"""Pipeline bars of issue 5: per-step overhead, a fully cached re-run, parallel executors.

No anchor tool: the issue asks for mloop's own figures. Three measurements, each on a fresh
MLOOP_HOME (SQLite store and local artifact folder, the embedded default):

- overhead: a chain of 100 trivial uncached steps in-process; wall time / steps (aim ≤ 5 ms),
  which includes every step's child run, its outputs stored and recorded, and its cache key;
- cached: the same chain with caching, run twice; the second run's wall time (aim ≤ 1 s);
- parallel: 8 independent 2-second CPU-bound steps, sequential in-process, on the process pool
  (2 workers) and twice on Ray with 2 CPUs: "ray" (a local runtime started and stopped inside
  the timed call) and "ray (running)" (a runtime started and warmed before the timed call),
  each against 8 x 2 / 2 = 8 s plus overhead.

    python benchmarks/pipelines.py            # all three, about a minute and a half
    python benchmarks/pipelines.py --quick    # small sizes: a smoke test
    python benchmarks/pipelines.py --no-ray   # skip Ray
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import announce, environment, table, write_results

HERE = Path(__file__).resolve().parent


def _fresh_client(folder: Path) -> Any:
    from mloop.config import load_settings
    from mloop.tracking import TrackingClient

    return TrackingClient(load_settings(overrides={"home": str(folder)}, environ={}))


def _timed(func: Any) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> None:
    """Run the pipeline benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    args = parser.parse_args()
    # Workers (spawned processes, Ray) import the steps module from here.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    import _pipelines_steps as flows

    import mloop

    steps = 20 if args.quick else flows.CHAIN
    seconds = 0.2 if args.quick else flows.BUSY_SECONDS
    env = environment({"mloop": mloop.__version__})
    announce("Pipelines: step overhead, cached re-run, parallel executors", env, quick=args.quick)
    results: dict[str, Any] = {"environment": env, "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="mloop-bench-pipelines-") as scratch:
        root = Path(scratch)
        with _fresh_client(root / "overhead") as client:
            flows.chain.run(client=client, steps=2)  # warm-up: imports, store, first runs
            wall = _timed(lambda: flows.chain.run(client=client, steps=steps))
        results["overhead_ms_per_step"] = wall / steps * 1000
        print(f"overhead: {steps} uncached trivial steps in {wall:.2f} s = "
              f"{wall / steps * 1000:.2f} ms per step (aim <= 5 ms)")  # fmt: skip
        with _fresh_client(root / "cached") as client:
            first = _timed(lambda: flows.cached_chain.run(client=client, steps=steps))
            second = _timed(lambda: flows.cached_chain.run(client=client, steps=steps))
        results["cached"] = {"first_s": first, "rerun_s": second, "steps": steps}
        print(f"cached: first run {first:.2f} s, fully cached re-run of {steps} steps "
              f"{second:.2f} s (aim <= 1 s)")  # fmt: skip
        parallel: dict[str, float] = {}
        # "ray" starts (and stops) a local runtime inside the timed call; "ray (running)" runs
        # on a runtime this script started first and warmed with one untimed run, as a user of
        # a cluster that is already up sees it.
        executors = ["local", "process"] + ([] if args.no_ray else ["ray", "ray (running)"])
        for number, name in enumerate(executors):
            executor = "ray" if name.startswith("ray") else name
            with _fresh_client(root / f"fan-{executor}-{number}") as client:
                try:
                    if name == "ray (running)":
                        _start_ray(root, seconds)
                    workers = None if name == "local" else 2
                    parallel[name] = _timed(
                        lambda executor=executor, client=client, workers=workers: flows.fan.run(
                            executor, client=client, max_workers=workers, seconds=seconds
                        )
                    )
                except Exception as exc:  # report, do not hide: e.g. Ray missing, a failed warm-up
                    print(f"parallel: {name} failed: {type(exc).__name__}: {exc}")
                    continue
            print(f"parallel: {flows.BUSY_STEPS} x {seconds:g} s CPU-bound steps on {name}: "
                  f"{parallel[name]:.2f} s")  # fmt: skip
        results["parallel"] = parallel
    ideal = flows.BUSY_STEPS * seconds / 2
    rows = [
        ["per-step overhead (in-process)", f"{results['overhead_ms_per_step']:.2f} ms", "<= 5 ms"],
        [f"fully cached re-run, {steps} steps", f"{results['cached']['rerun_s']:.2f} s", "<= 1 s"],
    ]
    for name, took in parallel.items():
        versus = parallel.get("local")
        speed = f" ({versus / took:.2f}x sequential)" if versus and name != "local" else ""
        aim = f"about {ideal:g} s + overhead" if name != "local" else "reference"
        rows.append(
            [f"{flows.BUSY_STEPS} x {seconds:g} s steps, {name}", f"{took:.2f} s{speed}", aim]
        )
    print()
    print(table(["measurement", "mloop", "aim"], rows))
    print(f"\nresults written to {write_results('pipelines', results)}")


def _start_ray(root: Path, seconds: float) -> None:
    """Start a local Ray runtime in this process and warm its workers with one untimed run."""
    import _pipelines_steps as flows

    try:
        import ray
    except ImportError:
        return
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with _fresh_client(root / "fan-ray-warm-up") as client:
        flows.fan.run("ray", client=client, max_workers=2, seconds=min(seconds, 0.2))


if __name__ == "__main__":
    sys.exit(main())
