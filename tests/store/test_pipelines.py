"""The pipeline part of the MetadataStore contract (step cache, schedules) on every backend."""

from __future__ import annotations

import pytest

from mloop.errors import AlreadyExists, InvalidInput, InvalidName, NotFound
from mloop.store.base import Lifecycle, MetadataStore, StepCacheEntry
from tests.store.test_contract import ACTOR, new_run


def entry(run_id: str, key: int = 1, **kw: object) -> StepCacheEntry:
    args: dict[str, object] = {
        "cache_key": f"{key:064x}",
        "step": "train",
        "run_id": run_id,
        "parts": {"code": "abc", "params": {"depth": 3}},
        "outputs": [{"materialiser": "json", "files": {"value.json": ["d" * 64, 3]}}],
        "created_at": 1000 + key,
    }
    args.update(kw)
    return StepCacheEntry(**args)  # type: ignore[arg-type]


def test_step_cache_put_get_expire_replace(store: MetadataStore) -> None:
    run = new_run(store)
    store.put_step_cache(entry(run.id, 1))
    store.put_step_cache(entry(run.id, 2, expires_at=5000))
    got = store.get_step_cache(f"{1:064x}", now=10_000)
    assert got is not None and got.parts["params"] == {"depth": 3}
    assert store.get_step_cache(f"{2:064x}", now=4_999) is not None
    assert store.get_step_cache(f"{2:064x}", now=5_000) is None  # expired
    assert store.get_step_cache(f"{3:064x}", now=0) is None
    latest = store.latest_step_cache("train")
    assert latest is not None and latest.cache_key == f"{2:064x}"
    store.put_step_cache(entry(run.id, 1, parts={"code": "new"}))  # replaced
    again = store.get_step_cache(f"{1:064x}", now=0)
    assert again is not None and again.parts == {"code": "new"}
    assert store.latest_step_cache("other") is None


def test_step_cache_bad_input_and_purge(store: MetadataStore) -> None:
    run = new_run(store)
    with pytest.raises(InvalidInput, match="cache key"):
        store.put_step_cache(entry(run.id, cache_key="nothex"))
    with pytest.raises(NotFound, match="run"):
        store.put_step_cache(entry("f" * 32))
    with pytest.raises(InvalidInput, match="JSON"):
        store.put_step_cache(entry(run.id, parts={"x": float("nan")}))
    store.put_step_cache(entry(run.id, 1))
    store.set_run_lifecycle(run.id, Lifecycle.DELETED, actor=ACTOR)
    store.purge_runs([run.id], actor=ACTOR)
    assert store.get_step_cache(f"{1:064x}", now=0) is None


def test_schedules_crud(store: MetadataStore) -> None:
    made = store.create_schedule(
        "nightly", pipeline="proj.flows:training", cron="0 2 * * *", tz="UTC",
        params={"depth": 8}, next_fire_at=5000, actor=ACTOR,
    )  # fmt: skip
    assert (made.enabled, made.params, made.next_fire_at) == (True, {"depth": 8}, 5000)
    with pytest.raises(AlreadyExists):
        store.create_schedule(
            "nightly", pipeline="p:q", cron="* * * * *", tz="UTC", params={},
            next_fire_at=0, actor=ACTOR,
        )  # fmt: skip
    with pytest.raises(InvalidName):
        store.create_schedule(
            "bad name", pipeline="p:q", cron="* * * * *", tz="UTC", params={},
            next_fire_at=0, actor=ACTOR,
        )  # fmt: skip
    off = store.set_schedule_enabled("nightly", False, actor=ACTOR)
    assert not off.enabled
    on = store.set_schedule_enabled("nightly", True, next_fire_at=7000, actor=ACTOR)
    assert (on.enabled, on.next_fire_at) == (True, 7000)
    assert [x.name for x in store.list_schedules()] == ["nightly"]
    store.delete_schedule("nightly", actor=ACTOR)
    with pytest.raises(NotFound, match="no schedule"):
        store.get_schedule("nightly")
    actions = [e.action for e in store.iter_audit() if e.object_type == "schedule"]
    assert actions == [
        "schedule.created", "schedule.disabled", "schedule.enabled", "schedule.deleted",
    ]  # fmt: skip


def test_leases_keep_two_schedulers_apart(store: MetadataStore) -> None:
    for name, at in (("a", 100), ("b", 200), ("later", 10_000)):
        store.create_schedule(
            name, pipeline="p:q", cron="* * * * *", tz="UTC", params={}, next_fire_at=at,
            actor=ACTOR,
        )  # fmt: skip
    store.set_schedule_enabled("b", False, actor=ACTOR)
    first = store.claim_due_schedules("s1", now=1000, lease_ms=500)
    assert [x.name for x in first] == ["a"]
    assert first[0].lease_owner == "s1"
    assert store.claim_due_schedules("s2", now=1200, lease_ms=500) == []  # s1 holds it
    # s1 dies; its lease expires and s2 takes over.
    taken = store.claim_due_schedules("s2", now=1600, lease_ms=500)
    assert [x.name for x in taken] == ["a"]
    assert not store.finish_schedule_fire(
        taken[0].id, "s1", fired_at=1000, next_fire_at=2000, run_id=None, actor=ACTOR
    )  # the old owner cannot record over the new one
    assert store.finish_schedule_fire(
        taken[0].id, "s2", fired_at=1600, next_fire_at=60_000, run_id="r" * 32, actor=ACTOR
    )
    done = store.get_schedule("a")
    assert (done.last_fired_at, done.next_fire_at, done.lease_owner) == (1600, 60_000, None)
    assert store.claim_due_schedules("s1", now=2000, lease_ms=500) == []
    with pytest.raises(InvalidInput):
        store.claim_due_schedules("s1", now=0, lease_ms=0)
