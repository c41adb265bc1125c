"""scikit-learn: ``fit`` (and ``fit_transform``, ``fit_predict``) of every estimator.

Each method is patched once, on the scikit-learn class that defines it (``BaseSearchCV.fit``,
``LogisticRegression.fit``, ``TransformerMixin.fit_transform``), so subclasses — a user's
subclass of ``LogisticRegression`` too — are covered without a patch per class. A call is
recorded only when the estimator is an instance of one of scikit-learn's public estimators
(:func:`sklearn.utils.all_estimators`), so a custom transformer that merely mixes in
``TransformerMixin`` is left alone.

Recorded: ``get_params(deep=True)`` (nested steps as ``step__param``), training metrics on the
training data (``training_score`` and, for classifiers, accuracy, weighted precision, recall,
F1, log loss and ROC AUC; for regressors MSE, RMSE, MAE and R²), the data digest, the model.
For a hyper-parameter search also ``best_<param>`` params, the ``best_cv_score`` metric, the
``cv_results.json`` artifact and a child run for each of the best ``max_tuning_runs``
candidates; the model packaged is the refitted ``best_estimator_``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from mloop.autolog.patches import Patch, apply, original_of
from mloop.autolog.records import (
    TAG_PREFIX,
    flat_params,
    input_example,
    log_data,
    log_model,
    log_params,
    metric_key,
)
from mloop.autolog.session import FitCall, FitContext, intercept, system_tags

__all__ = [
    "METHODS",
    "SklearnHandler",
    "estimator_tags",
    "fit_arguments",
    "patch",
    "record_estimator_fit",
    "training_metrics",
]

#: The methods that train an estimator.
METHODS: Final = ("fit", "fit_transform", "fit_predict")


def fit_arguments(call: FitCall) -> dict[str, Any]:
    """The call's arguments by parameter name (``X``, ``y``, ``sample_weight``, …).

    Positional arguments beyond ``self`` that the signature names otherwise (``raw_documents``,
    ``Y``) are also given as ``X`` and ``y`` in order."""
    try:
        bound = inspect.signature(call.original).bind(*call.args, **call.kwargs)
    except (TypeError, ValueError):
        named: dict[str, Any] = dict(call.kwargs)
    else:
        named = dict(bound.arguments)
        for extra in ("kwargs", "fit_params", "params"):
            value = named.pop(extra, None)
            if isinstance(value, dict):
                named.update(value)
    positional = list(call.args[1:])
    if "X" not in named and positional:
        named["X"] = positional[0]
    if "y" not in named and len(positional) > 1:
        named["y"] = positional[1]
    return named


def _sample_weight(arguments: dict[str, Any]) -> Any:
    return arguments.get("sample_weight")


def training_metrics(estimator: Any, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    """Metrics of a fitted estimator on its training data (empty when it has no target)."""
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    if y is None or not callable(getattr(estimator, "predict", None)):
        return out
    score = getattr(estimator, "score", None)
    if callable(score):
        out["training_score"] = float(score(x, y))
    weight = {"sample_weight": sample_weight}
    if is_classifier(estimator):
        predicted = estimator.predict(x)
        out["training_accuracy_score"] = float(metrics.accuracy_score(y, predicted, **weight))
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            y, predicted, average="weighted", zero_division=0, **weight
        )
        out["training_precision_score"] = float(precision)
        out["training_recall_score"] = float(recall)
        out["training_f1_score"] = float(f1)
        out.update(_probability_metrics(estimator, x, y, sample_weight))
    elif is_regressor(estimator):
        predicted = estimator.predict(x)
        mse = float(metrics.mean_squared_error(y, predicted, **weight))
        out["training_mean_squared_error"] = mse
        out["training_root_mean_squared_error"] = math.sqrt(mse)
        out["training_mean_absolute_error"] = float(
            metrics.mean_absolute_error(y, predicted, **weight)
        )
        out["training_r2_score"] = float(metrics.r2_score(y, predicted, **weight))
    return out


def _probability_metrics(estimator: Any, x: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    predict_proba = getattr(estimator, "predict_proba", None)
    classes = getattr(estimator, "classes_", None)
    if not callable(predict_proba) or classes is None or np.ndim(classes) != 1:
        return {}
    proba = np.asarray(predict_proba(x))
    if proba.ndim != 2 or proba.shape[1] != len(classes) or len(classes) < 2:
        return {}
    present = np.unique(np.asarray(y))
    out = {
        "training_log_loss": float(
            metrics.log_loss(y, proba, labels=classes, sample_weight=sample_weight)
        )
    }
    if len(present) < 2:
        return out  # ROC AUC is undefined with one class present
    if len(classes) == 2:
        auc = metrics.roc_auc_score(y, proba[:, 1], sample_weight=sample_weight)
    elif len(present) == len(classes):
        auc = metrics.roc_auc_score(
            y, proba, multi_class="ovr", average="weighted", labels=classes,
            sample_weight=sample_weight,
        )  # fmt: skip
    else:
        return out
    out["training_roc_auc"] = float(auc)
    return out


def estimator_tags(context: FitContext, library: str, kind: type) -> None:
    """Tag the run with the library and the estimator's class."""
    system_tags(
        context.run,
        {
            TAG_PREFIX: library,
            f"{TAG_PREFIX}.estimator_name": kind.__name__,
            f"{TAG_PREFIX}.estimator_class": f"{kind.__module__}.{kind.__qualname__}",
        },
    )


