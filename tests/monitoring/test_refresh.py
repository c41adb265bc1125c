"""A monitor whose reference is "training" follows the deployment's primary version."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

from mloop import data, registry
from mloop.monitoring import monitors
from mloop.tracking import TrackingClient
from tests.monitoring.scenario import DEP, FEATURES, HOUR, T0, Scenario, make_scenario, sample

CHECKS = ["feature_drift", "prediction_drift", "performance"]


@pytest.fixture
def scenario(client: TrackingClient) -> Scenario:
    """The deployment of a 25-feature classifier with a 5,000-row reference."""
    return make_scenario(client)


def promote_retrained(client: TrackingClient, *, log_training: bool) -> int:
    """Train a version on shifted data (logged as its run's training input when asked) and
    make it the champion; returns its number."""
    frame = sample(5000, seed=7, shift=1.0)
    shifted = data.register("transactions", frame, client=client)
    with client.start_run(experiment="monitoring") as run:
        if log_training:
            run.log_input(shifted, context="training")
        model = LogisticRegression().fit(frame[FEATURES], frame["label"])
        made = run.log_model(model, "fraud", input_example=frame[FEATURES][:5])
    registry.set_alias("fraud", "champion", made.version, client=client)
    return int(made.version)


def actions(client: TrackingClient) -> list[str]:
    return [e.action for e in client.store.iter_audit() if e.action.startswith("monitor.")]


def test_a_promotion_moves_a_training_reference(scenario: Scenario) -> None:
    client = scenario.client
    monitors.create(deployment=DEP, checks=CHECKS, client=client)
    pinned = monitors.create("pinned", deployment=DEP, reference="transactions@v1",
                             checks=CHECKS, client=client)  # fmt: skip
    scenario.log(T0, 1, 2000, shift=1.0, labels=True)
    (before,) = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
    monitors.run("pinned", end_ms=T0 + HOUR, client=client)
    assert before.status == "alert"  # shifted traffic against the first training data
    assert before.summary["reference_model_version"] == 1

    version = promote_retrained(client, log_training=True)
    scenario.log(T0 + HOUR, 1, 2000, shift=1.0, labels=True, seed=11)
    (after,) = monitors.run(DEP, end_ms=T0 + 2 * HOUR, client=client)
    refreshed = monitors.get(DEP, client=client)
    assert refreshed.reference == "transactions@v2"
    assert refreshed.config["model_version"] == version == 2
    assert refreshed.config["reference_note"] is None
    assert after.summary["reference_model_version"] == 2
    assert after.summary["reference"] == "transactions@v2"
    assert not [a for a in after.alerts if a["check"] == "feature_drift"], after.alerts
    # The first reference stays readable beside the new one.
    kept = client.store.list_artifacts("monitor", str(refreshed.id))
    assert sorted(a.path for a in kept) == ["reference-2.json", "reference.json"]
    assert refreshed.reference_digest in {a.digest for a in kept}
    assert actions(client).count("monitor.reference_refreshed") == 1
    # A reference named by the user stays what it is.
    (still,) = monitors.run("pinned", end_ms=T0 + 2 * HOUR, client=client)
    assert monitors.get("pinned", client=client) == pinned
    assert still.summary["reference_model_version"] == 1
    # Nothing to do on the next run.
    assert monitors.run(DEP, end_ms=T0 + 2 * HOUR, client=client) == []
    assert actions(client).count("monitor.reference_refreshed") == 1


def test_a_version_without_training_data_keeps_the_reference_and_says_why(
    scenario: Scenario,
) -> None:
    client = scenario.client
    created = monitors.create(deployment=DEP, checks=CHECKS, client=client)
    promote_retrained(client, log_training=False)
    for hour in range(2):
        scenario.log(T0 + hour * HOUR, 1, 1000, seed=20 + hour)
        (found,) = monitors.run(DEP, end_ms=T0 + (hour + 1) * HOUR, client=client)
        assert found.summary["reference_model_version"] == 1
        assert "logged no input with context 'training'" in found.summary["reference_note"]
    kept = monitors.get(DEP, client=client)
    assert kept.reference == created.reference == "transactions@v1"
    assert kept.reference_digest == created.reference_digest
    assert kept.config["reference_note"]["model_version"] == 2
    # Tried once for that version, not on every run.
    assert actions(client).count("monitor.reference_refresh_failed") == 1


def test_a_given_suite_is_kept_across_a_refresh(scenario: Scenario) -> None:
    from mloop.data.validation import NotNull, Suite

    client = scenario.client
    suite = Suite("mine", (NotNull("f00"),))
    monitors.create(deployment=DEP, checks=["data_quality"], expectations=suite, client=client)
    promote_retrained(client, log_training=True)
    scenario.log(T0, 1, 500)
    (found,) = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
    assert found.summary["reference_model_version"] == 2
    assert found.summary["data_quality"]["evaluated"] == 1


def test_a_deployment_that_serves_nothing_keeps_the_reference(scenario: Scenario) -> None:
    from mloop.serving import delete_deployment

    client = scenario.client
    created = monitors.create(deployment=DEP, checks=["feature_drift"], client=client)
    scenario.log(T0, 1, 500)
    delete_deployment(DEP, client=client)
    (found,) = monitors.run(DEP, end_ms=T0 + HOUR, client=client)
    assert found.status == "ok" and found.summary["reference_model_version"] == 1
    assert monitors.get(DEP, client=client) == created
