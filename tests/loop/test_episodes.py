"""Episodes end to end on real deployments, registry versions and pipeline runs: promoted,
failed retrain, rejected by the gate, rolled back by an unhealthy canary, waiting for labels,
a retrain interrupted and resumed, and a deployment changed behind the episode's back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from mloop import data, registry
from mloop.loop import Agent, Canary, policies
from mloop.serving import get_deployment, promote_canary, resolve_targets
from mloop.store.records import Episode
from mloop.tracking import TrackingClient
from tests.loop.flows import INTERRUPT_ENV
from tests.loop.scenario import DEP, FEATURES, MINUTE, MODEL, Scenario, now_ms, sample

FAST = Canary(steps=[0.5, 1.0], hold="0.2s", min_rows=0)


def make_policy(scenario: Scenario, **options: Any) -> None:
    """A policy of the scenario's deployment (fast canary, one-hour cool-down by default)."""
    settings: dict[str, Any] = {
        "retrain": "tests.loop.flows:retrain", "rollout": FAST, "cooldown": "1h",
    }  # fmt: skip
    settings.update(options)
    policies.create(deployment=DEP, client=scenario.client, **settings)


def drifted(scenario: Scenario, rows: int = 600) -> int:
    """Log labelled post-change traffic over the last 20 minutes, report drift; the time."""
    t = now_ms()
    scenario.log(t - 20 * MINUTE, t - 1000, rows, changed=True)
    scenario.report(t - 20 * MINUTE, t - 10 * MINUTE)
    return t


def run_until_end(agent: Agent, client: TrackingClient, ticks: int = 40) -> Episode:
    """Tick until no episode is open; the newest episode."""
    for _ in range(ticks):
        result = agent.tick()
        assert not result.errors, result.errors
        if not client.store.list_episodes(open_only=True):
            break
        time.sleep(0.1)
    return client.store.list_episodes()[0]


def pipeline_runs(client: TrackingClient) -> list[Any]:
    """The retraining pipeline runs (not their step runs)."""
    return [r for r in client.search_runs(experiments=["retrain"]) if r.parent_id is None]


def episode_events(client: TrackingClient) -> list[Any]:
    return [e for e in client.store.iter_audit() if e.object_type == "episode"]


def test_drift_retrains_gates_rolls_out_and_promotes(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario)
    drifted(scenario)
    agent = Agent(client, monitors=False, lease_seconds=5)
    episode = run_until_end(agent, client)

    assert episode.state == "promoted", episode.reason
    assert episode.events == ["drift"] and episode.report_ids == [1]
    assert episode.candidate_version == 2 and episode.pipeline_run_id
    # The alias moved (the deployment follows it) and the canary is gone.
    assert resolve_targets(DEP, client=client).primary.version == 2
    assert get_deployment(DEP, client=client).canary_version is None
    # The candidate was registered from the pipeline run, tagged with the episode.
    version = client.store.list_model_versions(MODEL)[1]
    assert version.tags["mloop.loop.episode"] == str(episode.id)
    assert version.run_id == episode.pipeline_run_id
    # The labelled rows it was retrained on are a dataset version, its run's training input.
    (given,) = [i for i in client.list_inputs(version.run_id) if i.context == "training"]
    assert given.version.ref == f"{DEP}.training@v1"
    assert given.version.tags["mloop.loop.episode"] == str(episode.id)
    trained_on = data.load(given.version, client=client)
    assert trained_on.num_rows == episode.detail["data"]["train_rows"]
    assert set(trained_on.column_names) == {*FEATURES, "label", "ts"}
    # The gate compared it with the champion on held-out fresh rows and passed.
    gate = episode.detail["gate"]
    assert gate["passed"] and gate["rows"] == episode.detail["data"]["holdout_rows"] > 0
    check = gate["checks"][0]
    assert check["metric"] == "roc_auc" and check["observed"] > check["champion"] + 0.05
    # Every transition is an audit event naming the reports behind it.
    events = episode_events(client)
    assert [e.action for e in events] == [
        "episode.triggered", "episode.retraining", "episode.gating", "episode.rolling_out",
        "episode.rolling_out", "episode.promoted",
    ]  # fmt: skip
    assert all(e.after is not None and e.after["report_ids"] == [1] for e in events)
    actions = [e.action for e in client.store.iter_audit() if e.object_type == "deployment"]
    assert actions[-3:] == ["deployment.canary_set", "deployment.canary_set",
                            "deployment.canary_promoted"]  # fmt: skip
    # The policy cools down: a new drift report is consumed but opens nothing.
    assert episode.ended_at is not None
    assert client.store.get_policy(DEP).cooldown_until == episode.ended_at + 3_600_000
    t = now_ms()
    scenario.report(t - 5 * MINUTE, t - 4 * MINUTE)
    assert agent.tick().opened == []
    assert len(client.store.list_episodes()) == 1
    assert client.store.unconsumed_reports(1, [1, 2]) == []


