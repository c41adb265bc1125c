"""``evaluate``: run a model over labelled data and measure everything a gate or a card needs.

The model is duck-typed: any object with ``predict(frame)`` (and, for probability metrics,
``predict_proba(frame)``) works — an mloop ``LoadedModel``, a scikit-learn estimator, or a
plain class. Failures inside the model are wrapped once, here, in an :class:`MloopError` that
names the model and keeps the original exception as its cause; an mloop error raised by the
model (a signature check, say) passes through unchanged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput, MloopError, ModelCallFailed
from mloop.evaluation.calibration import calibration as compute_calibration
from mloop.evaluation.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Predictions,
    classification_metrics,
    direction,
    ordered,
    regression_metrics,
)
from mloop.evaluation.results import Calibration, EvaluationResult, FeatureImportance, LatencyStats
from mloop.evaluation.slices import Groups, fairness_gaps, slice_groups, slice_metrics, to_label

__all__ = ["DIGEST_FORMAT", "data_digest", "evaluate"]

#: Part of what :func:`data_digest` hashes; bumped if the digest's definition ever changes.
DIGEST_FORMAT = "mloop-eval-data-1"

Array = np.ndarray[Any, Any]
_PROBABILITY_METRICS = frozenset({"roc_auc", "pr_auc", "log_loss", "brier", "ece"})


def data_digest(data: pd.DataFrame) -> str:
    """A SHA-256 over the rows of ``data``, independent of row order and column order.

    Each row is hashed with ``pandas.util.hash_pandas_object`` over the columns sorted by name
    (the index is ignored); the sorted row hashes, the column names and the row count are hashed
    together. Equal tables give equal digests whatever order their rows come in; a changed value,
    row or column name changes it. Cells pandas cannot hash (lists, dicts) are hashed as text.
    """
    columns = sorted(map(str, data.columns))
    frame = data.copy()
    frame.columns = list(map(str, data.columns))
    frame = frame[columns]
    try:
        rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError:
        rows = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    header = "\x1f".join([DIGEST_FORMAT, str(len(frame)), *columns]).encode()
    digest = hashlib.sha256(header)
    digest.update(np.sort(rows.astype(np.uint64)).tobytes())
    return digest.hexdigest()


def _model_name(model: Any) -> str:
    name = getattr(model, "name", None)
    if isinstance(name, str) and name:
        return name
    digest = getattr(model, "digest", None)
    if isinstance(digest, str) and digest:
        return f"{type(model).__name__} {digest[:12]}"
    return type(model).__name__


def _declared_inputs(model: Any) -> list[str]:
    """The input columns a model declares (``input_columns``, as mloop's LoadedModel has, or
    scikit-learn's ``feature_names_in_``); empty when it declares none."""
    for attr in ("input_columns", "feature_names_in_"):
        try:
            columns = getattr(model, attr, None)
        except Exception:  # a property that fails means "not declared"
            columns = None
        if columns is not None and len(columns) > 0:
            return [str(c) for c in columns]
    return []


def _call(model: Any, method: str, frame: pd.DataFrame) -> Any:
    """``model.<method>(frame)``, with any non-mloop failure wrapped once, naming the model."""
    try:
        return getattr(model, method)(frame)
    except MloopError:
        raise
    except Exception as exc:
        raise ModelCallFailed(
            f"model {_model_name(model)!r} failed in {method}() on {len(frame)} rows: "
            f"{type(exc).__name__}: {exc}",
            model=_model_name(model),
            method=method,
        ) from exc


def _as_vector(output: Any, n: int, model: Any) -> Array:
    """A model's predictions as a 1-D array of length ``n``."""
    if isinstance(output, pd.DataFrame):
        if output.shape[1] != 1:
            raise MloopError(
                f"model {_model_name(model)!r} returned {output.shape[1]} prediction columns; "
                "evaluate() needs one prediction per row",
                model=_model_name(model),
            )
        output = output.iloc[:, 0]
    array = output.to_numpy() if isinstance(output, pd.Series) else np.asarray(output)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != n:
        raise MloopError(
            f"model {_model_name(model)!r} returned predictions of shape {array.shape} "
            f"for {n} rows; expected ({n},)",
            model=_model_name(model),
        )
    return array


def _check_frame(
    data: Any, target: str, slices: Sequence[str], features: Sequence[str] | None, model: Any
) -> list[str]:
    """Validate the inputs; return the feature columns."""
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise InvalidInput("data is empty: evaluate() needs at least one labelled row")
    if not data.columns.is_unique:
        dupes = sorted(map(str, data.columns[data.columns.duplicated()].unique()))
        raise InvalidInput(f"data has duplicate column names: {', '.join(dupes)}")
    columns = list(data.columns)
    if target not in columns:
        raise InvalidInput(
            f"target column {target!r} is not in the data; columns: {', '.join(map(str, columns))}",
            column=target,
        )
    if isinstance(slices, str):
        raise InvalidInput(f"slices must be a list of column names, got the string {slices!r}")
    for column in slices:
        if column not in columns:
            raise InvalidInput(
                f"slice column {column!r} is not in the data; columns: "
                f"{', '.join(map(str, columns))}",
                column=column,
            )
    if features is None:
        declared = _declared_inputs(model)
        if declared and target not in declared and all(c in columns for c in declared):
            return declared
        return [c for c in columns if c != target]
    if isinstance(features, str):
        raise InvalidInput(f"features must be a list of column names, got the string {features!r}")
    missing = [f for f in features if f not in columns]
    if missing:
        raise InvalidInput(
            f"feature columns not in the data: {', '.join(map(str, missing))}", columns=missing
        )
    if target in features:
        raise InvalidInput(f"the target column {target!r} cannot also be a feature", column=target)
    if not features:
        raise InvalidInput("features is empty: name at least one column the model reads")
    return list(features)


def _infer_task(target: pd.Series, model: Any) -> Literal["classification", "regression"]:
    """Classification for bool, text and categorical targets; regression for numbers with a
    fraction; for whole numbers, classification when the model has ``predict_proba``."""
    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
        return "classification"
    values = target.to_numpy(dtype=np.float64)
    if not np.all(np.mod(values, 1) == 0):
        return "regression"
    return "classification" if callable(getattr(model, "predict_proba", None)) else "regression"


def _sorted_labels(values: Array, what: str) -> Array:
    try:
        return np.unique(values)
    except TypeError as exc:
        raise InvalidInput(
            f"{what} mixes label types that cannot be ordered ({exc}); use one type of label"
        ) from exc


@dataclass
class _Classifier:
    """How one model's output turns into aligned predictions for this evaluation."""

    model: Any
    classes: Array
    positive: Any
    threshold: float | None
    use_proba: bool

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def proba(self, frame: pd.DataFrame, notes: list[str] | None) -> Array | None:
        """Probabilities with one column per class in ``classes`` order, or ``None`` (noted)."""
        if not self.use_proba:
            return None
        raw = _call(self.model, "predict_proba", frame)
        n, k = len(frame), len(self.classes)
        if isinstance(raw, pd.DataFrame):
            names = [to_label(c) for c in raw.columns]
            wanted = [to_label(c) for c in self.classes]
            if sorted(map(str, names)) == sorted(map(str, wanted)):
                position = {str(c): i for i, c in enumerate(names)}
                raw = raw.iloc[:, [position[str(c)] for c in wanted]]
            raw = raw.to_numpy()
        try:
            array = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            return self._drop(notes, "predict_proba did not return numbers")
        if array.ndim == 1 and self.binary and len(array) == n:
            pos_index = int(np.flatnonzero(self.classes == self.positive)[0])
            array = np.column_stack([1 - array, array] if pos_index == 1 else [array, 1 - array])
        if array.shape != (n, k):
            return self._drop(
                notes, f"predict_proba returned shape {array.shape}, expected ({n}, {k})"
            )
        if not np.all(np.isfinite(array)) or array.min() < -1e-9 or array.max() > 1 + 1e-9:
            return self._drop(notes, "predict_proba returned values outside [0, 1]")
        return np.clip(array, 0.0, 1.0)

    @staticmethod
    def _drop(notes: list[str] | None, reason: str) -> None:
        if notes is not None:
            notes.append(f"probability metrics omitted: {reason}")

    def predictions(
        self,
        frame: pd.DataFrame,
        y_true: Array,
        notes: list[str] | None = None,
        *,
        timed: bool = True,
    ) -> tuple[Predictions, float]:
        """Predictions on ``frame`` and the seconds the ``predict`` call took.

        With ``timed=False`` (permutation importance), ``predict`` is skipped when the labels
        come from thresholding probabilities anyway.
        """
        thresholded = self.binary and self.threshold is not None
        if not timed and thresholded and self.use_proba:
            proba = self.proba(frame, notes)
            if proba is not None:
                return self._thresholded(proba, y_true), 0.0
        start = time.perf_counter()
        y_pred = _as_vector(_call(self.model, "predict", frame), len(frame), self.model)
        seconds = time.perf_counter() - start
        proba = self.proba(frame, notes)
        if proba is not None and thresholded:
            return self._thresholded(proba, y_true), seconds
        return (
            Predictions(
                y_true=y_true,
                y_pred=y_pred,
                proba=proba,
                classes=self.classes,
                positive_label=self.positive if self.binary else None,
            ),
            seconds,
        )

    def _thresholded(self, proba: Array, y_true: Array) -> Predictions:
        """Binary labels: the positive one where its probability reaches the threshold."""
        assert self.threshold is not None
        pos_index = int(np.flatnonzero(self.classes == self.positive)[0])
        negative = self.classes[1 - pos_index]
        y_pred = np.where(proba[:, pos_index] >= self.threshold, self.positive, negative)
        y_pred = y_pred.astype(y_true.dtype) if y_true.dtype != object else y_pred
        return Predictions(
            y_true=y_true,
            y_pred=y_pred,
            proba=proba,
            classes=self.classes,
            positive_label=self.positive,
        )


def _classes(model: Any, y_true: Array, notes: list[str]) -> Array:
    """The class labels: the model's ``classes_`` when it covers the target, else the sorted
    labels of the target."""
    truth = _sorted_labels(y_true, "the target")
    declared = getattr(model, "classes_", None)
    if declared is None:  # mloop's LoadedModel keeps the library object in .raw
        declared = getattr(getattr(model, "raw", None), "classes_", None)
    if declared is not None:
        declared = np.asarray(declared)
        if declared.ndim == 1 and np.isin(truth, declared).all():
            return declared
        notes.append("the model's classes_ do not cover the target's labels; using the target's")
    return truth


def _positive(classes: Array, positive_label: Any, notes: list[str]) -> Any:
    if len(classes) != 2:
        if positive_label is not None:
            raise InvalidInput(
                f"positive_label applies to binary targets; the target has {len(classes)} "
                "classes (metrics are macro-averaged)"
            )
        return None
    if positive_label is not None:
        wanted = to_label(positive_label)
        matches = [i for i, c in enumerate(classes) if to_label(c) == wanted]
        if not matches:
            raise InvalidInput(
                f"positive_label {positive_label!r} is not one of the classes "
                f"{[to_label(c) for c in classes]}"
            )
        return classes[matches[0]]
    ordered_classes = _sorted_labels(classes, "the classes")
    positive = ordered_classes[-1]
    if {to_label(c) for c in classes} not in ({0, 1}, {False, True}):
        notes.append(
            f"positive label inferred as {to_label(positive)!r} (the larger label); "
            "pass positive_label= to choose another"
        )
    return positive


def evaluate(
    model: Any,
    data: pd.DataFrame,
    *,
    target: str,
    task: Literal["classification", "regression"] | None = None,
    slices: Sequence[str] = (),
    features: Sequence[str] | None = None,
    positive_label: Any = None,
    threshold: float | None = 0.5,
    importance: bool = False,
    importance_metric: str | None = None,
    n_repeats: int = 5,
    random_state: int | None = 0,
    latency: bool = True,
    latency_calls: int = 50,
    calibration_bins: int = 10,
    min_slice_size: int = 1,
    plots: bool = True,
) -> EvaluationResult:
    """Evaluate ``model`` on ``data`` (features and the ``target`` column) and return every
    metric, slice, fairness gap, calibration bin, importance, latency and plot.

    ``features`` defaults to the input columns the model declares (``input_columns`` or
    ``feature_names_in_``) when the data holds them all, else to every column but the target
    (slice columns included); the model is given ``data[features]``. For a binary task with
    probabilities, the predicted label is the positive one when its probability is
    ``>= threshold`` (``threshold=None``: the model's own ``predict``). Raises
    :class:`InvalidInput` for bad input, :class:`MloopError` when the model fails.
    """
    feature_columns = _check_frame(data, target, slices, features, model)
    if task not in (None, "classification", "regression"):
        raise InvalidInput(f"task must be 'classification', 'regression' or None, got {task!r}")
    if threshold is not None and not (0.0 < float(threshold) < 1.0):
        raise InvalidInput(f"threshold must be strictly between 0 and 1, got {threshold!r}")
    if n_repeats < 1 or latency_calls < 1 or calibration_bins < 1 or min_slice_size < 1:
        raise InvalidInput(
            "n_repeats, latency_calls, calibration_bins, min_slice_size must be >= 1"
        )
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(
            f"{_model_name(model)!r} has no predict() method; it cannot be evaluated"
        )
    truth = data[target]
    missing = int(truth.isna().sum())
    if missing:
        rows = [str(i) for i in truth.index[truth.isna()][:5]]
        raise InvalidInput(
            f"target column {target!r} has {missing} missing values (rows {', '.join(rows)}"
            f"{', …' if missing > 5 else ''}); drop or label them before evaluating",
            column=target,
        )
    task = task or _infer_task(truth, model)
    if importance:  # fail before any prediction is made
        if task == "classification":
            _importance_metric(importance_metric, task, "accuracy", CLASSIFICATION_METRICS)
        else:
            _importance_metric(importance_metric, task, "r2", REGRESSION_METRICS)
    frame = data[feature_columns]
    groups = slice_groups(data, slices)
    notes: list[str] = []
    if task == "classification":
        return _evaluate_classifier(
            model,
            data,
            frame,
            target,
            features=feature_columns,
            notes=notes,
            groups=groups,
            positive_label=positive_label,
            threshold=threshold,
            importance=importance,
            importance_metric=importance_metric,
            n_repeats=n_repeats,
            random_state=random_state,
            latency=latency,
            latency_calls=latency_calls,
            calibration_bins=calibration_bins,
            min_slice_size=min_slice_size,
            plots=plots,
        )
    return _evaluate_regressor(
        model,
        data,
        frame,
        target,
        features=feature_columns,
        notes=notes,
        groups=groups,
        importance=importance,
        importance_metric=importance_metric,
        n_repeats=n_repeats,
        random_state=random_state,
        latency=latency,
        latency_calls=latency_calls,
        min_slice_size=min_slice_size,
        plots=plots,
    )


def _importance_metric(name: str | None, task: str, default: str, allowed: Sequence[str]) -> str:
    metric = name or default
    direction(metric)  # unknown names raise, listing the known ones
    if metric not in allowed:
        raise InvalidInput(
            f"importance_metric {metric!r} does not apply to {task}; use one of: "
            f"{', '.join(allowed)}",
            metric=metric,
        )
    return metric


def _evaluate_classifier(
    model: Any,
    data: pd.DataFrame,
    frame: pd.DataFrame,
    target: str,
    *,
    features: list[str],
    notes: list[str],
    groups: Groups,
    positive_label: Any,
    threshold: float | None,
    importance: bool,
    importance_metric: str | None,
    n_repeats: int,
    random_state: int | None,
    latency: bool,
    latency_calls: int,
    calibration_bins: int,
    min_slice_size: int,
    plots: bool,
) -> EvaluationResult:
    y_true = data[target].to_numpy()
    if _sorted_labels(y_true, "the target").size < 2:
        raise InvalidInput(
            f"target column {target!r} holds a single class ({to_label(y_true[0])!r}); "
            "classification metrics need at least two classes in the evaluation data",
            column=target,
        )
    classes = _classes(model, y_true, notes)
    positive = _positive(classes, positive_label, notes)
    has_proba = callable(getattr(model, "predict_proba", None))
    if not has_proba:
        notes.append(
            "probability metrics (roc_auc, pr_auc, log_loss, brier, ece) and calibration "
            "omitted: the model has no predict_proba()"
        )
    scorer = _Classifier(model, classes, positive, threshold, has_proba)
    p, batch_s = scorer.predictions(frame, y_true, notes)
    cal = compute_calibration(p, calibration_bins)
    metrics = classification_metrics(p, notes=notes, ece=cal.ece if cal else None)
    slice_results = slice_metrics(groups, p, task="classification", min_slice_size=min_slice_size)
    importance_result, metric_name = None, None
    if importance:
        metric_name = _importance_metric(
            importance_metric, "classification", "accuracy", CLASSIFICATION_METRICS
        )
        if metric_name in _PROBABILITY_METRICS and p.proba is None:
            raise InvalidInput(
                f"importance_metric {metric_name!r} needs probabilities, which this model does "
                "not give; use a label metric such as 'accuracy'",
                metric=metric_name,
            )

        def score(f: pd.DataFrame, name: str = metric_name) -> float:
            permuted = scorer.predictions(f, y_true, timed=False)[0]
            if name == "ece":
                permuted_cal = compute_calibration(permuted, calibration_bins)
                return permuted_cal.ece if permuted_cal else float("nan")
            if name not in _PROBABILITY_METRICS:  # skip the probability metrics' cost
                permuted = replace(permuted, proba=None)
            return classification_metrics(permuted).get(name, float("nan"))

        importance_result = _importance(
            score,
            frame,
            features,
            metric_name,
            n_repeats=n_repeats,
            random_state=random_state,
        )
    return EvaluationResult(
        task="classification",
        target=target,
        n_rows=len(data),
        data_digest=data_digest(data),
        features=features,
        metrics=ordered(metrics, CLASSIFICATION_METRICS),
        classes=[to_label(c) for c in classes],
        positive_label=to_label(positive) if positive is not None else None,
        threshold=threshold if (p.binary and p.proba is not None) else None,
        slices=slice_results,
        fairness=fairness_gaps(slice_results, binary=p.binary),
        calibration=cal,
        importance=importance_result,
        importance_metric=metric_name,
        latency=_latency(model, frame, batch_s, latency_calls, notes) if latency else None,
        plots=_classification_plots(p, cal) if plots else {},
        notes=notes,
    )


def _classification_plots(p: Predictions, cal: Calibration | None) -> dict[str, str]:
    from mloop.evaluation.plots import classification_plots

    return classification_plots(p, cal)


def _evaluate_regressor(
    model: Any,
    data: pd.DataFrame,
    frame: pd.DataFrame,
    target: str,
    *,
    features: list[str],
    notes: list[str],
    groups: Groups,
    importance: bool,
    importance_metric: str | None,
    n_repeats: int,
    random_state: int | None,
    latency: bool,
    latency_calls: int,
    min_slice_size: int,
    plots: bool,
) -> EvaluationResult:
    truth = data[target]
    if pd.api.types.is_bool_dtype(truth) or not pd.api.types.is_numeric_dtype(truth):
        raise InvalidInput(
            f"target column {target!r} has type {truth.dtype}, not a number; "
            "regression needs a numeric target (or pass task='classification')",
            column=target,
        )
    y_true = truth.to_numpy(dtype=np.float64)

    def predict(f: pd.DataFrame) -> tuple[Array, float]:
        start = time.perf_counter()
        raw = _as_vector(_call(model, "predict", f), len(f), model)
        seconds = time.perf_counter() - start
        try:
            values = raw.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise MloopError(
                f"model {_model_name(model)!r} returned non-numeric predictions for a "
                f"regression target: {exc}",
                model=_model_name(model),
            ) from exc
        return values, seconds

    y_pred, batch_s = predict(frame)
    bad = int((~np.isfinite(y_pred)).sum())
    if bad:
        raise MloopError(
            f"model {_model_name(model)!r} returned {bad} missing or infinite predictions "
            f"out of {len(y_pred)}; regression metrics need a number for every row",
            model=_model_name(model),
        )
    p = Predictions(y_true=y_true, y_pred=y_pred)
    metrics = regression_metrics(y_true, y_pred, notes=notes)
    slice_results = slice_metrics(groups, p, task="regression", min_slice_size=min_slice_size)
    importance_result, metric_name = None, None
    if importance:
        metric_name = _importance_metric(importance_metric, "regression", "r2", REGRESSION_METRICS)
        importance_result = _importance(
            lambda f: regression_metrics(y_true, predict(f)[0]).get(metric_name, float("nan")),
            frame,
            features,
            metric_name,
            n_repeats=n_repeats,
            random_state=random_state,
        )
    if plots:
        from mloop.evaluation.plots import regression_plots

        plot_texts = regression_plots(y_true, y_pred)
    else:
        plot_texts = {}
    return EvaluationResult(
        task="regression",
        target=target,
        n_rows=len(data),
        data_digest=data_digest(data),
        features=features,
        metrics=metrics,
        slices=slice_results,
        importance=importance_result,
        importance_metric=metric_name,
        latency=_latency(model, frame, batch_s, latency_calls, notes) if latency else None,
        plots=plot_texts,
        notes=notes,
    )


def _importance(
    score: Any,
    frame: pd.DataFrame,
    features: list[str],
    metric: str,
    *,
    n_repeats: int,
    random_state: int | None,
) -> dict[str, FeatureImportance]:
    from mloop.evaluation.importance import permutation_importance

    return permutation_importance(
        score,
        frame,
        features,
        n_repeats=n_repeats,
        random_state=random_state,
        higher_is_better=direction(metric) != "lower",
    )


def _latency(
    model: Any, frame: pd.DataFrame, batch_s: float, calls: int, notes: list[str]
) -> LatencyStats | None:
    from mloop.evaluation.latency import measure_latency

    try:
        return measure_latency(
            lambda f: _call(model, "predict", f), frame, first_batch_s=batch_s, calls=calls
        )
    except MloopError as exc:
        notes.append(f"latency not measured: single-row predict failed ({exc.message})")
        return None
