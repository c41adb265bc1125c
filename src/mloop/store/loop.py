"""Policies, episodes, consumed reports and alert deliveries: the SQL half of :mod:`mloop.loop`.

A mixin of :class:`mloop.store.sql.SqlStore`. Three guarantees live here rather than in the
agent, because they must hold across processes and machines sharing the database:

- **one open episode per policy**: ``episodes.open_policy_id`` holds the policy's id while an
  episode is open and NULL after; its unique constraint refuses a second open one;
- **a report is consumed once**: ``policy_reports`` is keyed by (policy, report), and a trigger
  inserts the reports it looked at in the transaction that opens (or declines) the episode;
- **one agent at a time per episode**: an agent changes an episode only while it holds the
  episode's lease (taken and renewed by conditional ``UPDATE``s, as schedules are), and every
  change is conditional on the lease owner and the state it expects.

Every transition writes its audit event (object type ``episode``, object id
``<policy>/<episode id>``) in the transaction of the change, with the report ids behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Connection, Engine

from mloop.errors import AlreadyExists, Conflict, InvalidInput, InvalidState, NotFound
from mloop.store import queries as q
from mloop.store import schema as s
from mloop.store.datasets import dumps, loads
from mloop.store.monitoring import REPORT_COLUMNS, report_record
from mloop.store.part import StorePart
from mloop.store.records import AlertDelivery, Episode, MonitorReport, Policy

__all__ = ["END_STATES", "EPISODE_STATES", "LoopTables", "check_policy_name"]

#: Every state of an episode, in order of the happy path; the last four end it.
EPISODE_STATES = (
    "triggered", "retraining", "gating", "rolling_out", "promoted", "rolled_back", "rejected",
    "failed",
)  # fmt: skip
#: The states that end an episode.
END_STATES = frozenset({"promoted", "rolled_back", "rejected", "failed"})

_p, _e, _pr, _a = s.policies, s.episodes, s.policy_reports, s.alert_deliveries
_POLICY_COLUMNS = (
    _p.c.id, _p.c.name, _p.c.deployment, _p.c.config, _p.c.enabled, _p.c.cooldown_until,
    _p.c.created_at, _p.c.created_by, _p.c.updated_at,
)  # fmt: skip
_EPISODE_COLUMNS = (
    _e.c.id, _p.c.name, _e.c.policy_id, _e.c.state, _e.c.step, _e.c.events, _e.c.report_ids,
    _e.c.reason, _e.c.detail, _e.c.pipeline_run_id, _e.c.candidate_version, _e.c.lease_owner,
    _e.c.lease_until, _e.c.started_at, _e.c.step_started_at, _e.c.updated_at, _e.c.ended_at,
)  # fmt: skip
_ALERT_COLUMNS = (
    _a.c.id, _p.c.name, _a.c.episode_id, _a.c.event, _a.c.url, _a.c.status, _a.c.attempts,
    _a.c.http_status, _a.c.error, _a.c.at,
)  # fmt: skip


def check_policy_name(name: object) -> str:
    """Return ``name`` if it is a valid policy name; raise InvalidName otherwise."""
    return q.check_object_name("policy", name, "fraud-retrain")


def _policy(row: Any) -> Policy:
    return Policy(
        id=int(row[0]), name=row[1], deployment=row[2], config=loads(row[3]) or {},
        enabled=bool(row[4]), cooldown_until=row[5], created_at=row[6], created_by=row[7],
        updated_at=row[8],
    )  # fmt: skip


def _episode(row: Any) -> Episode:
    return Episode(
        id=int(row[0]), policy=row[1], policy_id=int(row[2]), state=row[3], step=int(row[4]),
        events=list(loads(row[5]) or []), report_ids=[int(x) for x in loads(row[6]) or []],
        reason=row[7], detail=loads(row[8]) or {}, pipeline_run_id=row[9],
        candidate_version=row[10], lease_owner=row[11], lease_until=row[12], started_at=row[13],
        step_started_at=row[14], updated_at=row[15], ended_at=row[16],
    )  # fmt: skip


def _alert(row: Any) -> AlertDelivery:
    return AlertDelivery(
        id=int(row[0]), policy=row[1], episode_id=row[2], event=row[3], url=row[4],
        status=row[5], attempts=int(row[6]), http_status=row[7], error=row[8], at=row[9],
    )  # fmt: skip


def _no_policy(name: str) -> NotFound:
    return NotFound(f"no policy named {name!r} (see `mloop policies list`)")


def _object_id(episode: Episode) -> str:
    return f"{episode.policy}/{episode.id}"


class LoopTables(StorePart):
    """The policy and episode methods of the SQL store (mixed into ``SqlStore``)."""

    if TYPE_CHECKING:
        engine: Engine

    # -- helpers ----------------------------------------------------------------------------
    def _policy_row(self, conn: Connection, name: str) -> Policy:
        row = conn.execute(select(*_POLICY_COLUMNS).where(_p.c.name == name)).first()
        if row is None:
            raise _no_policy(name)
        return _policy(row)

    def _episode_row(self, conn: Connection, episode_id: int) -> Episode:
        row = conn.execute(
            select(*_EPISODE_COLUMNS)
            .join(_p, _p.c.id == _e.c.policy_id)
            .where(_e.c.id == episode_id)
        ).first()
        if row is None:
            raise NotFound(f"no episode with id {episode_id} (see `mloop policies episodes`)")
        return _episode(row)

    # -- policies ---------------------------------------------------------------------------
    def create_policy(
        self, name: str, *, deployment: str, config: Mapping[str, Any], actor: str
    ) -> Policy:
        """Create an enabled policy of ``deployment``."""
        check_policy_name(name)
        text = dumps(dict(config), "policy configuration")
        taken = f"a policy named {name!r} already exists (see `mloop policies show {name}`)"
        with self._write(duplicate=taken) as conn:
            if conn.execute(select(_p.c.id).where(_p.c.name == name)).first() is not None:
                raise AlreadyExists(taken)
            now = q.now_ms()
            conn.execute(
                _p.insert().values(
                    name=name, deployment=deployment, config=text, enabled=True,
                    cooldown_until=None, created_at=now, created_by=actor, updated_at=now,
                )
            )  # fmt: skip
            self._audit(
                conn, actor, "policy.created", name, None,
                {"deployment": deployment, **dict(config)},
            )  # fmt: skip
            return self._policy_row(conn, name)

    def get_policy(self, name: str) -> Policy:
        """A policy by name."""
        with self._read() as conn:
            return self._policy_row(conn, name)

    def list_policies(self, deployment: str | None = None) -> list[Policy]:
        """Every policy (of ``deployment`` when given), by name."""
        query = select(*_POLICY_COLUMNS)
        if deployment is not None:
            query = query.where(_p.c.deployment == deployment)
        with self._read() as conn:
            rows = conn.execute(query.order_by(_p.c.name)).all()
        return [_policy(r) for r in rows]

    def delete_policy(self, name: str, *, actor: str) -> None:
        """Delete a policy with its episodes and deliveries (audit events stay)."""
        with self._write() as conn:
            policy = self._policy_row(conn, name)
            open_id = conn.execute(select(_e.c.id).where(_e.c.open_policy_id == policy.id)).scalar()
            if open_id is not None:
                raise InvalidState(
                    f"policy {name!r} has an open episode ({open_id}); wait for it to end "
                    f"(mloop policies episodes {name}) before deleting the policy"
                )
            for table in (_pr, _a, _e):
                conn.execute(delete(table).where(table.c.policy_id == policy.id))
            conn.execute(delete(_p).where(_p.c.id == policy.id))
            self._audit(
                conn, actor, "policy.deleted", name,
                {"deployment": policy.deployment, **policy.config}, None,
            )  # fmt: skip

    # -- triggers ---------------------------------------------------------------------------
    def pending_reports(self, policy: str, *, limit: int = 1000) -> list[MonitorReport]:
        """The reports of the monitors of the policy's deployment, made since the policy was
        created and not consumed by it yet, oldest window first, at most ``limit``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be an int >= 1, got {limit!r}")
        m, r = s.monitors, s.monitor_reports
        with self._read() as conn:
            found = self._policy_row(conn, policy)
            consumed = (
                select(_pr.c.report_id)
                .where(_pr.c.policy_id == found.id, _pr.c.report_id == r.c.id)
                .exists()
            )
            rows = conn.execute(
                select(m.c.name, *REPORT_COLUMNS)
                .join(m, m.c.id == r.c.monitor_id)
                .where(m.c.deployment == found.deployment, r.c.created_at >= found.created_at,
                       ~consumed)
                .order_by(r.c.window_start_ms, r.c.id)
                .limit(limit)
            ).all()  # fmt: skip
        return [report_record(row[0], row[1:]) for row in rows]

    def unconsumed_reports(self, policy_id: int, report_ids: Sequence[int]) -> list[int]:
        """The ids among ``report_ids`` that the policy has not consumed yet, in order."""
        if not report_ids:
            return []
        seen: set[int] = set()
        with self._read() as conn:
            for start in range(0, len(report_ids), 500):
                chunk = [int(x) for x in report_ids[start : start + 500]]
                seen.update(
                    int(x)
                    for x in conn.execute(
                        select(_pr.c.report_id).where(
                            _pr.c.policy_id == policy_id, _pr.c.report_id.in_(chunk)
                        )
                    ).scalars()
                )
        return [int(x) for x in report_ids if int(x) not in seen]

    def record_trigger(
        self,
        policy: str,
        *,
        considered: Sequence[int],
        trigger: Sequence[int],
        events: Sequence[str],
        reason: str,
        detail: Mapping[str, Any] | None = None,
        now: int,
        actor: str,
    ) -> Episode | None:
        """Consume the reports ``considered`` and, when ``trigger`` (a subset) holds some not
        consumed before, the policy is enabled, has no open episode and is past its cool-down,
        open an episode for them. Returns the new episode, or None: the reports were consumed
        (joined to the open episode, or ignored) and nothing started."""
        with self._write() as conn:
            found = self._policy_row(conn, policy)
            wanted = sorted({int(x) for x in considered} | {int(x) for x in trigger})
            done: set[int] = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                done.update(
                    int(x)
                    for x in conn.execute(
                        select(_pr.c.report_id).where(
                            _pr.c.policy_id == found.id, _pr.c.report_id.in_(chunk)
                        )
                    ).scalars()
                )
            fresh = [x for x in wanted if x not in done]
            triggering = sorted({int(x) for x in trigger} - done)
            open_id = conn.execute(select(_e.c.id).where(_e.c.open_policy_id == found.id)).scalar()
            cooling = found.cooldown_until is not None and found.cooldown_until > now
            episode_id: int | None = None
            if triggering and found.enabled and open_id is None and not cooling:
                episode_id = conn.execute(
                    _e.insert()
                    .values(
                        policy_id=found.id, open_policy_id=found.id, state="triggered", step=0,
                        events=dumps(sorted(set(events)), "episode events"),
                        report_ids=dumps(triggering, "report ids"), reason=reason,
                        detail=dumps(dict(detail or {}), "episode detail"), started_at=now,
                        step_started_at=now, updated_at=now,
                    )
                    .returning(_e.c.id)
                ).scalar_one()  # fmt: skip
            joined = open_id if episode_id is None else episode_id
            if fresh:
                conn.execute(
                    _pr.insert(),
                    [
                        {
                            "policy_id": found.id,
                            "report_id": x,
                            "episode_id": joined if x in triggering else None,
                            "consumed_at": now,
                        }
                        for x in fresh
                    ],
                )
            if episode_id is None:
                return None
            episode = self._episode_row(conn, episode_id)
            self._audit(
                conn, actor, "episode.triggered", _object_id(episode), None,
                {"episode": episode_id, "policy": policy, "deployment": found.deployment,
                 "state": "triggered", "events": episode.events, "report_ids": triggering,
                 "reason": reason},
            )  # fmt: skip
            return episode

    # -- episodes ---------------------------------------------------------------------------
    def get_episode(self, episode_id: int) -> Episode:
        """An episode by id."""
        with self._read() as conn:
            return self._episode_row(conn, episode_id)

    def list_episodes(
        self, policy: str | None = None, *, open_only: bool = False, limit: int | None = None
    ) -> list[Episode]:
        """Episodes, newest first: of one policy when given, only open ones with
        ``open_only``, at most ``limit``."""
        query = select(*_EPISODE_COLUMNS).join(_p, _p.c.id == _e.c.policy_id)
        with self._read() as conn:
            if policy is not None:
                query = query.where(_e.c.policy_id == self._policy_row(conn, policy).id)
            if open_only:
                query = query.where(_e.c.open_policy_id.is_not(None))
            query = query.order_by(_e.c.started_at.desc(), _e.c.id.desc())
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).all()
        return [_episode(r) for r in rows]

    def claim_episode(
        self, episode_id: int, owner: str, *, now: int, lease_ms: int
    ) -> Episode | None:
        """Take an open episode's lease when it is free, expired or already ``owner``'s;
        None when another agent holds it or the episode has ended."""
        q.check_key("agent id", owner, s.NAME_LEN)
        if lease_ms < 1:
            raise InvalidInput(f"a lease lasts at least 1 ms, got {lease_ms}")
        with self._write() as conn:
            taken = conn.execute(
                update(_e)
                .where(
                    and_(
                        _e.c.id == episode_id,
                        _e.c.open_policy_id.is_not(None),
                        or_(
                            _e.c.lease_until.is_(None),
                            _e.c.lease_until < now,
                            _e.c.lease_owner == owner,
                        ),
                    )
                )
                .values(lease_owner=owner, lease_until=now + lease_ms)
                .returning(_e.c.id)
            ).first()
            return None if taken is None else self._episode_row(conn, episode_id)

    def renew_episode_lease(self, episode_id: int, owner: str, *, lease_until: int) -> bool:
        """Extend a held lease to ``lease_until``; False if ``owner`` no longer holds it."""
        with self._write() as conn:
            renewed = conn.execute(
                update(_e)
                .where(
                    _e.c.id == episode_id,
                    _e.c.lease_owner == owner,
                    _e.c.open_policy_id.is_not(None),
                )
                .values(lease_until=lease_until)
                .returning(_e.c.id)
            ).first()
        return renewed is not None

    def release_episode(self, episode_id: int, owner: str) -> None:
        """Give the lease back, if ``owner`` holds it."""
        with self._write() as conn:
            conn.execute(
                update(_e)
                .where(_e.c.id == episode_id, _e.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def update_episode(
        self,
        episode_id: int,
        owner: str,
        *,
        expect_state: str,
        state: str,
        reason: str,
        step: int | None = None,
        detail: Mapping[str, Any] | None = None,
        pipeline_run_id: str | None = None,
        candidate_version: int | None = None,
        restart_clock: bool = True,
        now: int,
        actor: str,
    ) -> Episode:
        """Move an episode from ``expect_state`` to ``state`` while ``owner`` holds its lease,
        merging ``detail`` into its detail; an end state closes it, releases the lease and
        starts the policy's cool-down. Raises Conflict (the lease was lost or the state
        moved), InvalidInput (an unknown state)."""
        if state not in EPISODE_STATES:
            raise InvalidInput(
                f"episode state must be one of {', '.join(EPISODE_STATES)}, got {state!r}"
            )
        with self._write() as conn:
            old = self._episode_row(conn, episode_id)
            if old.lease_owner != owner or old.state != expect_state or not old.is_open:
                raise Conflict(
                    f"episode {episode_id} of policy {old.policy!r} is {old.state} with lease "
                    f"holder {old.lease_owner!r}, not {expect_state} held by {owner!r}; "
                    "another agent took it over — leave it to that agent"
                )
            merged = {**old.detail, **dict(detail or {})}
            values: dict[str, Any] = {
                "state": state, "reason": reason, "detail": dumps(merged, "episode detail"),
                "updated_at": now,
            }  # fmt: skip
            if step is not None:
                values["step"] = step
            if restart_clock:
                values["step_started_at"] = now
            if pipeline_run_id is not None:
                values["pipeline_run_id"] = pipeline_run_id
            if candidate_version is not None:
                values["candidate_version"] = candidate_version
            ended = state in END_STATES
            if ended:
                values.update(ended_at=now, open_policy_id=None, lease_owner=None, lease_until=None)
            conn.execute(
                update(_e).where(_e.c.id == episode_id, _e.c.lease_owner == owner).values(**values)
            )
            if ended:
                policy = self._policy_row(conn, old.policy)
                cooldown = int(policy.config.get("cooldown_ms", 0))
                conn.execute(
                    update(_p)
                    .where(_p.c.id == old.policy_id)
                    .values(cooldown_until=now + cooldown, updated_at=now)
                )
            new = self._episode_row(conn, episode_id)
            after: dict[str, Any] = {
                "episode": episode_id, "policy": old.policy, "state": state, "step": new.step,
                "reason": reason, "report_ids": new.report_ids,
                "candidate_version": new.candidate_version,
                "pipeline_run_id": new.pipeline_run_id, **dict(detail or {}),
            }  # fmt: skip
            self._audit(
                conn, actor, f"episode.{state}", _object_id(new),
                {"state": old.state, "step": old.step}, after,
            )  # fmt: skip
            return new

    # -- alerts -----------------------------------------------------------------------------
    def add_alert_delivery(
        self,
        policy: str,
        *,
        episode_id: int | None,
        event: str,
        url: str,
        status: str,
        attempts: int,
        http_status: int | None,
        error: str | None,
    ) -> AlertDelivery:
        """Record one webhook delivery (``sent`` or ``failed``)."""
        if status not in ("sent", "failed"):
            raise InvalidInput(f"an alert delivery is sent or failed, got {status!r}")
        with self._write() as conn:
            found = self._policy_row(conn, policy)
            new_id = conn.execute(
                _a.insert()
                .values(
                    policy_id=found.id, episode_id=episode_id, event=event[:32],
                    url=url[: s.PATH_LEN], status=status, attempts=attempts,
                    http_status=http_status, error=None if error is None else error[:2000],
                    at=q.now_ms(),
                )
                .returning(_a.c.id)
            ).scalar_one()  # fmt: skip
            row = conn.execute(
                select(*_ALERT_COLUMNS).join(_p, _p.c.id == _a.c.policy_id).where(_a.c.id == new_id)
            ).one()
        return _alert(row)

    def list_alert_deliveries(self, policy: str) -> list[AlertDelivery]:
        """A policy's webhook deliveries, oldest first."""
        with self._read() as conn:
            found = self._policy_row(conn, policy)
            rows = conn.execute(
                select(*_ALERT_COLUMNS)
                .join(_p, _p.c.id == _a.c.policy_id)
                .where(_a.c.policy_id == found.id)
                .order_by(_a.c.at, _a.c.id)
            ).all()
        return [_alert(r) for r in rows]
