"""The hot write path of the SQL store: metric points, params and tags in one transaction.

Statements are built and compiled once per store; rows go to the driver as plain tuples. The
work per row is building that tuple and one dict entry for the latest value of each metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.engine import Connection, Engine

from mloop.errors import InvalidState, NotFound, ParamConflict
from mloop.store import queries as q
from mloop.store import schema as s
from mloop.store.base import Lifecycle, MetricRow, TagRow

__all__ = ["Batch", "BatchStatements"]


@dataclass(frozen=True, slots=True)
class Batch:
    """A validated batch: metric tuples, the newest point per (run, key), params and tags."""

    run_ids: list[str]
    metrics: list[tuple[Any, ...]]
    latest: list[tuple[Any, ...]]
    params: dict[tuple[str, str], str]
    tags: dict[tuple[str, str], str]


class BatchStatements:
    """The statements of ``write_batch``, compiled once for one engine."""

    def __init__(self, engine: Engine, dialect_insert: Callable[..., Any]) -> None:
        lm, r = s.latest_metrics, s.runs
        upsert = dialect_insert(lm)
        newer = or_(
            upsert.excluded.step > lm.c.step,
            and_(upsert.excluded.step == lm.c.step, upsert.excluded.timestamp >= lm.c.timestamp),
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=[lm.c.run_id, lm.c.key],
            set_={c: upsert.excluded[c] for c in ("value", "is_nan", "step", "timestamp")},
            where=newer,
        )
        self.metric_insert = q.Prepared(engine, s.metrics.insert(), q.METRIC_COLUMNS)
        self.latest_upsert = q.Prepared(engine, upsert, q.METRIC_COLUMNS)
        self.one_run = q.Prepared(
            engine, select(r.c.id, r.c.lifecycle).where(r.c.id == bindparam("run_id")), ["run_id"]
        )
        p, t = s.params, s.tags
        self.param_insert = q.Prepared(
            engine,
            dialect_insert(p).on_conflict_do_nothing(index_elements=[p.c.run_id, p.c.key]),
            ["run_id", "key", "value"],
        )
        self.run_params = q.Prepared(
            engine,
            select(p.c.key, p.c.value).where(p.c.run_id == bindparam("run_id")),
            ["run_id"],
        )
        tag_upsert = dialect_insert(t)
        self.tag_upsert = q.Prepared(
            engine,
            tag_upsert.on_conflict_do_update(
                index_elements=[t.c.run_id, t.c.key], set_={"value": tag_upsert.excluded.value}
            ),
            ["run_id", "key", "value"],
        )

    @staticmethod
    def prepare(
        metrics: Sequence[MetricRow], params: Sequence[TagRow], tags: Sequence[TagRow]
    ) -> Batch:
        """Build the rows and check what needs no database. Raises InvalidName, ParamConflict
        (one param given twice with different values)."""
        # (run_id, key, value, is_nan, step, timestamp): NaN is stored as NULL + is_nan;
        # v != v is the cheapest NaN test.
        rows = [
            (r, k, None, True, st, ts) if v != v else (r, k, v, False, st, ts)  # noqa: PLR0124
            for r, k, v, st, ts in metrics
        ]
        # The newest point per (run, key): greater step wins; on equal steps the greater or
        # equal timestamp (the later in the batch) wins — the rule of the upsert's WHERE.
        # A stable sort by (step, timestamp), then "last one wins", is exactly that rule.
        latest = {(row[0], row[1]): row for row in sorted(rows, key=q.STEP_THEN_TIME)}
        param_values: dict[tuple[str, str], str] = {}
        for run_id, key, value in params:
            seen = param_values.setdefault((run_id, key), value)
            if seen != value:
                raise ParamConflict(
                    f"param {key!r} is logged twice for run {run_id} in one batch, as "
                    f"{q.short(seen)!r} and {q.short(value)!r}; params are immutable — "
                    "log one value",
                    run_id=run_id,
                    key=key,
                )
        tag_values = {(r, k): v for r, k, v in tags}
        idents = latest.keys() | param_values.keys() | tag_values.keys()
        for key in {k for _, k in idents}:
            q.check_key("key", key)
        return Batch(
            sorted({r for r, _ in idents}), rows, list(latest.values()), param_values, tag_values
        )

    def write(self, conn: Connection, batch: Batch) -> None:
        """Write a prepared batch inside the caller's transaction. Raises NotFound,
        InvalidState, ParamConflict."""
        self._check_runs(conn, batch.run_ids)
        if batch.metrics:
            self.metric_insert.executemany(conn, batch.metrics)
            self.latest_upsert.executemany(conn, batch.latest)
        if batch.params:
            self._write_params(conn, batch.params)
        if batch.tags:
            self.tag_upsert.executemany(conn, [(r, k, v) for (r, k), v in batch.tags.items()])

    def _check_runs(self, conn: Connection, run_ids: list[str]) -> None:
        seen: dict[str, str] = {}
        rows: Any
        if len(run_ids) == 1:  # the usual case, on a statement compiled once
            rows = self.one_run.execute(conn, (run_ids[0],))
            seen.update((rid, life) for rid, life in rows)
        else:
            r = s.runs
            for chunk in q.chunks(run_ids):
                rows = conn.execute(select(r.c.id, r.c.lifecycle).where(r.c.id.in_(chunk)))
                seen.update((rid, life) for rid, life in rows)
        missing = [i for i in run_ids if i not in seen]
        if missing:
            raise NotFound(f"no run with id {missing[0]!r}", run_ids=missing[:20])
        deleted = [i for i in run_ids if seen[i] == Lifecycle.DELETED]
        if deleted:
            raise InvalidState(
                f"run {deleted[0]} is deleted; restore it before logging to it",
                run_ids=deleted[:20],
            )

    def _write_params(self, conn: Connection, values: dict[tuple[str, str], str]) -> None:
        self.param_insert.executemany(conn, [(r, k, v) for (r, k), v in values.items()])
        # Whatever was stored before (or written concurrently) is now in the table: reading
        # each run's params back tells whether a stored value differs from the one logged.
        # Runs have tens of params, so one compiled per-run read beats an IN list compiled anew.
        for run_id in sorted({r for r, _ in values}):
            for key, stored in self.run_params.execute(conn, (run_id,)):
                wanted = values.get((run_id, key))
                if wanted is not None and wanted != stored:
                    raise ParamConflict(
                        f"param {key!r} was already logged as {q.short(stored)!r} for run "
                        f"{run_id}; cannot log {q.short(wanted)!r}: params are immutable — log "
                        "a new run or use a tag",
                        run_id=run_id,
                        key=key,
                    )
