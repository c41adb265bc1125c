"""The model registry: versions of packaged models, URIs, aliases with policies, rollback.

::

    mv = mloop.registry.log_model(run, clf, "fraud-detector", input_example=X[:5])
    mloop.registry.approve("fraud-detector", mv.version, by="risk-team", note="reviewed")
    mloop.registry.set_alias("fraud-detector", "champion", mv.version)
    model = mloop.registry.load("models:/fraud-detector@champion")
"""

from mloop.registry.assess import Gate, check_gate, evaluate
from mloop.registry.card import ModelCard, model_card, set_card_fields
from mloop.registry.core import (
    approve,
    delete_version,
    download,
    get_policy,
    list_models,
    list_versions,
    load,
    log_model,
    read_package_manifest,
    register,
    resolve,
    rollback,
    set_alias,
    set_policy,
)
from mloop.registry.lineage import Lineage, lineage
from mloop.registry.uri import ModelRef, parse_model_uri
from mloop.store.base import AliasChange, ModelRecord, ModelVersion, RegisteredModel

__all__ = [
    "AliasChange",
    "Gate",
    "Lineage",
    "ModelCard",
    "ModelRecord",
    "ModelRef",
    "ModelVersion",
    "RegisteredModel",
    "approve",
    "check_gate",
    "delete_version",
    "download",
    "evaluate",
    "get_policy",
    "lineage",
    "list_models",
    "list_versions",
    "load",
    "log_model",
    "model_card",
    "parse_model_uri",
    "read_package_manifest",
    "register",
    "resolve",
    "rollback",
    "set_alias",
    "set_card_fields",
    "set_policy",
]
