"""Pipelines: steps with lineage and caching (being built; issue 5).

So far this package holds the code part of a step's cache key — ``code_digest(step)`` hashes the
step's normalised source and the project functions, classes and constants it reaches, so that a
change in a helper invalidates the cache — and cron schedules (``CronSchedule``). Steps,
materialisers, executors, sweeps and the scheduler come next.
"""

from mloop.pipelines.code_digest import CodeDigest, code_digest
from mloop.pipelines.cron import CronSchedule

__all__ = ["CodeDigest", "CronSchedule", "code_digest"]
