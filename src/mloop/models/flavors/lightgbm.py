"""LightGBM in its native text format (no code runs on load).

The text file holds the ``Booster``. For the scikit-learn wrappers (``LGBMClassifier``, …) the
class labels and the kind of estimator are recorded in the manifest, so that ``predict`` returns
labels and ``predict_proba`` probabilities as the wrapper would; ``raw`` is the Booster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import InvalidInput
from mloop.models.flavors.base import Flavor, Predictor, require

__all__ = ["MODEL_FILE", "LightGBMFlavor"]

MODEL_FILE = "model.lgb.txt"
_CLASSES = ("Booster", "LGBMClassifier", "LGBMRegressor", "LGBMRanker", "LGBMModel")


class _LGBPredictor(Predictor):
    def __init__(self, raw: Any, config: dict[str, Any]) -> None:
        self.raw = raw
        self.classes: list[Any] | None = config.get("classes")
        self.frame_input = bool(config.get("frame_input", False))

    def _prepare(self, data: Any) -> Any:
        if not self.frame_input and hasattr(data, "to_numpy"):
            return data.to_numpy()
        return data

    def _proba(self, data: Any) -> np.ndarray[Any, Any]:
        out = np.asarray(self.raw.predict(self._prepare(data)))
        if out.ndim == 1:
            out = np.column_stack([1.0 - out, out])
        return out

    def predict(self, data: Any) -> Any:
        if self.classes is None:
            return self.raw.predict(self._prepare(data))
        index = np.argmax(self._proba(data), axis=1)
        return np.asarray(self.classes)[index]

    def has_proba(self) -> bool:
        return self.classes is not None

    def predict_proba(self, data: Any) -> Any:
        return self._proba(data)


class LightGBMFlavor(Flavor):
    """LightGBM boosters and scikit-learn wrappers, stored as native text."""

    name = "lightgbm"
    distribution = "lightgbm"

    def save(self, model: Any, folder: Path, *, trusted_types: list[str]) -> dict[str, Any]:
        require("lightgbm", "lightgbm", "saving a LightGBM model")
        class_name = type(model).__name__
        if class_name not in _CLASSES:
            raise InvalidInput(
                f"the lightgbm flavor saves {', '.join(_CLASSES)}, not {class_name}; "
                "use the pyfunc flavor for other classes",
                field="flavor",
            )
        booster = model if class_name == "Booster" else model.booster_
        booster.save_model(str(folder / MODEL_FILE))
        classes = None
        if hasattr(model, "classes_") and class_name != "Booster":
            classes = np.asarray(model.classes_).tolist()
        names = booster.feature_name()
        generic = all(n == f"Column_{i}" for i, n in enumerate(names))
        return {
            "model_file": MODEL_FILE,
            "model_class": class_name,
            "classes": classes,
            "frame_input": not generic,
        }

    def load(self, folder: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        lgb = require("lightgbm", "lightgbm", "loading a LightGBM model")
        classes = config.get("classes")
        if classes is not None and (not isinstance(classes, list) or not classes):
            raise InvalidInput(
                "model manifest field 'flavor_config.classes' must be null or a non-empty list",
                field="flavor_config.classes",
            )
        path = folder / str(config.get("model_file", MODEL_FILE))
        try:
            raw = lgb.Booster(model_file=str(path))
        except Exception as exc:
            raise InvalidInput(
                f"{path.name} could not be loaded by lightgbm: {type(exc).__name__}: {exc}",
                field=path.name,
            ) from exc
        return _LGBPredictor(raw, config)

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        class _Wrapped(Predictor):
            def __init__(self) -> None:
                self.raw = model

            def predict(self, data: Any) -> Any:
                return model.predict(data if config.get("frame_input") else _array(data))

        return _Wrapped()


def _array(data: Any) -> Any:
    return data.to_numpy() if hasattr(data, "to_numpy") else data
