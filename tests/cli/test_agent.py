"""``mloop policies create|list|show|episodes|delete`` and ``mloop agent --once``; plus the
agent killed with SIGKILL in the middle of a rollout and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mloop.loop import Agent, Canary, policies
from mloop.serving import get_deployment, resolve_targets
from mloop.tracking import TrackingClient
from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke
from tests.loop.scenario import DEP, MINUTE, Scenario, make_scenario, now_ms

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scenario(client: TrackingClient) -> Scenario:
    return make_scenario(client)


def test_policies_create_list_show_episodes_delete(invoke: Invoke, scenario: Scenario) -> None:
    created = as_json(
        invoke("policies", "create", "--deployment", DEP, "--retrain", "tests.loop.flows:retrain",
               "--on", "drift", "--param", "c=0.5", "--gate",
               '{"beat_champion": {"roc_auc": 0.01}}', "--steps", "1.0", "--hold", "0.1s",
               "--min-rows", "0", "--cooldown", "1h", "--holdout", "0.25",
               "--min-labelled-rows", "50", "--train-window", "2h", "--label-wait", "10m",
               "--json")
    )  # fmt: skip
    assert created["holdout"] == 0.25 and created["min_labelled_rows"] == 50
    assert created["train_window_ms"] == 7_200_000 and created["label_wait_ms"] == 600_000
    assert created["against"] == "champion"
    assert created["name"] == DEP and created["on"] == ["drift"]
    assert created["retrain_params"] == {"c": 0.5} and created["cooldown_ms"] == 3_600_000
    assert created["gate"]["beat_champion"] == {"roc_auc": 0.01}
    assert created["rollout"]["steps"] == [1.0] and created["rollout"]["hold_ms"] == 100
    assert [p["name"] for p in as_json(invoke("policies", "list", "--json"))] == [DEP]
    assert "tests.loop.flows:retrain" in invoke("policies", "list").stdout

    t = now_ms()
    scenario.log(t - 20 * MINUTE, t - 1000, 600)
    scenario.report(t - 20 * MINUTE, t - 10 * MINUTE)
    once = as_json(invoke("agent", "--once", "--no-monitors", "--json"))
    assert once["errors"] == [] and [e["state"] for e in once["opened"]] == ["triggered"]
    assert once["advanced"][0]["state"] == "rolling_out"
    time.sleep(0.15)
    assert "promoted" in invoke("agent", "--once", "--no-monitors").stdout
    episodes = as_json(invoke("policies", "episodes", DEP, "--json"))
    assert [(e["state"], e["report_ids"]) for e in episodes] == [("promoted", [1])]
    shown = as_json(invoke("policies", "show", DEP, "--json"))
    assert shown["episodes"][0]["candidate_version"] == 2 and shown["alerts"] == []
    assert "episode 1: promoted" in invoke("policies", "show", DEP).stdout
    assert "promoted" in invoke("policies", "episodes").stdout
    assert as_json(invoke("policies", "delete", DEP, "--json")) == {"name": DEP, "deleted": True}
    line = assert_one_error_line(invoke("policies", "show", DEP))
    assert "no policy named" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--retrain", "nomodule_x:flow"], "cannot import module"),
        (["--retrain", "tests.loop.flows:no_window"], "does not take the params"),
        (["--retrain", "tests.loop.flows:retrain", "--on", "rain"], "unknown event 'rain'"),
        (["--retrain", "tests.loop.flows:retrain", "--steps", "0.5,0.1"], "must grow"),
        (["--retrain", "tests.loop.flows:retrain", "--hold", "soon"], "hold 'soon'"),
        (["--retrain", "tests.loop.flows:retrain", "--gate", "{"], "--gate must be JSON"),
        (["--retrain", "tests.loop.flows:retrain", "--gate", '{"min": {"zz": 1}}'], "unknown"),
        (["--retrain", "tests.loop.flows:retrain", "--alert", "https://evil.example/"],
         "MLOOP_ALERT_HOSTS"),
        (["--retrain", "tests.loop.flows:retrain", "--param", "start_ms=3"], "may not set"),
        (["--retrain", "tests.loop.flows:retrain", "--cooldown", "x"], "cooldown 'x'"),
        (["--retrain", "tests.loop.flows:retrain", "--holdout", "1.5"], "holdout must be"),
        (["--retrain", "tests.loop.flows:retrain", "--min-labelled-rows", "0"],
         "min_labelled_rows must be"),
        (["--retrain", "tests.loop.flows:retrain", "--train-window", "x"], "train_window 'x'"),
        (["--retrain", "tests.loop.flows:retrain", "--label-wait", "x"], "label_wait 'x'"),
        (["--retrain", "tests.loop.flows:retrain", "--against", "Bad Alias"], "alias"),
    ],
)  # fmt: skip
def test_bad_policies_are_refused_in_one_line_and_nothing_is_written(
    invoke: Invoke, scenario: Scenario, args: list[str], message: str
) -> None:
    line = assert_one_error_line(invoke("policies", "create", "--deployment", DEP, *args))
    assert message in line
    assert scenario.client.store.list_policies() == []


def test_an_agent_pass_with_an_error_lists_it_and_exits_1(
    invoke: Invoke, scenario: Scenario
) -> None:
    # The scenario's monitor record has no reference blob: running it on logged rows fails.
    t = now_ms()
    scenario.log(t - 40 * MINUTE, t - 25 * MINUTE, 200)
    result = invoke("agent", "--once", "--no-schedules")
    assert result.exit_code == 1
    assert "error: monitor fraud-monitor:" in result.stderr and "Traceback" not in result.output
    failed = invoke("agent", "--once", "--no-schedules", "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["errors"][0].startswith("monitor fraud-monitor:")


def test_a_policy_of_an_unknown_deployment_is_refused(invoke: Invoke, scenario: Scenario) -> None:
    line = assert_one_error_line(
        invoke(
            "policies", "create", "--deployment", "nope", "--retrain", "tests.loop.flows:retrain"
        )
    )
    assert "no deployment named 'nope'" in line


@pytest.mark.slow
def test_an_agent_killed_mid_rollout_and_restarted_ends_explained(
    scenario: Scenario, mloop_home: Path, tmp_path: Path
) -> None:
    client = scenario.client
    policies.create(
        deployment=DEP, retrain="tests.loop.flows:retrain", cooldown="1h",
        rollout=Canary(steps=[0.5, 1.0], hold="1h", min_rows=0), client=client,
    )  # fmt: skip
    t = now_ms()
    scenario.log(t - 20 * MINUTE, t - 1000, 600)
    scenario.report(t - 20 * MINUTE, t - 10 * MINUTE)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLOOP_HOME": str(mloop_home)}
    log = (tmp_path / "agent.log").open("w")
    agent = subprocess.Popen(
        [sys.executable, "-c", "from mloop.cli.main import main; main()", "agent",
         "--poll-seconds", "0.05", "--lease-seconds", "1", "--no-monitors"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = client.store.list_episodes()
            if found and found[0].state == "rolling_out":
                break
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            time.sleep(0.05)
        else:
            pytest.fail("the agent never reached the rollout")
        os.kill(agent.pid, signal.SIGKILL)  # mid-rollout: the canary holds 50 % for an hour
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.wait(10)
        log.close()
    [episode] = client.store.list_episodes()
    assert episode.state == "rolling_out"  # its lease, if held, is the dead agent's
    dep = get_deployment(DEP, client=client)
    assert dep.canary_version == 2 and dep.canary_percent == 50.0

    # A second agent takes it over once the dead one's lease (1 s) has run out. The hold is
    # an hour: move the step's clock back so that it has passed.
    second = Agent(client, monitors=False, schedules=False, lease_seconds=1)
    time.sleep(1.1)
    from mloop.store import schema as s

    for _ in range(20):
        with client.store.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(s.episodes.update().values(step_started_at=now_ms() - 3_600_001))
        result = second.tick()
        assert result.errors == []
        if not client.store.list_episodes(open_only=True):
            break
        time.sleep(0.05)
    [episode] = client.store.list_episodes()
    assert episode.state == "promoted", episode.reason
    assert resolve_targets(DEP, client=client).primary.version == 2
    assert get_deployment(DEP, client=client).canary_version is None
    actions = [e.action for e in client.store.iter_audit() if e.object_type == "episode"]
    assert actions == [
        "episode.triggered", "episode.retraining", "episode.gating", "episode.rolling_out",
        "episode.rolling_out", "episode.promoted",
    ]  # fmt: skip
    owners = {e.actor for e in client.store.iter_audit() if e.object_type == "episode"}
    assert owners  # every transition recorded


@pytest.mark.slow
def test_an_agent_killed_mid_retrain_is_resumed_by_the_next(
    scenario: Scenario, mloop_home: Path, tmp_path: Path
) -> None:
    from tests.loop.flows import DELAY_ENV

    client = scenario.client
    policies.create(
        deployment=DEP, retrain="tests.loop.flows:retrain", cooldown="1h",
        rollout=Canary(steps=[1.0], hold="0.1s", min_rows=0), client=client,
    )  # fmt: skip
    t = now_ms()
    scenario.log(t - 20 * MINUTE, t - 1000, 600)
    scenario.report(t - 20 * MINUTE, t - 10 * MINUTE)
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "MLOOP_HOME": str(mloop_home), DELAY_ENV: "60",
    }  # fmt: skip
    with (tmp_path / "agent.log").open("w") as log:
        agent = subprocess.Popen(
            [sys.executable, "-c", "from mloop.cli.main import main; main()", "agent",
             "--poll-seconds", "0.05", "--lease-seconds", "1", "--no-monitors"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(r.name == "load" for r in _retrain_runs(client)):
                    break
                assert agent.poll() is None, (tmp_path / "agent.log").read_text()
                time.sleep(0.05)
            else:
                pytest.fail("the agent never started the retrain")
            os.kill(agent.pid, signal.SIGKILL)  # inside the load step
        finally:
            if agent.poll() is None:
                agent.kill()
            agent.wait(10)
    [episode] = client.store.list_episodes()
    assert episode.state == "retraining"
    [killed] = [r for r in _retrain_runs(client) if r.parent_id is None]
    assert killed.status.value == "RUNNING"  # its process is gone; nobody has said so yet

    time.sleep(1.1)  # the dead agent's lease runs out
    second = Agent(client, monitors=False, schedules=False, lease_seconds=1)
    for _ in range(40):
        result = second.tick()
        assert result.errors == []
        if not client.store.list_episodes(open_only=True):
            break
        time.sleep(0.1)
    [episode] = client.store.list_episodes()
    assert episode.state == "promoted", episode.reason
    assert client.get_run(killed.id).status.value == "KILLED"
    resumed = client.get_run(str(episode.pipeline_run_id))
    assert resumed.tags["mloop.pipeline.resumed_from"] == killed.id
    assert f"resumed run {killed.id}" in _retrain_reason(client)


def _retrain_runs(client: TrackingClient) -> list[Any]:
    from mloop.errors import NotFound

    try:
        return list(client.search_runs(experiments=["retrain"]))
    except NotFound:  # no run yet
        return []


def _retrain_reason(client: TrackingClient) -> str:
    [gating] = [e for e in client.store.iter_audit() if e.action == "episode.gating"]
    assert gating.after is not None
    return str(gating.after["reason"])
