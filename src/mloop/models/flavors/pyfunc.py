"""Custom Python models, pickled (with cloudpickle when installed, else pickle).

Unpickling runs code chosen by whoever wrote the file, so :meth:`PyfuncFlavor.load` refuses
before reading a byte of the pickle unless the caller passed ``trusted=True``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from mloop.errors import Forbidden, InvalidInput
from mloop.models.flavors.base import Flavor, Predictor, library_version, require

__all__ = ["MODEL_FILE", "PyfuncFlavor"]

MODEL_FILE = "model.pkl"


class _PyfuncPredictor(Predictor):
    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def predict(self, data: Any) -> Any:
        return self.raw.predict(data)

    def has_proba(self) -> bool:
        return callable(getattr(self.raw, "predict_proba", None))

    def predict_proba(self, data: Any) -> Any:
        return self.raw.predict_proba(data)


def _pickler() -> tuple[str, Any]:
    try:
        import cloudpickle  # type: ignore[import-untyped]
    except ImportError:
        return "pickle", pickle
    return "cloudpickle", cloudpickle


class PyfuncFlavor(Flavor):
    """Any object with ``predict`` (e.g. a :class:`~mloop.models.PythonModel` subclass)."""

    name = "pyfunc"
    distribution = "mloop"
    executes_code = True

    def requirements(self) -> list[str]:
        name, _ = _pickler()
        return [f"cloudpickle=={library_version('cloudpickle')}"] if name == "cloudpickle" else []

    def version(self) -> str:
        name, _ = _pickler()
        return library_version("cloudpickle") if name == "cloudpickle" else "pickle"

    def save(self, model: Any, folder: Path, *, trusted_types: list[str]) -> dict[str, Any]:
        if not callable(getattr(model, "predict", None)):
            raise InvalidInput(
                f"the pyfunc flavor needs an object with a predict method; "
                f"{type(model).__name__} has none",
                field="model",
            )
        name, module = _pickler()
        try:
            data = module.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise InvalidInput(
                f"cannot pickle the {type(model).__name__} model: {type(exc).__name__}: {exc}",
                field="model",
            ) from exc
        (folder / MODEL_FILE).write_bytes(data)
        return {
            "model_file": MODEL_FILE,
            "serializer": name,
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        }

    def load(self, folder: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        path = folder / str(config.get("model_file", MODEL_FILE))
        if not trusted:
            raise Forbidden(
                f"{path.name} is a pickle (flavor 'pyfunc'): loading it runs code from the "
                "package. Pass trusted=True only if you trust where this package came from",
                field=path.name,
            )
        if config.get("serializer") == "cloudpickle":
            # cloudpickle's output needs cloudpickle importable to resolve its helpers.
            require("cloudpickle", "pyfunc", "loading a cloudpickled pyfunc model")
        with path.open("rb") as fh:
            raw = pickle.load(fh)  # only reached with trusted=True
        if not callable(getattr(raw, "predict", None)):
            raise InvalidInput(f"{path.name} holds a {type(raw).__name__} without predict")
        return _PyfuncPredictor(raw)

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        return _PyfuncPredictor(model)
