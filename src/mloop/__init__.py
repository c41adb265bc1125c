"""mloop: the whole machine-learning lifecycle as one closed loop.

The Python API::

    import mloop

    with mloop.start_run(experiment="fraud", run_name="baseline") as run:
        run.log_params({"lr": 0.01, "depth": 6})
        run.log_metric("loss", 0.3, step=3)
        run.log_artifact("plots/roc.png")
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from mloop import errors
from mloop.artifacts.gc import GcReport
from mloop.audit import AuditReport
from mloop.config import Settings, load_settings
from mloop.store.base import ArtifactEntry, DatasetVersion, Experiment, Metric, Run, RunStatus
from mloop.tracking.client import RunPage, TrackingClient
from mloop.tracking.fluent import (
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    download_artifacts,
    end_run,
    flush,
    gc,
    get_experiment,
    get_metric_history,
    get_run,
    list_artifacts,
    list_experiments,
    log_artifact,
    log_artifacts,
    log_batch,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    rename_experiment,
    restore_experiment,
    restore_run,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
    use_client,
    verify_audit,
)
from mloop.tracking.run import ActiveRun

if TYPE_CHECKING:
    from mloop import monitoring as monitors
    from mloop.autolog import autolog as autolog
    from mloop.loop import policies as policies
    from mloop.pipelines.steps import pipeline as pipeline
    from mloop.pipelines.steps import step as step
    from mloop.pipelines.sweep import sweep as sweep
    from mloop.registry.assess import Gate as Gate
    from mloop.registry.assess import evaluate as evaluate

__all__ = [
    "ActiveRun",
    "ArtifactEntry",
    "AuditReport",
    "DatasetVersion",
    "Experiment",
    "GcReport",
    "Metric",
    "Run",
    "RunPage",
    "RunStatus",
    "Settings",
    "TrackingClient",
    "__version__",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "download_artifacts",
    "end_run",
    "errors",
    "flush",
    "gc",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "list_artifacts",
    "list_experiments",
    "load_settings",
    "log_artifact",
    "log_artifacts",
    "log_batch",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "monitors",
    "policies",
    "rename_experiment",
    "restore_experiment",
    "restore_run",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
    "use_client",
    "verify_audit",
]

# Subpackages with heavy imports (pandas, SciPy) load on first use, so `import mloop` stays fast.
_LAZY_SUBPACKAGES = frozenset(
    {"autolog", "data", "evaluation", "loop", "models", "pipelines", "registry"}
)


# Top-level names of subpackages under another name: ``mloop.monitors`` is mloop.monitoring.
_LAZY_ALIASES = {"monitors": "mloop.monitoring", "policies": "mloop.loop.policies"}

# Top-level names whose modules load on first use: name -> module.
_LAZY_NAMES = {
    "Gate": "mloop.registry.assess",
    "evaluate": "mloop.registry.assess",
    "pipeline": "mloop.pipelines.steps",
    "step": "mloop.pipelines.steps",
    "sweep": "mloop.pipelines.sweep",
}


def __getattr__(name: str) -> object:
    """Import a lazily loaded subpackage (``mloop.data``) or name (``mloop.evaluate``)."""
    import importlib

    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"mloop.{name}")
    if name in _LAZY_ALIASES:
        return importlib.import_module(_LAZY_ALIASES[name])
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'mloop' has no attribute {name!r}")
