"""Adaptive batching: concurrent requests to one model version become one predict call.

Requests wait in a queue; one consumer per model takes everything queued (up to
``max_batch_size`` rows), waits at most ``max_latency_ms`` for more while the server is busy
(the last batch held more than one request) and never when it is quiet, then runs one predict
on the model's own thread, off the event loop. Results are split back in order. A batch that
fails validation is re-run request by request, so one bad request never fails its neighbours.
The queue is bounded in rows: past ``max_queue_rows`` a request is refused at once (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import InvalidInput, Overloaded, ServiceUnavailable
from mloop.serving.protocols.common import ParsedInput

__all__ = ["Batcher", "Outcome", "Pending"]


@dataclass(eq=False)
class Pending:
    """One request waiting for its prediction."""

    item: ParsedInput
    request_id: str
    arrival_ms: int
    role: str
    future: asyncio.Future[Outcome]
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class Outcome:
    """One request's share of a batch's answer."""

    predictions: Any
    probabilities: Any


# (pending requests of one batch) -> one outcome or error per request, in order.
RunBatch = Callable[[list[Pending]], list["Outcome | BaseException"]]


class Batcher:
    """Coalesces concurrent requests for one model version into batched predict calls."""

    def __init__(
        self,
        run: RunBatch,
        *,
        max_batch_size: int,
        max_latency_ms: float,
        max_queue_rows: int,
        name: str = "model",
        on_batch: Callable[[int, int], None] | None = None,
        thread_setup: Callable[[], None] | None = None,
    ) -> None:
        self._run = run
        self._max_rows = max_batch_size
        self._wait_s = max_latency_ms / 1000.0
        self._max_queue = max_queue_rows
        self._on_batch = on_batch
        self._queue: deque[Pending] = deque()
        self._queued_rows = 0
        self._last_requests = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        # One thread per model: predict calls of one version never overlap, and the event loop
        # keeps reading and answering requests while the model works.
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"mloop-{name}", initializer=thread_setup
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def queued_rows(self) -> int:
        """Rows waiting for the model (the queue depth)."""
        return self._queued_rows

    def start(self) -> None:
        """Start the consumer on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._consume())

    async def submit(
        self, item: ParsedInput, request_id: str, arrival_ms: int, role: str
    ) -> Outcome:
        """Queue one request and wait for its outcome. Raises Overloaded when the queue is
        full, ServiceUnavailable once closing, or the request's own error."""
        if self._closed:
            raise ServiceUnavailable("this model version is being replaced; retry the request")
        if self._queued_rows and self._queued_rows + item.n_rows > self._max_queue:
            raise Overloaded(
                f"the server is at capacity ({self._queued_rows} rows queued, limit "
                f"{self._max_queue}); retry after a moment",
                retry_after=1,
            )
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(item, request_id, arrival_ms, role, future))
        self._queued_rows += item.n_rows
        self._idle.clear()
        self._wake.set()
        return await future

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if batch:
                try:
                    results = await loop.run_in_executor(self._thread, self._run, batch)
                except asyncio.CancelledError as exc:  # closing mid-batch: fail it, then stop
                    self._settle(batch, [exc] * len(batch))
                    raise
                except Exception as exc:  # the executor itself failed: this batch only
                    results = [exc] * len(batch)
                self._settle(batch, results)
            if not self._queue:
                self._idle.set()

    @staticmethod
    def _settle(batch: list[Pending], results: list[Outcome | BaseException]) -> None:
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():  # the caller timed out or went away
                continue
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)

    async def _next_batch(self) -> list[Pending]:
        while not self._queue:
            self._wake.clear()
            await self._wake.wait()
        # Wait for stragglers only under concurrent load; a lone client never pays the wait.
        if self._wait_s > 0 and self._last_requests > 1:
            deadline = self._queue[0].started + self._wait_s
            while self._queued_rows < self._max_rows:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
        batch: list[Pending] = []
        rows = 0
        while self._queue and (not batch or rows + self._queue[0].item.n_rows <= self._max_rows):
            pending = self._queue.popleft()
            self._queued_rows -= pending.item.n_rows
            if pending.future.done():  # timed out while queued
                continue
            batch.append(pending)
            rows += pending.item.n_rows
        self._last_requests = len(batch)
        if self._on_batch is not None and batch:
            self._on_batch(rows, self._queued_rows)
        return batch

    async def close(self, timeout: float = 30.0) -> None:
        """Refuse new requests, let queued and running ones finish (up to ``timeout`` s)."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in self._queue:
            if not pending.future.done():
                pending.future.set_exception(
                    ServiceUnavailable("the server is shutting down; retry the request")
                )
        self._queue.clear()
        self._thread.shutdown(wait=True)


def run_isolated(
    run_all: Callable[[list[Pending]], list[Outcome]], batch: list[Pending]
) -> list[Outcome | BaseException]:
    """Run ``batch`` as one call; if it is refused as invalid, run each request alone so that
    only the bad ones get the error. Any other failure is every request's failure."""
    try:
        return list(run_all(batch))
    except InvalidInput as exc:
        if len(batch) == 1:
            return [exc]
        return [run_isolated(run_all, [p])[0] for p in batch]
    except Exception as exc:
        return [exc] * len(batch)
