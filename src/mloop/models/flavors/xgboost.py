"""XGBoost in its native JSON format (no code runs on load).

Both a ``Booster`` and the scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``, …) are
saved with their own ``save_model``; the wrapper's class name is recorded and restored from a
fixed list, never imported from the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput
from mloop.models.flavors.base import Flavor, Predictor, require

__all__ = ["MODEL_FILE", "XGBoostFlavor"]

MODEL_FILE = "model.xgb.json"
_CLASSES = (
    "Booster",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)


class _XGBPredictor(Predictor):
    def __init__(self, raw: Any, config: dict[str, Any]) -> None:
        self.raw = raw
        self.is_booster = config.get("model_class") == "Booster"
        self.frame_input = bool(config.get("frame_input", False))

    def _prepare(self, data: Any) -> Any:
        if not self.frame_input and hasattr(data, "to_numpy"):
            data = data.to_numpy()
        if self.is_booster:
            xgb = require("xgboost", "xgboost", "predicting with an XGBoost model")
            return xgb.DMatrix(data)
        return data

    def predict(self, data: Any) -> Any:
        return self.raw.predict(self._prepare(data))

    def has_proba(self) -> bool:
        return not self.is_booster and callable(getattr(self.raw, "predict_proba", None))

    def predict_proba(self, data: Any) -> Any:
        return self.raw.predict_proba(self._prepare(data))


class XGBoostFlavor(Flavor):
    """XGBoost boosters and scikit-learn wrappers, stored as native JSON."""

    name = "xgboost"
    distribution = "xgboost"

    def save(self, model: Any, folder: Path, *, trusted_types: list[str]) -> dict[str, Any]:
        require("xgboost", "xgboost", "saving an XGBoost model")
        class_name = type(model).__name__
        if class_name not in _CLASSES:
            raise InvalidInput(
                f"the xgboost flavor saves {', '.join(_CLASSES)}, not {class_name}; "
                "use the pyfunc flavor for other classes",
                field="flavor",
            )
        model.save_model(str(folder / MODEL_FILE))
        if class_name == "Booster":
            names = model.feature_names
        else:
            names = getattr(model.get_booster(), "feature_names", None)
        return {"model_file": MODEL_FILE, "model_class": class_name, "frame_input": bool(names)}

    def load(self, folder: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        xgb = require("xgboost", "xgboost", "loading an XGBoost model")
        class_name = config.get("model_class")
        if class_name not in _CLASSES:
            raise InvalidInput(
                f"model manifest field 'flavor_config.model_class' is {class_name!r}; "
                f"the xgboost flavor loads one of {', '.join(_CLASSES)}",
                field="flavor_config.model_class",
            )
        raw = getattr(xgb, str(class_name))()
        try:
            raw.load_model(str(folder / str(config.get("model_file", MODEL_FILE))))
        except Exception as exc:
            raise InvalidInput(
                f"{MODEL_FILE} could not be loaded by xgboost: {type(exc).__name__}: {exc}",
                field=MODEL_FILE,
            ) from exc
        return _XGBPredictor(raw, config)

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        return _XGBPredictor(model, config)
