"""Pipelines: steps with lineage and caching (being built; issue 5).

So far this package holds the code part of a step's cache key — ``code_digest(step)`` hashes the
step's normalised source and the project functions, classes and constants it reaches, so that a
change in a helper invalidates the cache — cron schedules (``CronSchedule``), and the
definitions: ``@step``, ``@pipeline`` and the checked ``Graph`` that ``Pipeline.graph(**params)``
traces — and the materialisers that turn step outputs into verified files (``materialise`` /
``dematerialise``) — and the runner: ``Pipeline.run(executor=...)`` / ``run_pipeline`` run a
pipeline as a tracked run with a child run per step, the step cache and why-rerun, retries,
timeouts and ``resume``, on the ``local`` or ``process`` executor (``mloop.pipelines.executors``;
the ``Executor`` protocol is what other backends implement). Sweeps and the scheduler come next.
"""

from mloop.pipelines.code_digest import CodeDigest, code_digest
from mloop.pipelines.cron import CronSchedule
from mloop.pipelines.executors import (
    Executor,
    LocalExecutor,
    ProcessExecutor,
    open_executor,
    register_executor,
)
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
from mloop.pipelines.runner import (
    PipelineResult,
    StepFailed,
    StepResult,
    explain_rerun,
    run_pipeline,
)
from mloop.pipelines.steps import Output, Pipeline, Step, StepOptions, pipeline, step

__all__ = [
    "CodeDigest",
    "CronSchedule",
    "Edge",
    "Executor",
    "Graph",
    "LocalExecutor",
    "Materialiser",
    "Output",
    "OutputRecord",
    "Pipeline",
    "PipelineResult",
    "ProcessExecutor",
    "Ref",
    "Step",
    "StepCall",
    "StepFailed",
    "StepOptions",
    "StepResult",
    "code_digest",
    "dematerialise",
    "explain_rerun",
    "materialise",
    "materialiser_for",
    "open_executor",
    "pipeline",
    "register_executor",
    "register_materialiser",
    "registered_materialisers",
    "run_pipeline",
    "step",
    "unregister_materialiser",
]
