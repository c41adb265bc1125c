"""Retraining pipelines for the loop tests: read a window of the prediction log, train."""

from __future__ import annotations

import os
import time

import pandas as pd
from sklearn.linear_model import LogisticRegression

from mloop.loop.episodes import labelled_frame
from mloop.pipelines import pipeline, step
from mloop.serving.predlog_read import read_predictions

FEATURES = ["f0", "f1", "f2"]
#: When this file exists, ``load`` stops the run as Ctrl-C would (an agent killed mid-retrain).
INTERRUPT_ENV = "MLOOP_TEST_INTERRUPT_FILE"
#: Seconds ``load`` sleeps first (an agent to kill in the middle of a retrain).
DELAY_ENV = "MLOOP_TEST_LOAD_DELAY"


@step(cache=False)
def load(deployment: str, start_ms: int, end_ms: int) -> pd.DataFrame:
    """The labelled rows logged in the window."""
    flag = os.environ.get(INTERRUPT_ENV)
    if flag and os.path.exists(flag):
        raise KeyboardInterrupt("the agent was stopped")
    time.sleep(float(os.environ.get(DELAY_ENV, "0")))
    table = read_predictions(deployment, start_ms=start_ms, end_ms=end_ms)
    return labelled_frame(table).drop(columns=["ts"]).reset_index(drop=True)


@step
def train(frame: pd.DataFrame, c: float) -> LogisticRegression:
    """A logistic regression on the window."""
    return LogisticRegression(C=c).fit(frame[FEATURES], frame["label"].astype(int))


@pipeline
def retrain(deployment: str, start_ms: int, end_ms: int, c: float = 1.0) -> None:
    """Load the window, train."""
    train(load(deployment, start_ms, end_ms), c)


@step
def broken(deployment: str, start_ms: int, end_ms: int) -> pd.DataFrame:
    """A load that always fails."""
    raise RuntimeError("the feature store is down")


@pipeline
def failing(deployment: str, start_ms: int, end_ms: int) -> None:
    """A retraining whose first step fails."""
    train(broken(deployment, start_ms, end_ms), 1.0)


@pipeline
def no_window(depth: int = 3) -> None:
    """A pipeline that does not take the window params."""
    train(broken("x", 0, depth), 1.0)
