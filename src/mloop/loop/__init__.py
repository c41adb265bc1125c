"""The closed loop: policies map monitor events to retraining, a gate, a canary rollout and a
promotion or rollback; the agent runs it all.

::

    import mloop
    from mloop.loop import Canary

    mloop.policies.create(deployment="fraud-api", retrain="flows.fraud:training",
                          rollout=Canary(steps=[0.1, 0.5, 1.0], hold="15m"))
    mloop.loop.Agent().run_forever()           # or: mloop agent

``mloop.policies`` is :mod:`mloop.loop.policies`. Names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.loop import policies as policies
    from mloop.loop.agent import Agent, TickResult
    from mloop.loop.alerts import AlertSender, check_webhook
    from mloop.loop.episodes import EpisodeRunner
    from mloop.loop.rollout import Canary, Health, check_health, parse_duration
    from mloop.loop.triggers import EVENT_OF_CHECK, EVENTS, events_of
    from mloop.store.records import AlertDelivery, Episode, Policy

_NAMES = {
    "Agent": "mloop.loop.agent",
    "TickResult": "mloop.loop.agent",
    "AlertSender": "mloop.loop.alerts",
    "check_webhook": "mloop.loop.alerts",
    "EpisodeRunner": "mloop.loop.episodes",
    "Canary": "mloop.loop.rollout",
    "Health": "mloop.loop.rollout",
    "check_health": "mloop.loop.rollout",
    "parse_duration": "mloop.loop.rollout",
    "EVENTS": "mloop.loop.triggers",
    "EVENT_OF_CHECK": "mloop.loop.triggers",
    "events_of": "mloop.loop.triggers",
    "AlertDelivery": "mloop.store.records",
    "Episode": "mloop.store.records",
    "Policy": "mloop.store.records",
}

__all__ = [
    "EVENTS",
    "EVENT_OF_CHECK",
    "Agent",
    "AlertDelivery",
    "AlertSender",
    "Canary",
    "Episode",
    "EpisodeRunner",
    "Health",
    "Policy",
    "TickResult",
    "check_health",
    "check_webhook",
    "events_of",
    "parse_duration",
    "policies",
]


def __getattr__(name: str) -> Any:
    """Import a name (or the ``policies`` module) on first use."""
    if name == "policies":
        return import_module("mloop.loop.policies")
    if name in _NAMES:
        return getattr(import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'mloop.loop' has no attribute {name!r}")
