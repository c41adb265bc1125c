"""The prediction log: every prediction buffered, written off the request path as Parquet.

``append`` only pushes a batch onto a queue under a lock and counts its rows, so the event loop
never waits for storage. A background thread takes what is queued every ``flush_interval_s``
(sooner once ``flush_rows`` rows wait), builds Arrow tables with vectorised operations, writes
one Parquet segment (zstd, page checksums) per hour partition, puts it in the content-addressed
artifact store and records its path as an artifact of the deployment (owner kind
``"deployment"``), so garbage collection keeps it and a window lists it by prefix.

Memory is bounded: at most ``max_buffer_rows`` rows wait (queued, being written, or kept after
a failed write); past that ``append`` drops the batch, returns False and counts its rows in
``stats.dropped``. A failed write (store down) is kept, retried with exponential backoff and
reported in ``stats.last_error`` and ``stats.write_failures``; it never reaches a request.
``close`` writes everything before returning, so a graceful shutdown loses nothing.

Several processes may log one deployment: the worker id in each file name keeps paths apart,
and recorded paths are immutable (a clash gets the next sequence number).

Feedback: ``append_feedback`` finds the request among recent ids kept in memory (compact sorted
arrays, bounded by ``INDEX_REQUESTS``), then in the written segments that can hold it: those of
the hour of the id's 13-digit millisecond prefix (and a neighbouring hour near a boundary)
written between that time and the segment's recording. The reader side is in
:mod:`mloop.serving.predlog_read`.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import secrets
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import Conflict, InvalidInput, InvalidState, NotFound, Overloaded, WriteFailed
from mloop.serving.predlog_arrow import (
    FeedbackItem,
    by_hour,
    check_batch,
    check_labels,
    feedback_table,
    group_key,
    parquet_bytes,
    prediction_table,
    rows_of,
)
from mloop.serving.predlog_read import (
    OWNER_KIND,
    Segment,
    check_deployment,
    list_segments,
    read_segment,
    segment_path,
)
from mloop.store.queries import now_ms

if TYPE_CHECKING:
    from mloop.tracking.client import TrackingClient

__all__ = [
    "INDEX_REQUESTS",
    "PredictionBatch",
    "PredictionLog",
    "PredictionLogStats",
]

log = logging.getLogger(__name__)

#: Request ids kept in memory for ``append_feedback`` (about 41 bytes each).
INDEX_REQUESTS = 1_000_000
#: How far a request id's time may be from the row's ``ts`` (clock and queueing slack).
SLACK_MS = 60_000
#: Retry delays after a failed write: the first, then doubled up to the last.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
#: Decoded written segments kept for feedback lookups (labels often come in time order).
_SEGMENT_CACHE = 16
_WORKER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ID_TIME = re.compile(r"\d{13}")
_open_logs: weakref.WeakSet[PredictionLog] = weakref.WeakSet()


@functools.cache
def _install_exit_hook() -> None:
    # Registered after the tracking client's own hook, so it runs first (atexit is LIFO).
    atexit.register(_close_at_exit)


def _close_at_exit() -> None:
    for open_log in list(_open_logs):
        try:
            open_log.close(timeout_s=5.0)
        except Exception as exc:  # the process is exiting: report, never raise
            log.error("prediction log of %s lost rows at exit: %s", open_log.deployment, exc)


@dataclass
class PredictionBatch:
    """One predict call's rows and the requests they came from, as the server logs them."""

    model_version: int
    role: str  # "primary" | "canary" | "shadow"
    request_ids: list[str]  # one per request in the batch
    row_counts: list[int]  # rows of each request (sum = rows)
    ts_ms: list[int]  # arrival time of each request (epoch ms)
    latency_ms: list[float]  # per request
    inputs: pd.DataFrame | np.ndarray  # all rows, in order (the coerced model input)
    predictions: np.ndarray | pd.DataFrame
    probabilities: np.ndarray | None  # (rows, classes) or None
    classes: list[Any] | None = None  # class labels of the probability columns, when known


