"""Schedules and the scheduler: add/list/enable/disable/delete, fires that happen exactly once
even with two schedulers, a scheduler killed mid-fire, and the bad inputs (nothing stored)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import mloop.tracking
from mloop.errors import AlreadyExists, InvalidInput, NotFound
from mloop.pipelines import scheduler as sch
from mloop.pipelines.cron import CronSchedule
from mloop.store.records import RunStatus
from mloop.tracking.client import TrackingClient

PKG = "schedproj"
FLOW = """
import os
import time

from mloop.pipelines import pipeline, step


@step
def load(n: int) -> list:
    return list(range(n))


@step(cache=False)
def total(values: list) -> int:
    time.sleep(float(os.environ.get("SCHEDPROJ_SLEEP", "0")))
    if os.environ.get("SCHEDPROJ_FAIL"):
        raise RuntimeError("total failed on purpose")
    return sum(values)


@pipeline
def flow(n: int = 3):
    if n < 0:
        raise ValueError("n must be >= 0")
    total(load(n))


not_a_pipeline = 42
"""
REF = f"{PKG}.flows:flow"


def ms(text: str) -> int:
    """Epoch milliseconds of an ISO UTC time."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def client(
    mloop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TrackingClient]:
    package = tmp_path / "src" / PKG
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(FLOW)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    mloop.tracking.reset_default_client()
    c = TrackingClient()
    yield c
    c.close()
    mloop.tracking.reset_default_client()
    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        del sys.modules[name]


def test_add_list_enable_disable_delete(client: TrackingClient) -> None:
    added = sch.add_schedule("nightly", REF, "0 2 * * *", params={"n": 4}, client=client)
    assert (added.pipeline, added.cron, added.tz, added.params) == (
        REF,
        "0 2 * * *",
        "UTC",
        {"n": 4},
    )
    assert added.enabled and added.last_fired_at is None
    assert datetime.fromtimestamp(added.next_fire_at / 1000, UTC).strftime("%H:%M") == "02:00"
    sch.add_schedule("paris", REF, "@hourly", tz="Europe/Paris", client=client)
    assert [s.name for s in sch.list_schedules(client=client)] == ["nightly", "paris"]
    assert not sch.disable_schedule("nightly", client=client).enabled
    now = ms("2030-01-01T10:00:00")
    enabled = sch.enable_schedule("nightly", now=now, client=client)
    assert enabled.enabled and enabled.next_fire_at == ms("2030-01-02T02:00:00")
    sch.delete_schedule("paris", client=client)
    assert [s.name for s in sch.list_schedules(client=client)] == ["nightly"]
    with pytest.raises(NotFound, match="no schedule named 'paris'"):
        sch.delete_schedule("paris", client=client)
    with pytest.raises(AlreadyExists):
        sch.add_schedule("nightly", REF, "@daily", client=client)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cron": "61 * * * *"}, InvalidInput, "cron '61 \\* \\* \\* \\*'"),
        ({"cron": "0 2 * *"}, InvalidInput, "expected 5 fields"),
        ({"cron": "@daily", "tz": "Mars/Olympus"}, InvalidInput, "Mars/Olympus"),
        ({"ref": f"{PKG}.missing:flow"}, NotFound, "cannot import module"),
        ({"ref": f"{PKG}.flows:nope"}, NotFound, "has no 'nope'"),
        ({"ref": f"{PKG}.flows:not_a_pipeline"}, InvalidInput, "not an @mloop.pipeline"),
        ({"ref": "no-colon"}, InvalidInput, "not MODULE:NAME"),
        ({"params": {"depth": 3}}, InvalidInput, "refuses params"),
        ({"params": {"n": -1}}, InvalidInput, "n must be >= 0"),
        ({"name": "bad name!"}, InvalidInput, "invalid"),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(
    client: TrackingClient, kwargs: dict, error: type[Exception], match: str
) -> None:
    args = {"name": "s", "ref": REF, "cron": "@daily", **kwargs}
    with pytest.raises(error, match=match):
        sch.add_schedule(args.pop("name"), args.pop("ref"), args.pop("cron"), client=client, **args)
    assert sch.list_schedules(client=client) == []
    assert client.store.list_schedules() == []


def _due(client: TrackingClient, name: str = "nightly", cron: str = "0 2 * * *") -> int:
    """Add a schedule and make it due at 2030-01-01T02:00 by re-enabling it the minute before."""
    sch.add_schedule(name, REF, cron, client=client)
    sch.enable_schedule(name, now=ms("2030-01-01T01:59:00"), client=client)
    return ms("2030-01-01T02:00:00")


def test_tick_fires_a_due_schedule_once_and_sets_next_fire(client: TrackingClient) -> None:
    due = _due(client)
    s = sch.Scheduler(client, owner="a")
    assert s.tick(now=due - 1) == []
    [fire] = s.tick(now=due + 5_000)
    assert (fire.schedule, fire.status, fire.error, fire.recorded) == (
        "nightly",
        "FINISHED",
        None,
        True,
    )
    assert fire.next_fire_at == ms("2030-01-02T02:00:00")
    run = client.get_run(fire.run_id)
    assert run.status is RunStatus.FINISHED and run.tags["mloop.pipeline.ref"] == REF
    stored = sch.get_schedule("nightly", client=client)
    assert stored.last_run_id == fire.run_id and stored.last_fired_at == due + 5_000
    assert stored.next_fire_at == fire.next_fire_at and stored.lease_owner is None
    assert s.tick(now=due + 10_000) == []


