"""The audit log: hashing, and verify() catching every kind of tampering (done with raw SQL)."""

from __future__ import annotations

import math

import pytest

from mloop import audit
from mloop.errors import AuditChainBroken, InvalidInput
from mloop.store.base import MetadataStore


def fill(store: MetadataStore, n: int = 5) -> None:
    for i in range(n):
        store.append_audit(
            actor="alice",
            action="thing.changed",
            object_type="thing",
            object_id=str(i),
            before={"v": i},
            after={"v": i + 1, "név": "ö"},
        )


def raw(store: MetadataStore, sql: str) -> None:
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(sql)


def test_event_hash_is_canonical() -> None:
    args = ("0" * 64, 1, 1000, "alice", "a.b", "a", "1")
    h1 = audit.event_hash(*args, {"x": 1, "y": [1, 2]}, None)
    h2 = audit.event_hash(*args, {"y": [1, 2], "x": 1}, None)
    assert h1 == h2 and len(h1) == 64
    assert audit.event_hash(*args, {"x": 2, "y": [1, 2]}, None) != h1
    assert audit.canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    with pytest.raises(InvalidInput):
        audit.event_hash(*args, {"x": math.nan}, None)
    assert audit.GENESIS_HASH == "0" * 64


def test_verify_clean_log(store: MetadataStore) -> None:
    report = audit.verify(store)
    assert report.ok and report.events_checked == 0
    fill(store)
    report = audit.verify(store)
    assert report.ok and report.events_checked == 5 and report.problems == []
    report.raise_if_broken()


def test_verify_detects_edited_event(store: MetadataStore) -> None:
    fill(store)
    raw(store, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    report = audit.verify(store)
    assert not report.ok
    assert [seq for seq, _ in report.problems] == [3]
    assert "edited" in report.problems[0][1]
    with pytest.raises(AuditChainBroken, match="seq 3"):
        report.raise_if_broken()


def test_verify_detects_edited_payload(store: MetadataStore) -> None:
    fill(store)
    raw(store, """UPDATE audit_events SET "after" = '{"v":99}' WHERE seq = 2""")
    assert [seq for seq, _ in audit.verify(store).problems] == [2]


def test_verify_detects_deleted_middle_event(store: MetadataStore) -> None:
    fill(store)
    raw(store, "DELETE FROM audit_events WHERE seq = 3")
    report = audit.verify(store)
    assert not report.ok and report.events_checked == 4
    assert report.problems[0][0] == 4 and "missing" in report.problems[0][1]


def test_verify_detects_deleted_tail(store: MetadataStore) -> None:
    fill(store)
    raw(store, "DELETE FROM audit_events WHERE seq >= 4")
    report = audit.verify(store)
    assert not report.ok
    assert report.problems == [(5, report.problems[0][1])]
    assert "tail" in report.problems[0][1]


def test_verify_detects_everything_deleted(store: MetadataStore) -> None:
    fill(store)
    raw(store, "DELETE FROM audit_events")
    assert not audit.verify(store).ok


def test_verify_detects_deleted_head(store: MetadataStore) -> None:
    fill(store)
    raw(store, "DELETE FROM audit_head")
    report = audit.verify(store)
    assert not report.ok and "head" in report.problems[0][1]


def test_verify_detects_reordering(store: MetadataStore) -> None:
    fill(store)
    # swap the contents of events 2 and 3, keeping each row's seq
    raw(store, "UPDATE audit_events SET seq = -2 WHERE seq = 2")
    raw(store, "UPDATE audit_events SET seq = 2 WHERE seq = 3")
    raw(store, "UPDATE audit_events SET seq = 3 WHERE seq = -2")
    report = audit.verify(store)
    assert {seq for seq, _ in report.problems} >= {2, 3}


def test_verify_detects_rechained_forgery(store: MetadataStore) -> None:
    """An attacker who edits an event and recomputes its hash still breaks the next link."""
    fill(store)
    events = list(store.iter_audit())
    e = events[1]
    forged = audit.event_hash(
        e.prev_hash, e.seq, e.ts, "mallory", e.action, e.object_type, e.object_id, e.before, e.after
    )
    raw(store, f"UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 2")
    report = audit.verify(store)
    assert [seq for seq, _ in report.problems] == [3]
    assert "link" in report.problems[0][1]