@dataclass(frozen=True)
class PredictionLogStats:
    """Counters of a prediction log; rows are prediction rows unless named feedback."""

    rows_written: int
    rows_pending: int
    dropped: int
    segments_written: int
    feedback_written: int
    feedback_pending: int
    write_failures: int
    last_error: str | None


@dataclass
class _Pending:
    """A built segment waiting to be stored (again, after a failure)."""

    kind: str
    data: bytes
    rows: int
    first_ts_ms: int
    seq: int
    next_try: float = 0.0
    attempts: int = 0


@dataclass
class _IdChunk:
    """Request ids sorted for binary search, with each request's rows and time."""

    ids: np.ndarray
    rows: np.ndarray
    ts: np.ndarray
    low: Any = field(init=False)
    high: Any = field(init=False)

    def __post_init__(self) -> None:
        self.low, self.high = self.ids[0], self.ids[-1]

    @classmethod
    def build(cls, ids: Sequence[str], rows: Any, ts: Any) -> _IdChunk | None:
        if not ids:
            return None
        try:
            array = np.array(ids, dtype="S")  # 1 byte a character; ids are ASCII
        except UnicodeEncodeError:
            array = np.array(ids, dtype="U")
        order = np.argsort(array, kind="stable")
        return cls(
            array[order],
            np.asarray(rows, dtype=np.int32)[order],
            np.asarray(ts, dtype=np.int64)[order],
        )

    def find(self, request_id: str) -> tuple[int, int] | None:
        key: Any = request_id
        if self.ids.dtype.kind == "S":
            try:
                key = request_id.encode("ascii")
            except UnicodeEncodeError:
                return None
        if key < self.low or key > self.high:
            return None
        at = int(np.searchsorted(self.ids, key))
        if at < len(self.ids) and self.ids[at] == key:
            return int(self.rows[at]), int(self.ts[at])
        return None


