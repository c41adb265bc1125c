"""Liveness of runs: who is this process, heartbeats, and the reaper of runs whose process died.

A run records the host, pid and start time of the process that created it, and that process
sends a heartbeat for its active runs every ``heartbeat_interval`` seconds. A RUNNING run is
*stale* when

- it was started on this host and its pid is gone, or the pid now belongs to another process
  (the start time differs: the pid was reused) — known at once, no waiting; or
- its heartbeat is older than ``stale_run_after`` seconds, wherever it ran.

:func:`reap_stale_runs` marks stale runs KILLED through the store (so each change is audited),
with the end time set to the last heartbeat: the last moment the run is known to have lived.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import cache

import psutil

from mloop.config import Settings
from mloop.errors import InvalidState, NotFound
from mloop.store.base import MetadataStore, RunLiveness, RunStatus

__all__ = ["Heartbeat", "ProcessIdentity", "current_process", "is_stale", "reap_stale_runs"]

log = logging.getLogger(__name__)

# Two reads of one process's start time can differ by a clock tick; a reused pid starts later.
_START_TIME_TOLERANCE_MS = 1_000


class ProcessIdentity:
    """Host, pid and start time (ms) of a process: together they name it even if pids recycle."""

    __slots__ = ("host", "pid", "started_at")

    def __init__(self, host: str, pid: int, started_at: int) -> None:
        self.host = host
        self.pid = pid
        self.started_at = started_at

    def __repr__(self) -> str:
        return f"ProcessIdentity({self.host!r}, {self.pid}, {self.started_at})"


@cache
def _hostname() -> str:
    return socket.gethostname()


def _start_time_ms(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    except OSError:  # pragma: no cover - exotic platforms
        return None


_identity: ProcessIdentity | None = None


def current_process() -> ProcessIdentity:
    """This process's identity, computed once per pid (a forked child computes its own)."""
    global _identity  # noqa: PLW0603 - a per-process cache, reset by pid below
    pid = os.getpid()
    if _identity is None or _identity.pid != pid:
        _identity = ProcessIdentity(_hostname(), pid, _start_time_ms(pid) or 0)
    return _identity


def _process_gone(run: RunLiveness) -> bool:
    """True when ``run`` was started on this host and its process no longer exists."""
    if run.host != _hostname():
        return False
    me = current_process()
    if run.pid == me.pid:
        return abs(run.pid_started_at - me.started_at) > _START_TIME_TOLERANCE_MS
    started = _start_time_ms(run.pid)
    if started is None:
        return not psutil.pid_exists(run.pid)
    return abs(started - run.pid_started_at) > _START_TIME_TOLERANCE_MS


def is_stale(run: RunLiveness, now_ms: int, stale_after_ms: int) -> bool:
    """True when a RUNNING run's process is gone (this host) or its heartbeat is too old."""
    if _process_gone(run):
        return True
    me = current_process()
    if run.host == me.host and run.pid == me.pid:
        # Our own run: alive by definition, however late its heartbeat (e.g. after a suspend).
        return False
    return now_ms - run.heartbeat_at > stale_after_ms


def reap_stale_runs(
    store: MetadataStore, settings: Settings, *, now_ms: int | None = None
) -> list[str]:
    """Mark every stale RUNNING run KILLED (ended at its last heartbeat); return their ids."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    stale_after = int(settings.stale_run_after * 1000)
    killed: list[str] = []
    for run in store.list_running():
        if not is_stale(run, now, stale_after):
            continue
        try:
            store.set_run_status(
                run.run_id, RunStatus.KILLED, end_time=run.heartbeat_at, actor=settings.actor
            )
        except (InvalidState, NotFound):
            continue  # another reaper, or the run's own process, got there first
        killed.append(run.run_id)
    return killed


class Heartbeat:
    """Sends ``store.heartbeat`` for the active runs of one process every ``interval`` seconds.

    It has no thread of its own: the background writer calls :meth:`beat_if_due` from its loop,
    which keeps the number of threads per client at one.
    """

    def __init__(
        self, store: MetadataStore, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self.interval = interval
        self._clock = clock
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._next = clock() + interval

    def add(self, run_id: str) -> None:
        """Start sending heartbeats for a run."""
        with self._lock:
            self._runs.add(run_id)

    def discard(self, run_id: str) -> None:
        """Stop sending heartbeats for a run."""
        with self._lock:
            self._runs.discard(run_id)

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's runs and its (possibly held) lock."""
        self._lock = threading.Lock()
        self._runs = set()

    @property
    def run_ids(self) -> list[str]:
        """The runs currently kept alive."""
        with self._lock:
            return sorted(self._runs)

    def seconds_until_due(self) -> float | None:
        """How long until the next beat is due, or None when no run needs one."""
        with self._lock:
            if not self._runs:
                return None
        return max(0.0, self._next - self._clock())

    def beat_if_due(self) -> None:
        """Send one heartbeat if the interval has passed; failures are logged, never raised."""
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self.interval
        self.beat()

    def beat(self) -> None:
        """Send one heartbeat now for every active run."""
        ids = self.run_ids
        if not ids:
            return
        try:
            self._store.heartbeat(ids, int(time.time() * 1000))
        except Exception as exc:
            # A missed heartbeat only matters after stale_run_after; the next one may succeed.
            log.warning("mloop: heartbeat for %d run(s) failed: %s", len(ids), exc)