def test_missed_fires_fire_once_then_from_now(client: TrackingClient) -> None:
    due = _due(client, cron="*/5 * * * *")
    later = due + 3 * 3_600_000 + 60_000  # three hours of missed fires
    fires = sch.Scheduler(client, owner="a").tick(now=later)
    assert len(fires) == 1
    cron = CronSchedule.parse("*/5 * * * *")
    assert fires[0].next_fire_at == sch.next_fire_ms(cron, later) == ms("2030-01-01T05:05:00")


def test_two_schedulers_fire_once_in_total(client: TrackingClient) -> None:
    due = _due(client)
    other = TrackingClient()
    try:
        a, b = sch.Scheduler(client, owner="a"), sch.Scheduler(other, owner="b")
        fires = a.tick(now=due) + b.tick(now=due)
    finally:
        other.close()
    assert len(fires) == 1
    assert len(list(client.search_runs("tags.`mloop.pipeline.name` = 'flow'"))) == 1


def test_killed_mid_fire_is_fired_by_another_after_the_lease(client: TrackingClient) -> None:
    due = _due(client)
    # Scheduler "a" claims and dies before finishing: its lease stays in the database.
    [claimed] = client.store.claim_due_schedules("a", now=due, lease_ms=60_000)
    b = sch.Scheduler(client, owner="b", lease_seconds=60)
    assert b.tick(now=due + 30_000) == []  # a's lease still holds
    [fire] = b.tick(now=due + 60_001)
    assert fire.status == "FINISHED" and fire.recorded
    # a comes back and tries to record its fire: the lease is no longer its own.
    assert not client.store.finish_schedule_fire(
        claimed.id, "a", fired_at=due, next_fire_at=due, run_id=None, actor="t"
    )


def test_a_failed_pipeline_counts_as_fired(
    client: TrackingClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    due = _due(client)
    monkeypatch.setenv("SCHEDPROJ_FAIL", "1")
    [fire] = sch.Scheduler(client, owner="a").tick(now=due)
    assert fire.status == "FAILED" and fire.recorded and "failed on purpose" in (fire.error or "")
    assert client.get_run(fire.run_id).status is RunStatus.FAILED
    assert sch.get_schedule("nightly", client=client).last_run_id == fire.run_id
    assert "failed on purpose" in caplog.text


def test_a_pipeline_that_no_longer_imports_counts_as_fired(client: TrackingClient) -> None:
    due = _due(client)
    client.store.delete_schedule("nightly", actor="t")
    client.store.create_schedule(
        "gone", pipeline=f"{PKG}.gone:flow", cron="@daily", tz="UTC", params={},
        next_fire_at=due, actor="t",
    )  # fmt: skip
    [fire] = sch.Scheduler(client, owner="a").tick(now=due)
    assert fire.status == "ERROR" and fire.run_id is None and "cannot import" in (fire.error or "")
    assert sch.get_schedule("gone", client=client).next_fire_at == ms("2030-01-02T00:00:00")


def test_disabled_schedules_do_not_fire(client: TrackingClient) -> None:
    due = _due(client)
    sch.disable_schedule("nightly", client=client)
    assert sch.Scheduler(client, owner="a").tick(now=due) == []


def test_run_forever_stops_when_asked(client: TrackingClient) -> None:
    s = sch.Scheduler(client, owner="a")
    s.stop()
    s.run_forever(poll_seconds=0.01)  # returns at once rather than hanging
    with pytest.raises(InvalidInput):
        s.run_forever(poll_seconds=0)
    with pytest.raises(InvalidInput):
        sch.Scheduler(client, lease_seconds=0)


def test_run_forever_stops_on_sigterm_after_the_current_fire(client: TrackingClient) -> None:
    _due(client)
    client.store.set_schedule_enabled("nightly", True, next_fire_at=1, actor="t")
    s = sch.Scheduler(client, owner="a")
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        s.run_forever(poll_seconds=30)  # would wait 30 s without the signal
    finally:
        timer.cancel()
    assert signal.getsignal(signal.SIGTERM) is before
    assert sch.get_schedule("nightly", client=client).last_run_id is not None


def test_a_long_fire_keeps_its_lease(
    client: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    monkeypatch.setenv("SCHEDPROJ_SLEEP", "3")
    due = _due(client)
    a = sch.Scheduler(client, owner="a", lease_seconds=1)
    other = TrackingClient()
    fires: list[sch.FireResult] = []
    try:
        firing = threading.Thread(target=lambda: fires.extend(a.tick(now=due)))
        firing.start()
        time.sleep(2)  # past a's first lease: it must have been renewed meanwhile
        assert sch.Scheduler(other, owner="b", lease_seconds=1).tick(now=due + 2_000) == []
        firing.join(timeout=60)
    finally:
        other.close()
    assert len(fires) == 1 and fires[0].recorded


def test_renewing_a_lost_lease_fails(client: TrackingClient) -> None:
    due = _due(client)
    [claimed] = client.store.claim_due_schedules("a", now=due, lease_ms=1_000)
    assert client.store.renew_schedule_lease(claimed.id, "a", lease_until=due + 5_000)
    assert not client.store.renew_schedule_lease(claimed.id, "b", lease_until=due + 9_000)
    assert client.store.get_schedule("nightly").lease_until == due + 5_000
