"""The loop tables on every backend: policies, one open episode per policy, reports consumed
once, cool-downs, leases, conditional transitions and their audit events."""

from __future__ import annotations

import threading

import pytest

from mloop.errors import AlreadyExists, Conflict, InvalidInput, InvalidName, InvalidState, NotFound
from mloop.store.base import MetadataStore

CONFIG = {"on": ["drift"], "retrain": "flows:training", "cooldown_ms": 1000}
NOW = 1_800_000_000_000


def policy(store: MetadataStore, name: str = "p") -> int:
    return store.create_policy(name, deployment="fraud-api", config=CONFIG, actor="ann").id


def trigger(store: MetadataStore, ids: list[int], now: int = NOW, name: str = "p") -> object:
    return store.record_trigger(
        name, considered=ids, trigger=ids, events=["drift"], reason="drift", now=now,
        actor="agent", detail={"reports_start_ms": 1},
    )  # fmt: skip


def test_policies_create_list_delete(store: MetadataStore) -> None:
    created = store.create_policy("p", deployment="fraud-api", config=CONFIG, actor="ann")
    assert created.config == CONFIG and created.enabled and created.cooldown_until is None
    assert created.on == ["drift"] and created.created_by == "ann"
    store.create_policy("q", deployment="other", config=CONFIG, actor="ann")
    assert [p.name for p in store.list_policies()] == ["p", "q"]
    assert [p.name for p in store.list_policies("other")] == ["q"]
    with pytest.raises(AlreadyExists):
        store.create_policy("p", deployment="fraud-api", config=CONFIG, actor="ann")
    with pytest.raises(InvalidName):
        store.create_policy("bad name!", deployment="fraud-api", config=CONFIG, actor="ann")
    with pytest.raises(InvalidInput):
        store.create_policy("r", deployment="d", config={"x": float("nan")}, actor="ann")
    store.delete_policy("q", actor="ann")
    with pytest.raises(NotFound, match="mloop policies list"):
        store.get_policy("q")
    actions = [e.action for e in store.iter_audit() if e.object_type == "policy"]
    assert actions == ["policy.created", "policy.created", "policy.deleted"]


def test_one_open_episode_and_reports_consumed_once(store: MetadataStore) -> None:
    pid = policy(store)
    first = trigger(store, [1, 2])
    assert first is not None
    assert first.state == "triggered" and first.report_ids == [1, 2]  # type: ignore[attr-defined]
    assert first.detail == {"reports_start_ms": 1}  # type: ignore[attr-defined]
    assert trigger(store, [3]) is None  # joins the open episode
    assert trigger(store, [1, 2, 3]) is None  # already consumed
    assert store.unconsumed_reports(pid, [1, 2, 3, 4]) == [4]
    assert len(store.list_episodes("p")) == 1
    assert [e.id for e in store.list_episodes(open_only=True)] == [first.id]  # type: ignore[attr-defined]


def test_an_ended_episode_starts_the_cool_down(store: MetadataStore) -> None:
    policy(store)
    opened = trigger(store, [1])
    assert opened is not None
    episode_id = opened.id  # type: ignore[attr-defined]
    assert store.claim_episode(episode_id, "a1", now=NOW, lease_ms=60_000) is not None
    ended = store.update_episode(
        episode_id, "a1", expect_state="triggered", state="failed", reason="no labels",
        now=NOW + 5, actor="agent",
    )  # fmt: skip
    assert ended.ended_at == NOW + 5 and ended.lease_owner is None and not ended.is_open
    assert store.get_policy("p").cooldown_until == NOW + 5 + 1000
    assert trigger(store, [2], now=NOW + 500) is None  # cooling down: consumed, ignored
    again = trigger(store, [3], now=NOW + 2000)
    assert again is not None and again.report_ids == [3]  # type: ignore[attr-defined]
    assert store.unconsumed_reports(1, [2]) == []


def test_leases_and_conditional_transitions(store: MetadataStore) -> None:
    policy(store)
    opened = trigger(store, [1])
    assert opened is not None
    eid = opened.id  # type: ignore[attr-defined]
    assert store.claim_episode(eid, "a1", now=NOW, lease_ms=1000) is not None
    assert store.claim_episode(eid, "a2", now=NOW + 10, lease_ms=1000) is None  # held
    assert store.claim_episode(eid, "a1", now=NOW + 10, lease_ms=1000) is not None  # own
    assert store.renew_episode_lease(eid, "a1", lease_until=NOW + 2000)
    assert not store.renew_episode_lease(eid, "a2", lease_until=NOW + 2000)
    moved = store.update_episode(
        eid, "a1", expect_state="triggered", state="retraining", reason="go",
        detail={"data": {"cut_ms": 5}}, now=NOW + 20, actor="agent",
    )  # fmt: skip
    assert moved.state == "retraining" and moved.detail["data"] == {"cut_ms": 5}
    with pytest.raises(Conflict, match="another agent"):  # the state moved
        store.update_episode(
            eid, "a1", expect_state="triggered", state="retraining", reason="again",
            now=NOW + 30, actor="agent",
        )  # fmt: skip
    # The lease expires; another agent takes over; the first can no longer change anything.
    taken = store.claim_episode(eid, "a2", now=NOW + 5000, lease_ms=1000)
    assert taken is not None and taken.lease_owner == "a2"
    with pytest.raises(Conflict):
        store.update_episode(
            eid, "a1", expect_state="retraining", state="failed", reason="late", now=NOW + 5001,
            actor="agent",
        )  # fmt: skip
    store.release_episode(eid, "a1")  # not the holder: nothing happens
    assert store.get_episode(eid).lease_owner == "a2"
    store.release_episode(eid, "a2")
    assert store.get_episode(eid).lease_owner is None
    with pytest.raises(InvalidInput):
        store.update_episode(
            eid, "a2", expect_state="retraining", state="exploded", reason="", now=NOW,
            actor="agent",
        )  # fmt: skip
    with pytest.raises(InvalidInput):
        store.claim_episode(eid, "a2", now=NOW, lease_ms=0)


