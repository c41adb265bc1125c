"""The prediction log: buffering, Parquet segments by hour, feedback, readers; local and S3."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mloop.config import load_settings
from mloop.errors import BackendError, InvalidInput, InvalidState, NotFound, WriteFailed
from mloop.serving import predlog
from mloop.serving.predlog import PredictionBatch, PredictionLog
from mloop.serving.predlog_read import list_segments, read_feedback, read_predictions
from mloop.tracking import TrackingClient, reset_default_client

T0 = 1_763_906_400_000  # 2025-11-23 14:00:00 UTC, an hour boundary
HOUR = 3_600_000
DEP = "fraud-api"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def tracking(request: pytest.FixtureRequest, mloop_home: Path) -> Iterator[TrackingClient]:
    """A tracking client whose artifacts are on the local file system, then on S3 (moto)."""
    reset_default_client()
    uri = request.getfixturevalue("s3_artifact_uri") if request.param == "s3" else None
    with TrackingClient(load_settings(), artifact_uri=uri) as client:
        yield client
    reset_default_client()


@pytest.fixture
def local(mloop_home: Path) -> Iterator[TrackingClient]:
    """A tracking client on the embedded store and local artifacts."""
    reset_default_client()
    with TrackingClient(load_settings()) as client:
        yield client
    reset_default_client()


_counter = iter(range(10**9))


def rid(ts: int) -> str:
    """A request id like the server's: 13 digits of ms, 16 hex digits."""
    return f"{ts:013d}{next(_counter):016x}"


def batch(
    ts: list[int],
    counts: list[int] | None = None,
    *,
    version: int = 1,
    role: str = "primary",
    array: bool = False,
    proba: bool = True,
    ids: list[str] | None = None,
) -> PredictionBatch:
    """A batch of requests arriving at ``ts`` with ``counts`` rows each."""
    counts = counts or [1] * len(ts)
    n = sum(counts)
    values = np.arange(n, dtype=np.float64)
    inputs: Any = (
        np.column_stack([values, -values])
        if array
        else pd.DataFrame({"amount": values, "country": ["FR"] * n})
    )
    return PredictionBatch(
        model_version=version,
        role=role,
        request_ids=ids or [rid(t) for t in ts],
        row_counts=counts,
        ts_ms=ts,
        latency_ms=[1.5] * len(ts),
        inputs=inputs,
        predictions=(values > 1).astype(np.int64),
        probabilities=np.column_stack([1 - values / 10, values / 10]) if proba else None,
        classes=[0, 1] if proba else None,
    )


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# -- writing and reading --------------------------------------------------------------------
def test_round_trip_schema_and_values(tracking: TrackingClient) -> None:
    log = PredictionLog(DEP, client=tracking, worker_id="w1")
    first, second = batch([T0 + 5, T0 + 6], [2, 1]), batch([T0 + 9], [3], version=2, role="canary")
    assert log.append(first) and log.append(second)
    assert log.stats.rows_pending == 6
    log.flush()
    stats = log.stats
    assert (stats.rows_written, stats.rows_pending, stats.segments_written) == (6, 0, 1)
    table = read_predictions(DEP, client=tracking)
    schema = table.schema
    assert schema.field("request_id").type == pa.string()
    assert schema.field("row").type == pa.int32()
    assert schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("model_version").type == pa.int32()
    assert pa.types.is_dictionary(schema.field("role").type)
    assert schema.field("latency_ms").type == pa.float32()
    assert schema.field("inputs").type == pa.struct(
        [("amount", pa.float64()), ("country", pa.string())]
    )
    assert schema.field("prediction").type == pa.int64()
    assert schema.field("proba").type == pa.list_(pa.float64())
    rows = table.to_pylist()
    assert [(r["request_id"], r["row"]) for r in rows] == [
        (first.request_ids[0], 0), (first.request_ids[0], 1), (first.request_ids[1], 0),
        (second.request_ids[0], 0), (second.request_ids[0], 1), (second.request_ids[0], 2),
    ]  # fmt: skip
    assert [r["role"] for r in rows] == ["primary"] * 3 + ["canary"] * 3
    assert [r["model_version"] for r in rows] == [1, 1, 1, 2, 2, 2]
    assert rows[3]["inputs"] == {"amount": 0.0, "country": "FR"}
    assert rows[5]["proba"] == pytest.approx([0.8, 0.2])
    assert rows[0]["label"] is None and rows[0]["label_ts"] is None
    assert b"mloop.classes" in table.schema.metadata
    (segment,) = list_segments(DEP, client=tracking)
    assert segment.path.startswith("predictions/date=2025-11-23/hour=14/")
    assert segment.path.endswith(f"{T0 + 5:013d}-w1-000000.parquet")
    log.close()


