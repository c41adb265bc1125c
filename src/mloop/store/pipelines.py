"""The step cache and cron schedules: the SQL half of :mod:`mloop.pipelines`.

A mixin of :class:`mloop.store.sql.SqlStore`. Cache entries are derived data (a step run and
its outputs, already recorded and audited as a run); schedule changes and fires are audit
events. A scheduler claims a due schedule by taking its lease in one conditional ``UPDATE …
RETURNING`` (lease free or expired), so two schedulers — even on several machines sharing the
database — never fire one schedule at once.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Connection

from mloop.errors import AlreadyExists, InvalidInput, NotFound
from mloop.store import queries as q
from mloop.store import schema as s
from mloop.store.datasets import dumps, loads
from mloop.store.part import StorePart
from mloop.store.records import Schedule, StepCacheEntry

__all__ = ["PipelineTables", "check_schedule_name"]


_SCHEDULE_COLUMNS = (
    s.schedules.c.id, s.schedules.c.name, s.schedules.c.pipeline, s.schedules.c.cron,
    s.schedules.c.tz, s.schedules.c.params, s.schedules.c.enabled, s.schedules.c.next_fire_at,
    s.schedules.c.last_fired_at, s.schedules.c.last_run_id, s.schedules.c.lease_owner,
    s.schedules.c.lease_until, s.schedules.c.created_at, s.schedules.c.updated_at,
)  # fmt: skip


def check_schedule_name(name: object) -> str:
    """Return ``name`` if it is a valid schedule name; raise InvalidName otherwise."""
    return q.check_object_name("schedule", name, "nightly-training")


def _schedule(row: Any) -> Schedule:
    values = list(row)
    values[5] = loads(values[5]) or {}
    values[6] = bool(values[6])
    return Schedule(*values)


def _entry(row: Any) -> StepCacheEntry:
    return StepCacheEntry(
        cache_key=row[0], step=row[1], run_id=row[2], parts=loads(row[3]) or {},
        outputs=loads(row[4]) or [], created_at=row[5], expires_at=row[6],
    )  # fmt: skip


_CACHE_COLUMNS = (
    s.step_cache.c.cache_key, s.step_cache.c.step, s.step_cache.c.run_id, s.step_cache.c.parts,
    s.step_cache.c.outputs, s.step_cache.c.created_at, s.step_cache.c.expires_at,
)  # fmt: skip


class PipelineTables(StorePart):
    """The pipeline methods of the SQL store (mixed into ``SqlStore``)."""

    # -- step cache -------------------------------------------------------------------------
    def put_step_cache(self, entry: StepCacheEntry) -> None:
        """Record (or replace) a cached step result."""
        if not re.fullmatch("[0-9a-f]{64}", entry.cache_key):
            raise InvalidInput("a step cache key must be 64 lowercase hex digits")
        q.check_key("step name", entry.step, s.NAME_LEN)
        parts = dumps(entry.parts, "cache key parts")
        outputs = dumps(entry.outputs, "step outputs")
        c = s.step_cache
        with self._write() as conn:
            found = conn.execute(select(s.runs.c.id).where(s.runs.c.id == entry.run_id)).first()
            if found is None:
                raise NotFound(f"no run with id {entry.run_id}")
            values = {
                "cache_key": entry.cache_key, "step": entry.step, "run_id": entry.run_id,
                "parts": parts, "outputs": outputs, "created_at": entry.created_at,
                "expires_at": entry.expires_at,
            }  # fmt: skip
            stmt = self._insert(c).values(**values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[c.c.cache_key],
                    set_={k: v for k, v in values.items() if k != "cache_key"},
                )
            )

    def get_step_cache(self, cache_key: str, *, now: int) -> StepCacheEntry | None:
        """The cached result for a key, unless missing or expired at ``now``."""
        c = s.step_cache
        with self._read() as conn:
            row = conn.execute(
                select(*_CACHE_COLUMNS).where(
                    c.c.cache_key == cache_key, or_(c.c.expires_at.is_(None), c.c.expires_at > now)
                )
            ).first()
        return None if row is None else _entry(row)

    def latest_step_cache(self, step: str) -> StepCacheEntry | None:
        """The newest cached result of a step (any key)."""
        c = s.step_cache
        with self._read() as conn:
            row = conn.execute(
                select(*_CACHE_COLUMNS)
                .where(c.c.step == step)
                .order_by(c.c.created_at.desc(), c.c.cache_key)
                .limit(1)
            ).first()
        return None if row is None else _entry(row)

    # -- schedules --------------------------------------------------------------------------
    def _schedule_row(self, conn: Connection, name: str) -> Schedule:
        row = conn.execute(select(*_SCHEDULE_COLUMNS).where(s.schedules.c.name == name)).first()
        if row is None:
            raise NotFound(f"no schedule named {name!r} (see `mloop schedules list`)")
        return _schedule(row)

    def create_schedule(
        self,
        name: str,
        *,
        pipeline: str,
        cron: str,
        tz: str,
        params: dict[str, Any],
        next_fire_at: int,
        actor: str,
    ) -> Schedule:
        """Create an enabled schedule."""
        check_schedule_name(name)
        q.check_key("pipeline reference", pipeline, s.PATH_LEN)
        q.check_key("cron expression", cron, s.NAME_LEN)
        q.check_key("time zone", tz, 64)
        text = dumps(params, "schedule parameters")
        taken = f"a schedule named {name!r} already exists"
        sc = s.schedules
        with self._write(duplicate=taken) as conn:
            if conn.execute(select(sc.c.id).where(sc.c.name == name)).first() is not None:
                raise AlreadyExists(taken)
            now = q.now_ms()
            conn.execute(
                sc.insert().values(
                    name=name, pipeline=pipeline, cron=cron, tz=tz, params=text, enabled=True,
                    next_fire_at=next_fire_at, created_at=now, updated_at=now,
                )
            )  # fmt: skip
            self._audit(
                conn, actor, "schedule.created", name, None,
                {"pipeline": pipeline, "cron": cron, "tz": tz, "params": params},
            )  # fmt: skip
            return self._schedule_row(conn, name)

    def get_schedule(self, name: str) -> Schedule:
        """A schedule by name."""
        with self._read() as conn:
            return self._schedule_row(conn, name)

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        with self._read() as conn:
            rows = conn.execute(select(*_SCHEDULE_COLUMNS)).all()
        return sorted((_schedule(r) for r in rows), key=lambda x: x.name)

    def set_schedule_enabled(
        self, name: str, enabled: bool, *, next_fire_at: int | None = None, actor: str
    ) -> Schedule:
        """Enable or disable a schedule."""
        sc = s.schedules
        with self._write() as conn:
            before = self._schedule_row(conn, name)
            values: dict[str, Any] = {"enabled": bool(enabled), "updated_at": q.now_ms()}
            if next_fire_at is not None:
                values["next_fire_at"] = next_fire_at
            conn.execute(update(sc).where(sc.c.id == before.id).values(**values))
            self._audit(
                conn, actor, "schedule.enabled" if enabled else "schedule.disabled", name,
                {"enabled": before.enabled}, {"enabled": bool(enabled)},
            )  # fmt: skip
            return self._schedule_row(conn, name)

    def delete_schedule(self, name: str, *, actor: str) -> None:
        """Delete a schedule."""
        sc = s.schedules
        with self._write() as conn:
            before = self._schedule_row(conn, name)
            conn.execute(delete(sc).where(sc.c.id == before.id))
            self._audit(
                conn, actor, "schedule.deleted", name,
                {"pipeline": before.pipeline, "cron": before.cron}, None,
            )  # fmt: skip

    def claim_due_schedules(
        self, owner: str, *, now: int, lease_ms: int, limit: int = 100
    ) -> list[Schedule]:
        """Take the lease of due schedules whose lease is free or expired; return them."""
        q.check_key("scheduler id", owner, s.NAME_LEN)
        if lease_ms < 1:
            raise InvalidInput(f"a lease lasts at least 1 ms, got {lease_ms}")
        sc = s.schedules
        with self._write() as conn:
            due = (
                select(sc.c.id)
                .where(
                    sc.c.enabled.is_(True),
                    sc.c.next_fire_at <= now,
                    or_(sc.c.lease_until.is_(None), sc.c.lease_until < now),
                )
                .order_by(sc.c.next_fire_at, sc.c.id)
                .limit(limit)
            )
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            # The same conditions again in the UPDATE: a concurrent claimer that took a row
            # between the SELECT and here leaves it out (its lease is no longer expired).
            rows = conn.execute(
                update(sc)
                .where(
                    and_(
                        sc.c.id.in_(ids),
                        or_(sc.c.lease_until.is_(None), sc.c.lease_until < now),
                    )
                )
                .values(lease_owner=owner, lease_until=now + lease_ms)
                .returning(*_SCHEDULE_COLUMNS)
            ).all()
        return sorted((_schedule(r) for r in rows), key=lambda x: (x.next_fire_at, x.id))

    def renew_schedule_lease(self, schedule_id: int, owner: str, *, lease_until: int) -> bool:
        """Extend a held lease to ``lease_until``; False if ``owner`` no longer holds it."""
        sc = s.schedules
        with self._write() as conn:
            renewed = conn.execute(
                update(sc)
                .where(sc.c.id == schedule_id, sc.c.lease_owner == owner)
                .values(lease_until=lease_until)
                .returning(sc.c.id)
            ).first()
        return renewed is not None

    def finish_schedule_fire(
        self, schedule_id: int, owner: str, *, fired_at: int, next_fire_at: int,
        run_id: str | None, actor: str,
    ) -> bool:  # fmt: skip
        """Record a fire and release the lease if ``owner`` still holds it."""
        sc = s.schedules
        with self._write() as conn:
            done = conn.execute(
                update(sc)
                .where(sc.c.id == schedule_id, sc.c.lease_owner == owner)
                .values(
                    last_fired_at=fired_at, last_run_id=run_id, next_fire_at=next_fire_at,
                    lease_owner=None, lease_until=None, updated_at=q.now_ms(),
                )
                .returning(sc.c.name)
            ).first()  # fmt: skip
            if done is None:
                return False
            self._audit(
                conn, actor, "schedule.fired", done[0], None,
                {"fired_at": fired_at, "run_id": run_id, "next_fire_at": next_fire_at},
            )  # fmt: skip
            return True
