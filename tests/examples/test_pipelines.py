"""The scenarios' training pipelines, run end to end through ``run_pipeline`` on a fresh
MLOOP_HOME: load a window of a registered dataset, split by time, train, evaluate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import mloop.data
import mloop.tracking
from mloop.errors import InvalidInput
from mloop.examples import demand, fraud
from mloop.examples.pipelines import (
    demand_training,
    fraud_training,
    split_by_time,
    train_fraud_model,
)
from mloop.pipelines.runner import StepFailed, import_pipeline, run_pipeline
from mloop.store.records import RunStatus
from tests.examples.conftest import DAY_MS, HOUR_MS, T0


@pytest.fixture
def home(mloop_home: Path) -> Iterator[Path]:
    """A fresh MLOOP_HOME, with the default client rebuilt for it."""
    mloop.tracking.reset_default_client()
    yield mloop_home
    mloop.tracking.reset_default_client()


def _served_rows(frame: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """Rows as a server builds them from JSON: plain strings, numbers and booleans."""
    return pd.DataFrame(json.loads(frame[list(features)].to_json(orient="records")))


def test_the_pipelines_import_by_reference() -> None:
    assert import_pipeline("mloop.examples.pipelines:fraud_training") is fraud_training
    assert import_pipeline("mloop.examples.pipelines:demand_training") is demand_training
    nodes = [c.id for c in fraud_training.graph().topological_order()]
    assert nodes == ["load", "split", "train", "evaluate"]


def test_fraud_training_end_to_end(home: Path) -> None:
    frame = fraud.generate(8_000, start_ms=T0, seed=1)
    mloop.data.register("transactions", frame)
    labelled_by = T0 + 4 * HOUR_MS
    result = run_pipeline(
        fraud_training,
        {"dataset": "transactions", "labelled_by_ms": labelled_by, "max_iter": 20},
    )
    assert result.status == RunStatus.FINISHED
    loaded = result.output("load")
    assert len(loaded) == len(fraud.labelled_by(frame, labelled_by))
    metrics = result.output("evaluate")
    assert 0.8 < metrics["roc_auc"] <= 1.0
    assert metrics["positives"] > 0
    model = result.output("train")
    rows = frame.iloc[-50:]
    proba = model.predict_proba(_served_rows(rows, fraud.FEATURES))[:, 1]
    assert ((proba >= 0) & (proba <= 1)).all()
    # A country the model never saw is a missing value, not an error.
    unseen = _served_rows(rows, fraud.FEATURES).assign(country="ZZ")
    assert len(model.predict_proba(unseen)) == 50


def test_a_window_with_no_rows_fails_the_load_step(home: Path) -> None:
    mloop.data.register("transactions", fraud.generate(1_000, start_ms=T0, seed=1))
    with pytest.raises(StepFailed, match="no labelled rows") as failed:
        run_pipeline(fraud_training, {"dataset": "transactions", "start_ms": T0 + 100 * DAY_MS})
    assert failed.value.node_id == "load"


def test_demand_training_end_to_end(home: Path) -> None:
    frame = demand.generate(21, start_ms=T0, seed=1, stores=4, items=10)
    mloop.data.register("demand", frame)
    result = run_pipeline(
        demand_training,
        {"dataset": "demand", "start_ms": T0 + 7 * DAY_MS, "max_iter": 30},
    )
    assert result.status == RunStatus.FINISHED
    assert len(result.output("load")) == 14 * 4 * 10
    metrics = result.output("evaluate")
    assert 0 < metrics["mae"] <= metrics["rmse"] < 3 * metrics["mean_units"]
    model = result.output("train")
    predicted = model.predict(_served_rows(frame.iloc[:20], demand.FEATURES))
    assert (predicted > 0).all()  # Poisson loss: a positive rate


def test_steps_refuse_bad_input() -> None:
    frame = fraud.generate(400, start_ms=T0, seed=1)
    with pytest.raises(InvalidInput, match="holdout must be strictly between 0 and 1"):
        split_by_time(frame, holdout=1.0)
    with pytest.raises(InvalidInput, match="leaves an empty side"):
        split_by_time(frame.iloc[:2], holdout=0.1)
    with pytest.raises(InvalidInput, match="one class only"):
        train_fraud_model(frame[frame["is_fraud"] == 0])
    with pytest.raises(InvalidInput, match=r"no columns \['amount'\]"):
        train_fraud_model(frame.drop(columns="amount"))
    train, test = split_by_time(frame, holdout=0.25)
    assert len(test) == 100 and train["timestamp_ms"].max() <= test["timestamp_ms"].min()