class _RecentIds:
    """The ids of the most recent requests, newest chunk first, bounded by count."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[_IdChunk] = deque()
        self._count = 0
        self._lock = threading.Lock()

    def add(self, chunk: _IdChunk) -> None:
        with self._lock:
            self._chunks.appendleft(chunk)
            self._count += len(chunk.ids)
            while self._count > self._limit and len(self._chunks) > 1:
                self._count -= len(self._chunks.pop().ids)

    def find(self, request_id: str) -> tuple[int, int] | None:
        with self._lock:
            chunks = list(self._chunks)
        for chunk in chunks:
            found = chunk.find(request_id)
            if found is not None:
                return found
        return None


class PredictionLog:
    """A deployment's buffered prediction log, written to Parquet by a background thread."""

    def __init__(
        self,
        deployment: str,
        *,
        client: TrackingClient | None = None,
        flush_rows: int = 50_000,
        flush_interval_s: float = 2.0,
        max_buffer_rows: int = 500_000,
        worker_id: str | None = None,
    ) -> None:
        from mloop.tracking.fluent import client_or_default

        self.deployment = check_deployment(deployment)
        for name, value in (("flush_rows", flush_rows), ("max_buffer_rows", max_buffer_rows)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive int, got {value!r}", field=name)
        if not isinstance(flush_interval_s, int | float) or not flush_interval_s > 0:
            raise InvalidInput(
                f"flush_interval_s must be a number of seconds > 0, got {flush_interval_s!r}",
                field="flush_interval_s",
            )
        if worker_id is None:
            worker_id = f"{os.getpid()}-{secrets.token_hex(3)}"
        if not isinstance(worker_id, str) or not _WORKER.fullmatch(worker_id):
            raise InvalidInput(
                f"worker_id {worker_id!r} must be 1 to 64 letters, digits, '_', '.' or '-'",
                field="worker_id",
            )
        self.worker_id = worker_id
        self._client = client_or_default(client)
        self._flush_rows = flush_rows
        self._interval = float(flush_interval_s)
        self._max_rows = max_buffer_rows
        self._lock = threading.Lock()  # guards the queues and counters below
        self._pending: deque[PredictionBatch] = deque()
        self._taken: list[PredictionBatch] = []  # taken by a write pass, not yet indexed
        self._queued_rows = 0  # in _pending
        self._pending_rows = 0  # appended, not yet written (queued, in flight or kept)
        self._feedback: deque[FeedbackItem] = deque()
        self._feedback_pending = 0
        self._dropped = 0
        self._rows_written = 0
        self._feedback_written = 0
        self._segments_written = 0
        self._failures = 0
        self._last_error: str | None = None
        self._closed = False
        self._write_lock = threading.Lock()  # one write pass at a time
        self._unstored: list[_Pending] = []  # built segments not yet stored, in order
        self._seq = 0
        self._recent = _RecentIds(INDEX_REQUESTS)
        self._segment_ids: OrderedDict[str, _IdChunk | None] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _install_exit_hook()
        _open_logs.add(self)

    def __repr__(self) -> str:
        return f"<PredictionLog {self.deployment} worker={self.worker_id}>"

    @property
    def stats(self) -> PredictionLogStats:
        """A snapshot of the counters (rows written, pending, dropped, failures, last error)."""
        with self._lock:
            return PredictionLogStats(
                rows_written=self._rows_written,
                rows_pending=self._pending_rows,
                dropped=self._dropped,
                segments_written=self._segments_written,
                feedback_written=self._feedback_written,
                feedback_pending=self._feedback_pending,
                write_failures=self._failures,
                last_error=self._last_error,
            )

    # -- the request path ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the background writer thread (idempotent)."""
        with self._lock:
            if self._closed:
                raise InvalidState(f"the prediction log of {self.deployment!r} is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"mloop-predlog-{self.deployment}", daemon=True
            )
        self._thread.start()

    def append(self, batch: PredictionBatch) -> bool:
        """Queue a batch in O(1); False when dropped (buffer full or log closed), counted."""
        rows = rows_of(batch.inputs)
        with self._lock:
            if self._closed or self._pending_rows + rows > self._max_rows:
                self._dropped += rows
                return False
            self._pending.append(batch)
            self._queued_rows += rows
            self._pending_rows += rows
            wake = self._queued_rows >= self._flush_rows
        if wake:
            self._wake.set()
        return True

    def append_feedback(self, request_id: str, labels: list[Any]) -> None:
        """Record labels for the rows of an earlier request of this deployment.

        May read written segments: call it off the event loop. Raises NotFound (unknown id),
        InvalidInput (not one label per row), Overloaded (feedback buffer full).
        """
        if not isinstance(request_id, str) or not request_id:
            raise InvalidInput("request_id must be a non-empty string", field="request_id")
        checked = check_labels(labels)
        found = self._find(request_id)
        if found is None:
            raise NotFound(
                f"no prediction with request id {request_id!r} in deployment "
                f"{self.deployment!r}; labels join only predictions this deployment logged "
                "(the X-Request-ID of its answer)",
                request_id=request_id,
            )
        rows, ts = found
        if len(checked) != rows:
            raise InvalidInput(
                f"request {request_id} had {rows} row(s) but {len(checked)} label(s) were sent; "
                "send one label per row, in the order of the request",
                field="labels",
            )
        with self._lock:
            if self._closed:
                raise InvalidState(f"the prediction log of {self.deployment!r} is closed")
            if self._feedback_pending + rows > self._max_rows:
                raise Overloaded(
                    f"the feedback buffer of {self.deployment!r} is full ({self._max_rows} "
                    "rows) because the artifact store is not taking writes; retry later",
                    retry_after=5,
                )
            self._feedback.append(FeedbackItem(request_id, ts, now_ms(), checked))
            self._feedback_pending += rows

    # -- finding a request --------------------------------------------------------------------
    def _find(self, request_id: str) -> tuple[int, int] | None:
        found = self._recent.find(request_id)
        if found is not None:
            return found
        with self._lock:
            waiting = [*self._taken, *self._pending]
        for batch in reversed(waiting):
            if request_id in batch.request_ids:
                at = batch.request_ids.index(request_id)
                return int(batch.row_counts[at]), int(batch.ts_ms[at])
        # A batch leaves the queues only once indexed: look again in case it just moved.
        found = self._recent.find(request_id)
        return found if found is not None else self._find_written(request_id)

    def _find_written(self, request_id: str) -> tuple[int, int] | None:
        if not _ID_TIME.match(request_id):
            return None  # not a time-ordered id: only the recent ids can know it
        at = int(request_id[:13])
        segments = list_segments(
            self.deployment, "predictions", max(0, at - SLACK_MS), at + SLACK_MS + 1,
            client=self._client,
        )  # fmt: skip
        candidates = [
            s for s in segments if s.first_ts_ms - SLACK_MS <= at <= s.created_at + SLACK_MS
        ]
        candidates.sort(key=lambda s: abs(s.first_ts_ms - at))
        for segment in candidates:
            chunk = self._segment_chunk(segment)
            found = chunk.find(request_id) if chunk is not None else None
            if found is not None:
                return found
        return None

    def _segment_chunk(self, segment: Segment) -> _IdChunk | None:
        with self._cache_lock:
            if segment.digest in self._segment_ids:
                self._segment_ids.move_to_end(segment.digest)
                return self._segment_ids[segment.digest]
        table = read_segment(self._client, segment, ["request_id", "row", "ts"])
        grouped = table.group_by("request_id").aggregate([("row", "max"), ("ts", "min")])
        chunk = _IdChunk.build(
            grouped["request_id"].to_pylist(),
            pc.add(grouped["row_max"], 1).to_numpy(),
            grouped["ts_min"].cast(pa.int64()).to_numpy(),
        )
        with self._cache_lock:
            self._segment_ids[segment.digest] = chunk
            while len(self._segment_ids) > _SEGMENT_CACHE:
                self._segment_ids.popitem(last=False)
        return chunk

    # -- writing ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._wait_s())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._write_pass(force=False)
            except Exception as exc:  # never let the writer die
                log.exception("prediction log writer of %s failed", self.deployment)
                with self._lock:
                    self._last_error = f"{type(exc).__name__}: {exc}"

    def _wait_s(self) -> float:
        try:
            due = self._unstored[0].next_try - time.monotonic()
        except IndexError:  # nothing unstored (or flush() just stored it)
            return self._interval
        return max(0.01, min(self._interval, due))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1

    def _write_pass(self, *, force: bool) -> None:
        with self._write_lock:
            with self._lock:
                batches = list(self._pending)
                self._pending.clear()
                self._queued_rows = 0
                self._taken = batches
                feedback = list(self._feedback)
                self._feedback.clear()
            try:
                self._index(batches)
            finally:
                with self._lock:
                    self._taken = []
            if batches:
                self._build_predictions(batches)
            if feedback:
                self._build_feedback(feedback)
            self._store_unstored(force=force)

    def _index(self, batches: list[PredictionBatch]) -> None:
        ids: list[str] = []
        rows: list[int] = []
        ts: list[int] = []
        for batch in batches:
            if len(batch.request_ids) == len(batch.row_counts) == len(batch.ts_ms):
                ids.extend(batch.request_ids)
                rows.extend(batch.row_counts)
                ts.extend(batch.ts_ms)
        chunk = _IdChunk.build(ids, rows, ts)
        if chunk is not None:
            self._recent.add(chunk)

    def _drop(self, kind: str, rows: int, error: Exception, what: str) -> None:
        log.error("prediction log of %s dropped %d %s: %s", self.deployment, rows, what, error)
        with self._lock:
            if kind == "predictions":
                self._pending_rows -= rows
                self._dropped += rows
            else:
                self._feedback_pending -= rows
            self._last_error = f"dropped {rows} {what}: {type(error).__name__}: {error}"

    def _segments(self, kind: str, table: pa.Table) -> list[_Pending]:
        return [
            _Pending(kind, parquet_bytes(part), part.num_rows, first_ts, self._next_seq())
            for first_ts, part in by_hour(table)
        ]

    def _build_predictions(self, batches: list[PredictionBatch]) -> None:
        groups: dict[tuple[Any, ...], list[PredictionBatch]] = {}
        for batch in batches:
            try:
                check_batch(batch)
                key = group_key(batch)
            except Exception as exc:
                self._drop("predictions", rows_of(batch.inputs), exc, "rows of a bad batch")
                continue
            groups.setdefault(key, []).append(batch)
        for group in groups.values():
            try:
                self._unstored.extend(self._segments("predictions", prediction_table(group)))
                continue
            except Exception:
                pass
            # Find the batch that cannot be stored; keep the others.
            for batch in group:
                try:
                    table = prediction_table([batch])
                    self._unstored.extend(self._segments("predictions", table))
                except Exception as exc:
                    rows = rows_of(batch.inputs)
                    self._drop("predictions", rows, exc, "rows that Parquet cannot hold")

    def _build_feedback(self, items: list[FeedbackItem]) -> None:
        try:
            self._unstored.extend(self._segments("feedback", feedback_table(items)))
        except Exception as exc:
            rows = sum(len(item.labels) for item in items)
            self._drop("feedback", rows, exc, "labels that Parquet cannot hold")

    def _store_unstored(self, *, force: bool) -> None:
        now = time.monotonic()
        if not self._unstored or (not force and self._unstored[0].next_try > now):
            return
        while self._unstored:
            segment = self._unstored[0]
            try:
                self._store(segment)
            except Exception as exc:
                segment.attempts += 1
                delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (segment.attempts - 1))
                segment.next_try = time.monotonic() + delay
                log.warning(
                    "prediction log of %s: writing a segment failed (attempt %d, next in "
                    "%.1fs): %s", self.deployment, segment.attempts, delay, exc,
                )  # fmt: skip
                with self._lock:
                    self._failures += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                return
            self._unstored.pop(0)
            with self._lock:
                self._segments_written += 1
                if segment.kind == "predictions":
                    self._rows_written += segment.rows
                    self._pending_rows -= segment.rows
                else:
                    self._feedback_written += segment.rows
                    self._feedback_pending -= segment.rows

    def _store(self, segment: _Pending) -> None:
        ref = self._client.artifacts.put_bytes(segment.data)
        for _ in range(10):
            path = segment_path(segment.kind, segment.first_ts_ms, self.worker_id, segment.seq)
            try:
                self._client.store.add_artifacts(
                    OWNER_KIND, self.deployment, [(path, ref.digest, ref.size)]
                )
                return
            except Conflict:
                # Another process with this worker id wrote this path: take the next number.
                segment.seq = self._next_seq()
        raise Conflict(f"could not find a free segment path for {self.deployment!r}")

    # -- flushing and closing ----------------------------------------------------------------
    def _unwritten(self) -> str:
        stats = self.stats
        return (
            f"{stats.rows_pending} prediction row(s) and {stats.feedback_pending} label(s) of "
            f"{self.deployment!r} are not written yet (last error: {stats.last_error}); "
            "they are kept in memory and retried — check the artifact store and the database"
        )

    def flush(self) -> None:
        """Write everything buffered now (blocking); WriteFailed if some could not be stored."""
        self._write_pass(force=True)
        if self._unstored:
            raise WriteFailed(self._unwritten())

    def close(self, timeout_s: float = 30.0) -> None:
        """Write everything, retrying failures up to ``timeout_s``, and stop (idempotent).

        Raises WriteFailed if rows are still unwritten at the deadline (they are then lost).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        _open_logs.discard(self)
        deadline = time.monotonic() + timeout_s
        while True:
            self._write_pass(force=True)
            left = deadline - time.monotonic()
            if not self._unstored or left <= 0:
                break
            time.sleep(min(left, BACKOFF_FIRST_S))
        if self._unstored:
            raise WriteFailed(self._unwritten())

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
