"""The demand scenario's generator: determinism, schema and ranges, sales known after the day
closes, a real change point (drift in the inputs, and a model trained before it that fails
after it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.data import drift
from mloop.errors import InvalidInput
from mloop.examples import demand
from tests.examples.conftest import DAY_MS, DEMAND_CHANGE, T0, week_window

FEATURES = list(demand.FEATURES)


def test_same_seed_same_rows_and_other_seeds_differ() -> None:
    a = demand.generate(7, start_ms=T0, seed=3, change_at_ms=T0 + 3 * DAY_MS)
    b = demand.generate(7, start_ms=T0, seed=3, change_at_ms=T0 + 3 * DAY_MS)
    pd.testing.assert_frame_equal(a, b)
    other = demand.generate(7, start_ms=T0, seed=4, change_at_ms=T0 + 3 * DAY_MS)
    assert not a["units_sold"].equals(other["units_sold"])


def test_columns_types_and_ranges(demand_timeline: pd.DataFrame) -> None:
    frame = demand_timeline
    assert list(frame.columns) == [
        "forecast_id",
        demand.TIMESTAMP,
        "day_ms",
        "store",
        "item",
        "item_category",
        "day_of_week",
        "price",
        "promo",
        "discount_pct",
        "temperature_c",
        "precipitation_mm",
        "competitor_promo",
        demand.TARGET,
        demand.LABEL_DELAY,
    ]
    assert len(frame) == 16 * 7 * 10 * 30
    assert frame[demand.TIMESTAMP].is_monotonic_increasing
    assert (frame["forecast_id"].to_numpy() == np.arange(len(frame))).all()
    # One row per store, item and day; asked during the day it is for.
    assert not frame.duplicated(["store", "item", "day_ms"]).any()
    offset = frame[demand.TIMESTAMP] - frame["day_ms"]
    assert offset.between(0, DAY_MS - 1).all()
    assert frame["store"].nunique() == 10 and frame["item"].nunique() == 30
    assert set(frame["item_category"]) == set(demand.ITEM_CATEGORIES)
    assert frame["day_of_week"].between(0, 6).all()
    assert (frame.loc[frame["day_ms"] == T0, "day_of_week"] == 0).all()  # T0 is a Monday
    assert (frame["price"] > 0).all() and (frame[demand.TARGET] >= 0).all()
    assert ((frame["discount_pct"] > 0) == frame["promo"]).all()
    assert frame["discount_pct"].between(0, 40).all()
    assert (frame["precipitation_mm"] >= 0).all()
    assert frame["temperature_c"].between(-15, 50).all()


def test_sales_are_known_after_the_day_closes(demand_timeline: pd.DataFrame) -> None:
    known_at = demand_timeline[demand.TIMESTAMP] + demand_timeline[demand.LABEL_DELAY]
    day_end = demand_timeline["day_ms"] + DAY_MS
    assert (known_at > day_end).all()
    lag = (known_at - day_end).median()
    assert 2 * 3_600_000 < lag < 4 * 3_600_000  # the default reporting lag: 3 hours


def test_the_change_moves_inputs_and_shoppers(demand_timeline: pd.DataFrame) -> None:
    before = demand_timeline[demand_timeline["day_ms"] < DEMAND_CHANGE]
    after = demand_timeline[demand_timeline["day_ms"] >= DEMAND_CHANGE]
    assert after["temperature_c"].mean() - before["temperature_c"].mean() > 7
    assert after["promo"].mean() > 2.5 * before["promo"].mean()
    assert after["price"].mean() > 1.15 * before["price"].mean()
    assert after["competitor_promo"].mean() > 3 * before["competitor_promo"].mean()
    # Ice cream sells far more in the heat, dearer as it is.
    ice = demand_timeline["item_category"] == "ice_cream"
    assert after.loc[ice, "units_sold"].mean() > 1.5 * before.loc[ice, "units_sold"].mean()


def test_inputs_drift_after_the_change_and_not_before(demand_timeline: pd.DataFrame) -> None:
    reference = week_window(demand_timeline, 0)[FEATURES]
    assert len(reference) == 2_100
    for week in range(1, 8):
        report = drift(reference, week_window(demand_timeline, week)[FEATURES], drift_share=0.5)
        assert not report.drifted, (week, report.drifted_columns)
    for week in (8, 9, 15):
        report = drift(reference, week_window(demand_timeline, week)[FEATURES], drift_share=0.5)
        assert report.drifted and report.drifted_share >= 0.6, (week, report.drifted_columns)


def test_without_drift_the_inputs_stay_put() -> None:
    frame = demand.generate(14, start_ms=T0, seed=2, change_at_ms=T0 + 7 * DAY_MS, drift=False)
    reference, current = week_window(frame, 0), week_window(frame, 1)
    assert not drift(reference[FEATURES], current[FEATURES], drift_share=0.5).drifted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": -1}, "days must be"),
        ({"stores": 0}, "stores must be"),
        ({"items": 2.5}, "items must be"),
        ({"start_ms": "now"}, "start_ms must be"),
        ({"reporting_lag_median_ms": -5}, "reporting_lag_median_ms must be"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"days": 1, "start_ms": T0} | kwargs
    with pytest.raises(InvalidInput, match=message):
        demand.generate(**args)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_model_trained_before_the_change_fails_after_it(demand_timeline: pd.DataFrame) -> None:
    from mloop.examples.pipelines import evaluate_demand_model, train_demand_model

    day = demand_timeline["day_ms"]
    before = demand_timeline[day < DEMAND_CHANGE]
    after = demand_timeline[(day >= DEMAND_CHANGE) & (day < DEMAND_CHANGE + 28 * DAY_MS)]
    test = demand_timeline[day >= DEMAND_CHANGE + 28 * DAY_MS]
    old = evaluate_demand_model(train_demand_model(before), test)
    new = evaluate_demand_model(train_demand_model(after), test)
    print(
        f"after the change: old model RMSE {old['rmse']:.2f} MAE {old['mae']:.2f}, "
        f"new model RMSE {new['rmse']:.2f} MAE {new['mae']:.2f}"
    )
    assert new["rmse"] < 0.85 * old["rmse"]
    assert new["mae"] < 0.85 * old["mae"]
