"""The append-only, hash-chained audit log: hashing and verification (no SQL here).

Each event's hash is the SHA-256 of a canonical JSON encoding of the previous event's hash and
the event's own fields (seq, time, actor, action, object, before, after). Editing, deleting or
reordering an event breaks the chain; deleting the newest events is caught by comparing the
chain's tail with the head row the store keeps. The store appends events inside the transaction
of the change they record; :func:`verify` walks the whole log and reports every problem.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import AuditChainBroken, InvalidInput

if TYPE_CHECKING:
    from mloop.store.base import MetadataStore

__all__ = ["GENESIS_HASH", "AuditReport", "canonical_json", "event_hash", "verify"]

#: The ``prev_hash`` of the first event.
GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Encode a JSON value canonically: sorted keys, no whitespace, UTF-8 text, NaN refused."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"an audit record must be plain JSON (no NaN or infinity): {exc}"
        ) from None


def event_hash(  # noqa: PLR0917 (the chained fields, in chain order)
    prev_hash: str,
    seq: int,
    ts: int,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> str:
    """The hex SHA-256 that chains one event to the previous one."""
    payload = canonical_json(
        {
            "prev_hash": prev_hash,
            "seq": seq,
            "ts": ts,
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before": before,
            "after": after,
        }
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class AuditReport:
    """The outcome of :func:`verify`: whether the chain holds, and every problem found."""

    ok: bool
    events_checked: int
    problems: list[tuple[int, str]] = field(default_factory=list)

    def raise_if_broken(self) -> None:
        """Raise AuditChainBroken listing the problems, if there are any."""
        if self.ok:
            return
        shown = "; ".join(f"seq {seq}: {reason}" for seq, reason in self.problems[:10])
        more = len(self.problems) - 10
        if more > 0:
            shown += f"; and {more} more"
        raise AuditChainBroken(
            f"the audit log does not verify ({len(self.problems)} problem(s) in "
            f"{self.events_checked} events): {shown}",
            problems=[list(p) for p in self.problems],
        )


def verify(store: MetadataStore) -> AuditReport:
    """Walk the whole audit log of ``store`` and check every hash, link and the head."""
    problems: list[tuple[int, str]] = []
    checked = 0
    last_seq = 0
    last_hash = GENESIS_HASH
    for event in store.iter_audit():
        checked += 1
        expected = event_hash(
            event.prev_hash,
            event.seq,
            event.ts,
            event.actor,
            event.action,
            event.object_type,
            event.object_id,
            event.before,
            event.after,
        )
        if expected != event.hash:
            problems.append((event.seq, "hash mismatch: the event was edited after it was written"))
        if event.seq != last_seq + 1:
            problems.append(
                (event.seq, f"gap: events {last_seq + 1}..{event.seq - 1} are missing (deleted)")
            )
        elif event.prev_hash != last_hash:
            problems.append(
                (
                    event.seq,
                    "broken link: prev_hash does not match the previous event's hash "
                    "(an event was deleted, replaced or reordered)",
                )
            )
        last_seq, last_hash = event.seq, event.hash

    head = store.audit_head()
    if head is None:
        if checked:
            problems.append((last_seq, "the head row is missing but the log has events"))
    elif head != (last_seq, last_hash):
        head_seq, _ = head
        if head_seq > last_seq:
            reason = (
                f"the tail was deleted: the head records event {head_seq} but the log ends "
                f"at {last_seq}"
            )
        else:
            reason = f"the head records event {head_seq} but does not match the log's last event"
        problems.append((head_seq, reason))
    return AuditReport(ok=not problems, events_checked=checked, problems=problems)
