"""The closed-loop demo's scenarios: their names, volumes and settings, and the data each one
generates (:mod:`mloop.examples.fraud`, :mod:`mloop.examples.demand`) on a simulated clock.

``SCENARIOS["fraud"]`` replays card transactions whose fraud pattern changes at a known row;
``SCENARIOS["demand"]`` replays daily store-item sales whose demand changes on a known day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mloop.examples import demand, fraud
from mloop.examples.fraud import DAY_MS, HOUR_MS
from mloop.examples.pipelines import TIME_COLUMN

__all__ = [
    "DEMAND",
    "FRAUD",
    "SCENARIOS",
    "SIM_START_MS",
    "ScenarioSpec",
    "change_point",
    "fresh_sample",
    "generate_timeline",
]

#: The simulated clock starts on a Monday, midnight UTC (2023-11-13).
SIM_START_MS = 1_699_833_600_000


@dataclass(frozen=True)
class ScenarioSpec:
    """The names, volumes and settings of one scenario of the demo."""

    name: str
    dataset: str
    model: str
    deployment: str
    features: tuple[str, ...]
    target: str
    #: The metric the gate and the summary compare, and whether higher is better.
    metric: str
    higher_is_better: bool
    #: Rows of history to train the first model on, and of live replay before the change.
    train_rows: int
    pre_rows: int
    #: Most rows replayed after the change (the replay stops earlier once the loop is done).
    post_rows: int
    window_rows: int
    #: Rows of fresh post-change data to compare the old and the new model on.
    fresh_rows: int
    initial_pipeline: str
    retrain_pipeline: str
    gate_min: dict[str, float]
    gate_max: dict[str, float]
    beat_champion: dict[str, float]
    min_labelled_rows: int
    canary_error_rate: float | None
    #: Rows per replay batch (one agent tick after each).
    batch_rows: int = 1000
    #: Windows replayed after the episode ended, to show the promoted model serving.
    after_windows: int = 2
    #: How the timeline shows simulated time.
    time_format: str = "%a %H:%M"
    #: The monitor's thresholds (``mloop.monitors.create(thresholds=)``).
    monitor_thresholds: dict[str, Any] = field(default_factory=dict)


FRAUD = ScenarioSpec(
    name="fraud",
    dataset="transactions",
    model="fraud",
    deployment="fraud-detector",
    features=fraud.FEATURES,
    target=fraud.TARGET,
    metric="roc_auc",
    higher_is_better=True,
    train_rows=20_000,
    pre_rows=12_000,
    post_rows=40_000,
    window_rows=2_000,
    fresh_rows=20_000,
    initial_pipeline="mloop.examples.pipelines:fraud_training",
    retrain_pipeline="mloop.examples.pipelines:fraud_retraining",
    gate_min={"roc_auc": 0.8},
    gate_max={},
    beat_champion={"roc_auc": 0.005},
    min_labelled_rows=8_000,
    canary_error_rate=0.01,
)
DEMAND = ScenarioSpec(
    name="demand",
    dataset="demand",
    model="demand",
    deployment="demand-forecaster",
    features=demand.FEATURES,
    target=demand.TARGET,
    metric="rmse",
    higher_is_better=False,
    train_rows=8 * 7 * 300,
    pre_rows=4 * 7 * 300,
    post_rows=14 * 7 * 300,
    window_rows=7 * 300,
    fresh_rows=4 * 7 * 300,
    initial_pipeline="mloop.examples.pipelines:demand_training",
    retrain_pipeline="mloop.examples.pipelines:demand_retraining",
    gate_min={},
    gate_max={},
    beat_champion={"rmse": 0.1},
    min_labelled_rows=6 * 7 * 300,
    canary_error_rate=None,
    batch_rows=1_050,
    time_format="%a %d %b",
    # A week's RMSE moves with its weather and promotions: up to 20 % above the reference on
    # unchanged data; the change doubles it.
    monitor_thresholds={"performance": 0.4},
)
#: The scenarios by name.
SCENARIOS = {"fraud": FRAUD, "demand": DEMAND}


def generate_timeline(spec: ScenarioSpec, seed: int, *, change_at_ms: int | None) -> pd.DataFrame:
    """History, replay and the rows after the replay (the fresh post-change sample is drawn
    separately), as one timeline."""
    total = spec.train_rows + spec.pre_rows + spec.post_rows
    if spec.name == "fraud":
        return fraud.generate(
            total, start_ms=SIM_START_MS, seed=seed, change_at_ms=change_at_ms,
            label_delay_median_ms=HOUR_MS,
        )  # fmt: skip
    days = total // 300
    return demand.generate(days, start_ms=SIM_START_MS, seed=seed, change_at_ms=change_at_ms)


def change_point(spec: ScenarioSpec, seed: int) -> int:
    """The simulated time of the change: the time of the first live row after ``pre_rows``
    (the rows' times do not depend on the change, so the change lands on a window boundary)."""
    if spec.name == "demand":
        return SIM_START_MS + (spec.train_rows + spec.pre_rows) // 300 * DAY_MS
    probe = generate_timeline(spec, seed, change_at_ms=None)
    ts = probe[TIME_COLUMN].to_numpy()
    at = spec.train_rows + spec.pre_rows
    change = int(ts[at])
    if int(ts[at - 1]) >= change:  # two rows in one millisecond across the boundary
        change = int(ts[at - 1]) + 1
    return change


def fresh_sample(spec: ScenarioSpec, seed: int, start_ms: int, change_ms: int) -> pd.DataFrame:
    """Post-change rows no model has seen: later traffic from the same population."""
    if spec.name == "fraud":
        return fraud.generate(
            spec.fresh_rows, start_ms=start_ms, seed=seed, change_at_ms=change_ms,
            label_delay_median_ms=HOUR_MS,
        )  # fmt: skip
    start = start_ms - start_ms % DAY_MS + DAY_MS
    return demand.generate(
        spec.fresh_rows // 300, start_ms=start, seed=seed, change_at_ms=change_ms
    )
