"""Evaluations and gate decisions recorded with versions; promotion through the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop
from mloop import registry
from mloop.errors import Forbidden, InvalidInput
from mloop.tracking import TrackingClient


def data(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"amount": rng.normal(size=n), "age": rng.normal(size=n),
         "country": rng.choice(["FR", "DE"], n)}
    )  # fmt: skip
    frame["is_fraud"] = (frame["amount"] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return frame


def train(client: TrackingClient, features: list[str]) -> int:
    frame = data(seed=1)
    with client.start_run(experiment="fraud") as run:
        model = LogisticRegression().fit(frame[features], frame["is_fraud"])
        return run.log_model(model, "fraud", input_example=frame[features][:3]).version


def test_evaluate_records_with_the_version_and_run(client: TrackingClient) -> None:
    version = train(client, ["amount", "age"])
    holdout = data()
    with client.start_run(experiment="eval") as run:
        result = registry.evaluate(
            f"models:/fraud/{version}", holdout, target="is_fraud", slices=["country"],
            run=run, client=client, latency=False,
        )  # fmt: skip
    assert result.metrics["roc_auc"] > 0.8
    (record,) = client.store.list_model_records("fraud", version, "evaluation")
    assert record.subject == result.data_digest
    assert record.body["metrics"]["roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    assert "country" in record.body["slices"]
    plots = client.store.list_artifacts(
        "model_version", str(registry.resolve("fraud/1", client=client).id), "evaluations/"
    )
    assert any(e.path.endswith("roc.svg") for e in plots)
    logged = client.get_run(run.id)
    assert logged.metrics["eval_roc_auc"] == pytest.approx(result.metrics["roc_auc"])


def test_gate_checks_against_the_champion_and_governs_promotion(client: TrackingClient) -> None:
    weak = train(client, ["age"])  # no signal
    strong = train(client, ["amount", "age"])
    registry.set_alias("fraud", "champion", weak, client=client)
    registry.set_policy("fraud", "champion", gate=True, client=client)
    holdout = data()
    gate = mloop.Gate(min={"roc_auc": 0.7}, beat_champion={"roc_auc": 0.05})
    with pytest.raises(InvalidInput, match="target"):
        gate.check(f"fraud/{strong}", against="champion", data=holdout, client=client)
    decision = gate.check(
        f"fraud/{strong}", against="champion", data=holdout, target="is_fraud", client=client
    )
    assert decision.passed, decision.reasons
    registry.set_alias("fraud", "champion", strong, client=client)
    # The weak one cannot come back through the gate, only by rollback.
    failed = gate.check(f"fraud/{weak}", against="champion", data=holdout, client=client)
    assert not failed.passed
    with pytest.raises(Forbidden, match="gate"):
        registry.set_alias("fraud", "champion", weak, client=client)
    gates = client.store.list_model_records("fraud", weak, "gate")
    assert gates[-1].body["champion"] == f"models:/fraud/{strong}"
    assert registry.rollback("fraud", client=client).version == weak


def test_gate_on_results_still_works() -> None:
    gate = mloop.Gate(min={"accuracy": 0.5})
    frame = data()
    model = LogisticRegression().fit(frame[["amount"]], frame["is_fraud"])
    result = mloop.evaluation.evaluate(model, frame[["amount", "is_fraud"]], target="is_fraud")
    assert gate.check(result).passed
