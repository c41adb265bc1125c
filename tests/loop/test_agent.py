"""The agent's pass: monitors, policies, episodes and schedules; errors recorded, never fatal."""

from __future__ import annotations

import pytest

from mloop.errors import InvalidInput
from mloop.loop import Agent, Canary, policies
from mloop.store import schema as s
from tests.loop.scenario import DEP, MINUTE, Scenario, now_ms


def test_a_broken_monitor_is_recorded_and_the_rest_goes_on(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mloop.monitoring

    def broken(name: str, **_: object) -> list[object]:
        raise RuntimeError(f"monitor {name} lost its reference")

    monkeypatch.setattr(mloop.monitoring, "run", broken, raising=False)
    client = scenario.client
    policies.create(
        deployment=DEP, retrain="tests.loop.flows:retrain", cooldown="1h",
        rollout=Canary(steps=[1.0], hold="1h", min_rows=0), client=client,
    )  # fmt: skip
    t = now_ms()
    scenario.log(t - 20 * MINUTE, t - 1000, 600)
    scenario.report(t - 20 * MINUTE, t - 10 * MINUTE)
    result = Agent(client, schedules=False).tick()
    assert result.errors == [
        "monitor fraud-monitor: RuntimeError: monitor fraud-monitor lost its reference"
    ]
    assert [e.state for e in result.advanced] == ["rolling_out"]


def test_the_agent_fires_due_schedules(scenario: Scenario) -> None:
    from mloop.pipelines.scheduler import add_schedule

    client = scenario.client
    add_schedule(
        "nightly", "tests.loop.flows:retrain", "0 2 * * *", client=client,
        params={"deployment": DEP, "start_ms": 0, "end_ms": now_ms()},
    )  # fmt: skip
    with client.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(s.schedules.update().values(next_fire_at=0))
    agent = Agent(client, monitors=False)
    assert agent.tick().fired == 1
    assert client.store.get_schedule("nightly").last_run_id is not None
    assert Agent(client, monitors=False, schedules=False).tick().fired == 0


def test_run_forever_stops_and_checks_its_settings(scenario: Scenario) -> None:
    agent = Agent(scenario.client, monitors=False, schedules=False)
    agent.run_forever(poll_seconds=0.01, max_ticks=2)
    agent.stop()
    agent.run_forever(poll_seconds=0.01)  # stopped: returns at once
    with pytest.raises(InvalidInput, match="poll_seconds"):
        agent.run_forever(poll_seconds=0)
    with pytest.raises(InvalidInput, match="lease_seconds"):
        Agent(scenario.client, lease_seconds=0)
