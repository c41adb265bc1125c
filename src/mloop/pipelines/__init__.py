"""Pipelines: typed steps with lineage and caching, run in-process, on a process pool or on Ray.

``@step`` and ``@pipeline`` define them; ``Pipeline.graph(**params)`` traces the body into a
checked ``Graph`` before anything runs; ``Pipeline.run(executor=...)`` (``run_pipeline``) runs
it as a tracked run with a child run per step, materialising outputs into the artifact store,
skipping steps whose cache key (code digest with the helpers it calls, parameters, input
digests, materialiser versions, ``cache_version``) matches, with retries, timeouts, ``resume``
and why-rerun. Executors: ``local``, ``process`` (``mloop.pipelines.executors``) and ``ray``
(``mloop.pipelines.ray_executor``). ``mloop.pipelines.sweep.sweep`` tunes parameters on Optuna,
with its storage in mloop's database; ``mloop.pipelines.scheduler`` runs pipelines on cron
schedules (``CronSchedule``) under database leases.
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
