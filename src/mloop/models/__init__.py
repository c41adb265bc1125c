"""Packaged models: save a model with its manifest, load it back safely, predict on any input.

::

    from mloop.models import save_model, load_model

    manifest = save_model(clf, "out/fraud", input_example=X[:5])
    model = load_model("out/fraud")            # digests checked first; no pickle unless trusted
    model.predict([{"amount": 12.5, "country": "FR"}])

See docs/models.md for the folder format, the flavors, trust, signatures and coercion rules.
"""

from __future__ import annotations

from mloop.models.coerce import ExtraColumns, coerce_input
from mloop.models.flavors.base import FLAVORS, detect_flavor
from mloop.models.loaded import LoadedModel, ModelCallFailed, NoPredictProba
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
    "load_model",
    "read_manifest",
    "save_model",
    "verify_package",
]
