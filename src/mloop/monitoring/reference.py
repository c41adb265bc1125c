"""What a monitor computes once from its reference: the served model's predictions on the
reference data (profiled), an expectation suite, the reference performance and a calibration
of the probabilities for estimating performance before labels arrive.

The result is one JSON document kept in the artifact store (an artifact of the monitor), so a
run never re-reads the reference rows or reloads the model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mloop.errors import InvalidInput, InvalidState, NotFound

if TYPE_CHECKING:
    from mloop.models.loaded import LoadedModel
    from mloop.store.records import DatasetVersion, ModelVersion
    from mloop.tracking.client import TrackingClient

__all__ = ["REFERENCE_ROWS", "Reference", "build_reference", "resolve_reference"]

#: At most this many reference rows are predicted on (a fixed, seeded sample of larger data).
REFERENCE_ROWS = 50_000
#: Expectation kinds kept from a suggested suite: the others (row counts, means, uniqueness)
#: describe a whole data set, not a window, and would alarm on ordinary sampling noise.
QUALITY_KINDS = ("column_exists", "column_type", "not_null", "in_range", "in_set")
FORMAT = 1


@dataclass
class Reference:
    """The reference of a monitor, as stored (see the module docstring)."""

    dataset: str
    model_version: int
    features: list[str]
    task: str  # "binary" | "multiclass" | "regression"
    classes: list[Any] | None
    prediction_profile: dict[str, Any]
    suite: dict[str, Any]
    metric: str
    performance: float | None
    performance_source: str
    target: str | None
    estimated: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, list[float]] | None = None
    #: The labelled rows the reference performance was measured on: ``{"rows": n}`` and, for
    #: a binary classifier, ``"positives"`` (None when unknown): its own sampling error.
    performance_rows: dict[str, int] | None = None

    def to_bytes(self) -> bytes:
        """The stored document (canonical JSON)."""
        body = {"format": FORMAT, **self.__dict__}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        """Read a stored document back."""
        body = json.loads(data)
        body.pop("format", None)
        return cls(**body)


def resolve_reference(
    reference: object, version: ModelVersion, *, client: TrackingClient
) -> DatasetVersion:
    """The dataset version a reference names: ``"name@vN"``, a DatasetVersion, or
    ``"training"`` (what the serving version's run read with context ``training``)."""
    from mloop.data.versions import lookup
    from mloop.store.records import DatasetVersion

    if isinstance(reference, DatasetVersion):
        return lookup(reference, client=client)
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidInput(
            f"reference must be 'dataset@vN', a DatasetVersion or 'training', got {reference!r}",
            field="reference",
        )
    if reference != "training":
        try:
            return lookup(reference, client=client)
        except NotFound as exc:
            raise NotFound(
                f"the monitor's reference {reference!r} is missing: {exc}; register it "
                "(mloop data add) or name another version",
                field="reference",
            ) from None
    if version.run_id is None:
        raise NotFound(
            f"reference 'training': {version.uri} was registered without a run, so its training "
            "data is unknown; name the reference data instead (reference='dataset@vN')",
            field="reference",
        )
    inputs = [i for i in client.store.list_run_inputs(version.run_id) if i.context == "training"]
    if not inputs:
        raise NotFound(
            f"reference 'training': the run {version.run_id} that made {version.uri} logged no "
            "input with context 'training' (run.log_input(ds, context='training')); name the "
            "reference data instead (reference='dataset@vN')",
            field="reference",
        )
    return lookup(inputs[-1].version, client=client)


def _sample(table: pa.Table, rows: int) -> pa.Table:
    if table.num_rows <= rows:
        return table
    picks = np.sort(np.random.default_rng(0).choice(table.num_rows, rows, replace=False))
    return table.take(pa.array(picks))


def _positive(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba, dtype=np.float64)[:, -1]


def _classes(model: LoadedModel, proba: Any) -> list[Any] | None:
    raw = getattr(model.raw, "classes_", None)
    if raw is not None:
        return [v.item() if hasattr(v, "item") else v for v in np.asarray(raw)]
    if proba is not None:
        return list(range(np.asarray(proba).shape[1]))
    return None


def task_of(model: LoadedModel, predictions: np.ndarray, proba: Any) -> str:
    """``binary`` or ``multiclass`` for classifiers, ``regression`` otherwise."""
    if proba is not None:
        return "binary" if np.asarray(proba).shape[1] == 2 else "multiclass"
    kind = np.asarray(predictions).dtype.kind
    return "multiclass" if kind in "biuOUS" else "regression"


def default_metric(task: str) -> str:
    """roc_auc for binary classifiers with probabilities, accuracy for others, rmse else."""
    return {"binary": "roc_auc", "multiclass": "accuracy"}.get(task, "rmse")


def score(metric: str, y: np.ndarray, predictions: np.ndarray, proba: np.ndarray | None,
          classes: list[Any] | None) -> float | None:  # fmt: skip
    """A metric on labelled rows; None when it cannot be computed (one class only)."""
    from sklearn import metrics as skm

    if metric == "roc_auc":
        if proba is None or classes is None:
            return None
        return roc_auc(np.asarray(y) == classes[-1], _positive(proba))
    if metric == "accuracy":
        y, predictions = np.asarray(y), np.asarray(predictions)
        if y.dtype.kind != predictions.dtype.kind and "U" in (
            y.dtype.kind + predictions.dtype.kind
        ):
            y, predictions = y.astype(str), predictions.astype(str)
        return float(skm.accuracy_score(y, predictions))
    if metric == "rmse":
        diff = np.asarray(y, dtype=np.float64) - np.asarray(predictions, dtype=np.float64)
        return float(np.sqrt(np.mean(diff**2)))
    if metric == "mae":
        diff = np.asarray(y, dtype=np.float64) - np.asarray(predictions, dtype=np.float64)
        return float(np.mean(np.abs(diff)))
    raise InvalidInput(
        f"performance_metric {metric!r} is not supported: use roc_auc, accuracy, rmse or mae",
        field="performance_metric",
    )


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic on average ranks (ties count half); None with one
    class only. One sort: fast on millions of rows."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibrate(proba: np.ndarray, y_positive: np.ndarray) -> dict[str, list[float]]:
    """An isotonic map from the positive-class probability to the observed positive rate."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(proba, y_positive.astype(np.float64))
    x, y = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
    return {"x": [float(v) for v in x], "y": [float(v) for v in y]}


def estimate(proba: np.ndarray, calibration: dict[str, list[float]] | None) -> dict[str, float]:
    """Expected accuracy and ROC AUC from (calibrated) positive-class probabilities, as
    confidence-based performance estimation does: each row counts as positive with its
    calibrated probability."""
    p = np.asarray(proba, dtype=np.float64)
    p = p[np.isfinite(p)]
    if calibration is not None and calibration["x"]:
        p = np.interp(p, calibration["x"], calibration["y"])
    if p.size == 0:
        return {}
    accuracy = float(np.mean(np.where(p >= 0.5, p, 1.0 - p)))
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    # Expected true and false positives above each distinct score (ties grouped together).
    tp, fp = np.cumsum(ps), np.cumsum(1.0 - ps)
    last = np.r_[np.nonzero(np.diff(ps))[0], ps.size - 1]
    tp, fp = np.r_[0.0, tp[last]], np.r_[0.0, fp[last]]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return {"accuracy": accuracy}
    auc = float(np.trapezoid(tp / tp[-1], fp / fp[-1]))
    return {"accuracy": accuracy, "roc_auc": auc}


def _suite(frame: pd.DataFrame, name: str) -> dict[str, Any]:
    from mloop.data.validation import suggest_expectations

    suite = suggest_expectations(frame, name=name).to_dict()
    suite["expectations"] = [e for e in suite["expectations"] if e["expect"] in QUALITY_KINDS]
    return suite


def _recorded(
    client: TrackingClient, version: ModelVersion, metric: str
) -> tuple[float | None, dict[str, int] | None]:
    """The metric of the version's newest recorded evaluation, with the rows it was measured
    on (the positives of a binary evaluation are its calibration bins' positives)."""
    records = client.store.list_model_records(version.model, version.version, "evaluation")
    for record in reversed(records):
        value = record.body.get("metrics", {}).get(metric)
        if isinstance(value, int | float) and math.isfinite(value):
            rows: dict[str, int] | None = None
            n = record.body.get("n_rows")
            if isinstance(n, int) and n > 0:
                rows = {"rows": n}
                bins = (record.body.get("calibration") or {}).get("bins") or []
                if bins:
                    positives = sum(
                        float(b.get("count") or 0) * float(b.get("fraction_positive") or 0)
                        for b in bins
                    )
                    rows["positives"] = round(positives)
            return float(value), rows
    return None, None


def build_reference(
    dataset: DatasetVersion,
    version: ModelVersion,
    *,
    target: str | None,
    metric: str | None,
    suite: dict[str, Any] | None,
    trusted: bool,
    client: TrackingClient,
) -> Reference:
    """Predict with ``version`` on (a sample of) ``dataset`` and compute everything a run needs."""
    from mloop.data.profile import profile
    from mloop.data.versions import load
    from mloop.registry.core import load as load_model

    table = load(dataset, client=client)
    model = load_model(version, trusted=trusted, client=client)
    names = table.column_names
    if target is not None and target not in names:
        raise InvalidInput(
            f"target {target!r} is not a column of {dataset.ref} (columns: {', '.join(names)})",
            field="target",
        )
    features = list(model.input_columns) or [c for c in names if c != target]
    missing = [c for c in features if c not in names]
    if missing:
        raise InvalidState(
            f"{dataset.ref} lacks the model's input column(s) {', '.join(missing)}: a monitor's "
            f"reference must hold what {version.uri} takes",
            field="reference",
        )
    if target is None:
        others = [c for c in names if c not in features]
        target = others[0] if len(others) == 1 else None
    sample = _sample(table, REFERENCE_ROWS).to_pandas()
    inference = model.infer(sample[features], proba=True)
    predictions = np.asarray(inference.predictions)
    proba = None if inference.probabilities is None else np.asarray(inference.probabilities)
    if predictions.ndim != 1:
        raise InvalidState(
            f"{version.uri} gives {predictions.ndim}-dimensional predictions; monitors watch "
            "models with one prediction per row",
            field="deployment",
        )
    task = task_of(model, predictions, proba)
    classes = _classes(model, proba)
    chosen = metric or default_metric(task)
    # Predicted classes are profiled as text, as a run reads them (Arrow's cast to string), so
    # that 1, True or "fraud" name the same category on both sides.
    outputs: dict[str, Any] = {
        "prediction": pa.array(predictions).cast(pa.string())
        if task != "regression"
        else pa.array(predictions, pa.float64())
    }
    if task == "binary" and proba is not None:
        outputs["proba"] = pa.array(_positive(proba))
    pred_profile = profile(pa.table(outputs)).to_dict()
    (performance, measured_on), source = _recorded(client, version, chosen), "evaluation"
    calibration: dict[str, list[float]] | None = None
    estimated: dict[str, float] = {}
    if target is not None:
        y = sample[target].to_numpy()
        if performance is None:
            performance = score(chosen, y, predictions, proba, classes)
            source = f"{dataset.ref} ({len(sample)} rows)"
            measured_on = {"rows": len(sample)}
            if classes is not None and task == "binary":
                measured_on["positives"] = int(np.count_nonzero(y == classes[-1]))
        if task == "binary" and proba is not None and classes is not None:
            calibration = calibrate(_positive(proba), y == classes[-1])
    if performance is None:
        source = "none"
    if task == "binary" and proba is not None:
        estimated = estimate(_positive(proba), calibration)
    return Reference(
        dataset=dataset.ref,
        model_version=version.version,
        features=features,
        task=task,
        classes=classes,
        prediction_profile=pred_profile,
        suite=suite if suite is not None else _suite(sample[features], f"{dataset.ref} (window)"),
        metric=chosen,
        performance=performance,
        performance_source=source,
        target=target,
        estimated=estimated,
        calibration=calibration,
        performance_rows=measured_on if performance is not None else None,
    )
