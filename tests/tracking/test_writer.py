"""The background writer: batching, flush, failures surfaced, back-pressure, fork."""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import psutil
import pytest

from mloop.config import Settings
from mloop.errors import ParamConflict, WriteFailed
from mloop.store.base import RunStatus
from mloop.tracking import TrackingClient


def _conflict_from_another_process(client: TrackingClient, run_id: str) -> None:
    # Another process logged lr=0.5 for this run straight into the store.
    client.store.write_batch(params=[(run_id, "lr", "0.5")])


def test_cross_process_param_conflict_raised_at_next_call(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    _conflict_from_another_process(client, run.id)
    run.log_param("lr", 0.1)  # this process does not know: queued, fails in the writer
    client.writer.flush()
    with pytest.raises(WriteFailed, match=r"param 'lr' was already logged as '0.5'") as info:
        run.log_metric("m", 1.0)
    assert isinstance(info.value.__cause__, ParamConflict)
    assert info.value.details["params_lost"] == 1
    run.log_metric("m", 2.0)  # raised once; logging goes on
    run.end()
    stored = client.get_run(run.id)
    assert stored.params == {"lr": "0.5"}
    assert stored.status is RunStatus.FINISHED


def test_write_failure_raised_at_flush(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    _conflict_from_another_process(client, run.id)
    run.log_param("lr", 0.1)
    with pytest.raises(WriteFailed, match="already logged"):
        run.flush()
    run.flush()  # reported once
    run.end()


def test_write_failure_raised_at_end_marks_failed(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    _conflict_from_another_process(client, run.id)
    with pytest.raises(WriteFailed, match="already logged"), run:
        run.log_param("lr", 0.1)
    assert client.get_run(run.id).status is RunStatus.FAILED


def test_user_exception_keeps_priority_over_write_failure(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    _conflict_from_another_process(client, run.id)
    with pytest.raises(ValueError, match="user") as info, run:
        run.log_param("lr", 0.1)
        raise ValueError("user")
    assert any("already logged" in note for note in info.value.__notes__)
    assert client.get_run(run.id).status is RunStatus.FAILED


def test_one_runs_failure_does_not_cost_another_run_its_points(client: TrackingClient) -> None:
    good = client.start_run(capture_source=False)
    bad = client.start_run(capture_source=False)
    _conflict_from_another_process(client, bad.id)
    for i in range(100):
        good.log_metric("m", float(i))
    bad.log_param("lr", 0.1)
    bad.log_metric("m", 1.0)
    good.flush()  # good's own flush does not raise bad's failure
    assert len(client.get_metric_history(good.id, "m")) == 100
    with pytest.raises(WriteFailed):
        bad.flush()
    good.end()
    bad.end()


def test_client_flush_raises_any_runs_failure(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    _conflict_from_another_process(client, run.id)
    run.log_param("lr", 0.1)
    with pytest.raises(WriteFailed):
        client.flush()
    run.end()


def test_batches_respect_batch_size(settings: Settings) -> None:
    small = dataclasses.replace(settings, writer_batch_size=100)
    with TrackingClient(small) as tracking:
        calls: list[int] = []
        original = tracking.store.write_batch

        def spy(**kwargs: object) -> None:
            calls.append(len(kwargs["metrics"]))  # type: ignore[arg-type]
            original(**kwargs)  # type: ignore[arg-type]

        tracking.store.write_batch = spy  # type: ignore[method-assign]
        with tracking.start_run(capture_source=False) as run:
            for i in range(1000):
                run.log_metric("m", float(i))
            run.flush()
        assert sum(calls) == 1000
        assert max(calls) <= 100


def test_points_reach_the_store_without_flush(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    run.log_metric("m", 1.0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if client.store.get_metric_history(run.id, "m"):
            break
        time.sleep(0.01)
    else:
        pytest.fail("the writer did not store the point within its flush interval")
    run.end()


def test_back_pressure_bounds_the_queue(settings: Settings) -> None:
    bounded = dataclasses.replace(settings, writer_queue_size=500, writer_batch_size=100)
    with TrackingClient(bounded) as tracking:
        run = tracking.start_run(capture_source=False)
        original = tracking.store.write_batch

        def slow(**kwargs: object) -> None:
            time.sleep(0.002)
            original(**kwargs)  # type: ignore[arg-type]

        tracking.store.write_batch = slow  # type: ignore[method-assign]
        peak = 0
        for i in range(5000):
            run.log_metric("m", float(i))
            peak = max(peak, tracking.writer.pending)
        assert peak <= 500
        run.end()
        assert len(tracking.get_metric_history(run.id, "m")) == 5000


@pytest.mark.slow
def test_a_million_points_keep_memory_bounded(settings: Settings) -> None:
    bounded = dataclasses.replace(settings, writer_queue_size=20_000, writer_batch_size=5_000)
    process = psutil.Process()
    with TrackingClient(bounded) as tracking:
        run = tracking.start_run(capture_source=False)
        for i in range(10_000):  # warm up caches and the connection pool
            run.log_metric("warm", float(i))
        run.flush()
        before = process.memory_info().rss
        peak_pending = 0
        for i in range(1_000_000):
            run.log_metric("m", float(i))
            if i % 10_000 == 0:
                peak_pending = max(peak_pending, tracking.writer.pending)
        run.flush()
        grown = (process.memory_info().rss - before) / 2**20
        run.end()
        assert peak_pending <= 20_000
        # 1M queued points would take ~150 MB; the bounded queue holds 20k (~3 MB).
        assert grown < 60, f"RSS grew by {grown:.0f} MB"
        latest = tracking.get_run(run.id).metrics["m"]
        assert latest == 999_999.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_reuse_the_parents_writer(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    parent_thread = client.writer._thread
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            assert client.writer.pending == 0  # the parent's queued items are not ours
            run.log_metric("child", 1.0)
            client.writer.flush()
            assert client.writer._thread is not parent_thread
            assert client.writer._thread is not None and client.writer._thread.is_alive()
            code = 0
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    result = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert result == b"\x00"
    run.log_metric("parent", 2.0)
    run.end()
    assert client.get_run(run.id).metrics == {"child": 1.0, "parent": 2.0}


def test_close_is_idempotent_and_flush_after_close_writes_inline(settings: Settings) -> None:
    tracking = TrackingClient(settings)
    run = tracking.start_run(capture_source=False)
    run.log_metric("m", 1.0)
    tracking.writer.close()
    tracking.writer.close()
    assert not threading.Thread.is_alive(tracking.writer._thread)  # type: ignore[arg-type]
    run.log_metric("m", 2.0)
    run.flush()
    assert len(tracking.get_metric_history(run.id, "m")) == 2
    tracking.close()
