"""Canary settings, durations and the health of a canary read from a real prediction log."""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from mloop.errors import InvalidInput
from mloop.loop import Canary, check_health, parse_duration
from tests.loop.scenario import DEP, FEATURES, Scenario, now_ms, sample


@pytest.mark.parametrize(
    ("text", "ms"),
    [("15m", 900_000), ("0.2s", 200), ("6h", 21_600_000), ("1d", 86_400_000), ("250ms", 250),
     (1.5, 1500), (0, 0)],
)  # fmt: skip
def test_durations(text: Any, ms: int) -> None:
    assert parse_duration(text, "hold") == ms


@pytest.mark.parametrize("text", ["", "15", "1w", "-1s", -2, True, None, float("inf")])
def test_bad_durations_name_the_field(text: Any) -> None:
    with pytest.raises(InvalidInput, match=r"hold .* is not a duration"):
        parse_duration(text, "hold")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"steps": []}, "non-empty list"),
        ({"steps": "0.5"}, "non-empty list"),
        ({"steps": [0.5, 0.2]}, "must grow"),
        ({"steps": [0, 1]}, r"in \(0, 1\]"),
        ({"steps": [1.5]}, r"in \(0, 1\]"),
        ({"hold": "soon"}, "not a duration"),
        ({"max_error_rate": 2.0}, r"share in \[0, 1\]"),
        ({"max_p99_ms": -1}, "number >= 0"),
        ({"min_rows": -1}, "min_rows must be >= 0"),
        ({"min_rows": 1.5}, "whole number"),
    ],
)
def test_bad_canaries_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Canary(**options)


def test_a_canary_round_trips() -> None:
    canary = Canary(steps=[0.1, 1.0], hold="0.2s", max_p99_ms=80.0, min_rows=3)
    assert canary.hold_ms == 200
    assert Canary.from_dict(canary.to_dict()) == canary
    with pytest.raises(InvalidInput, match="unknown rollout field"):
        Canary.from_dict({"steps": [1.0], "pause": "1m"})


def test_health_reads_the_canary_rows_of_the_hold(scenario: Scenario) -> None:
    frame = sample(500, 3, changed=True)
    good = LogisticRegression().fit(frame[FEATURES], frame["label"])
    t = now_ms()
    # The primary (the champion, trained before the change) is often wrong after it; the
    # canary is right more often: healthy. A row outside the hold does not count.
    scenario.log(t, t + 1000, 200, changed=True)
    scenario.log(t, t + 1000, 200, changed=True, version=2, role="canary", model=good, seed=2)
    scenario.log(t - 60_000, t - 59_000, 20, version=2, role="canary", model=good, latency_ms=900)
    canary = Canary(steps=[1.0], hold="1s", max_p99_ms=50, min_rows=100)
    health = check_health(DEP, 2, canary, start_ms=t, end_ms=t + 1000, client=scenario.client)
    assert health.passed is True, health.reason
    assert health.rows == 200 and health.labelled == 200 and health.p99_ms == 2.0
    assert health.error_rate is not None and health.primary_error_rate is not None
    assert health.error_rate < health.primary_error_rate
    # Too few rows: undecided.
    few = Canary(steps=[1.0], hold="1s", min_rows=1000)
    waiting = check_health(DEP, 2, few, start_ms=t, end_ms=t + 1000, client=scenario.client)
    assert waiting.passed is None and "200 canary row(s) of the 1000 needed" in waiting.reason


def test_a_canary_significantly_worse_than_the_primary_fails(scenario: Scenario) -> None:
    frame = sample(500, 3, changed=True)
    flipped = LogisticRegression().fit(frame[FEATURES], 1 - frame["label"])
    t = now_ms()
    scenario.log(t, t + 1000, 300, changed=False)  # the champion, on data it knows
    scenario.log(t, t + 1000, 300, changed=False, version=2, role="canary", model=flipped, seed=5)
    canary = Canary(steps=[1.0], hold="1s", max_error_rate=0.05, min_rows=10)
    health = check_health(DEP, 2, canary, start_ms=t, end_ms=t + 1000, client=scenario.client)
    assert health.passed is False
    assert "exceeds the primary's" in health.reason and "max_error_rate=0.05" in health.reason


def test_a_few_labels_cannot_roll_back_by_chance(scenario: Scenario) -> None:
    t = now_ms()
    scenario.log(t, t + 1000, 300, changed=False)
    scenario.log(t, t + 1000, 10, changed=False, version=2, role="canary", seed=9, per_request=5)
    canary = Canary(steps=[1.0], hold="1s", max_error_rate=0.0, min_rows=5)
    health = check_health(DEP, 2, canary, start_ms=t, end_ms=t + 1000, client=scenario.client)
    assert health.passed is True, health.reason