def test_transitions_are_audited_with_their_reports(store: MetadataStore) -> None:
    policy(store)
    opened = trigger(store, [7, 8])
    assert opened is not None
    eid = opened.id  # type: ignore[attr-defined]
    store.claim_episode(eid, "a1", now=NOW, lease_ms=1000)
    store.update_episode(
        eid, "a1", expect_state="triggered", state="retraining", reason="r", now=NOW,
        actor="agent",
    )  # fmt: skip
    events = [e for e in store.iter_audit() if e.object_type == "episode"]
    assert [e.action for e in events] == ["episode.triggered", "episode.retraining"]
    assert events[0].object_id == f"p/{eid}"
    assert all(e.after is not None and e.after["report_ids"] == [7, 8] for e in events)
    assert events[1].before == {"state": "triggered", "step": 0}


def test_a_policy_with_an_open_episode_cannot_be_deleted(store: MetadataStore) -> None:
    policy(store)
    assert trigger(store, [1]) is not None
    with pytest.raises(InvalidState, match="open episode"):
        store.delete_policy("p", actor="ann")
    store.create_policy("q", deployment="d", config=CONFIG, actor="ann")
    assert (
        store.record_trigger(
            "q", considered=[1], trigger=[], events=[], reason="", now=NOW, actor="agent"
        )
        is None
    )
    store.add_alert_delivery(
        "q", episode_id=None, event="test", url="https://hooks.example/x", status="failed",
        attempts=3, http_status=500, error="HTTP 500",
    )  # fmt: skip
    [delivery] = store.list_alert_deliveries("q")
    assert (delivery.status, delivery.attempts, delivery.http_status) == ("failed", 3, 500)
    with pytest.raises(InvalidInput):
        store.add_alert_delivery(
            "q", episode_id=None, event="t", url="u", status="lost", attempts=1,
            http_status=None, error=None,
        )  # fmt: skip
    store.delete_policy("q", actor="ann")
    with pytest.raises(NotFound):
        store.list_alert_deliveries("q")


def test_agents_racing_on_the_same_reports_open_one_episode(store: MetadataStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mloop.errors import Conflict

    policy(store)
    start = threading.Barrier(6)

    def race(_: int) -> str:
        start.wait()
        try:
            return "opened" if trigger(store, [1, 2, 3]) is not None else "none"
        except Conflict:
            return "conflict"  # the database refused the loser's transaction whole

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(race, range(6)))
    assert outcomes.count("opened") == 1
    assert len(store.list_episodes("p")) == 1
    assert store.unconsumed_reports(1, [1, 2, 3]) == []


def test_pending_reports_are_the_unconsumed_ones_of_the_deployment(store: MetadataStore) -> None:
    import time

    from tests.store.test_contract import ACTOR
    from tests.store.test_datasets import digest, new_version
    from tests.store.test_monitoring import CONFIG

    version, _ = store.create_dataset_version("transactions", new_version(1), actor=ACTOR)
    for name, deployment in (("m1", "fraud-api"), ("m2", "fraud-api"), ("other", "else")):
        store.create_monitor(
            name, deployment=deployment, reference=version.ref, reference_version_id=version.id,
            window="1h", config=CONFIG, reference_digest=digest(1), reference_size=1, actor=ACTOR,
        )  # fmt: skip

    def add(monitor: str, start: int) -> int:
        made = store.add_monitor_report(
            monitor, window_start_ms=start, window_end_ms=start + 10, rows=1, labelled_rows=0,
            status="ok", alerts=[], summary={}, results=[],
        )  # fmt: skip
        assert made is not None
        return made.id

    add("m1", 0)  # made before the policy: never its concern
    time.sleep(0.005)
    policy(store)
    ids = [add("m1", 100), add("m2", 50), add("m1", 200), add("other", 10)]
    first = store.pending_reports("p", limit=2)
    assert [(r.monitor, r.window_start_ms) for r in first] == [("m2", 50), ("m1", 100)]
    assert [r.id for r in first] == [ids[1], ids[0]]
    store.record_trigger(
        "p", considered=[r.id for r in first], trigger=[], events=[], reason="", now=NOW,
        actor="agent",
    )  # fmt: skip
    assert [r.id for r in store.pending_reports("p")] == [ids[2]]
    with pytest.raises(InvalidInput, match="limit"):
        store.pending_reports("p", limit=0)
    with pytest.raises(NotFound):
        store.pending_reports("nope")
