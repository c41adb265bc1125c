"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts, search.

:class:`TrackingClient` holds the verbs; :mod:`mloop.tracking.fluent` puts them at module level
over a default client, and :class:`ActiveRun` is what ``start_run`` returns.
"""

from __future__ import annotations

from mloop.tracking.client import RunPage, TrackingClient
from mloop.tracking.fluent import default_client, reset_default_client, use_client
from mloop.tracking.liveness import reap_stale_runs
from mloop.tracking.run import ActiveRun, active_run

__all__ = [
    "ActiveRun",
    "RunPage",
    "TrackingClient",
    "active_run",
    "default_client",
    "reap_stale_runs",
    "reset_default_client",
    "use_client",
]
