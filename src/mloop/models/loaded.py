"""A packaged model loaded for prediction: one ``predict`` over DataFrames, arrays and records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import MloopError, ModelCallFailed, NoPredictProba
from mloop.models.coerce import ExtraColumns, coerce_input, to_frame_or_array
from mloop.models.flavors.base import Predictor
from mloop.models.manifest import PackageManifest
from mloop.models.signature import Signature

__all__ = ["Inference", "LoadedModel", "ModelCallFailed", "NoPredictProba"]


@dataclass(frozen=True)
class Inference:
    """One model call: the coerced input, the predictions and (when asked) the probabilities."""

    prepared: Any
    predictions: Any
    probabilities: Any = None


@dataclass
class LoadedModel:
    """A verified, loaded package; call :meth:`predict` on any supported input."""

    manifest: PackageManifest
    predictor: Predictor = field(repr=False)
    path: Path | None = None

    @property
    def flavor(self) -> str:
        """The flavor that loaded the model (``sklearn``, ``xgboost``, …)."""
        return self.manifest.flavor

    @property
    def signature(self) -> Signature | None:
        """The signature enforced by :meth:`predict`, if the package has one."""
        return self.manifest.signature

    @property
    def digest(self) -> str:
        """The package's identity: the manifest digest."""
        return self.manifest.digest

    @property
    def raw(self) -> Any:
        """The underlying library object (estimator, booster, inference session, …)."""
        return self.predictor.raw

    @property
    def input_columns(self) -> list[str]:
        """Names of the signature's input columns, in order ([] without a column signature)."""
        return [] if self.signature is None else self.signature.column_names

    @property
    def has_proba(self) -> bool:
        """True when :meth:`predict_proba` is available."""
        return self.predictor.has_proba()

    @property
    def input_example(self) -> Any:
        """The stored input example (DataFrame or ndarray), or None."""
        from mloop.models.package import read_input_example

        if self.manifest.input_example is None or self.path is None:
            return None
        return read_input_example(self.path, self.manifest.input_example, self.signature)

    def prepare(self, data: Any, *, extra_columns: ExtraColumns = "error") -> Any:
        """Coerce ``data`` to the signature (see docs/models.md) without calling the model."""
        if self.signature is None:
            return to_frame_or_array(data)
        return coerce_input(data, self.signature, extra_columns=extra_columns)

    def predict(self, data: Any, *, extra_columns: ExtraColumns = "error") -> Any:
        """Predict on a DataFrame, an array, a list of records or a dict of columns.

        Returns an ndarray (or a DataFrame when the model returns one). Input that does not fit
        the signature raises InvalidInput naming the column or tensor.
        """
        prepared = self.prepare(data, extra_columns=extra_columns)
        return _as_output(self._call("predict", self.predictor.predict, prepared))

    def infer(
        self, data: Any, *, proba: bool = False, extra_columns: ExtraColumns = "error"
    ) -> Inference:
        """Coerce ``data`` once, predict, and with ``proba=True`` also give class probabilities
        (when the model has them). What a server logs comes from here."""
        prepared = self.prepare(data, extra_columns=extra_columns)
        if not (proba and self.predictor.has_proba()):
            predictions = _as_output(self._call("predict", self.predictor.predict, prepared))
            return Inference(prepared, predictions)
        both = self._call("predict", self.predictor.predict_with_proba, prepared)
        return Inference(prepared, _as_output(both[0]), _as_output(both[1]))

    @property
    def predict_proba(self) -> Callable[..., Any]:
        """Class probabilities: ``model.predict_proba(data, extra_columns="error")``.

        Only present when the model gives probabilities: otherwise reading the attribute raises
        :class:`NoPredictProba` (an InvalidState that is also an AttributeError, so
        ``hasattr(model, "predict_proba")`` is False, as for scikit-learn estimators).
        """
        if not self.predictor.has_proba():
            kind = self.manifest.flavor_config.get("model_class") or self.flavor
            raise NoPredictProba(
                f"this {self.flavor} model ({kind}) has no predict_proba; use predict",
                field="predict_proba",
            )
        return self._predict_proba

    def _predict_proba(self, data: Any, *, extra_columns: ExtraColumns = "error") -> Any:
        prepared = self.prepare(data, extra_columns=extra_columns)
        return _as_output(self._call("predict_proba", self.predictor.predict_proba, prepared))

    def _call(self, method: str, fn: Any, data: Any) -> Any:
        try:
            return fn(data)
        except MloopError:
            raise
        except Exception as exc:
            raise ModelCallFailed(
                f"the {self.flavor} model {self.digest[:12]} failed in {method}: "
                f"{type(exc).__name__}: {exc}",
                model=self.digest,
                method=method,
            ) from exc


def _as_output(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame | np.ndarray):
        return value
    if isinstance(value, pd.Series):
        return value.to_numpy()
    return np.asarray(value)
