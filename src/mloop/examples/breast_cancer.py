"""A real tracked sweep on scikit-learn's bundled breast-cancer data (no downloads).

One parent run ("sweep") with a nested child run per candidate: logistic regression trained by
SGD epoch by epoch (``partial_fit``) over a few regularisation strengths, and histogram gradient
boosting over a few depths and learning rates, read back stage by stage. Each child logs its
params, per-epoch or per-iteration training curves on a validation split, final metrics on a
held-out test split, a confusion matrix (JSON) and a classification report (text). The best
child, chosen on validation ROC AUC alone (the test split is only reported), is recorded on the
parent. ``mloop demo`` runs this; so can a Python user:
``run_demo(mloop.tracking.default_client())``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from mloop.data import DatasetVersion, Suite
    from mloop.tracking import TrackingClient

__all__ = [
    "DATASET",
    "EXPERIMENT",
    "Candidate",
    "ChildResult",
    "DemoResult",
    "run_demo",
    "sweep_plan",
]

EXPERIMENT = "breast-cancer-demo"
#: The dataset the demo registers its data as.
DATASET = "breast-cancer"
#: The registered model the best candidate becomes a version of.
MODEL = "breast-cancer-classifier"
#: What the best candidate must reach on the test split to become the champion.
GATE_MIN_ROC_AUC = 0.95
SELECTION_METRIC = "val_roc_auc"
LOGREG_EPOCHS = 30
HGB_ITERATIONS = 60
TARGET_NAMES = ("malignant", "benign")

#: Called as training advances: (what is running, how many steps were just done).
ProgressCallback = Callable[[str, int], None]

Array = NDArray[Any]


@dataclass(frozen=True)
class Candidate:
    """One point of the sweep: a model family and its hyper-parameters."""

    name: str
    family: str
    params: dict[str, float | int | str]
    steps: int


@dataclass(frozen=True)
class ChildResult:
    """What one child run recorded: its id, name, params and final metrics."""

    run_id: str
    name: str
    family: str
    params: dict[str, float | int | str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class DemoResult:
    """The outcome of the sweep: the parent run, every child, and the best child."""

    experiment: str
    parent_run_id: str
    children: list[ChildResult]
    best: ChildResult
    selection_metric: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def sweep_plan(seed: int = 0) -> list[Candidate]:
    """The candidates the demo trains, in order."""
    plan = [
        Candidate(
            f"logreg-C{c:g}",
            "logreg",
            {"model": "SGDClassifier(log_loss)", "C": c, "epochs": LOGREG_EPOCHS, "seed": seed},
            LOGREG_EPOCHS,
        )
        for c in (0.01, 0.1, 1.0, 10.0)
    ]
    plan += [
        Candidate(
            f"hgb-depth{depth}-lr{lr:g}",
            "hgb",
            {
                "model": "HistGradientBoostingClassifier",
                "max_depth": depth,
                "learning_rate": lr,
                "max_iter": HGB_ITERATIONS,
                "seed": seed,
            },
            HGB_ITERATIONS,
        )
        for depth in (2, 4)
        for lr in (0.05, 0.2)
    ]
    return plan


@dataclass(frozen=True)
class _Splits:
    x_train: Array
    y_train: Array
    x_val: Array
    y_val: Array
    x_test: Array
    y_test: Array


def _load_splits(seed: int) -> _Splits:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=seed
    )
    # Fitted on the training split only, so validation and test stay unseen.
    scaler = StandardScaler().fit(x_train)
    return _Splits(
        scaler.transform(x_train),
        y_train,
        scaler.transform(x_val),
        y_val,
        scaler.transform(x_test),
        y_test,
    )


def _log_loss(y: Array, proba: Array) -> float:
    # The curves call this hundreds of times; sklearn's input validation would dominate.
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.log(p).mean())


def _curve_metrics(y_train: Array, p_train: Array, y_val: Array, p_val: Array) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    return {
        "train_log_loss": _log_loss(y_train, p_train),
        "val_log_loss": _log_loss(y_val, p_val),
        "val_roc_auc": float(roc_auc_score(y_val, p_val[:, 1])),
        "val_accuracy": float((p_val.argmax(axis=1) == y_val).mean()),
    }


def _train_logreg(candidate: Candidate, data: _Splits) -> Iterator[tuple[dict[str, float], Any]]:
    """Yield (curve metrics, model) after each SGD epoch."""
    from sklearn.linear_model import SGDClassifier

    c = float(candidate.params["C"])
    seed = int(candidate.params["seed"])
    # SGD's alpha multiplies the mean loss; C divides the summed loss: alpha = 1 / (C n).
    model = SGDClassifier(
        loss="log_loss", penalty="l2", alpha=1.0 / (c * len(data.y_train)), random_state=seed
    )
    rng = np.random.default_rng(seed)
    for _ in range(int(candidate.params["epochs"])):
        order = rng.permutation(len(data.y_train))
        model.partial_fit(data.x_train[order], data.y_train[order], classes=np.array([0, 1]))
        yield (
            _curve_metrics(
                data.y_train,
                model.predict_proba(data.x_train),
                data.y_val,
                model.predict_proba(data.x_val),
            ),
            model,
        )


def _train_hgb(candidate: Candidate, data: _Splits) -> Iterator[tuple[dict[str, float], Any]]:
    """Yield (curve metrics, model) for each boosting iteration, read back stage by stage."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_depth=int(candidate.params["max_depth"]),
        learning_rate=float(candidate.params["learning_rate"]),
        max_iter=int(candidate.params["max_iter"]),
        early_stopping=False,
        random_state=int(candidate.params["seed"]),
    ).fit(data.x_train, data.y_train)
    stages = zip(
        model.staged_predict_proba(data.x_train),
        model.staged_predict_proba(data.x_val),
        strict=True,
    )
    for p_train, p_val in stages:
        yield _curve_metrics(data.y_train, p_train, data.y_val, p_val), model


