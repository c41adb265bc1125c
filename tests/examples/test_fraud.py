"""The fraud scenario's generator: determinism, schema and ranges, late labels, a real change
point (drift in the features, and a model trained before it that fails after it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.data import drift, profile
from mloop.errors import InvalidInput
from mloop.examples import fraud
from tests.examples.conftest import FRAUD_CHANGE, HOUR_MS, T0, hour_window

FEATURES = list(fraud.FEATURES)


def test_same_seed_same_rows_and_other_seeds_differ() -> None:
    a = fraud.generate(5_000, start_ms=T0, seed=3, change_at_ms=T0 + HOUR_MS)
    b = fraud.generate(5_000, start_ms=T0, seed=3, change_at_ms=T0 + HOUR_MS)
    pd.testing.assert_frame_equal(a, b)
    other = fraud.generate(5_000, start_ms=T0, seed=4, change_at_ms=T0 + HOUR_MS)
    assert not a["amount"].equals(other["amount"])


def test_later_windows_share_customers_but_not_payments() -> None:
    first = fraud.generate(20_000, start_ms=T0, seed=3)
    later = fraud.generate(20_000, start_ms=T0 + 10 * HOUR_MS, seed=3)
    assert not first["amount"].equals(later["amount"])
    # The customer base depends on the seed only: a customer's 30-day mean stays near its level.
    both = pd.concat([first, later])
    both = both[both["is_fraud"] == 0]
    spread = both.groupby("customer_id")["mean_amount_30d"].agg(lambda s: s.max() / s.min())
    assert spread.median() < 1.5


def test_columns_types_and_ranges(fraud_timeline: pd.DataFrame) -> None:
    frame = fraud_timeline
    assert list(frame.columns) == [
        "transaction_id",
        "customer_id",
        fraud.TIMESTAMP,
        *fraud.FEATURES,
        fraud.TARGET,
        fraud.LABEL_DELAY,
    ]
    assert (frame["transaction_id"].to_numpy() == np.arange(len(frame))).all()
    assert frame[fraud.TIMESTAMP].is_monotonic_increasing
    assert frame[fraud.TIMESTAMP].iloc[0] >= T0
    # 2,000 an hour: 48,000 payments take about a day.
    span_hours = (frame[fraud.TIMESTAMP].iloc[-1] - T0) / HOUR_MS
    assert 23 < span_hours < 25
    assert (frame["amount"] >= 0.5).all()
    assert frame["hour"].between(0, 23).all()
    assert (frame["txn_count_24h"] >= 0).all()
    assert (frame["distance_from_home_km"] >= 0).all()
    assert (frame["card_age_days"] >= 0).all()
    assert set(frame["merchant_category"]) <= set(fraud.CATEGORIES)
    assert set(frame["country"]) <= set(fraud.COUNTRIES)
    assert set(frame["channel"]) == set(fraud.CHANNELS)
    assert set(frame[fraud.TARGET]) == {0, 1}
    assert frame["is_foreign"].dtype == bool and frame["device_new"].dtype == bool
    # Cash comes from ATMs, in multiples of 20; nothing else does.
    cash = frame["merchant_category"] == "cash_withdrawal"
    assert ((frame["channel"] == "atm") == cash).all()
    assert (frame.loc[cash, "amount"] % 20 == 0).all()
    assert (frame.loc[frame["merchant_category"] == "digital_goods", "channel"] == "online").all()
    # Abroad is far from home.
    assert frame.loc[frame["is_foreign"], "distance_from_home_km"].median() > 500


def test_fraud_rates_and_the_two_patterns(fraud_timeline: pd.DataFrame) -> None:
    before = fraud_timeline[fraud_timeline[fraud.TIMESTAMP] < FRAUD_CHANGE]
    after = fraud_timeline[fraud_timeline[fraud.TIMESTAMP] >= FRAUD_CHANGE]
    assert 0.008 < before[fraud.TARGET].mean() < 0.016
    assert 0.018 < after[fraud.TARGET].mean() < 0.03
    old = before[before[fraud.TARGET] == 1]
    new = after[after[fraud.TARGET] == 1]
    # Before: large, foreign, at night. After: mostly small online card tests, busy cards.
    assert old["amount"].median() > 300 and new["amount"].median() < 10
    assert old["is_foreign"].mean() > 0.6 and new["is_foreign"].mean() < 0.3
    assert old["hour"].isin([22, 23, 0, 1, 2, 3, 4, 5]).mean() > 0.6
    assert (new["channel"] == "online").mean() > 0.8
    assert new["txn_count_24h"].median() > 2 * before["txn_count_24h"].median()


def test_no_change_is_a_stationary_replay() -> None:
    frame = fraud.generate(30_000, start_ms=T0, seed=5)
    first, last = frame.iloc[:10_000], frame.iloc[-10_000:]
    assert abs(first["is_fraud"].mean() - last["is_fraud"].mean()) < 0.006
    assert abs(first["card_age_days"].median() - last["card_age_days"].median()) < 30
    frauds = frame[frame["is_fraud"] == 1]
    assert frauds["amount"].median() > 300  # the old pattern throughout


def test_labels_arrive_late_fraud_sooner(fraud_timeline: pd.DataFrame) -> None:
    delay = fraud_timeline[fraud.LABEL_DELAY]
    assert (delay >= 60_000).all()
    legit = delay[fraud_timeline[fraud.TARGET] == 0].median()
    frauds = delay[fraud_timeline[fraud.TARGET] == 1].median()
    assert 1.5 * HOUR_MS < legit < 2.5 * HOUR_MS  # the default median: 2 hours
    assert frauds < 0.7 * legit
    shorter = fraud.generate(2_000, start_ms=T0, seed=1, label_delay_median_ms=60_000)
    assert shorter[fraud.LABEL_DELAY].median() < 2 * 60_000


def test_labelled_by_keeps_rows_whose_label_is_known(fraud_timeline: pd.DataFrame) -> None:
    at = T0 + 6 * HOUR_MS
    known = fraud.labelled_by(fraud_timeline, at)
    assert (known[fraud.TIMESTAMP] + known[fraud.LABEL_DELAY] <= at).all()
    seen = fraud_timeline[fraud_timeline[fraud.TIMESTAMP] <= at]
    assert 0 < len(known) < len(seen)
    # Labels of the last hour before `at` are mostly still missing.
    recent = known[known[fraud.TIMESTAMP] > at - HOUR_MS]
    assert len(recent) < 0.5 * len(hour_window(fraud_timeline, 5))


def test_features_drift_after_the_change_and_not_before(fraud_timeline: pd.DataFrame) -> None:
    reference = hour_window(fraud_timeline, 0)[FEATURES]
    assert 1_800 < len(reference) < 2_200
    for hour in (1, 4, 8, 11):
        report = drift(reference, hour_window(fraud_timeline, hour)[FEATURES], drift_share=0.5)
        assert not report.drifted, (hour, report.drifted_columns)
    for hour in (12, 13, 20):
        report = drift(reference, hour_window(fraud_timeline, hour)[FEATURES], drift_share=0.5)
        assert report.drifted and report.drifted_share >= 0.6, (hour, report.drifted_columns)


def test_drift_against_a_stored_profile_of_the_training_hours(
    fraud_timeline: pd.DataFrame,
) -> None:
    train = fraud_timeline[fraud_timeline[fraud.TIMESTAMP] < T0 + 8 * HOUR_MS][FEATURES]
    reference = profile(train)
    before = drift(reference, hour_window(fraud_timeline, 10)[FEATURES], drift_share=0.5)
    after = drift(reference, hour_window(fraud_timeline, 12)[FEATURES], drift_share=0.5)
    assert not before.drifted and after.drifted


def test_without_drift_only_the_fraud_changes() -> None:
    frame = fraud.generate(6_000, start_ms=T0, seed=8, change_at_ms=T0 + HOUR_MS, drift=False)
    reference, current = hour_window(frame, 0), hour_window(frame, 2)
    assert not drift(reference[FEATURES], current[FEATURES], drift_share=0.5).drifted
    assert current[fraud.TARGET].mean() > reference[fraud.TARGET].mean()


def test_no_alarm_over_fifty_stationary_windows() -> None:
    frame = fraud.generate(104_000, start_ms=T0, seed=21)
    reference = hour_window(frame, 0)[FEATURES]
    shares = [
        drift(reference, hour_window(frame, hour)[FEATURES], drift_share=0.5).drifted_share
        for hour in range(1, 51)
    ]
    assert max(shares) < 0.5, shares


@pytest.mark.slow
def test_a_million_rows() -> None:
    frame = fraud.generate(1_000_000, start_ms=T0, seed=2, change_at_ms=T0 + 250 * HOUR_MS)
    assert len(frame) == 1_000_000
    assert frame["transaction_id"].is_unique


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "n must be"),
        ({"n": 1.5}, "n must be"),
        ({"start_ms": 1.5}, "start_ms must be"),
        ({"rate_per_hour": 0.0}, "rate_per_hour must be"),
        ({"customers": 3}, "customers must be"),
        ({"label_delay_median_ms": 0}, "label_delay_median_ms must be"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"n": 10, "start_ms": T0} | kwargs
    with pytest.raises(InvalidInput, match=message):
        fraud.generate(**args)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_model_trained_before_the_change_fails_after_it(fraud_timeline: pd.DataFrame) -> None:
    from mloop.examples.pipelines import evaluate_fraud_model, train_fraud_model

    ts = fraud_timeline[fraud.TIMESTAMP]
    before = fraud_timeline[ts < FRAUD_CHANGE]
    after = fraud_timeline[(ts >= FRAUD_CHANGE) & (ts < FRAUD_CHANGE + 6 * HOUR_MS)]
    test = fraud_timeline[ts >= FRAUD_CHANGE + 6 * HOUR_MS]
    old, new = train_fraud_model(before), train_fraud_model(after)
    old_auc = evaluate_fraud_model(old, test)["roc_auc"]
    new_auc = evaluate_fraud_model(new, test)["roc_auc"]
    print(f"ROC AUC after the change: old model {old_auc:.3f}, new model {new_auc:.3f}")
    assert new_auc > 0.9
    assert new_auc - old_auc >= 0.1