def test_one_drift_episode_triggers_one_retrain(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario, rollout=Canary(steps=[1.0], hold="1h", min_rows=0))
    t = drifted(scenario)
    scenario.report(t - 10 * MINUTE, t - 9 * MINUTE)  # two alert reports at once
    scenario.report(t - 9 * MINUTE, t - 8 * MINUTE, status="ok")
    agent = Agent(client, monitors=False, lease_seconds=5)
    first = agent.tick()
    assert len(first.opened) == 1 and first.opened[0].report_ids == [1, 2]
    # More alerts while the episode is open join it; nothing new starts.
    scenario.report(t - 8 * MINUTE, t - 7 * MINUTE)
    assert agent.tick().opened == []
    assert len(client.store.list_episodes()) == 1
    assert len(pipeline_runs(client)) == 1  # one retrain
    assert client.store.unconsumed_reports(1, [1, 2, 3, 4]) == []


def test_a_retrain_that_fails_ends_failed_and_serves_the_champion(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario, retrain="tests.loop.flows:failing")
    drifted(scenario)
    episode = run_until_end(Agent(client, monitors=False), client)
    assert episode.state == "failed"
    assert "step 'broken'" in episode.reason and "the feature store is down" in episode.reason
    assert episode.pipeline_run_id is not None
    assert client.get_run(episode.pipeline_run_id).status.value == "FAILED"
    assert episode.candidate_version is None
    dep = get_deployment(DEP, client=client)
    assert dep.canary_version is None and resolve_targets(DEP, client=client).primary.version == 1


def test_a_candidate_the_gate_refuses_is_rejected(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario, gate={"min": {"roc_auc": 0.999}})
    drifted(scenario)
    episode = run_until_end(Agent(client, monitors=False), client)
    assert episode.state == "rejected", episode.reason
    assert "roc_auc" in episode.reason and episode.candidate_version == 2
    assert get_deployment(DEP, client=client).canary_version is None
    gates = client.store.list_model_records(MODEL, 2, "gate")
    assert gates and gates[-1].passed is False


def test_a_canary_that_fails_its_health_check_rolls_back(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario, rollout=Canary(steps=[0.5, 1.0], hold="0.3s", max_p99_ms=50, min_rows=5))
    drifted(scenario)
    agent = Agent(client, monitors=False)
    opened = agent.tick()
    assert opened.advanced[0].state == "rolling_out", opened.advanced[0].reason
    # The canary answers slowly during its hold.
    candidate = LogisticRegression().fit(*_post_change())
    t = now_ms()
    scenario.log(t, t + 100, 50, version=2, role="canary", model=candidate, latency_ms=400.0)
    time.sleep(0.35)
    episode = run_until_end(agent, client)
    assert episode.state == "rolled_back"
    assert "p99 latency" in episode.reason and "max_p99_ms=50" in episode.reason
    assert episode.detail["health_0"]["passed"] is False
    dep = get_deployment(DEP, client=client)
    assert dep.canary_version is None
    assert resolve_targets(DEP, client=client).primary.version == 1  # never promoted


def test_a_canary_without_traffic_is_not_promoted(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario, rollout=Canary(steps=[1.0], hold="0.1s", min_rows=10))
    drifted(scenario)
    episode = run_until_end(Agent(client, monitors=False), client, ticks=60)
    assert episode.state == "rolled_back"
    assert "never showed health" in episode.reason and "0 canary row(s)" in episode.reason


def test_an_episode_waits_for_labels_then_fails_explained(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario, min_labelled_rows=5000, label_wait="1s")
    drifted(scenario)
    agent = Agent(client, monitors=False)
    first = agent.tick()
    assert first.advanced[0].state == "triggered"  # waiting, nothing recorded yet
    time.sleep(1.05)
    episode = run_until_end(agent, client)
    assert episode.state == "failed"
    assert "600 labelled row(s) of the 5000 needed" in episode.reason


