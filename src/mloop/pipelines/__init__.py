"""Pipelines: steps with lineage and caching (being built; issue 5).

So far this package holds the code part of a step's cache key — ``code_digest(step)`` hashes the
step's normalised source and the project functions, classes and constants it reaches, so that a
change in a helper invalidates the cache — cron schedules (``CronSchedule``), and the
definitions: ``@step``, ``@pipeline`` and the checked ``Graph`` that ``Pipeline.graph(**params)``
traces — and the materialisers that turn step outputs into verified files (``materialise`` /
``dematerialise``). Executors, caching, sweeps and the scheduler come next.
"""

from mloop.pipelines.code_digest import CodeDigest, code_digest
from mloop.pipelines.cron import CronSchedule
from mloop.pipelines.graph import Edge, Graph, Ref, StepCall
from mloop.pipelines.materialisers import (
    Materialiser,
    OutputRecord,
    dematerialise,
    materialise,
    materialiser_for,
    register_materialiser,
    registered_materialisers,
    unregister_materialiser,
)
from mloop.pipelines.steps import Output, Pipeline, Step, StepOptions, pipeline, step

__all__ = [
    "CodeDigest",
    "CronSchedule",
    "Edge",
    "Graph",
    "Materialiser",
    "Output",
    "OutputRecord",
    "Pipeline",
    "Ref",
    "Step",
    "StepCall",
    "StepOptions",
    "code_digest",
    "dematerialise",
    "materialise",
    "materialiser_for",
    "pipeline",
    "register_materialiser",
    "registered_materialisers",
    "step",
    "unregister_materialiser",
]
