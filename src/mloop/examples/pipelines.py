"""Training pipelines for the demo's scenarios, built from mloop's own steps.

``fraud_training`` and ``demand_training`` load a time range of a registered dataset (only the
rows whose label is known, when ``labelled_by_ms`` is given), hold out its latest slice, train a
histogram gradient-boosting model with a fixed small budget, and evaluate it on the held-out
slice with :func:`mloop.evaluation.evaluate`. The nodes are ``load``, ``split``, ``train`` and
``evaluate``: the model is ``result.output("train")``, a scikit-learn pipeline that encodes the
string columns itself, so it predicts on raw rows (a DataFrame of the scenario's ``FEATURES``)
as they are served; the metrics are ``result.output("evaluate")`` (a sweep's
``metric="evaluate.roc_auc"``).

Run them as ``mloop.examples.pipelines:fraud_training`` (or ``:demand_training``)::

    run_pipeline(fraud_training, {"dataset": "transactions", "end_ms": t})

``fraud_retraining`` and ``demand_retraining`` are what the closed-loop demo's policies run:
the same split, train and evaluate steps on the labelled rows a deployment served (its
prediction log joined with the labels sent to ``/feedback``), between the ``start_ms`` and
``end_ms`` the agent gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput
from mloop.examples import demand, fraud
from mloop.pipelines import pipeline, step

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = [
    "demand_retraining",
    "demand_training",
    "evaluate_demand_model",
    "evaluate_fraud_model",
    "fraud_retraining",
    "fraud_training",
    "load_feedback",
    "load_window",
    "split_by_time",
    "train_demand_model",
    "train_fraud_model",
]

TIME_COLUMN = "timestamp_ms"
DELAY_COLUMN = "label_delay_ms"


def _window(
    table: pd.DataFrame, start_ms: int | None, end_ms: int | None, labelled_by_ms: int | None
) -> pd.Series:
    keep = pd.Series(True, index=table.index)
    if start_ms is not None:
        keep &= table[TIME_COLUMN] >= start_ms
    if end_ms is not None:
        keep &= table[TIME_COLUMN] < end_ms
    if labelled_by_ms is not None:
        keep &= table[TIME_COLUMN] + table[DELAY_COLUMN] <= labelled_by_ms
    return keep


# Never cached: the same dataset name may hold a newer version on the next run. Its output's
# digest still lets the steps downstream be skipped when the rows are the same.
@step(cache=False, name="load")
def load_window(
    dataset: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    labelled_by_ms: int | None = None,
) -> pd.DataFrame:
    """The rows of ``dataset`` (a ``name`` or ``name@vN``) with ``start_ms <= timestamp_ms <
    end_ms`` and, when ``labelled_by_ms`` is given, a label known by then; oldest first."""
    from mloop.data import load

    table = load(dataset).to_pandas()
    for column in (TIME_COLUMN, DELAY_COLUMN):
        if column not in table.columns:
            raise InvalidInput(
                f"dataset {dataset!r} has no column {column!r}; register data made by "
                "mloop.examples.fraud.generate or mloop.examples.demand.generate"
            )
    rows = table[_window(table, start_ms, end_ms, labelled_by_ms)]
    if rows.empty:
        raise InvalidInput(
            f"dataset {dataset!r} has no labelled rows with start_ms={start_ms}, "
            f"end_ms={end_ms}, labelled_by_ms={labelled_by_ms}; widen the window"
        )
    return rows.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)


@step(name="split")
def split_by_time(frame: pd.DataFrame, holdout: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` (oldest first) into the earlier rows to train on and the latest
    ``holdout`` share to test on: the test rows are always later than the training rows."""
    if not 0.0 < holdout < 1.0:
        raise InvalidInput(f"holdout must be strictly between 0 and 1, got {holdout!r}")
    cut = round(len(frame) * (1.0 - holdout))
    if cut < 1 or cut >= len(frame):
        raise InvalidInput(
            f"holdout={holdout} of {len(frame)} rows leaves an empty side; load more rows"
        )
    ordered = frame.sort_values(TIME_COLUMN, kind="stable")
    return (
        ordered.iloc[:cut].reset_index(drop=True),
        ordered.iloc[cut:].reset_index(drop=True),
    )


