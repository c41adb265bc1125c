"""Triggers: monitor reports become events, and events open an episode of a policy.

A report with status ``alert`` carries alerts ``{"check", "reason"}``; each check maps to one
event (:data:`EVENT_OF_CHECK`): ``feature_drift`` and ``prediction_drift`` are ``drift``,
``performance`` (measured, or estimated before labels arrive) is ``performance_drop``,
``data_quality`` is ``data_quality``. A report triggers a policy when one of its events is in
the policy's ``on``.

:func:`evaluate_policy` reads the reports of every monitor of the policy's deployment made
since the policy was created and not yet consumed by it (one query, as many rows as are new)
and hands them to the store, which in one transaction consumes them all and opens an episode
for those that trigger — unless an episode is open (they join it: one drift episode, one
retrain) or the policy is cooling down (they are ignored). A report is never consumed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from mloop.errors import Conflict
from mloop.store.records import Episode, MonitorReport, Policy

if TYPE_CHECKING:
    from mloop.tracking import TrackingClient

__all__ = [
    "EVENTS",
    "EVENT_OF_CHECK",
    "MAX_REPORTS_PER_PASS",
    "evaluate_policy",
    "events_of",
    "trigger",
]

log = logging.getLogger(__name__)

#: Most reports one pass of a policy reads (a backlog is read over the next passes).
MAX_REPORTS_PER_PASS = 1_000
#: The events a policy can act on.
EVENTS = ("drift", "performance_drop", "data_quality")
#: Which event an alert of each monitor check raises.
EVENT_OF_CHECK = {
    "feature_drift": "drift",
    "prediction_drift": "drift",
    "performance": "performance_drop",
    "performance_estimate": "performance_drop",
    "estimated_performance": "performance_drop",
    "data_quality": "data_quality",
}


def events_of(report: MonitorReport) -> set[str]:
    """The events a report raises (none unless its status is ``alert``)."""
    if report.status != "alert":
        return set()
    found = set()
    for alert in report.alerts or ():
        check = str(alert.get("check", ""))
        event = EVENT_OF_CHECK.get(check)
        if event is None and check.startswith("performance"):
            event = "performance_drop"
        if event is not None:
            found.add(event)
    return found


def _reason(reports: Sequence[MonitorReport], events: set[str]) -> str:
    first = min(r.window_start_ms for r in reports)
    last = max(r.window_end_ms for r in reports)
    said = []
    for report in reports:
        for alert in report.alerts or ():
            text = f"{alert.get('check')}: {alert.get('reason')}"
            if text not in said:
                said.append(text)
    return (
        f"{', '.join(sorted(events))} in {len(reports)} report(s) "
        f"({', '.join(str(r.id) for r in reports)}) of windows {first}-{last}: "
        + "; ".join(said[:5])
    )


def trigger(
    policy: Policy,
    reports: Iterable[MonitorReport],
    *,
    client: TrackingClient,
    now: int,
) -> Episode | None:
    """Consume ``reports`` for ``policy`` and open an episode if some trigger it (see the
    module docstring); returns the new episode or None."""
    fresh = client.store.unconsumed_reports(policy.id, [r.id for r in reports])
    chosen = {int(x) for x in fresh}
    pending = [r for r in reports if r.id in chosen]
    if not pending:
        return None
    wanted = set(policy.on)
    firing = [r for r in pending if events_of(r) & wanted]
    events = set().union(*(events_of(r) & wanted for r in firing)) if firing else set()
    reason = _reason(firing, events) if firing else ""
    try:
        return client.store.record_trigger(
            policy.name,
            considered=[r.id for r in pending],
            trigger=[r.id for r in firing],
            events=sorted(events),
            reason=reason,
            detail={
                "reports_start_ms": min(r.window_start_ms for r in firing),
                "reports_end_ms": max(r.window_end_ms for r in firing),
            }
            if firing
            else None,
            now=now,
            actor=client.settings.actor,
        )
    except Conflict:
        # Another agent consumed these reports in the same instant (two transactions raced
        # past the checks; the database kept one): nothing to do, the other one acts.
        log.info("policy %s: reports consumed by another agent at the same time", policy.name)
        return None


def evaluate_policy(
    policy: Policy, *, client: TrackingClient, now: int, limit: int = MAX_REPORTS_PER_PASS
) -> Episode | None:
    """Read the policy's monitor reports not consumed yet (at most ``limit``, oldest window
    first; the next pass reads the rest) and trigger on them (see :func:`trigger`)."""
    if not policy.enabled:
        return None
    pending = client.store.pending_reports(policy.name, limit=limit)
    return trigger(policy, pending, client=client, now=now)