def _is_search(estimator: Any) -> bool:
    return hasattr(estimator, "best_params_") and hasattr(estimator, "cv_results_")


def _log_search(context: FitContext, search: Any) -> None:
    """Best params and score, the CV results, and child runs for the best candidates."""
    run = context.run
    best = {f"best_{k}": v for k, v in search.best_params_.items()}
    context.attempt("best params", lambda: log_params(context, best))
    if getattr(search, "best_score_", None) is not None:
        score = float(search.best_score_)
        context.attempt("best score", lambda: run.log_metric("best_cv_score", score))
    results = _jsonable(search.cv_results_)
    context.attempt("CV results", lambda: run.log_dict(results, "cv_results.json"))
    context.attempt("candidate runs", lambda: _candidate_runs(context, search.cv_results_))


def _jsonable(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, column in results.items():
        values = column.tolist() if hasattr(column, "tolist") else list(column)
        out[key] = [
            v if isinstance(v, int | float | str | bool) or v is None else flat_params(v)
            if isinstance(v, dict) else str(v)
            for v in values
        ]  # fmt: skip
    return out


def _candidate_runs(context: FitContext, results: dict[str, Any]) -> None:
    limit = context.config.max_tuning_runs
    if limit <= 0 or "params" not in results:
        return
    ranks = results.get("rank_test_score")
    order = list(range(len(results["params"])))
    if ranks is not None and len(ranks) == len(order):
        order.sort(key=lambda i: int(ranks[i]))
    parent = context.run
    numeric = [k for k in results if k.startswith(("mean_", "std_", "rank_")) and k != "params"]
    for index in order[:limit]:
        child = parent.client.start_run(
            run_name=f"{parent.name}-candidate-{index}", parent=parent, capture_source=False
        )
        try:
            points = []
            for key in numeric:
                value = results[key][index]
                try:
                    points.append((metric_key(key), float(value), 0))
                except (TypeError, ValueError):
                    continue
            child.log_batch(points, params=flat_params(results["params"][index]))
            system_tags(child, {TAG_PREFIX: "sklearn", f"{TAG_PREFIX}.candidate": index})
        finally:
            child.end()


class SklearnHandler:
    """Reads a scikit-learn fit."""

    library = "sklearn"

    def __init__(self, known: tuple[type, ...]) -> None:
        self.known = known

    def wants(self, call: FitCall) -> bool:
        return isinstance(call.target, self.known)

    def label(self, call: FitCall) -> str:
        return f"{type(call.target).__name__}.{call.original.__name__}"

    def prepare(self, call: FitCall, context: FitContext) -> None:
        return None

    def record(self, call: FitCall, result: Any, context: FitContext) -> None:
        estimator = call.target
        kind = type(estimator)
        arguments = fit_arguments(call)
        x, y = arguments.get("X"), arguments.get("y")
        context.attempt("tags", lambda: estimator_tags(context, self.library, kind))
        context.attempt("params", lambda: log_params(context, estimator.get_params(deep=True)))
        search = _is_search(estimator)
        if search:
            context.attempt("search results", lambda: _log_search(context, estimator))
        context.attempt(
            "training metrics",
            lambda: context.run.log_metrics(
                training_metrics(estimator, x, y, _sample_weight(arguments))
            ),
        )
        context.attempt("training data", lambda: log_data(context, x, y, kind.__name__))
        model = getattr(estimator, "best_estimator_", estimator) if search else estimator
        context.attempt("model", lambda: log_model(context, model, input_example(x)))


def _defining_class(cls: type, name: str) -> type | None:
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    return None


def patch() -> list[Patch]:
    """Patch every scikit-learn estimator's training methods; return what to restore."""
    from sklearn.utils import all_estimators

    known = tuple(cls for _, cls in all_estimators())
    handler = SklearnHandler(known)
    owners: dict[tuple[type, str], None] = {}
    for cls in known:
        for name in METHODS:
            owner = _defining_class(cls, name)
            if owner is None or not owner.__module__.startswith("sklearn."):
                continue
            if inspect.isfunction(original_of(vars(owner)[name])):
                owners[(owner, name)] = None

    def run(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return intercept(handler, original, args, kwargs)

    return [apply(owner, name, run) for owner, name in owners]


def record_estimator_fit(
    call: FitCall,
    context: FitContext,
    library: str,
    histories: Callable[[Any], Mapping[str, Mapping[str, Any]] | None],
    best_iteration: Callable[[Any], int | None],
) -> None:
    """Record a fit of a boosting library's scikit-learn wrapper (``XGBClassifier``,
    ``LGBMRegressor``, …): params, evaluation histories, training metrics, data, model."""
    from mloop.autolog.records import log_histories

    estimator = call.target
    kind = type(estimator)
    arguments = fit_arguments(call)
    x, y = arguments.get("X"), arguments.get("y")
    run = context.run
    context.attempt("tags", lambda: estimator_tags(context, library, kind))
    context.attempt("params", lambda: log_params(context, estimator.get_params(deep=False)))

    def evaluations() -> None:
        results = histories(estimator)
        if results:
            log_histories(context, results)
        best = best_iteration(estimator)
        if best is not None:
            run.log_metric("best_iteration", best)

    context.attempt("evaluation results", evaluations)
    context.attempt(
        "training metrics",
        lambda: run.log_metrics(training_metrics(estimator, x, y, _sample_weight(arguments))),
    )
    context.attempt("training data", lambda: log_data(context, x, y, kind.__name__))
    context.attempt("model", lambda: log_model(context, estimator, input_example(x)))