def _encoded(estimator: Any, categorical: tuple[str, ...], features: tuple[str, ...]) -> Pipeline:
    """``estimator`` behind an encoder of the string columns, as one scikit-learn pipeline fed
    with the raw ``features`` (so it predicts on rows as they are served).

    The string columns become ordinal codes (an unseen or missing value: -1) that the trees
    split as numbers. Declaring them categorical to the booster would be a little better, but
    then scikit-learn keeps a ``functools.partial`` inside the model, which the sklearn flavor
    refuses to save (it could run code when loaded); the pipeline holds only safe types.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder, StandardScaler

    numeric = [f for f in features if f not in categorical]
    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                list(categorical),
            ),
            # Identity, turning booleans and ints into floats ("passthrough" would keep a
            # partial too).
            ("numbers", StandardScaler(with_mean=False, with_std=False), numeric),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("encode", encode), ("model", estimator)])


def _check_rows(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"{what}: the data has no columns {missing}")
    if len(frame) == 0:
        raise InvalidInput(f"{what}: no rows to train on; load a wider window")


@step(name="train")
def train_fraud_model(
    frame: pd.DataFrame,
    max_iter: int = 100,
    learning_rate: float = 0.1,
    max_leaf_nodes: int = 31,
    seed: int = 0,
) -> Pipeline:
    """Fit a HistGradientBoostingClassifier on ``frame``'s fraud features (a fixed budget:
    ``max_iter`` trees, no early stopping, so a run takes the same time every time)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    _check_rows(frame, (*fraud.FEATURES, fraud.TARGET), "train_fraud_model")
    if frame[fraud.TARGET].nunique() < 2:
        raise InvalidInput("train_fraud_model: the rows hold one class only; load a wider window")
    model = _encoded(
        HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            early_stopping=False,
            random_state=seed,
        ),
        fraud.CATEGORICAL,
        fraud.FEATURES,
    )
    return model.fit(frame[list(fraud.FEATURES)], frame[fraud.TARGET])


def _evaluate(
    model: Any, frame: pd.DataFrame, features: tuple[str, ...], target: str
) -> dict[str, float]:
    from mloop.evaluation import evaluate

    data = frame[[*features, target]]
    result = evaluate(model, data, target=target, latency=False, plots=False)
    return {k: float(v) for k, v in result.metrics.items()} | {"rows": float(len(frame))}


@step(name="evaluate")
def evaluate_fraud_model(model: Pipeline, frame: pd.DataFrame) -> dict[str, float]:
    """Metrics of the fraud model on the held-out rows: ``roc_auc``, ``pr_auc``, ``log_loss``
    and the rest of :func:`mloop.evaluation.evaluate`'s, with ``rows`` and ``positives``."""
    _check_rows(frame, (*fraud.FEATURES, fraud.TARGET), "evaluate_fraud_model")
    if frame[fraud.TARGET].nunique() < 2:
        raise InvalidInput(
            "evaluate_fraud_model: the held-out rows hold one class only, so ROC AUC is "
            "undefined; load a wider window or raise holdout"
        )
    metrics = _evaluate(model, frame, fraud.FEATURES, fraud.TARGET)
    return metrics | {"positives": float(frame[fraud.TARGET].sum())}


@step(name="train")
def train_demand_model(
    frame: pd.DataFrame,
    max_iter: int = 150,
    learning_rate: float = 0.1,
    max_leaf_nodes: int = 31,
    seed: int = 0,
) -> Pipeline:
    """Fit a HistGradientBoostingRegressor (Poisson loss: sales are counts) on ``frame``'s
    demand features, with a fixed budget of ``max_iter`` trees."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    _check_rows(frame, (*demand.FEATURES, demand.TARGET), "train_demand_model")
    model = _encoded(
        HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            early_stopping=False,
            random_state=seed,
        ),
        demand.CATEGORICAL,
        demand.FEATURES,
    )
    return model.fit(frame[list(demand.FEATURES)], frame[demand.TARGET])


@step(name="evaluate")
def evaluate_demand_model(model: Pipeline, frame: pd.DataFrame) -> dict[str, float]:
    """Metrics of the demand model on the held-out rows: ``rmse``, ``mae``, ``r2`` and the rest
    of :func:`mloop.evaluation.evaluate`'s, with ``rows`` and ``mean_units``."""
    _check_rows(frame, (*demand.FEATURES, demand.TARGET), "evaluate_demand_model")
    metrics = _evaluate(model, frame, demand.FEATURES, demand.TARGET)
    return metrics | {"mean_units": float(frame[demand.TARGET].mean())}


