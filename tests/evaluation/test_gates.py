"""Gates: construction rules, each kind of check, champions, and the serialised forms."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInput
from mloop.evaluation import EvaluationResult, Gate, GateDecision, LatencyStats, evaluate
from tests.evaluation.conftest import FEATURES


@pytest.fixture(scope="module")
def candidate(binary_data: pd.DataFrame, binary_model: Any) -> EvaluationResult:
    return evaluate(
        binary_model,
        binary_data,
        target="y",
        features=FEATURES,
        slices=["country"],
        latency=False,
        plots=False,
    )


def _with(result: EvaluationResult, **metrics: float) -> EvaluationResult:
    return replace(result, metrics={**result.metrics, **metrics})


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min": {"auc": 0.8}}, "gate min names unknown metric 'auc'; known metrics: accuracy"),
        ({"max": {"loss": 0.3}}, "unknown metric 'loss'"),
        ({"beat_champion": {"roc_au": 0.01}}, "unknown metric 'roc_au'"),
        ({"max_slice_gap": {"recal": 0.1}}, "unknown metric 'recal'"),
        ({"beat_champion": {"selection_rate": 0.0}}, "no better direction"),
        ({"min": {"roc_auc": "high"}}, "must be a number"),
        ({"min": {"roc_auc": True}}, "must be a number"),
        ({"min": {"roc_auc": float("nan")}}, "finite"),
        ({"max_slice_gap": {"recall": -0.1}}, "must be >= 0"),
        ({"max_latency_ms": 0}, "must be > 0"),
        ({"min": ["roc_auc"]}, "must be a mapping"),
        ({"require_champion": "yes"}, "true or false"),
    ],
)
def test_bad_gates_are_refused_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Gate(**kwargs)


def test_unknown_metric_message_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        Gate(min={"auc": 0.8})
    assert "roc_auc" in info.value.message and "rmse" in info.value.message
    assert info.value.details == {"metric": "auc"}


def test_gate_round_trips_through_dict_json_and_yaml() -> None:
    import yaml

    gate = Gate(
        min={"roc_auc": 0.85},
        max={"log_loss": 0.4},
        beat_champion={"roc_auc": 0.005},
        max_slice_gap={"recall": 0.1},
        max_latency_ms=20,
        require_champion=True,
    )
    assert Gate.from_dict(json.loads(json.dumps(gate.to_dict()))) == gate
    assert Gate.from_yaml(yaml.safe_dump(gate.to_dict())) == gate
    assert Gate.from_yaml("min:\n  roc_auc: 0.9\n") == Gate(min={"roc_auc": 0.9})
    assert Gate.from_yaml("") == Gate()
    with pytest.raises(InvalidInput, match="unknown gate field"):
        Gate.from_dict({"minimum": {"roc_auc": 0.9}})
    with pytest.raises(InvalidInput, match="does not parse"):
        Gate.from_yaml("min: [")
    with pytest.raises(InvalidInput, match="must be a mapping"):
        Gate.from_yaml("- 1")


# --- checks ----------------------------------------------------------------------------------


def test_min_and_max(candidate: EvaluationResult) -> None:
    auc = candidate.metrics["roc_auc"]
    ok = Gate(min={"roc_auc": auc - 0.01}, max={"log_loss": 10.0}).check(candidate)
    assert ok.passed and ok.reasons == [] and len(ok.checks) == 2
    bad = Gate(min={"roc_auc": auc + 0.01}, max={"brier": 0.0}).check(candidate)
    assert not bad.passed
    assert bad.reasons[0].startswith("roc_auc is") and "below the minimum" in bad.reasons[0]
    assert "above the maximum 0" in bad.reasons[1]
    check = bad.checks[0]
    assert check.name == "min" and check.observed == auc and check.required == auc + 0.01


def test_a_metric_the_result_lacks_fails_closed(
    candidate: EvaluationResult, regression_data: pd.DataFrame, regression_model: Any
) -> None:
    decision = Gate(min={"r2": 0.5}).check(candidate)
    assert not decision.passed
    assert "r2 was not computed for the candidate (classification" in decision.reasons[0]
    no_proba = replace(candidate, metrics={"accuracy": 0.9}, notes=["probability metrics … "])
    assert not Gate(min={"roc_auc": 0.5}).check(no_proba).passed


@pytest.mark.parametrize(
    ("metric", "champion", "candidate_value", "delta", "passed"),
    [
        ("roc_auc", 0.80, 0.81, 0.005, True),
        ("roc_auc", 0.80, 0.804, 0.005, False),
        ("roc_auc", 0.80, 0.80, 0.0, True),
        ("roc_auc", 0.80, 0.79, -0.02, True),  # non-inferiority margin
        ("log_loss", 0.40, 0.38, 0.01, True),
        ("log_loss", 0.40, 0.395, 0.01, False),
        ("brier", 0.10, 0.11, 0.0, False),
    ],
)
def test_beat_champion_reads_each_metric_s_direction(
    candidate: EvaluationResult,
    metric: str,
    champion: float,
    candidate_value: float,
    delta: float,
    passed: bool,
) -> None:
    decision = Gate(beat_champion={metric: delta}).check(
        _with(candidate, **{metric: candidate_value}), _with(candidate, **{metric: champion})
    )
    assert decision.passed is passed
    check = decision.checks[0]
    assert check.champion == champion and check.observed == candidate_value
    assert ("does not beat" in check.reason) is (not passed)


def test_no_champion_passes_unless_required(candidate: EvaluationResult) -> None:
    open_gate = Gate(beat_champion={"roc_auc": 0.01}).check(candidate)
    assert open_gate.passed and "no champion" in open_gate.checks[0].reason
    strict = Gate(beat_champion={"roc_auc": 0.01}, require_champion=True).check(candidate)
    assert not strict.passed and "requires one" in strict.reasons[0]


def test_a_champion_on_other_data_is_refused(
    candidate: EvaluationResult, binary_data: pd.DataFrame, binary_model: Any
) -> None:
    other = evaluate(
        binary_model,
        binary_data.iloc[:500],
        target="y",
        features=FEATURES,
        latency=False,
        plots=False,
    )
    gate = Gate(beat_champion={"roc_auc": 0.0})
    with pytest.raises(InvalidInput, match="different data"):
        gate.check(candidate, other)
    same_size = replace(candidate, data_digest="0" * 64)
    with pytest.raises(InvalidInput, match="different data"):
        gate.check(candidate, same_size)
    with pytest.raises(InvalidInput, match="cannot be compared"):
        gate.check(candidate, replace(candidate, target="is_fraud"))
    # a gate without beat_champion does not look at the champion
    assert Gate(min={"accuracy": 0.0}).check(candidate, other).passed


def test_a_champion_on_shuffled_rows_is_the_same_data(
    candidate: EvaluationResult, binary_data: pd.DataFrame, binary_model: Any
) -> None:
    shuffled = binary_data.sample(frac=1.0, random_state=3)
    champion = evaluate(
        binary_model, shuffled, target="y", features=FEATURES, latency=False, plots=False
    )
    decision = Gate(beat_champion={"roc_auc": 0.0}).check(candidate, champion)
    assert decision.passed and decision.champion_data_digest == decision.data_digest


def test_max_slice_gap(candidate: EvaluationResult) -> None:
    gap = candidate.slice_gap("recall")
    ok = Gate(max_slice_gap={"recall": gap + 0.01}).check(candidate)
    assert ok.passed and ok.checks[0].observed == pytest.approx(gap)
    bad = Gate(max_slice_gap={"equal_opportunity_difference": gap / 2}).check(candidate)
    assert not bad.passed
    assert "equal_opportunity_difference (the recall gap) across 'country'" in bad.reasons[0]
    assert "de" in bad.reasons[0] and "fr" in bad.reasons[0]
    unsliced = replace(candidate, slices={}, fairness={})
    assert (
        "no slices were evaluated" in Gate(max_slice_gap={"recall": 1}).check(unsliced).reasons[0]
    )
    assert (
        "not defined for any slice group"
        in (Gate(max_slice_gap={"rmse": 1}).check(candidate).reasons[0])
    )


def test_latency_budget(candidate: EvaluationResult) -> None:
    unmeasured = Gate(max_latency_ms=10).check(candidate)
    assert not unmeasured.passed and "not measured" in unmeasured.reasons[0]
    stats = LatencyStats(
        p50_ms=2.0,
        p99_ms=12.0,
        mean_ms=3.0,
        calls=50,
        batch_rows=600,
        batch_ms=5.0,
        rows_per_s=120000.0,
    )
    measured = replace(candidate, latency=stats)
    assert Gate(max_latency_ms=15).check(measured).passed
    slow = Gate(max_latency_ms=10).check(measured)
    assert not slow.passed and slow.checks[0].metric == "latency_p99_ms"
    assert "12 ms, above the budget 10 ms" in slow.reasons[0]


def test_decision_round_trips_and_accepts_result_dicts(candidate: EvaluationResult) -> None:
    gate = Gate(min={"roc_auc": 0.99}, beat_champion={"roc_auc": 0.0}, max_slice_gap={"f1": 1})
    decision = gate.check(candidate.to_dict(), candidate.to_dict())
    text = json.dumps(decision.to_dict(), allow_nan=False)
    back = GateDecision.from_dict(json.loads(text))
    assert back == decision
    assert back.gate == gate.to_dict() and back.data_digest == candidate.data_digest
    assert decision.summary().startswith("FAILED: roc_auc")
    assert [c.name for c in decision.failed] == ["min"]
    with pytest.raises(InvalidInput):
        GateDecision.from_dict({"checks": []})
    with pytest.raises(InvalidInput, match="must be an EvaluationResult"):
        gate.check(42)  # type: ignore[arg-type]


def test_an_empty_gate_passes(candidate: EvaluationResult) -> None:
    decision = Gate().check(candidate)
    assert decision.passed and decision.checks == [] and decision.summary() == "PASSED (0 checks)"


def test_regression_gate(regression_data: pd.DataFrame, regression_model: Any) -> None:
    result = evaluate(
        regression_model,
        regression_data,
        target="y",
        features=FEATURES,
        slices=["region"],
        latency=False,
        plots=False,
    )
    worse = replace(result, metrics={**result.metrics, "rmse": result.metrics["rmse"] * 2})
    gate = Gate(max={"rmse": 100.0}, beat_champion={"rmse": 0.1}, max_slice_gap={"mae": 10.0})
    assert gate.check(result, worse).passed
    assert not gate.check(worse, result).passed
    assert np.isfinite(result.slice_gap("mae"))
