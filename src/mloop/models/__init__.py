"""Packaged models: save a model with its manifest, load it back safely, predict on any input.

::

    from mloop.models import save_model, load_model

    manifest = save_model(clf, "out/fraud", input_example=X[:5])
    model = load_model("out/fraud")            # digests checked first; no pickle unless trusted
    model.predict([{"amount": 12.5, "country": "FR"}])

See docs/models.md for the folder format, the flavors, trust, signatures and coercion rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop.errors import ModelCallFailed, NoPredictProba
from mloop.models.coerce import ExtraColumns, coerce_input
from mloop.models.flavors.base import FLAVORS, detect_flavor
from mloop.models.loaded import LoadedModel
from mloop.models.manifest import FORMAT_VERSION, MANIFEST_FILE, FileDigest, PackageManifest
from mloop.models.package import load_model, read_manifest, save_model, verify_package
from mloop.models.pyfunc_model import PythonModel
from mloop.models.signature import (
    COLUMN_TYPES,
    ColumnSpec,
    ColumnType,
    Signature,
    TensorSpec,
    infer_signature,
)

if TYPE_CHECKING:
    import os

__all__ = [
    "COLUMN_TYPES",
    "FLAVORS",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "ColumnSpec",
    "ColumnType",
    "ExtraColumns",
    "FileDigest",
    "LoadedModel",
    "ModelCallFailed",
    "NoPredictProba",
    "PackageManifest",
    "PythonModel",
    "Signature",
    "TensorSpec",
    "coerce_input",
    "detect_flavor",
    "infer_signature",
    "load",
    "load_model",
    "read_manifest",
    "save_model",
    "verify_package",
]


def load(
    uri_or_path: str | os.PathLike[str], *, trusted: bool = False, client: Any = None
) -> LoadedModel:
    """Load a model from a registry URI (``models:/name@alias``, ``models:/name/4``) or from a
    package folder; every file is checked against its digest first."""
    text = str(uri_or_path)
    if text.startswith("models:/"):
        from mloop.registry import load as load_registered

        return load_registered(text, trusted=trusted, client=client)
    return load_model(uri_or_path, trusted=trusted)
