"""scikit-learn in the skops format: no pickle, and every non-default type is declared.

At save time the types skops would not load by default are listed
(``skops.io.get_untrusted_types``); each must be in :data:`SAFE_TYPES` or in the caller's
``trusted_types``, and the ones used are recorded in the manifest. At load time the file's
untrusted types are checked against that list before skops reads the object, and any other
type is refused unless ``trusted=True``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import Forbidden, InvalidInput
from mloop.models.flavors.base import Flavor, Predictor, library_version

__all__ = ["DENIED_MODULES", "MODEL_FILE", "SAFE_TYPES", "SklearnFlavor"]

MODEL_FILE = "model.skops"

SAFE_TYPES: frozenset[str] = frozenset(
    {
        # Cython internals of scikit-learn's trees and losses: plain state, no code.
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfPoissonLoss",
        "sklearn._loss.loss.AbsoluteError",
        "sklearn._loss.loss.PinballLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfPoissonLoss",
        "sklearn._loss._loss.CyAbsoluteError",
        "sklearn._loss._loss.CyPinballLoss",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.utils._bunch.Bunch",
        "collections.OrderedDict",
        "collections.defaultdict",
    }
)
"""Types beyond skops' own defaults that mloop loads without ``trusted=True``."""

DENIED_MODULES: tuple[str, ...] = (
    "builtins",
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "importlib",
    "pickle",
    "marshal",
    "shutil",
    "socket",
    "ctypes",
    "runpy",
    "code",
    "pty",
    "io",
    "functools",
    "operator",
    "types",
)
"""Modules whose types are never accepted as declared types: they can run arbitrary code."""


def _denied(type_name: str) -> bool:
    root = type_name.split(".", maxsplit=1)[0].lstrip("_")
    return root in DENIED_MODULES


class _SklearnPredictor(Predictor):
    def __init__(self, raw: Any, config: dict[str, Any]) -> None:
        self.raw = raw
        self.frame_input = bool(config.get("frame_input", True))

    def _prepare(self, data: Any) -> Any:
        if not self.frame_input and hasattr(data, "to_numpy"):
            return data.to_numpy()
        return data

    def predict(self, data: Any) -> Any:
        return self.raw.predict(self._prepare(data))

    def has_proba(self) -> bool:
        # scikit-learn hides predict_proba where it is unavailable (SVC without probability).
        return callable(getattr(self.raw, "predict_proba", None))

    def predict_proba(self, data: Any) -> Any:
        return self.raw.predict_proba(self._prepare(data))

    def predict_with_proba(self, data: Any) -> tuple[Any, Any]:
        # For these estimators predict is, by definition, the class of highest probability:
        # one pass through the model gives both (the trees are walked once, not twice).
        final = self.raw.steps[-1][1] if hasattr(self.raw, "steps") else self.raw
        classes = getattr(self.raw, "classes_", None)
        if type(final).__name__ not in _ARGMAX_OF_PROBA or classes is None:
            return super().predict_with_proba(data)
        proba = self.raw.predict_proba(self._prepare(data))
        return np.asarray(classes)[np.argmax(proba, axis=1)], proba


#: Classifiers whose predict is classes_[argmax(predict_proba)] (ties: the first class, in both).
_ARGMAX_OF_PROBA = frozenset(
    {
        "HistGradientBoostingClassifier", "RandomForestClassifier", "ExtraTreesClassifier",
        "DecisionTreeClassifier", "ExtraTreeClassifier", "GradientBoostingClassifier",
        "LogisticRegression",
    }
)  # fmt: skip


class SklearnFlavor(Flavor):
    """scikit-learn estimators and pipelines, stored with skops."""

    name = "sklearn"
    distribution = "scikit-learn"

    def requirements(self) -> list[str]:
        return [
            f"scikit-learn=={library_version('scikit-learn')}",
            f"skops=={library_version('skops')}",
        ]

    def save(self, model: Any, folder: Path, *, trusted_types: list[str]) -> dict[str, Any]:
        sio = importlib.import_module("skops.io")  # a core dependency
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data: bytes = sio.dumps(model)
        except Exception as exc:
            raise InvalidInput(
                f"skops cannot save this {type(model).__name__}: {type(exc).__name__}: {exc}; "
                "use the pyfunc flavor (loads only with trusted=True) if it holds custom objects",
                field="model",
            ) from exc
        needed = sorted(set(sio.get_untrusted_types(data=data)))
        declared = set(trusted_types)
        denied = [t for t in needed if _denied(t)]
        unknown = [t for t in needed if t not in SAFE_TYPES and t not in declared]
        if denied:
            raise InvalidInput(
                f"the model holds type(s) that can run code: {', '.join(denied)}; "
                "the sklearn flavor refuses them — use the pyfunc flavor (trusted loading only)",
                field="trusted_types",
            )
        if unknown:
            raise InvalidInput(
                f"the model holds type(s) that skops does not trust by default: "
                f"{', '.join(unknown)}; if you trust them, pass trusted_types={unknown!r}",
                field="trusted_types",
                types=unknown,
            )
        (folder / MODEL_FILE).write_bytes(data)
        return {
            "model_file": MODEL_FILE,
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "trusted_types": needed,
            "frame_input": hasattr(model, "feature_names_in_"),
        }

    def load(self, folder: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        sio = importlib.import_module("skops.io")
        path = folder / str(config.get("model_file", MODEL_FILE))
        data = path.read_bytes()
        try:
            untrusted = sorted(set(sio.get_untrusted_types(data=data)))
        except Exception as exc:
            raise InvalidInput(
                f"{path.name} is not a readable skops file: {type(exc).__name__}: {exc}",
                field=path.name,
            ) from exc
        declared = config.get("trusted_types", [])
        if not isinstance(declared, list) or not all(isinstance(t, str) for t in declared):
            raise InvalidInput(
                "model manifest field 'flavor_config.trusted_types' must be a list of type names",
                field="flavor_config.trusted_types",
            )
        allowed = SAFE_TYPES | {t for t in declared if not _denied(t)}
        refused = [t for t in untrusted if t not in allowed]
        if refused and not trusted:
            raise Forbidden(
                f"{path.name} holds type(s) that are neither skops defaults, mloop's safe list "
                f"nor declared at save time: {', '.join(refused)}; loading them could run code. "
                "Pass trusted=True only if you trust where this package came from",
                field=path.name,
                types=refused,
            )
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                raw = sio.loads(data, trusted=untrusted)
        except Exception as exc:
            raise InvalidInput(
                f"{path.name} could not be loaded by skops: {type(exc).__name__}: {exc}",
                field=path.name,
            ) from exc
        return _SklearnPredictor(raw, config)

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        return _SklearnPredictor(model, config)
