"""Cron schedules of pipelines, and the scheduler that fires them.

``add_schedule`` checks everything it can before storing anything: the cron string parses, the
pipeline imports, and its parameters trace into a graph. A :class:`Scheduler` fires due
schedules in-process with :func:`~mloop.pipelines.runner.run_pipeline`.

Restart safety comes from the database, not from the process: a scheduler first takes a
schedule's lease (one conditional ``UPDATE``; see :meth:`claim_due_schedules
<mloop.store.base.MetadataStore.claim_due_schedules>`), then runs the pipeline, then records the
fire and releases the lease in one more ``UPDATE``. Any number of schedulers, on any number of
machines sharing the database, never fire one schedule at once. A scheduler killed mid-fire
leaves its lease behind; once the lease expires another scheduler fires the schedule again — so
``lease_seconds`` must exceed the longest pipeline run, or a slow run may be fired twice.

Missed fires (the scheduler was down, or a run overran) are not replayed: a schedule fires once,
however many times it was due, and its next fire is computed from that moment.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from mloop.errors import InvalidInput, MloopError
from mloop.pipelines.cron import CronSchedule
from mloop.pipelines.runner import StepFailed, import_pipeline, run_pipeline
from mloop.pipelines.steps import Pipeline
from mloop.store.records import Schedule
from mloop.tracking.client import TrackingClient

__all__ = [
    "FireResult",
    "Scheduler",
    "add_schedule",
    "delete_schedule",
    "disable_schedule",
    "enable_schedule",
    "get_schedule",
    "list_schedules",
    "next_fire_ms",
]

log = logging.getLogger(__name__)

#: How long a claimed schedule stays claimed by default: the longest a fire may take.
DEFAULT_LEASE_SECONDS = 3600.0
#: How often ``run_forever`` looks for due schedules by default.
DEFAULT_POLL_SECONDS = 30.0


def _client(client: TrackingClient | None) -> TrackingClient:
    from mloop.tracking import default_client

    return client or default_client()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def next_fire_ms(cron: CronSchedule, after_ms: int) -> int:
    """When ``cron`` next fires strictly after ``after_ms`` (epoch milliseconds), in ms."""
    return int(cron.next_after(_at(after_ms)).timestamp() * 1000)


def _check_params(pipeline: Pipeline, ref: str, params: dict[str, Any]) -> None:
    try:
        pipeline.graph(**params)
    except MloopError as exc:
        raise InvalidInput(f"pipeline {ref!r} refuses params {params!r}: {exc.message}") from exc
    except Exception as exc:  # the user's pipeline body raised while tracing
        raise InvalidInput(
            f"pipeline {ref!r} refuses params {params!r}: {type(exc).__name__}: {exc}"
        ) from exc


def add_schedule(
    name: str,
    pipeline_ref: str,
    cron: str,
    *,
    tz: str = "UTC",
    params: dict[str, Any] | None = None,
    client: TrackingClient | None = None,
) -> Schedule:
    """Schedule ``pipeline_ref`` (``module:name``) to run on ``cron`` in timezone ``tz``.

    Raises InvalidInput for a cron string that does not parse, an unknown timezone, or params
    the pipeline refuses; NotFound for a pipeline that does not import; AlreadyExists for a
    taken name. Nothing is stored unless every check passes.
    """
    schedule = CronSchedule.parse(cron, tz=tz)
    given = dict(params or {})
    pipeline = import_pipeline(pipeline_ref)
    _check_params(pipeline, pipeline_ref, given)
    c = _client(client)
    return c.store.create_schedule(
        name, pipeline=pipeline_ref, cron=cron, tz=schedule.tz, params=given,
        next_fire_at=next_fire_ms(schedule, _now_ms()), actor=c.settings.actor,
    )  # fmt: skip


def get_schedule(name: str, *, client: TrackingClient | None = None) -> Schedule:
    """A schedule by name; NotFound if there is none."""
    return _client(client).store.get_schedule(name)


def list_schedules(*, client: TrackingClient | None = None) -> list[Schedule]:
    """Every schedule, by name."""
    return _client(client).store.list_schedules()


def enable_schedule(
    name: str, *, now: int | None = None, client: TrackingClient | None = None
) -> Schedule:
    """Enable a schedule; its next fire is counted from ``now`` (times missed while off are
    skipped)."""
    c = _client(client)
    current = c.store.get_schedule(name)
    cron = CronSchedule.parse(current.cron, tz=current.tz)
    at = _now_ms() if now is None else now
    return c.store.set_schedule_enabled(
        name, True, next_fire_at=next_fire_ms(cron, at), actor=c.settings.actor
    )


def disable_schedule(name: str, *, client: TrackingClient | None = None) -> Schedule:
    """Disable a schedule: the scheduler skips it until it is enabled again."""
    c = _client(client)
    return c.store.set_schedule_enabled(name, False, actor=c.settings.actor)


def delete_schedule(name: str, *, client: TrackingClient | None = None) -> None:
    """Delete a schedule (its past runs stay)."""
    c = _client(client)
    c.store.delete_schedule(name, actor=c.settings.actor)


@dataclass(frozen=True)
class FireResult:
    """One fire of a schedule: the run it started (None if the pipeline never started), how the
    run ended (``FINISHED``, ``FAILED``, or ``ERROR`` when it could not start), the next fire,
    and whether the fire was recorded (False if the lease was lost meanwhile)."""

    schedule: str
    fired_at: int
    next_fire_at: int
    run_id: str | None
    status: str
    error: str | None
    recorded: bool


def default_owner() -> str:
    """A scheduler id unique to this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Scheduler:
    """Fires due schedules: ``tick()`` once, or ``run_forever()`` until SIGTERM or SIGINT."""

    def __init__(
        self,
        client: TrackingClient | None = None,
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        if lease_seconds <= 0:
            raise InvalidInput(f"lease_seconds must be positive, got {lease_seconds}")
        self.client = _client(client)
        self.owner = owner or default_owner()
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"<Scheduler {self.owner}>"

    def stop(self) -> None:
        """Ask ``run_forever`` (and a running ``tick``) to stop after the current fire."""
        self._stop.set()

    def tick(self, now: int | None = None) -> list[FireResult]:
        """Fire every schedule due at ``now`` (epoch ms; the clock if None) that no other
        scheduler holds, one at a time, and return what happened."""
        fired: list[FireResult] = []
        # Claim one schedule at a time, just before firing it, so a stop between fires or a
        # long run leaves the other due schedules free for other schedulers.
        while not self._stop.is_set():
            at = _now_ms() if now is None else now
            claimed = self.client.store.claim_due_schedules(
                self.owner, now=at, lease_ms=self.lease_ms, limit=1
            )
            if not claimed:
                break
            fired.append(self._fire(claimed[0], at, clock=now is None))
        return fired

    def _keep_lease(self, schedule: Schedule, at: int) -> threading.Event:
        """Renew the schedule's lease every third of its length while it fires, so a run longer
        than the lease is never fired again by another scheduler; set the event to stop."""
        done = threading.Event()
        every = max(self.lease_ms / 3000, 0.05)
        started = time.monotonic()  # on the tick's clock: ``at`` plus the time spent firing

        def renew() -> None:
            while not done.wait(every):
                elapsed = int((time.monotonic() - started) * 1000)
                held = self.client.store.renew_schedule_lease(
                    schedule.id, self.owner, lease_until=at + elapsed + self.lease_ms
                )
                if not held:
                    log.warning("schedule %r: lease lost while firing", schedule.name)
                    return

        threading.Thread(target=renew, name=f"mloop-lease-{schedule.id}", daemon=True).start()
        return done

    def _fire(self, schedule: Schedule, at: int, *, clock: bool) -> FireResult:
        run_id: str | None = None
        error: str | None = None
        status = "FINISHED"
        cron: CronSchedule | None
        try:
            cron = CronSchedule.parse(schedule.cron, tz=schedule.tz)
        except MloopError as exc:  # stored before a parser change; keep it from firing again
            cron, status, error = None, "ERROR", exc.message
        if cron is not None:
            log.info("schedule %r: running %s", schedule.name, schedule.pipeline)
            renewing = self._keep_lease(schedule, at)
            try:
                pipeline = import_pipeline(schedule.pipeline)
                result = run_pipeline(pipeline, schedule.params, client=self.client)
                run_id = result.run_id
            except StepFailed as exc:
                run_id, status = exc.result.run_id, "FAILED"
                error = f"step {exc.node_id!r} failed: {exc.failure.type}: {exc.failure.message}"
            except Exception as exc:
                status = "ERROR"
                error = (
                    exc.message if isinstance(exc, MloopError) else f"{type(exc).__name__}: {exc}"
                )
            finally:
                renewing.set()
        if error is not None:
            log.error("schedule %r (run %s): %s: %s", schedule.name, run_id, status, error)
        # Schedule from when the fire ended (the clock) or from the injected ``now``: fires
        # missed meanwhile are skipped, never replayed.
        done = _now_ms() if clock else at
        # Without a cron there is no next time: park it a lease ahead rather than loop on it.
        next_at = next_fire_ms(cron, done) if cron is not None else done + self.lease_ms
        recorded = self.client.store.finish_schedule_fire(
            schedule.id, self.owner, fired_at=at, next_fire_at=next_at, run_id=run_id,
            actor=self.client.settings.actor,
        )  # fmt: skip
        if not recorded:
            log.warning(
                "schedule %r: lease lost while firing (the run took longer than the lease of "
                "%d s?); the fire was not recorded",
                schedule.name,
                self.lease_ms // 1000,
            )
        return FireResult(schedule.name, at, next_at, run_id, status, error, recorded)

    def run_forever(self, poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        """Tick every ``poll_seconds`` until :meth:`stop`, SIGTERM or SIGINT; a signal lets the
        current fire finish, then returns."""
        if poll_seconds <= 0:
            raise InvalidInput(f"poll_seconds must be positive, got {poll_seconds}")
        previous: dict[signal.Signals, Any] = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("scheduler %s: signal %d, stopping after the current fire", self.owner, signum)
            self._stop.set()

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except MloopError as exc:  # e.g. the database is briefly unreachable
                    log.error("scheduler %s: tick failed: %s", self.owner, exc.message)
                self._stop.wait(poll_seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
