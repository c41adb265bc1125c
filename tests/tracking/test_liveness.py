"""Heartbeats and the reaper of runs whose process died or went silent."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import psutil

from mloop.config import Settings
from mloop.store.base import RunStatus
from mloop.tracking import TrackingClient, liveness


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _foreign_run(client: TrackingClient, *, host: str, pid: int, started: int, beat: int) -> str:
    exp = client.store.create_experiment(f"e{time.time_ns()}", actor="test")
    run = client.store.create_run(
        experiment_id=exp.id,
        name="r",
        user="test",
        start_time=beat,
        parent_id=None,
        host=host,
        pid=pid,
        pid_started_at=started,
        tags=None,
        actor="test",
    )
    return run.id


def test_run_records_its_process(client: TrackingClient) -> None:
    with client.start_run(capture_source=False) as run:
        info = run.info
    me = psutil.Process()
    assert info.pid == me.pid
    assert info.host == liveness.current_process().host
    [row] = [r for r in [*client.store.list_running()] if r.run_id == run.id] or [None]
    assert row is None  # ended runs are not listed as running


def test_heartbeat_advances(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    first = client.get_run(run.id).heartbeat_at
    deadline = time.monotonic() + 10
    while client.get_run(run.id).heartbeat_at == first:
        assert time.monotonic() < deadline, "no heartbeat within 10s (interval is 0.1s)"
        time.sleep(0.05)
    run.end()


def test_run_started_while_the_writer_sleeps_idle_gets_heartbeats(settings: Settings) -> None:
    # A long flush interval: only the wake from start_run can get the idle thread beating.
    slow = dataclasses.replace(settings, writer_flush_interval=60.0, heartbeat_interval=0.1)
    with TrackingClient(slow) as client:
        client.start_run(capture_source=False).end()
        deadline = time.monotonic() + 10
        while not client.writer._idle:
            assert time.monotonic() < deadline, "the writer thread never went idle"
            time.sleep(0.05)
        run = client.start_run(capture_source=False)
        first = client.get_run(run.id).heartbeat_at
        while client.get_run(run.id).heartbeat_at == first:
            assert time.monotonic() < deadline, "a run started on an idle writer got no heartbeat"
            time.sleep(0.05)
        run.end()


def test_dead_pid_on_this_host_is_killed_at_once(client: TrackingClient) -> None:
    now = int(time.time() * 1000)
    pid = _dead_pid()
    run_id = _foreign_run(
        client, host=liveness.current_process().host, pid=pid, started=now - 5, beat=now
    )
    assert client.reap_stale_runs() == [run_id]
    stored = client.get_run(run_id)
    assert stored.status is RunStatus.KILLED
    assert stored.end_time == stored.heartbeat_at
    assert client.reap_stale_runs() == []


def test_reused_pid_is_detected_by_start_time(client: TrackingClient) -> None:
    now = int(time.time() * 1000)
    me = liveness.current_process()
    # Our own pid, but a start time an hour earlier: another process that had this pid.
    run_id = _foreign_run(
        client, host=me.host, pid=me.pid, started=me.started_at - 3_600_000, beat=now
    )
    assert client.reap_stale_runs() == [run_id]


def test_stale_heartbeat_anywhere_is_killed(client: TrackingClient) -> None:
    now = int(time.time() * 1000)
    old = now - int(client.settings.stale_run_after * 1000) - 10_000
    stale = _foreign_run(client, host="another-host", pid=1, started=old, beat=old)
    fresh = _foreign_run(client, host="another-host", pid=1, started=now, beat=now)
    assert client.reap_stale_runs() == [stale]
    assert client.get_run(stale).status is RunStatus.KILLED
    assert client.get_run(stale).end_time == old
    assert client.get_run(fresh).status is RunStatus.RUNNING


def test_own_live_run_is_not_reaped(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    assert run.id not in client.reap_stale_runs()
    run.end()


def test_new_client_reaps_at_construction(client: TrackingClient) -> None:
    now = int(time.time() * 1000)
    run_id = _foreign_run(
        client, host=liveness.current_process().host, pid=_dead_pid(), started=now, beat=now
    )
    with TrackingClient(client.settings) as other:
        assert other.get_run(run_id).status is RunStatus.KILLED
