"""What the XGBoost and LightGBM patches share: the scikit-learn wrapper handler and patching
``<library>.train`` plus the own ``fit`` of every wrapper class."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from mloop.autolog.patches import Patch, apply
from mloop.autolog.session import FitCall, FitContext, intercept
from mloop.autolog.sklearn import record_estimator_fit

__all__ = ["Handler", "WrapperHandler", "patch_boosting"]


class Handler(Protocol):
    """What :func:`mloop.autolog.session.intercept` drives for one kind of call."""

    library: str

    def wants(self, call: FitCall) -> bool: ...
    def label(self, call: FitCall) -> str: ...
    def prepare(self, call: FitCall, context: FitContext) -> None: ...
    def record(self, call: FitCall, result: Any, context: FitContext) -> None: ...


class WrapperHandler:
    """Reads ``fit`` of a library's scikit-learn wrappers (``XGBClassifier``, ``LGBMRegressor``,
    …): the eval results and best iteration through the library's own accessors."""

    def __init__(
        self,
        library: str,
        evals: Callable[[Any], dict[str, Any]],
        best_iteration: Callable[[Any], int | None],
    ) -> None:
        self.library = library
        self._evals = evals
        self._best_iteration = best_iteration

    def wants(self, call: FitCall) -> bool:
        return True

    def label(self, call: FitCall) -> str:
        return f"{type(call.target).__name__}.fit"

    def prepare(self, call: FitCall, context: FitContext) -> None:
        return None

    def record(self, call: FitCall, result: Any, context: FitContext) -> None:
        record_estimator_fit(call, context, self.library, self._evals, self._best_iteration)


def _subclasses(cls: type, library: str) -> list[type]:
    found = [cls]
    sub: type
    for sub in cls.__subclasses__():
        if sub.__module__.startswith(library):
            found.extend(_subclasses(sub, library))
    return found


def patch_boosting(library: str, base_class: str, train: Handler, wrapper: Handler) -> list[Patch]:
    """Patch ``<library>.train`` and the own ``fit`` of ``base_class`` and its subclasses."""
    module = importlib.import_module(library)

    def run_train(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return intercept(train, original, args, kwargs)

    def run_fit(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return intercept(wrapper, original, args, kwargs)

    patches = [apply(module, "train", run_train)]
    for cls in dict.fromkeys(_subclasses(getattr(module, base_class), library)):
        if "fit" in vars(cls):
            patches.append(apply(cls, "fit", run_fit))
    return patches
