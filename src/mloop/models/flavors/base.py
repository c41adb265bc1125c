"""The flavor interface, the name -> class registry, and detection from a model's class.

A flavor knows one library's native format: how to write a model into a package folder, how to
read it back, and how to call it. Flavors are found by name and imported only when used, so a
missing optional library costs nothing until its flavor is needed, and then raises
:class:`~mloop.errors.MissingExtra` naming the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from mloop.errors import InvalidInput, InvalidState, MissingExtra

__all__ = [
    "FLAVORS",
    "Flavor",
    "Predictor",
    "detect_flavor",
    "get_flavor",
    "library_version",
    "require",
]

FLAVORS: dict[str, str] = {
    "sklearn": "mloop.models.flavors.sklearn:SklearnFlavor",
    "xgboost": "mloop.models.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "mloop.models.flavors.lightgbm:LightGBMFlavor",
    "onnx": "mloop.models.flavors.onnx:OnnxFlavor",
    "pyfunc": "mloop.models.flavors.pyfunc:PyfuncFlavor",
}
"""Every flavor by name, as ``module:Class``; imported only when chosen."""

# Root module of a model's class -> flavor; checked along the class's MRO, most derived first.
_MODULE_FLAVOR = {
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "sklearn": "sklearn",
}


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional library or raise MissingExtra naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(extra=extra, module=module, purpose=purpose) from None


def library_version(distribution: str) -> str:
    """The installed version of a distribution, or ``"unknown"``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Predictor(ABC):
    """A loaded model bound to its flavor: the object ``LoadedModel`` calls."""

    raw: Any

    @abstractmethod
    def predict(self, data: Any) -> Any:
        """Call the model on coerced input."""

    def has_proba(self) -> bool:
        """True when the model gives class probabilities."""
        return False

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities; only called when :meth:`has_proba` is true."""
        raise InvalidState(f"the {type(self.raw).__name__} model has no predict_proba")

    def predict_with_proba(self, data: Any) -> tuple[Any, Any]:
        """Predictions and class probabilities together (flavors may do it in one pass)."""
        return self.predict(data), self.predict_proba(data)


class Flavor(ABC):
    """One library's native format."""

    name: ClassVar[str]
    #: Distribution whose version is recorded as ``flavor_version``.
    distribution: ClassVar[str]
    #: True when loading runs code from the package (pickle): needs ``trusted=True``.
    executes_code: ClassVar[bool] = False

    @abstractmethod
    def save(self, model: Any, folder: Path, *, trusted_types: list[str]) -> dict[str, Any]:
        """Write the model's files into ``folder``; return the flavor's config for the manifest."""

    @abstractmethod
    def load(self, folder: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        """Read the model back from a folder whose digests were already verified."""

    @abstractmethod
    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        """Bind an in-memory model (used at save time to infer the output signature)."""

    def requirements(self) -> list[str]:
        """Pinned requirements for the package's ``requirements.txt``."""
        return [f"{self.distribution}=={library_version(self.distribution)}"]

    def version(self) -> str:
        """Installed version of the flavor's library."""
        return library_version(self.distribution)


def get_flavor(name: str) -> Flavor:
    """The flavor registered under ``name``."""
    target = FLAVORS.get(name)
    if target is None:
        raise InvalidInput(
            f"unknown model flavor {name!r}; use one of {', '.join(sorted(FLAVORS))}",
            field="flavor",
        )
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    flavor: Flavor = cls()
    return flavor


def detect_flavor(model: Any) -> str:
    """Pick the flavor from the model's class (its defining library), without importing any."""
    from mloop.models.pyfunc_model import PythonModel

    if isinstance(model, PythonModel):
        return "pyfunc"
    for klass in type(model).__mro__:
        root = (klass.__module__ or "").split(".")[0]
        if root in _MODULE_FLAVOR:
            return _MODULE_FLAVOR[root]
    if callable(getattr(model, "predict", None)):
        return "pyfunc"
    raise InvalidInput(
        f"cannot tell which flavor saves a {type(model).__module__}.{type(model).__qualname__}; "
        f"pass flavor= (one of {', '.join(sorted(FLAVORS))}) or give it a predict method",
        field="flavor",
    )