def test_array_inputs_and_multi_column_outputs(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local)
    item = batch([T0, T0 + 1], [1, 2], array=True, proba=False)
    item.predictions = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    log.append(item)
    log.close()
    table = read_predictions(DEP, client=local)
    assert table.schema.field("inputs").type == pa.list_(pa.float64())
    assert table["inputs"].to_pylist() == [[0.0, -0.0], [1.0, -1.0], [2.0, -2.0]]
    assert table["prediction"].to_pylist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert table["proba"].to_pylist() == [None, None, None]


def test_batches_of_different_shapes_go_to_separate_segments(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local)
    log.append(batch([T0]))
    log.append(batch([T0 + 1], array=True, version=2, role="shadow"))
    log.close()
    assert log.stats.segments_written == 2
    with pytest.raises(InvalidState, match="incompatible types in columns inputs"):
        read_predictions(DEP, client=local)  # struct and list inputs cannot share a table
    frames = read_predictions(DEP, client=local, end_ms=T0 + 1)
    assert frames.num_rows == 1


def test_window_reads_only_its_hour_partitions(
    tracking: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(DEP, client=tracking, worker_id="w")
    log.append(batch([T0 + 60_000]))
    # A predict call whose requests straddle an hour: its rows go to two partitions.
    log.append(batch([T0 + HOUR - 1, T0 + HOUR + 1]))
    log.append(batch([T0 + 2 * HOUR + 5]))
    log.close()
    segments = list_segments(DEP, client=tracking)
    assert [s.hour_ms for s in segments] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert [s.path.split("/")[2] for s in segments] == ["hour=14", "hour=15", "hour=16"]
    assert len(list_segments(DEP, "predictions", T0 + HOUR, T0 + 2 * HOUR, client=tracking)) == 1
    read: list[str] = []
    get_bytes = tracking.artifacts.get_bytes
    monkeypatch.setattr(
        tracking.artifacts, "get_bytes", lambda digest: read.append(digest) or get_bytes(digest)
    )
    table = read_predictions(DEP, start_ms=T0 + HOUR, end_ms=T0 + 2 * HOUR, client=tracking)
    assert table["ts"].cast(pa.int64()).to_pylist() == [T0 + HOUR + 1]
    assert read == [segments[1].digest]  # no feedback segments exist, none other read
    # A window inside an hour filters rows by ts.
    table = read_predictions(DEP, start_ms=T0, end_ms=T0 + 60_001, client=tracking)
    assert table["ts"].cast(pa.int64()).to_pylist() == [T0 + 60_000]


def test_empty_window_has_the_columns(local: TrackingClient) -> None:
    table = read_predictions(DEP, start_ms=T0, end_ms=T0 + HOUR, client=local)
    assert table.num_rows == 0
    assert {"request_id", "row", "ts", "inputs", "prediction", "proba", "label"} <= set(
        table.column_names
    )
    assert read_feedback(DEP, client=local).num_rows == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: read_predictions("", client=c), "deployment"),
        (lambda c: read_predictions(DEP, start_ms=5, end_ms=4, client=c), "start_ms"),
        (lambda c: read_predictions(DEP, start_ms="today", client=c), "start_ms"),
        (lambda c: list_segments(DEP, "labels", client=c), "kind"),
        (lambda c: PredictionLog(DEP, client=c, flush_rows=0), "flush_rows"),
        (lambda c: PredictionLog(DEP, client=c, flush_interval_s=0), "flush_interval_s"),
        (lambda c: PredictionLog(DEP, client=c, worker_id="a/b"), "worker_id"),
        (lambda c: PredictionLog("a/b", client=c), "deployment"),
    ],
)
def test_bad_arguments_name_the_field(
    local: TrackingClient, call: Callable[[TrackingClient], object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        call(local)
    assert caught.value.details["field"] == field


# -- buffering, concurrency, failures --------------------------------------------------------
def test_appends_from_threads_while_flushing(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local, flush_rows=50, flush_interval_s=0.01)
    log.start()
    appended: list[int] = []

    def produce(worker: int) -> None:
        for i in range(150):
            count = 1 + (i + worker) % 3
            assert log.append(batch([T0 + worker * 1000 + i], [count]))
            appended.append(count)

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for _ in range(5):
        log.flush()
    for thread in threads:
        thread.join()
    log.close()
    table = read_predictions(DEP, client=local, with_labels=False)
    assert table.num_rows == sum(appended) == log.stats.rows_written
    keys = set(zip(table["request_id"].to_pylist(), table["row"].to_pylist(), strict=True))
    assert len(keys) == table.num_rows
    assert log.stats.rows_pending == 0 and log.stats.dropped == 0


def test_full_buffer_drops_and_counts(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local, max_buffer_rows=10)
    assert log.append(batch([T0], [4]))
    assert log.append(batch([T0 + 1], [4]))
    assert not log.append(batch([T0 + 2], [4]))
    assert log.append(batch([T0 + 3], [2]))
    assert (log.stats.dropped, log.stats.rows_pending) == (4, 10)
    log.flush()
    assert log.append(batch([T0 + 4], [4]))  # room again once written
    log.close()
    assert log.stats.rows_written == 14
    assert not log.append(batch([T0 + 5]))  # closed: dropped, never raised
    assert log.stats.dropped == 5


def test_close_writes_everything_and_is_idempotent(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local, flush_interval_s=3600)
    log.start()
    for i in range(20):
        log.append(batch([T0 + i], [2]))
    log.close()
    log.close()
    assert read_predictions(DEP, client=local).num_rows == 40
    assert log.stats.rows_pending == 0


def test_bad_batch_is_dropped_and_reported_not_the_others(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local)
    broken = batch([T0, T0 + 1], [1, 1])
    broken.row_counts = [1, 5]  # disagrees with its 2 input rows
    log.append(broken)
    log.append(batch([T0 + 2]))
    log.close()
    stats = log.stats
    assert (stats.rows_written, stats.dropped, stats.rows_pending) == (1, 2, 0)
    assert stats.last_error is not None and "row_counts" in stats.last_error


class FlakyStore:
    """Wraps a metadata store; add_artifacts fails while ``down`` is set."""

    def __init__(self, inner: Any, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.down = False

    def add_artifacts(self, *args: Any) -> None:
        if self.down or self.failures > 0:
            self.failures -= 1
            raise BackendError("database is unreachable (test)")
        self.inner.add_artifacts(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_write_failure_is_retried_and_surfaced(
    local: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predlog, "BACKOFF_FIRST_S", 0.01)
    flaky = FlakyStore(local.store, failures=2)
    monkeypatch.setattr(local, "store", flaky)
    log = PredictionLog(DEP, client=local, flush_interval_s=0.01)
    log.start()
    assert log.append(batch([T0], [3]))  # the request path never sees the failure
    wait_for(lambda: log.stats.rows_written == 3, "the retried write")
    stats = log.stats
    assert stats.write_failures == 2
    assert stats.last_error is not None and "unreachable" in stats.last_error
    log.close()
    assert read_predictions(DEP, client=local).num_rows == 3


def test_failed_rows_are_kept_up_to_the_bound_then_written(
    local: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = FlakyStore(local.store)
    flaky.down = True
    monkeypatch.setattr(local, "store", flaky)
    log = PredictionLog(DEP, client=local, max_buffer_rows=5)
    assert log.append(batch([T0], [3]))
    with pytest.raises(WriteFailed, match="3 prediction row"):
        log.flush()
    assert not log.append(batch([T0 + 1], [3]))  # kept rows count against the bound
    assert (log.stats.rows_pending, log.stats.dropped) == (3, 3)
    flaky.down = False
    log.flush()
    assert (log.stats.rows_written, log.stats.rows_pending) == (3, 0)
    log.close()


def test_close_gives_up_at_its_deadline(
    local: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = FlakyStore(local.store)
    flaky.down = True
    monkeypatch.setattr(local, "store", flaky)
    log = PredictionLog(DEP, client=local)
    log.append(batch([T0]))
    with pytest.raises(WriteFailed, match="unreachable"):
        log.close(timeout_s=0)


# -- several workers -------------------------------------------------------------------------
def test_two_workers_log_one_deployment(local: TrackingClient) -> None:
    a = PredictionLog(DEP, client=local, worker_id="1")
    b = PredictionLog(DEP, client=local, worker_id="2")
    a.start()
    b.start()
    for i in range(10):
        a.append(batch([T0 + i]))
        b.append(batch([T0 + i]))
    a.close()
    b.close()
    workers = {s.worker for s in list_segments(DEP, client=local)}
    assert workers == {"1", "2"}
    assert read_predictions(DEP, client=local).num_rows == 20


def test_a_restarted_worker_never_overwrites_a_segment(local: TrackingClient) -> None:
    # Same worker id and the same first timestamp: the path is taken, the next number is used.
    for _ in range(2):
        log = PredictionLog(DEP, client=local, worker_id="7")
        log.append(batch([T0]))
        log.close()
    paths = [s.path for s in list_segments(DEP, client=local)]
    assert [p.rsplit("-", 1)[1] for p in paths] == ["000000.parquet", "000001.parquet"]
    assert read_predictions(DEP, client=local).num_rows == 2


# -- feedback --------------------------------------------------------------------------------
def test_feedback_joins_latest_label(tracking: TrackingClient) -> None:
    log = PredictionLog(DEP, client=tracking)
    first = batch([T0 + 10], [2])
    shadow = batch([T0 + 10], [2], version=2, role="shadow", ids=first.request_ids)
    other = batch([T0 + 20])
    for item in (first, shadow, other):
        log.append(item)
    request = first.request_ids[0]
    log.append_feedback(request, [0, 1])  # still buffered: found among pending batches
    log.flush()
    log.append_feedback(request, [1, 1])  # a correction: the latest wins
    log.flush()
    stats = log.stats
    assert (stats.feedback_written, stats.feedback_pending) == (4, 0)
    table = read_predictions(DEP, client=tracking)
    labelled = {
        (r["request_id"], r["row"], r["role"]): r["label"]
        for r in table.to_pylist()
        if r["label"] is not None
    }
    assert labelled == {
        (request, 0, "primary"): 1, (request, 1, "primary"): 1,
        (request, 0, "shadow"): 1, (request, 1, "shadow"): 1,
    }  # fmt: skip
    assert table.filter(pa.compute.is_valid(table["label"]))["label_ts"].null_count == 0
    assert read_feedback(DEP, client=tracking).num_rows == 2
    assert read_feedback(DEP, client=tracking, latest=False).num_rows == 4
    feedback = list_segments(DEP, "feedback", client=tracking)
    assert feedback and all("hour=14" in s.path for s in feedback)  # the prediction's hour
    log.close()


def test_feedback_for_written_predictions_of_another_process(tracking: TrackingClient) -> None:
    writer = PredictionLog(DEP, client=tracking, worker_id="old")
    near_boundary = batch([T0 + HOUR - 2], [3])  # the id's hour, its rows in the next one
    near_boundary.ts_ms = [T0 + HOUR + 5]
    known = batch([T0 + 30])
    writer.append(near_boundary)
    writer.append(known)
    writer.close()
    fresh = PredictionLog(DEP, client=tracking, worker_id="new")  # nothing in memory
    fresh.append_feedback(known.request_ids[0], ["fraud"])
    fresh.append_feedback(near_boundary.request_ids[0], ["a", "b", "c"])
    with pytest.raises(InvalidInput, match="3 row") as caught:
        fresh.append_feedback(near_boundary.request_ids[0], ["a"])
    assert caught.value.details["field"] == "labels"
    fresh.close()
    table = read_predictions(DEP, client=tracking)
    assert table["label"].to_pylist() == ["fraud", "a", "b", "c"]


@pytest.mark.parametrize("request_id", [f"{T0 + 40:013d}{'0' * 16}", "not-a-time-id", "x" * 40])
def test_unknown_request_id_is_not_found(local: TrackingClient, request_id: str) -> None:
    log = PredictionLog(DEP, client=local)
    log.append(batch([T0 + 40]))
    log.flush()
    with pytest.raises(NotFound) as caught:
        log.append_feedback(request_id, [1])
    assert request_id in caught.value.message
    assert "labels join only predictions this deployment logged" in caught.value.message
    log.close()
    assert log.stats.feedback_written == 0


@pytest.mark.parametrize("labels", ["1", [{"a": 1}], [[1, 2]], None])
def test_bad_labels_are_refused(local: TrackingClient, labels: Any) -> None:
    log = PredictionLog(DEP, client=local)
    item = batch([T0])
    log.append(item)
    with pytest.raises(InvalidInput) as caught:
        log.append_feedback(item.request_ids[0], labels)
    assert caught.value.details["field"] == "labels"
    log.close()


def test_labels_of_mixed_types_are_read_as_text(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local)
    first, second = batch([T0]), batch([T0 + 1])
    log.append(first)
    log.append(second)
    log.append_feedback(first.request_ids[0], [1])
    log.flush()
    log.append_feedback(second.request_ids[0], ["spam"])
    log.close()
    assert read_predictions(DEP, client=local)["label"].to_pylist() == ["1", "spam"]


def test_frames_of_many_batches_keep_their_dtypes(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local)
    for i in range(3):  # one float dtype: the block path; nullable ints: pandas' own path
        log.append(
            PredictionBatch(
                model_version=1, role="primary", request_ids=[rid(T0 + i)], row_counts=[2],
                ts_ms=[T0 + i], latency_ms=[1.0],
                inputs=pd.DataFrame({"a": [i, i + 0.5], "b": [-1.0, -2.0]}),
                predictions=np.array(["no", "yes"], dtype=object), probabilities=None,
            )
        )  # fmt: skip
        log.append(
            PredictionBatch(
                model_version=2, role="shadow", request_ids=[rid(T0 + i)], row_counts=[1],
                ts_ms=[T0 + i], latency_ms=[1.0],
                inputs=pd.DataFrame({"n": pd.array([None if i == 1 else i], dtype="Int64")}),
                predictions=np.array([0.5]), probabilities=None,
            )
        )  # fmt: skip
    log.close()
    assert log.stats.rows_written == 9
    # Versions with different features read together: the union of their fields.
    merged = read_predictions(DEP, client=local, with_labels=False)
    assert [f.name for f in merged.schema.field("inputs").type] == ["a", "b", "n"]
    segments = list_segments(DEP, client=local)
    assert len(segments) == 2
    from mloop.serving.predlog_read import read_segment

    tables = sorted((read_segment(local, s) for s in segments), key=lambda t: t.num_rows)
    assert tables[0]["inputs"].to_pylist() == [{"n": 0}, {"n": None}, {"n": 2}]
    assert tables[1]["inputs"].to_pylist()[:2] == [{"a": 0.0, "b": -1.0}, {"a": 0.5, "b": -2.0}]
    assert tables[1]["prediction"].to_pylist() == ["no", "yes"] * 3


def test_long_windows_list_by_day_or_whole(local: TrackingClient) -> None:
    log = PredictionLog(DEP, client=local)
    for ts in (T0, T0 + 30 * HOUR, T0 + 40 * 24 * HOUR):
        log.append(batch([ts]))
    log.close()

    def count(start: int | None, end: int | None) -> int:
        return len(list_segments(DEP, "predictions", start, end, client=local))

    assert count(T0 - HOUR, T0 + 31 * HOUR) == 2  # listed one day at a time
    assert count(T0 + 2 * HOUR, T0 + 40 * HOUR) == 1
    assert count(T0 - 24 * HOUR, T0 + 50 * 24 * HOUR) == 3  # listed whole
    assert count(T0 + HOUR, None) == 2
    assert count(None, T0 + HOUR) == 1
    assert count(T0, T0) == 0


def test_append_never_waits_for_a_stuck_store(
    local: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    timed_out: list[bool] = []
    inner = local.store

    class StuckStore(FlakyStore):
        def add_artifacts(self, *args: Any) -> None:
            entered.set()
            timed_out.append(not release.wait(10))
            inner.add_artifacts(*args)

    monkeypatch.setattr(local, "store", StuckStore(inner))
    log = PredictionLog(DEP, client=local, flush_interval_s=0.01)
    log.start()
    first = batch([T0])
    log.append(first)
    wait_for(entered.is_set, "the writer to reach the store")
    # The writer is stuck inside a write: appends, stats and feedback still answer.
    for i in range(100):
        assert log.append(batch([T0 + 1 + i]))
    assert log.stats.rows_pending == 101
    log.append_feedback(first.request_ids[0], [1])
    release.set()
    log.close()
    assert timed_out and not any(timed_out)
    assert read_predictions(DEP, client=local).num_rows == 101