def _final_metrics(model: Any, data: _Splits) -> tuple[dict[str, float], Array, str]:
    from sklearn.metrics import (
        accuracy_score,
        classification_report,
        confusion_matrix,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    proba = model.predict_proba(data.x_test)
    predicted = proba.argmax(axis=1)
    metrics = {
        "roc_auc": float(roc_auc_score(data.y_test, proba[:, 1])),
        "accuracy": float(accuracy_score(data.y_test, predicted)),
        "f1": float(f1_score(data.y_test, predicted)),
        "log_loss": float(log_loss(data.y_test, proba, labels=[0, 1])),
    }
    matrix = confusion_matrix(data.y_test, predicted, labels=[0, 1])
    report = str(
        classification_report(data.y_test, predicted, target_names=list(TARGET_NAMES), digits=4)
    )
    return metrics, matrix, report


def _train_child(
    client: TrackingClient,
    candidate: Candidate,
    data: _Splits,
    parent_id: str,
    on_progress: ProgressCallback | None,
) -> tuple[ChildResult, Any]:
    trainer = _train_logreg if candidate.family == "logreg" else _train_hgb
    with client.start_run(
        EXPERIMENT,
        candidate.name,
        parent=parent_id,
        tags={"family": candidate.family, "dataset": "sklearn.breast_cancer", "demo": "true"},
    ) as run:
        run.log_params(dict(candidate.params))
        model: Any = None
        curve: dict[str, float] = {}
        for step, (curve, fitted) in enumerate(trainer(candidate, data), start=1):
            run.log_metrics(curve, step=step)
            model = fitted
            if on_progress is not None:
                on_progress(candidate.name, 1)
        final, matrix, report = _final_metrics(model, data)
        run.log_metrics(final)
        run.log_dict(
            {
                "split": "test",
                "labels": list(TARGET_NAMES),
                "rows": "true label",
                "columns": "predicted label",
                "matrix": matrix.tolist(),
            },
            "confusion_matrix.json",
        )
        run.log_text(report, "classification_report.txt")
        result = ChildResult(
            run.id, candidate.name, candidate.family, dict(candidate.params), {**curve, **final}
        )
        return result, model


def _pick_best(children: list[ChildResult]) -> ChildResult:
    # Highest validation AUC; ties (common on 114 rows) go to the lower validation loss.
    return max(children, key=lambda c: (c.metrics[SELECTION_METRIC], -c.metrics["val_log_loss"]))


def run_demo(
    client: TrackingClient,
    *,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
) -> DemoResult:
    """Train the sweep, tracked with ``client``, and return what was recorded."""
    started = time.perf_counter()
    data = _load_splits(seed)
    plan = sweep_plan(seed)
    version, suite = _register_data(client)
    with client.start_run(
        EXPERIMENT,
        "sweep",
        tags={"dataset": "sklearn.breast_cancer", "demo": "true", "kind": "sweep"},
        note="A small model sweep on scikit-learn's breast-cancer data, made by `mloop demo`.",
    ) as parent:
        # Lineage: the sweep read this dataset version; the data contract is kept with both.
        parent.log_input(version, context="training")
        validation = _validate(client, version, suite, parent.id)
        parent.log_text(suite.to_yaml(), "expectations.yaml")
        parent.log_params(
            {
                "dataset": version.ref,
                "n_train": len(data.y_train),
                "n_val": len(data.y_val),
                "n_test": len(data.y_test),
                "n_features": data.x_train.shape[1],
                "candidates": len(plan),
                "selection": f"max {SELECTION_METRIC}, then min val_log_loss",
                "seed": seed,
            }
        )
        trained = [
            _train_child(client, candidate, data, parent.id, on_progress) for candidate in plan
        ]
        children = [child for child, _ in trained]
        best = _pick_best(children)
        best_model = next(model for child, model in trained if child is best)
        promotion = _register_and_promote(client, parent, best, best_model, data)
        parent.set_tags({"best_run_id": best.run_id, "best_run_name": best.name})
        parent.log_metrics(
            {
                "best_val_roc_auc": best.metrics[SELECTION_METRIC],
                "best_roc_auc": best.metrics["roc_auc"],
                "best_accuracy": best.metrics["accuracy"],
            }
        )
        parent.log_dict(
            {
                "selection": f"max {SELECTION_METRIC}, then min val_log_loss",
                "best_run_id": best.run_id,
                "leaderboard": [
                    {"run_id": c.run_id, "name": c.name, **c.metrics}
                    for c in sorted(children, key=lambda c: -c.metrics[SELECTION_METRIC])
                ],
            },
            "leaderboard.json",
        )
        parent_id = parent.id
    return DemoResult(
        EXPERIMENT,
        parent_id,
        children,
        best,
        SELECTION_METRIC,
        time.perf_counter() - started,
        extra={"dataset": version.ref, "validation": validation, **promotion},
    )


def _register_and_promote(
    client: TrackingClient, parent: Any, best: ChildResult, model: Any, data: _Splits
) -> dict[str, Any]:
    """Register the best candidate, evaluate it on the test split, gate it against the current
    champion on the same rows, and move the champion alias if the gate passes."""
    import pandas as pd

    from mloop.registry import Gate, evaluate, set_alias

    version = parent.log_model(
        model,
        MODEL,
        input_example=data.x_train[:5],
        description=f"best of the demo sweep: {best.name}",
        tags={"candidate_run": best.run_id},
    )
    columns = [f"x{i}" for i in range(data.x_test.shape[1])]
    test = pd.DataFrame(data.x_test, columns=columns).assign(target=data.y_test)
    evaluate(version, test, target="target", client=client, latency=False)
    gate = Gate(min={"roc_auc": GATE_MIN_ROC_AUC}, beat_champion={"roc_auc": 0.0})
    decision = gate.check(version, against="champion", data=test, target="target", client=client)
    if decision.passed:
        set_alias(MODEL, "champion", version.version, reason="passed the demo gate", client=client)
    from mloop.examples.serving_demo import serve_and_query

    # Serve the champion on loopback: 20 test rows through /predict, then their labels.
    served = serve_and_query(
        client, MODEL, test.drop(columns="target")[:20], test["target"][:20].tolist()
    )
    return {
        "model": version.uri,
        "gate": decision.summary(),
        "champion": decision.passed,
        "served": served,
    }


def _register_data(client: TrackingClient) -> tuple[DatasetVersion, Suite]:
    """Register the raw table as a dataset version (the same data: the same version) and draft
    its expectation suite."""
    from sklearn.datasets import load_breast_cancer

    from mloop.data import register, suggest_expectations

    frame = load_breast_cancer(as_frame=True).frame
    version = register(
        DATASET,
        frame,
        description="scikit-learn's breast-cancer data: 30 features and the target",
        tags={"source": "sklearn.datasets.load_breast_cancer"},
        client=client,
    )
    return version, suggest_expectations(frame, name=DATASET)


def _validate(client: TrackingClient, version: DatasetVersion, suite: Suite, run_id: str) -> str:
    """Validate the stored version against the suite, record the result, return its summary."""
    from mloop.data import load, record_validation, validate

    result = validate(load(version, client=client), suite)
    record_validation(result, dataset=version, run=run_id, client=client)
    return result.summary
