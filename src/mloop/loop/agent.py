"""The agent: the daemon that runs monitors, policies, episodes and schedules.

``Agent().run_forever()`` (``mloop agent``) ticks every ``poll_seconds``; one tick

1. runs every monitor (:func:`mloop.monitors.run`: each complete window not yet reported);
2. evaluates every enabled policy on the reports it has not consumed
   (:func:`mloop.loop.triggers.evaluate_policy`), sending the webhook of an episode it opens;
3. advances every open episode whose lease it can take (:class:`EpisodeRunner`), releasing
   the lease when the episode waits;
4. ticks the pipeline scheduler (:class:`mloop.pipelines.scheduler.Scheduler`).

It is safe to kill at any point and to run several at once: triggers and episode transitions
are single conditional transactions, and an episode is only advanced under its lease, which a
killed agent stops renewing; another agent takes it over when it expires (``lease_seconds``).
An error in one monitor, policy or episode is logged and recorded in the tick's result; it
never stops the agent.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, MloopError
from mloop.loop.alerts import AlertSender
from mloop.loop.episodes import EpisodeRunner, LeaseLost
from mloop.loop.triggers import evaluate_policy
from mloop.store.queries import now_ms as _now_ms
from mloop.store.records import Episode

if TYPE_CHECKING:
    from mloop.tracking import TrackingClient

__all__ = ["Agent", "TickResult"]

log = logging.getLogger(__name__)


@dataclass
class TickResult:
    """What one tick did: new monitor reports, episodes opened and advanced (as they are
    after the tick), schedules fired, and the errors met (``"where: message"``)."""

    reports: int = 0
    opened: list[Episode] = field(default_factory=list)
    advanced: list[Episode] = field(default_factory=list)
    fired: int = 0
    errors: list[str] = field(default_factory=list)


class Agent:
    """Runs monitors, policies, episodes and schedules (see the module docstring)."""

    def __init__(
        self,
        client: TrackingClient | None = None,
        *,
        owner: str | None = None,
        lease_seconds: float = 60.0,
        monitors: bool = True,
        schedules: bool = True,
        alert_attempts: int = 3,
        alert_backoff: float = 0.5,
        alert_timeout: float = 5.0,
    ) -> None:
        from mloop.pipelines.scheduler import Scheduler, default_owner
        from mloop.tracking.fluent import client_or_default

        if lease_seconds <= 0:
            raise InvalidInput(f"lease_seconds must be positive, got {lease_seconds}")
        self.client = client_or_default(client)
        self.owner = owner or default_owner()
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self.monitors = monitors
        self.schedules = schedules
        self.runner = EpisodeRunner(
            self.client,
            self.owner,
            lease_ms=self.lease_ms,
            alerts=AlertSender(
                self.client, attempts=alert_attempts, backoff=alert_backoff, timeout=alert_timeout
            ),
        )
        self.scheduler = Scheduler(self.client, owner=self.owner, lease_seconds=lease_seconds)
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"<Agent {self.owner}>"

    def stop(self) -> None:
        """Ask ``run_forever`` to return after the current step."""
        self._stop.set()
        self.scheduler.stop()

    def tick(self) -> TickResult:
        """One pass over monitors, policies, open episodes and schedules."""
        result = TickResult()
        store: Any = self.client.store
        if self.monitors:
            from mloop.monitoring import run as run_monitor

            for monitor in store.list_monitors():
                try:
                    result.reports += len(run_monitor(monitor.name, client=self.client))
                except Exception as exc:  # one broken monitor must not stop the others
                    self._error(result, f"monitor {monitor.name}", exc)
        for policy in store.list_policies():
            try:
                opened = evaluate_policy(policy, client=self.client, now=_now_ms())
            except Exception as exc:
                self._error(result, f"policy {policy.name}", exc)
                continue
            if opened is not None:
                result.opened.append(opened)
                self.runner.alert_triggered(policy, opened)
        for episode in store.list_episodes(open_only=True):
            if self._stop.is_set():
                break
            self._advance(episode, result)
        if self.schedules and not self._stop.is_set():
            try:
                result.fired = len(self.scheduler.tick())
            except Exception as exc:
                self._error(result, "scheduler", exc)
        return result

    def _advance(self, episode: Episode, result: TickResult) -> None:
        store = self.client.store
        claimed = store.claim_episode(episode.id, self.owner, now=_now_ms(), lease_ms=self.lease_ms)
        if claimed is None:
            return  # another agent holds it
        try:
            advanced = self.runner.advance(claimed)
            result.advanced.append(advanced)
        except LeaseLost as exc:
            log.warning("agent %s: %s", self.owner, exc.message)
            return
        except Exception as exc:
            self._error(result, f"episode {episode.policy}/{episode.id}", exc)
        try:
            store.release_episode(episode.id, self.owner)
        except MloopError as exc:
            self._error(result, f"episode {episode.policy}/{episode.id}", exc)

    @staticmethod
    def _error(result: TickResult, where: str, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, MloopError) else f"{type(exc).__name__}: {exc}"
        log.error("%s: %s", where, message)
        result.errors.append(f"{where}: {message}")

    def run_forever(self, poll_seconds: float = 30.0, *, max_ticks: int | None = None) -> None:
        """Tick every ``poll_seconds`` until :meth:`stop`, SIGTERM or SIGINT (or ``max_ticks``
        ticks); a signal lets the current step finish."""
        if poll_seconds <= 0:
            raise InvalidInput(f"poll_seconds must be positive, got {poll_seconds}")
        previous: dict[signal.Signals, Any] = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("agent %s: signal %d, stopping after the current step", self.owner, signum)
            self.stop()

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, on_signal)
        ticks = 0
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except MloopError as exc:  # e.g. the database is briefly unreachable
                    log.error("agent %s: tick failed: %s", self.owner, exc.message)
                ticks += 1
                if max_ticks is not None and ticks >= max_ticks:
                    break
                self._stop.wait(poll_seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
