"""XGBoost: ``xgboost.train`` and ``fit`` of ``XGBModel`` and its subclasses.

``xgboost.train`` is patched on the package (call it as ``xgboost.train``; a name imported
with ``from xgboost import train`` before :func:`mloop.autolog` keeps the original). When
``evals`` are given, the per-iteration results are recorded as metric histories
``<eval name>-<metric>`` with the iteration as the step (an ``evals_result`` dict is passed in
when the caller gave none). The scikit-learn wrappers record the same from ``evals_result()``,
plus training metrics, the data digest and the model.
"""

from __future__ import annotations

import inspect
from typing import Any

from mloop.autolog.boosting import WrapperHandler, patch_boosting
from mloop.autolog.patches import Patch
from mloop.autolog.records import TAG_PREFIX, log_data, log_histories, log_model, log_params
from mloop.autolog.session import FitCall, FitContext, system_tags

__all__ = ["TrainHandler", "WrapperHandler", "patch"]


def _arguments(call: FitCall) -> inspect.BoundArguments:
    bound = inspect.signature(call.original).bind(*call.args, **call.kwargs)
    bound.apply_defaults()
    return bound


class TrainHandler:
    """Reads ``xgboost.train``."""

    library = "xgboost"

    def wants(self, call: FitCall) -> bool:
        return True

    def label(self, call: FitCall) -> str:
        return "xgboost.train"

    def prepare(self, call: FitCall, context: FitContext) -> None:
        arguments = _arguments(call).arguments
        results = arguments.get("evals_result")
        if arguments.get("evals") and results is None:
            results = {}
            call.kwargs["evals_result"] = results
        call.state["results"] = results
        call.state["arguments"] = arguments

    def record(self, call: FitCall, result: Any, context: FitContext) -> None:
        arguments = call.state.get("arguments") or _arguments(call).arguments
        run = context.run
        context.attempt("tags", lambda: system_tags(run, {TAG_PREFIX: self.library}))
        params = dict(arguments.get("params") or {})
        for name in ("num_boost_round", "early_stopping_rounds", "maximize"):
            if arguments.get(name) is not None:
                params[name] = arguments[name]
        context.attempt("params", lambda: log_params(context, params))

        def evaluations() -> None:
            results = call.state.get("results")
            if results:
                log_histories(context, results)
            best = _best_iteration(result)
            if best is not None:
                run.log_metric("best_iteration", best)

        context.attempt("evaluation results", evaluations)
        dtrain: Any = arguments.get("dtrain")

        def data() -> None:
            rows, columns = int(dtrain.num_row()), int(dtrain.num_col())
            log_data(context, None, None, "xgboost", rows=rows, columns=columns)

        context.attempt("training data", data)
        context.attempt("model", lambda: log_model(context, result))


def _best_iteration(model: Any) -> int | None:
    try:
        best = model.best_iteration
    except (AttributeError, ValueError, TypeError):
        return None
    return None if best is None else int(best)


def _evals(estimator: Any) -> Any:
    if not getattr(estimator, "evals_result_", None):
        return None
    return estimator.evals_result()


def patch() -> list[Patch]:
    """Patch ``xgboost.train`` and every ``XGBModel`` class's own ``fit``."""
    wrapper = WrapperHandler("xgboost", _evals, _best_iteration)
    return patch_boosting("xgboost", "XGBModel", TrainHandler(), wrapper)
