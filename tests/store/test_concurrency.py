"""Several processes writing to one SQLite file at once: no lock error, no lost point."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mloop.store.sqlite import SQLiteStore
from tests.fixtures.stores import test_settings

WORKER = """
import sys, time
from mloop.config import load_settings
from mloop.store import open_store
uri, run_id, start, home, batches = sys.argv[1:6]
start, batches = float(start), int(batches)
store = open_store(uri, settings=load_settings(overrides={"home": home}, environ={}))
time.sleep(max(0.0, start - time.time()))
for b in range(batches):
    store.write_batch(
        metrics=[(run_id, f"m{i % 5}", float(i), b * 1000 + i, b) for i in range(1000)],
        params=[(run_id, f"p{b}", str(b))],
        tags=[(run_id, "progress", str(b))],
    )
store.close()
"""

PROCESSES = 4
BATCHES = 25


@pytest.mark.slow
def test_four_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{(tmp_path / 'mloop.db').as_posix()}"
    store = SQLiteStore(uri, settings=test_settings(tmp_path))
    exp = store.create_experiment("e", actor="t")
    runs = [
        store.create_run(
            experiment_id=exp.id,
            name=f"w{i}",
            user="u",
            start_time=0,
            parent_id=None,
            host="h",
            pid=i,
            pid_started_at=0,
            tags=None,
            actor="t",
        )
        for i in range(PROCESSES)
    ]
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                uri,
                run.id,
                str(start),
                str(tmp_path / "home"),
                str(BATCHES),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in runs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    with store.engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT count(*) FROM metrics").scalar()
    assert total == PROCESSES * BATCHES * 1000
    for run in store.get_runs([r.id for r in runs]):
        assert len(run.params) == BATCHES
        assert run.tags == {"progress": str(BATCHES - 1)}
        assert run.metrics["m4"] == 999.0
    store.close()
