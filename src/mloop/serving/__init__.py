"""Model serving: one ASGI app per deployment, speaking MLflow's scoring protocol, the Open
Inference Protocol and plain ``/predict``, with adaptive batching, a prediction log, canary
and shadow traffic, and alias following.

::

    mloop.serving.serve("fraud-detector@champion", config=ServingConfig(port=8080))
    mloop.serving.set_canary("fraud-detector", version=4, percent=10)
    table = mloop.serving.read_predictions("fraud-detector", start_ms=..., end_ms=...)

Names load lazily, so importing :mod:`mloop.serving` costs nothing until one is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.serving.app import create_app
    from mloop.serving.config import ServingConfig
    from mloop.serving.deployments import (
        Targets,
        clear_canary,
        create_deployment,
        delete_deployment,
        deployment_history,
        follow_alias,
        get_deployment,
        list_deployments,
        pin_version,
        promote_canary,
        resolve_targets,
        rollback,
        set_canary,
        set_shadow,
    )
    from mloop.serving.predlog import PredictionBatch, PredictionLog
    from mloop.serving.predlog_read import read_feedback, read_predictions
    from mloop.serving.server import serve
    from mloop.store.records import Deployment, DeploymentChange

_NAMES = {
    "create_app": "mloop.serving.app",
    "ServingConfig": "mloop.serving.config",
    "serve": "mloop.serving.server",
    "PredictionBatch": "mloop.serving.predlog",
    "PredictionLog": "mloop.serving.predlog",
    "read_feedback": "mloop.serving.predlog_read",
    "read_predictions": "mloop.serving.predlog_read",
    "Deployment": "mloop.store.records",
    "DeploymentChange": "mloop.store.records",
    **dict.fromkeys(
        (
            "Targets", "clear_canary", "create_deployment", "delete_deployment",
            "deployment_history", "follow_alias", "get_deployment", "list_deployments",
            "pin_version", "promote_canary",
            "resolve_targets", "rollback", "set_canary", "set_shadow",
        ),
        "mloop.serving.deployments",
    ),
}  # fmt: skip

__all__ = [
    "Deployment",
    "DeploymentChange",
    "PredictionBatch",
    "PredictionLog",
    "ServingConfig",
    "Targets",
    "clear_canary",
    "create_app",
    "create_deployment",
    "delete_deployment",
    "deployment_history",
    "follow_alias",
    "get_deployment",
    "list_deployments",
    "pin_version",
    "promote_canary",
    "read_feedback",
    "read_predictions",
    "resolve_targets",
    "rollback",
    "serve",
    "set_canary",
    "set_shadow",
]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'mloop.serving' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