def test_a_retrain_interrupted_mid_run_is_resumed(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = scenario.client
    flag = tmp_path / "interrupt"
    flag.touch()
    monkeypatch.setenv(INTERRUPT_ENV, str(flag))
    make_policy(scenario)
    drifted(scenario)
    agent = Agent(client, monitors=False, lease_seconds=5)
    with pytest.raises(KeyboardInterrupt):
        agent.tick()  # the agent is stopped inside the retraining run
    [episode] = client.store.list_episodes()
    assert episode.state == "retraining" and episode.lease_owner == agent.owner
    killed = pipeline_runs(client)
    assert [r.status.value for r in killed] == ["KILLED"]
    flag.unlink()
    episode = run_until_end(agent, client)
    assert episode.state == "promoted", episode.reason
    run = client.get_run(str(episode.pipeline_run_id))
    assert run.tags["mloop.pipeline.resumed_from"] == killed[0].id
    assert episode.detail["retrain_attempts"] == 1


def test_a_promotion_made_before_the_agent_stopped_is_recognised(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario, rollout=Canary(steps=[1.0], hold="1h", min_rows=0))
    drifted(scenario)
    agent = Agent(client, monitors=False)
    assert agent.tick().advanced[0].state == "rolling_out"
    promote_canary(DEP, client=client)  # as an agent stopped right after promoting would leave it
    episode = run_until_end(agent, client)
    assert episode.state == "promoted" and "before the agent stopped" in episode.reason


def test_a_canary_cleared_behind_the_episode_ends_it_rolled_back(scenario: Scenario) -> None:
    from mloop.serving import clear_canary

    client = scenario.client
    make_policy(scenario, rollout=Canary(steps=[1.0], hold="1h", min_rows=0))
    drifted(scenario)
    agent = Agent(client, monitors=False)
    assert agent.tick().advanced[0].state == "rolling_out"
    clear_canary(DEP, client=client)
    episode = run_until_end(agent, client)
    assert episode.state == "rolled_back" and "no longer version 2" in episode.reason
    assert registry.resolve(f"{MODEL}@champion", client=client).version == 1


def test_an_agent_leaves_an_episode_another_holds(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(scenario)
    drifted(scenario)
    agent = Agent(client, monitors=False, schedules=False)
    # Open the episode without advancing it, then let another agent hold its lease.
    policy = client.store.get_policy(DEP)
    from mloop.loop.triggers import evaluate_policy

    opened = evaluate_policy(policy, client=client, now=now_ms())
    assert opened is not None
    assert client.store.claim_episode(opened.id, "other", now=now_ms(), lease_ms=60_000)
    result = agent.tick()
    assert result.advanced == [] and result.errors == []
    assert client.store.get_episode(opened.id).state == "triggered"


def _post_change() -> tuple[Any, Any]:
    frame = sample(500, 7, changed=True)
    return frame[FEATURES], frame["label"]


def test_the_agent_runs_real_monitors_and_acts_on_their_drift(client: TrackingClient) -> None:
    import mloop
    from tests.loop.scenario import make_scenario

    scenario = make_scenario(client, monitor=False)
    mloop.monitors.create(
        deployment=DEP, reference="training", window="10m", checks=["feature_drift"],
        drift_share=0.3, min_rows=50, client=client,
    )  # fmt: skip
    make_policy(scenario, rollout=Canary(steps=[1.0], hold="0.1s", min_rows=0))
    t = now_ms()
    scenario.log(t - 20 * MINUTE, t - 1000, 600, changed=True, seed=4)
    agent = Agent(client, lease_seconds=5)
    first = agent.tick()
    assert first.errors == [] and first.reports >= 2
    reports = mloop.monitors.reports(DEP, client=client)
    alerts = [r.id for r in reports if r.status == "alert"]
    assert alerts and [e.report_ids for e in first.opened] == [alerts]
    assert all(r.id in alerts or r.status != "alert" for r in reports)
    episode = run_until_end(agent, client)
    assert episode.state == "promoted", episode.reason


def test_labels_for_unknown_requests_are_refused_and_change_nothing(scenario: Scenario) -> None:
    from mloop.errors import NotFound
    from mloop.serving.predlog import PredictionLog
    from mloop.serving.predlog_read import read_feedback

    t = now_ms()
    scenario.log(t - MINUTE, t, 50)
    before = read_feedback(DEP, client=scenario.client).num_rows
    log = PredictionLog(DEP, client=scenario.client)
    try:
        with pytest.raises(NotFound):
            log.append_feedback(f"{t:013d}{'f' * 16}", [1])
    finally:
        log.close()
    assert read_feedback(DEP, client=scenario.client).num_rows == before == 50


def test_two_agents_at_once_open_one_episode_and_promote_once(scenario: Scenario) -> None:
    import threading

    from mloop.config import load_settings

    client = scenario.client
    make_policy(scenario, rollout=Canary(steps=[0.5, 1.0], hold="0.1s", min_rows=0))
    drifted(scenario)
    errors: list[str] = []

    def work() -> None:
        with TrackingClient(load_settings()) as own:  # each agent its own connections
            agent = Agent(own, monitors=False, schedules=False, lease_seconds=5)
            for _ in range(60):
                errors.extend(agent.tick().errors)
                if own.store.list_episodes() and not own.store.list_episodes(open_only=True):
                    return
                time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    [episode] = client.store.list_episodes()
    assert episode.state == "promoted"
    audit = list(client.store.iter_audit())
    assert sum(e.action == "episode.promoted" for e in audit) == 1
    assert sum(e.action == "deployment.canary_promoted" for e in audit) == 1
    assert sum(e.action == "model.version_created" for e in audit) == 2  # champion, candidate


def test_a_canary_with_real_labelled_traffic_is_promoted(scenario: Scenario) -> None:
    client = scenario.client
    make_policy(
        scenario, rollout=Canary(steps=[0.3, 1.0], hold="0.3s", max_error_rate=0.01, min_rows=40)
    )
    drifted(scenario)
    agent = Agent(client, monitors=False)
    episode = agent.tick().advanced[0]
    assert episode.state == "rolling_out", episode.reason
    candidate = registry.load(f"models:/{MODEL}/2", client=client)
    seed = 20
    while episode.is_open:
        # Traffic of the hold, split as the deployment says, labelled soon after.
        dep = get_deployment(DEP, client=client)
        share = dep.canary_percent / 100 if dep.canary_version else 0.0
        t = now_ms()
        if share < 1:
            scenario.log(t, t + 200, 100, seed=seed)
        if share > 0:
            scenario.log(t, t + 200, 100, version=2, role="canary", model=candidate, seed=seed + 1)
        seed += 2
        time.sleep(0.3)
        result = agent.tick()
        assert result.errors == []
        episode = client.store.get_episode(episode.id)
    assert episode.state == "promoted", episode.reason
    for k in (0, 1):
        health = episode.detail[f"health_{k}"]
        assert health["passed"] and health["rows"] >= 40 and health["labelled"] >= 40
        assert health["error_rate"] < health["primary_error_rate"]


def test_one_advance_reads_each_range_of_the_log_once(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Triggered, retraining and gating in one tick: the held-out rows are read once."""
    from mloop.serving import predlog_read

    read = predlog_read.read_predictions
    ranges: list[tuple[Any, Any]] = []

    def counted(deployment: str, **kwargs: Any) -> Any:
        ranges.append((kwargs.get("start_ms"), kwargs.get("end_ms")))
        return read(deployment, **kwargs)

    monkeypatch.setattr(predlog_read, "read_predictions", counted)
    client = scenario.client
    make_policy(scenario, rollout=Canary(steps=[1.0], hold="1h", min_rows=0))
    drifted(scenario)
    result = Agent(client, monitors=False, lease_seconds=5).tick()
    assert not result.errors, result.errors
    (episode,) = client.store.list_episodes()
    assert episode.state == "rolling_out", episode.reason
    data = episode.detail["data"]
    assert (data["cut_ms"], data["end_ms"]) in ranges  # the held-out rows (register, gate)
    assert (data["start_ms"], data["cut_ms"]) in ranges  # the training rows
    assert len(ranges) == len(set(ranges))


def test_labelled_frame_needs_column_inputs() -> None:
    import pyarrow as pa

    from mloop.errors import InvalidInput
    from mloop.loop.episodes import labelled_frame

    columns = {
        "ts": pa.array([1, 2], pa.timestamp("ms", tz="UTC")),
        "role": pa.array(["primary", "primary"]),
        "label": pa.array([0, 1]),
    }
    named = pa.table({**columns, "inputs": pa.array([{"a": 1.0}, {"a": 2.0}])})
    assert labelled_frame(named).to_dict("list") == {"a": [1.0, 2.0], "label": [0, 1],
                                                     "ts": [1, 2]}  # fmt: skip
    tensor = pa.table({**columns, "inputs": pa.array([[1.0, 2.0], [3.0, 4.0]])})
    with pytest.raises(InvalidInput, match="needs inputs logged as named columns") as caught:
        labelled_frame(tensor)
    assert caught.value.details["field"] == "inputs"