@pipeline
def fraud_training(
    *,
    dataset: str = "transactions",
    start_ms: int | None = None,
    end_ms: int | None = None,
    labelled_by_ms: int | None = None,
    holdout: float = 0.2,
    max_iter: int = 100,
    learning_rate: float = 0.1,
    seed: int = 0,
) -> None:
    """Load a window of transactions, train the fraud classifier, evaluate it (ROC AUC)."""
    train_rows, test_rows = split_by_time(
        load_window(dataset, start_ms, end_ms, labelled_by_ms), holdout
    )
    model = train_fraud_model(train_rows, max_iter, learning_rate, seed=seed)
    evaluate_fraud_model(model, test_rows)


@pipeline
def demand_training(
    *,
    dataset: str = "demand",
    start_ms: int | None = None,
    end_ms: int | None = None,
    labelled_by_ms: int | None = None,
    holdout: float = 0.2,
    max_iter: int = 150,
    learning_rate: float = 0.1,
    seed: int = 0,
) -> None:
    """Load a window of store-item days, train the demand regressor, evaluate it (RMSE, MAE)."""
    train_rows, test_rows = split_by_time(
        load_window(dataset, start_ms, end_ms, labelled_by_ms), holdout
    )
    model = train_demand_model(train_rows, max_iter, learning_rate, seed=seed)
    evaluate_demand_model(model, test_rows)


# -- retraining on what a deployment served (the closed-loop demo's policies) ------------------
@step(cache=False, name="load")
def load_feedback(deployment: str, start_ms: int, end_ms: int, target: str) -> pd.DataFrame:
    """The labelled rows ``deployment`` served in ``[start_ms, end_ms)`` (its prediction log
    joined with the labels sent to ``/feedback``): the inputs, ``target`` and ``timestamp_ms``,
    oldest first."""
    from mloop.loop.episodes import labelled_frame
    from mloop.serving.predlog_read import read_predictions

    table = read_predictions(deployment, start_ms=start_ms, end_ms=end_ms, with_labels=True)
    frame = labelled_frame(table).rename(columns={"label": target, "ts": TIME_COLUMN})
    if frame.empty:
        raise InvalidInput(
            f"deployment {deployment!r} has no labelled rows in [{start_ms}, {end_ms}); "
            "send labels through /feedback first"
        )
    frame[target] = pd.to_numeric(frame[target]).astype(np.int64)
    return frame.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)


@pipeline
def fraud_retraining(
    *,
    deployment: str,
    start_ms: int,
    end_ms: int,
    holdout: float = 0.2,
    max_iter: int = 100,
    seed: int = 0,
) -> None:
    """Retrain the fraud classifier on the labelled rows a deployment served (the agent gives
    ``deployment``, ``start_ms`` and ``end_ms``), and evaluate it on their latest slice."""
    train_rows, test_rows = split_by_time(
        load_feedback(deployment, start_ms, end_ms, fraud.TARGET), holdout
    )
    model = train_fraud_model(train_rows, max_iter, seed=seed)
    evaluate_fraud_model(model, test_rows)


@pipeline
def demand_retraining(
    *,
    deployment: str,
    start_ms: int,
    end_ms: int,
    holdout: float = 0.2,
    max_iter: int = 150,
    seed: int = 0,
) -> None:
    """Retrain the demand regressor on the labelled rows a deployment served, and evaluate it
    on their latest slice."""
    train_rows, test_rows = split_by_time(
        load_feedback(deployment, start_ms, end_ms, demand.TARGET), holdout
    )
    model = train_demand_model(train_rows, max_iter, seed=seed)
    evaluate_demand_model(model, test_rows)
