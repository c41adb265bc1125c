"""LightGBM: ``lightgbm.train`` and ``fit`` of ``LGBMModel`` and its subclasses.

``lightgbm.train`` is patched on the package (a name imported with ``from lightgbm import
train`` before :func:`mloop.autolog` keeps the original). A ``record_evaluation`` callback is
added to the caller's callbacks, so every validation set's metrics become histories
``<valid name>-<metric>`` with the iteration as the step. The training data is hashed when the
``Dataset`` was built from an array or a DataFrame (not from a file). The scikit-learn wrappers
record the same from ``evals_result_``, plus training metrics, the data digest and the model.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from mloop.autolog.boosting import WrapperHandler, patch_boosting
from mloop.autolog.patches import Patch
from mloop.autolog.records import TAG_PREFIX, log_data, log_histories, log_model, log_params
from mloop.autolog.session import FitCall, FitContext, system_tags

__all__ = ["TrainHandler", "WrapperHandler", "patch"]


class TrainHandler:
    """Reads ``lightgbm.train``."""

    library = "lightgbm"

    def wants(self, call: FitCall) -> bool:
        return True

    def label(self, call: FitCall) -> str:
        return "lightgbm.train"

    def prepare(self, call: FitCall, context: FitContext) -> None:
        lgb = importlib.import_module("lightgbm")
        bound = inspect.signature(call.original).bind(*call.args, **call.kwargs)
        results: dict[str, Any] = {}
        callbacks = list(bound.arguments.get("callbacks") or [])
        callbacks.append(lgb.record_evaluation(results))
        bound.arguments["callbacks"] = callbacks
        call.args, call.kwargs = tuple(bound.args), dict(bound.kwargs)
        train_set = bound.arguments.get("train_set")
        call.state.update(
            results=results,
            params=dict(bound.arguments.get("params") or {}),
            rounds=bound.arguments.get("num_boost_round", 100),
            data=getattr(train_set, "data", None),
            label=getattr(train_set, "label", None),
            train_set=train_set,
        )

    def record(self, call: FitCall, result: Any, context: FitContext) -> None:
        run, state = context.run, call.state
        context.attempt("tags", lambda: system_tags(run, {TAG_PREFIX: self.library}))
        params = {**state.get("params", {}), "num_boost_round": state.get("rounds")}
        context.attempt("params", lambda: log_params(context, params))

        def evaluations() -> None:
            if state.get("results"):
                log_histories(context, state["results"])
            best = _best_iteration(result)
            if best is not None:
                run.log_metric("best_iteration", best)

        context.attempt("evaluation results", evaluations)

        def data() -> None:
            x, y = state.get("data"), state.get("label")
            if isinstance(x, str) or x is None:
                train_set = state.get("train_set")
                rows = int(train_set.num_data()) if train_set is not None else None
                columns = int(train_set.num_feature()) if train_set is not None else None
                log_data(context, None, None, "lightgbm", rows=rows, columns=columns)
            else:
                log_data(context, x, y, "lightgbm")

        context.attempt("training data", data)
        context.attempt("model", lambda: log_model(context, result))


def _best_iteration(model: Any) -> int | None:
    best = getattr(model, "best_iteration", None)
    if best is None:
        best = getattr(model, "best_iteration_", None)
    return int(best) if isinstance(best, int) and best > 0 else None


def _evals(estimator: Any) -> Any:
    return getattr(estimator, "evals_result_", None) or None


def patch() -> list[Patch]:
    """Patch ``lightgbm.train`` and every ``LGBMModel`` class's own ``fit``."""
    wrapper = WrapperHandler("lightgbm", _evals, _best_iteration)
    return patch_boosting("lightgbm", "LGBMModel", TrainHandler(), wrapper)
