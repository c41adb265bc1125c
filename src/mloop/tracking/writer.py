"""The background writer: metric points, params and tags reach the store in batches, off the
caller's thread.

One writer per :class:`~mloop.tracking.client.TrackingClient`, shared by all of its runs.
``log`` appends a tuple to a deque and returns; the hot path takes no lock (a deque append is
atomic). A daemon thread drains up to ``writer_batch_size`` items per ``store.write_batch``
transaction, waking when a batch is full or ``writer_flush_interval`` has passed.

- **Durability on demand.** :meth:`BackgroundWriter.flush` appends a numbered marker to the
  queue and drains the queue on the caller's thread (the thread may be mid-batch: one drain
  lock keeps batches in order); markers are numbered in queue order, and whoever drains
  publishes the highest marker passed, under a condition.
- **Bounded memory.** Beyond ``writer_queue_size`` pending items, ``log`` blocks until the
  thread catches up (back-pressure), so a tight logging loop cannot exhaust memory.
- **No silent loss.** A failed batch is retried run by run, so one run's bad write (say a param
  conflicting with another process's value) does not cost other runs their points. Whatever
  still fails is kept as a :class:`~mloop.errors.WriteFailed` (chaining the store's error and
  saying how much was not stored) and raised at that run's next call, flush or end.
- **Fork safety.** A forked child gets an empty queue and starts its own thread on first use:
  items pending in the parent at the fork belong to the parent, which writes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Final, TypeAlias

from mloop.errors import WriteFailed
from mloop.store.base import MetadataStore, MetricRow, RunEnd, TagRow

if TYPE_CHECKING:
    from mloop.tracking.liveness import Heartbeat

__all__ = ["PARAM", "TAG", "BackgroundWriter", "Item"]

log = logging.getLogger(__name__)

PARAM: Final = 0
TAG: Final = 1
#: A metric point (a 5-tuple, exactly what ``write_batch`` takes), a param or tag as
#: ``(PARAM | TAG, run_id, key, value)``, or a flush marker (an int).
Item: TypeAlias = MetricRow | tuple[int, str, str, str] | int

_JOIN_TIMEOUT = 30.0
_POLL = 0.1  # how often a waiting caller re-checks that the writer thread is still alive

_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


class BackgroundWriter:
    """Batches metric points, params and tags into ``store.write_batch`` on a daemon thread."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        batch_size: int,
        queue_size: int,
        flush_interval: float,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._limit = queue_size
        self._interval = flush_interval
        self._heartbeat = heartbeat
        self._closed = False
        self._init_state()
        _writers.add(self)

    def _init_state(self) -> None:
        self._queue: deque[Item] = deque()
        # A log() that finds this many items pending wakes the thread (a batch is ready).
        # 0 until the thread runs: the first log() starts it (lazily, so a client that never
        # logs, like the CLI's, has no thread; and a forked child starts its own).
        self._wake_at = 0
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._flushed = threading.Condition()
        self._marker_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._errors_lock = threading.Lock()
        self._last_marker = 0
        self._done_marker = 0
        self._errors: dict[str, list[WriteFailed]] = {}
        #: True while some write failure has not been raised yet (read on the hot path).
        self.failed = False
        self.points_written = 0
        self._stopping = False
        #: True while the thread sleeps with nothing scheduled (or has not started).
        self._idle = True
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    # -- producer side ----------------------------------------------------------------------
    def log(self, item: Item) -> None:
        """Queue one item; blocks only when ``writer_queue_size`` items are already pending."""
        queue = self._queue
        if len(queue) >= self._wake_at:
            self._crowded()
        queue.append(item)

    def _crowded(self) -> None:
        self._ensure_thread()
        self._wake_at = min(self._batch_size, self._limit)
        if not self._wake.is_set():
            self._wake.set()
        if len(self._queue) >= self._limit:
            with self._room:
                while len(self._queue) >= self._limit:
                    if not self._thread_alive():
                        break  # nothing will make room; the caller's flush writes inline
                    self._wake.set()
                    self._room.wait(_POLL)
            if len(self._queue) >= self._limit and not self._thread_alive():
                self._drain()

    @property
    def pending(self) -> int:
        """How many items wait in memory."""
        return len(self._queue)

    def flush(self, end: RunEnd | None = None) -> bool:
        """Block until everything logged before this call is stored (or has failed).

        With ``end``, the run's final status is written in the same transaction as its last
        batch, unless a write of that run has failed; returns whether ``end`` was written.
        """
        with self._marker_lock:
            self._last_marker += 1
            marker = self._last_marker
            self._queue.append(marker)
        # The caller waits anyway, so it writes the queue itself: a hand-off to the thread and
        # back costs more than a small batch. The drain lock keeps batches in queue order.
        ended = self._drain(end, marker)
        while True:
            with self._flushed:
                if self._done_marker >= marker:
                    return ended
                if self._thread_alive():
                    self._flushed.wait(_POLL)
                    continue
            # No thread (closed, interpreter shutting down, or failed to start): write here.
            self._drain()

    def wake(self) -> None:
        """Make sure the thread (started if needed) will check its queue and heartbeat.

        A thread in a timed wait checks on its own within ``writer_flush_interval`` and is left
        alone: a wake costs two thread switches, more than starting a run. Only a thread asleep
        with nothing scheduled is woken. Callers change what the thread reads (e.g. add a run
        to the heartbeat) before calling this; the thread sets ``_idle`` before reading it.
        """
        if self._idle or not self._thread_alive():
            self._ensure_thread()
            self._wake.set()

    # -- errors -----------------------------------------------------------------------------
    def raise_pending(self, run_id: str | None = None) -> None:
        """Raise the stored write failure of ``run_id`` (of any run if None), once."""
        if not self.failed:
            return
        with self._errors_lock:
            ids = list(self._errors) if run_id is None else [run_id]
            found = [err for rid in ids for err in self._errors.pop(rid, [])]
            self.failed = bool(self._errors)
        if not found:
            return
        first = found[0]
        for other in found[1:]:
            first.add_note(f"another background write also failed: {other.message}")
        raise first

    def _record_failure(
        self,
        run_id: str,
        exc: BaseException,
        metrics: list[MetricRow],
        params: list[TagRow],
        tags: list[TagRow],
    ) -> None:
        error = WriteFailed(
            f"{exc} (a background write for run {run_id} failed; {len(metrics)} metric "
            f"point(s), {len(params)} param(s) and {len(tags)} tag(s) of that batch were not "
            f"stored)",
            run_id=run_id,
            cause=type(exc).__name__,
            metrics_lost=len(metrics),
            params_lost=len(params),
            tags_lost=len(tags),
        )
        error.__cause__ = exc
        log.debug("mloop: background write for run %s failed: %s", run_id, exc)
        with self._errors_lock:
            self._errors.setdefault(run_id, []).append(error)
            self.failed = True

    # -- the thread -------------------------------------------------------------------------
    def _thread_alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _ensure_thread(self) -> None:
        if self._thread_alive() or self._closed:
            return
        with self._marker_lock:
            if self._thread_alive():
                return
            thread = threading.Thread(target=self._run, name="mloop-writer", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutdown: callers fall back to inline writes
                return
            self._thread = thread

    def _run(self) -> None:
        heartbeat = self._heartbeat
        while True:
            self._idle = True  # before reading the heartbeat's runs: see wake()
            timeout: float | None = self._interval
            if heartbeat is not None:
                due = heartbeat.seconds_until_due()
                if due is not None:
                    timeout = min(self._interval, due)
                elif not self._queue and not self._stopping:
                    # No active run, nothing queued: sleep until a run starts (it wakes us).
                    timeout = None
            if timeout is not None:
                self._idle = False
            self._wake.wait(timeout)
            self._wake.clear()
            try:
                self._drain()
                if heartbeat is not None:
                    heartbeat.beat_if_due()
            except Exception:  # pragma: no cover - a bug; keep writing rather than hang callers
                log.exception("mloop: the background writer hit an unexpected error")
            if self._stopping and not self._queue:
                return

    def _drain(self, end: RunEnd | None = None, end_marker: int = -1) -> bool:
        """Write everything queued, a batch per transaction; publish markers passed. ``end``
        goes with the batch holding ``end_marker``; returns whether it was written."""
        ended = False
        with self._drain_lock:
            queue = self._queue
            popleft = queue.popleft
            while queue:
                metrics: list[MetricRow] = []
                params: list[TagRow] = []
                tags: dict[tuple[str, str], str] = {}
                marker = 0
                with_end = False
                for _ in range(min(len(queue), self._batch_size)):
                    item = popleft()
                    if isinstance(item, int):
                        marker = item
                        with_end = with_end or item == end_marker
                    elif len(item) == 5:
                        metrics.append(item)
                    elif item[0] == PARAM:
                        params.append((item[1], item[2], item[3]))
                    else:
                        # Last value wins, and one row per key keeps the upsert valid.
                        tags[(item[1], item[2])] = item[3]
                # An earlier failed batch of the run means it must not be marked as ended
                # with its data complete: leave the end to the caller.
                batch_end = end if with_end and end and end.run_id not in self._errors else None
                if metrics or params or tags or batch_end:
                    tag_rows = [(run, key, value) for (run, key), value in tags.items()]
                    ended = self._write(metrics, params, tag_rows, batch_end) or ended
                if marker:
                    with self._flushed:
                        self._done_marker = max(self._done_marker, marker)
                        self._flushed.notify_all()
                with self._room:
                    self._room.notify_all()
        return ended

    def _write(
        self,
        metrics: list[MetricRow],
        params: list[TagRow],
        tags: list[TagRow],
        end: RunEnd | None = None,
    ) -> bool:
        """Store one batch; returns whether ``end`` was written with it. Failures are kept."""
        try:
            self._store.write_batch(metrics=metrics, params=params, tags=tags, end=end)
        except Exception as exc:
            first_error: Exception = exc
        else:
            self.points_written += len(metrics)
            return end is not None
        runs = {m[0] for m in metrics} | {p[0] for p in params} | {t[0] for t in tags}
        if len(runs) == 1:
            self._record_failure(runs.pop(), first_error, metrics, params, tags)
            return False
        if not runs:  # the end alone failed: the caller sets the status itself
            return False
        # Retry run by run: the bad rows belong to one run; the others' points must not be lost.
        for run_id in sorted(runs):
            run_metrics = [m for m in metrics if m[0] == run_id]
            run_params = [p for p in params if p[0] == run_id]
            run_tags = [t for t in tags if t[0] == run_id]
            try:
                self._store.write_batch(metrics=run_metrics, params=run_params, tags=run_tags)
            except Exception as exc:
                self._record_failure(run_id, exc, run_metrics, run_params, run_tags)
            else:
                self.points_written += len(run_metrics)
        return False

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Store everything pending and stop the thread; later flushes write inline."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)
        self._drain()

    def _reset_after_fork(self) -> None:
        # Locks may have been held by the parent's writer thread at the fork, and the queue
        # holds the parent's items: start over. The next log() starts this process's thread.
        self._init_state()
        if self._heartbeat is not None:
            self._heartbeat.reset_after_fork()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        with contextlib.suppress(Exception):
            writer._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
