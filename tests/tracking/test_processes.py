"""Several processes, crashes and interpreter exit, on the embedded SQLite store."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mloop.config import Settings, load_settings
from mloop.store.base import RunStatus
from mloop.tracking import TrackingClient

POINTS = 5_000
PARAMS = 200


def _sqlite_settings(home: Path) -> Settings:
    return load_settings({"home": str(home), "writer_flush_interval": 0.01}, environ={})


def _log_in_child(home: str, worker: int) -> str:
    client = TrackingClient(_sqlite_settings(Path(home)))
    with client.start_run("shared", f"worker-{worker}", capture_source=False) as run:
        for i in range(POINTS):
            run.log_metric("m", float(i), step=i)
            if i % 25 == 0:
                run.log_param(f"p{i // 25}", i)
    client.close()
    return run.id


@pytest.mark.slow
def test_four_processes_log_to_one_sqlite_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    TrackingClient(_sqlite_settings(home)).close()  # create and migrate once
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        run_ids = pool.starmap(_log_in_child, [(str(home), n) for n in range(4)])
    with TrackingClient(_sqlite_settings(home)) as client:
        for run_id in run_ids:
            run = client.get_run(run_id)
            assert run.status is RunStatus.FINISHED
            assert len(run.params) == POINTS // 25
            history = client.get_metric_history(run_id, "m")
            assert [m.step for m in history] == list(range(POINTS))


CRASHING_LOGGER = """
import os, sys
from pathlib import Path
from mloop.config import load_settings
from mloop.tracking import TrackingClient
home = Path(sys.argv[1])
client = TrackingClient(load_settings({"home": str(home)}, environ={}))
run = client.start_run("crash", capture_source=False)
print(run.id, flush=True)
scratch = home.parent / "scratch"
scratch.mkdir(exist_ok=True)
i = 0
while True:
    run.log_metric("m", float(i))
    if i % 50 == 0:
        path = scratch / f"f{i}.bin"
        path.write_bytes(os.urandom(20_000))
        run.log_artifact(path, "blobs")
    if i % 200 == 0:
        run.flush()
    i += 1
"""


@pytest.mark.slow
def test_sigkill_mid_run_leaves_a_consistent_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = _sqlite_settings(home)
    TrackingClient(settings).close()
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_LOGGER, str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        with TrackingClient(settings) as watcher:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if (
                    len(watcher.store.get_metric_history(run_id, "m")) > 1000
                    and len(watcher.list_artifacts(run_id)) > 5
                ):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the child did not log enough within 60s")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    database = home / "mloop.db"
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with TrackingClient(settings) as client:  # reaps at construction: the pid is dead
        run = client.get_run(run_id)
        assert run.status is RunStatus.KILLED
        assert run.end_time == run.heartbeat_at
        entries = client.list_artifacts(run_id)
        assert entries
        for entry in entries:
            assert client.artifacts.verify(entry.digest), entry.path


EXITING = """
import sys
from pathlib import Path
from mloop.config import load_settings
from mloop.tracking import TrackingClient
client = TrackingClient(load_settings({"home": sys.argv[1]}, environ={}))
run = client.start_run(capture_source=False)
run.log_metric("m", 1.0)
print(run.id, flush=True)
if sys.argv[2] == "raise":
    raise RuntimeError("boom")
if sys.argv[2] == "interrupt":
    raise KeyboardInterrupt
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "status"),
    [("normal", RunStatus.FINISHED), ("raise", RunStatus.FAILED), ("interrupt", RunStatus.KILLED)],
)
def test_runs_left_open_are_ended_at_exit(tmp_path: Path, how: str, status: RunStatus) -> None:
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-c", EXITING, str(home), how], capture_output=True, text=True, check=False
    )
    assert (done.returncode == 0) == (how == "normal"), done.stderr
    run_id = done.stdout.strip()
    with TrackingClient(_sqlite_settings(home)) as client:
        run = client.get_run(run_id)
    assert run.status is status
    assert run.metrics == {"m": 1.0}


def test_system_metrics_are_sampled(client: TrackingClient) -> None:
    with client.start_run(capture_source=False, log_system_metrics=0.05) as run:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "system/cpu_percent" in run.info.metrics:
                break
            time.sleep(0.05)
    metrics = client.get_run(run.id).metrics
    assert {"system/cpu_percent", "system/process_rss_mb", "system/memory_percent"} <= set(metrics)
    assert metrics["system/process_rss_mb"] > 1
    count = len(client.get_metric_history(run.id, "system/cpu_percent"))
    time.sleep(0.2)
    assert len(client.get_metric_history(run.id, "system/cpu_percent")) == count  # stopped