def test_at_a_full_step_the_primary_of_the_whole_rollout_is_the_baseline(
    scenario: Scenario,
) -> None:
    frame = sample(500, 3, changed=True)
    good = LogisticRegression().fit(frame[FEATURES], frame["label"])
    t = now_ms()
    # Step 0 (primary and canary answer), then a 100 % step where only the canary answers.
    scenario.log(t - 2000, t - 1000, 200, changed=True)
    scenario.log(t, t + 1000, 200, changed=True, version=2, role="canary", model=good, seed=2)
    canary = Canary(steps=[1.0], hold="1s", max_error_rate=0.0, min_rows=10)
    alone = check_health(DEP, 2, canary, start_ms=t, end_ms=t + 1000, client=scenario.client)
    assert alone.passed is True and "not compared" in alone.reason
    whole = check_health(
        DEP, 2, canary, start_ms=t, end_ms=t + 1000, baseline_start_ms=t - 2000,
        client=scenario.client,
    )  # fmt: skip
    assert whole.passed is True and whole.primary_error_rate is not None
    assert whole.error_rate is not None and whole.error_rate < whole.primary_error_rate
    worse = LogisticRegression().fit(frame[FEATURES], 1 - frame["label"])
    scenario.log(t, t + 1000, 200, changed=True, version=3, role="canary", model=worse, seed=6)
    bad = check_health(
        DEP, 3, canary, start_ms=t, end_ms=t + 1000, baseline_start_ms=t - 2000,
        client=scenario.client,
    )  # fmt: skip
    assert bad.passed is False and "exceeds the primary's" in bad.reason


def test_a_few_unlucky_labelled_rows_are_not_significant() -> None:
    from mloop.loop.rollout import _significantly_worse

    # 2 errors in 16 rows against a primary at 3.4 % on 1,365: chance, not evidence.
    assert not _significantly_worse(2 / 16, 16, 0.034, 1365, 0.01)
    # 30 errors in 200 rows against the same primary: clearly worse.
    assert _significantly_worse(30 / 200, 200, 0.034, 1365, 0.01)
    assert not _significantly_worse(0.0, 0, 0.034, 1365, 0.01)


def test_error_rates_compare_numbers_by_value_and_text_as_text() -> None:
    import pyarrow as pa

    from mloop.loop.rollout import _error_rate, _is_classification

    def col(values: list[Any], kind: Any = None) -> pa.ChunkedArray:
        return pa.chunked_array([pa.array(values, kind)])

    # 1, 1.0 and "1" are the same answer; unlabelled rows do not count.
    assert _error_rate(col([1, 0, 1, 1]), col([1.0, 0.0, 0.0, None])) == (1 / 3, 3)
    assert _error_rate(col([1, 0]), col(["1", "0"])) == (0.0, 2)
    assert _error_rate(col(["fraud", "ok"]), col([1, 0])) == (1.0, 2)
    words = pa.chunked_array([pa.array(["a", "b", "a"]).dictionary_encode()])
    assert _error_rate(words, col(["a", "a", "a"])) == (1 / 3, 3)
    assert _error_rate(col([[1, 2], [3]]), col(["[1, 2]", "[4]"])) == (0.5, 2)
    assert _error_rate(col([1]), col([None], pa.int64())) == (None, 0)
    # Classes: text, booleans, few whole numbers; a regressor's labels are not.
    assert _is_classification(col(["a", "b"])) and _is_classification(col([True, False]))
    assert _is_classification(col([0, 1, 1, None]))
    assert not _is_classification(col([0.5, 1.25]))
    assert not _is_classification(col(list(range(60))))
    assert not _is_classification(col([None], pa.int64()))


def test_a_regressor_is_told_by_its_predictions_not_a_few_count_labels() -> None:
    import pyarrow as pa

    from mloop.loop.rollout import _continuous

    # 50 labelled unit sales hold few distinct whole numbers: the float predictions tell.
    assert _continuous(pa.chunked_array([pa.array([3.2, 4.0, 11.7])]))
    assert not _continuous(pa.chunked_array([pa.array([0.0, 1.0, 1.0])]))
    assert not _continuous(pa.chunked_array([pa.array([0, 1, 1])]))
    assert not _continuous(pa.chunked_array([pa.array(["a", "b"])]))
