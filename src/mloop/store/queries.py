"""The reads and statements the SQL store's methods share: bulk loaders, the audit append,
statements compiled once for the hot path, and small checks. Used only by ``sql.py``.
"""

from __future__ import annotations

import json
import operator
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement

from mloop import audit
from mloop.errors import Conflict, InvalidInput, InvalidName
from mloop.store import schema as s
from mloop.store.base import AuditEvent, Experiment, Lifecycle, Run, RunStatus, ViewType

__all__ = [
    "HEX",
    "METRIC_COLUMNS",
    "STEP_THEN_TIME",
    "Prepared",
    "Statements",
    "append_event",
    "artifact_rows",
    "audit_events",
    "check_key",
    "chunks",
    "load_experiments",
    "load_runs",
    "new_run_id",
    "now_ms",
    "short",
    "view_clause",
]

# Ids per IN (...) list: well under SQLite's 32,766 and PostgreSQL's 65,535 bind parameters.
IN_CHUNK = 5_000
NAN = float("nan")

#: Column order of the metric tuples built on the hot path.
METRIC_COLUMNS = ("run_id", "key", "value", "is_nan", "step", "timestamp")
#: Sort key of those tuples: (step, timestamp).
STEP_THEN_TIME = operator.itemgetter(4, 5)


def now_ms() -> int:
    """The current time in integer milliseconds since the epoch (UTC)."""
    return time.time_ns() // 1_000_000


def short(value: str, limit: int = 80) -> str:
    """``value`` cut to ``limit`` characters for an error message."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """``items`` in slices small enough for one IN (...) list."""
    for i in range(0, len(items), IN_CHUNK):
        yield items[i : i + IN_CHUNK]


#: What the name of a dataset, registered model or schedule is made of: it appears in
#: references (``name@v3``, ``models:/name@alias``) and in paths.
OBJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_object_name(kind: str, name: object, example: str) -> str:
    """Return ``name`` if it matches :data:`OBJECT_NAME`; raise InvalidName naming ``kind``."""
    if not isinstance(name, str) or not OBJECT_NAME.fullmatch(name):
        raise InvalidName(
            f"{kind} name {short(str(name))!r} is invalid: use 1-128 letters, digits, '.', '_' "
            f"or '-', starting with a letter or digit (e.g. {example})"
        )
    return name


def check_key(kind: str, key: str, limit: int = s.KEY_LEN) -> None:
    """Raise InvalidName unless ``key`` is a non-empty string of at most ``limit`` characters
    (checked here so that SQLite, which ignores VARCHAR lengths, behaves like PostgreSQL)."""
    if not isinstance(key, str) or not key or len(key) > limit:
        raise InvalidName(
            f"{kind} {short(str(key))!r} is invalid: it must be a non-empty string of at most "
            f"{limit} characters"
        )


def view_clause(column: Any, view: ViewType) -> ColumnElement[bool] | None:
    """The WHERE clause on a lifecycle column for a view (None for ALL)."""
    if view is ViewType.ALL:
        return None
    wanted = Lifecycle.ACTIVE if view is ViewType.ACTIVE else Lifecycle.DELETED
    clause: ColumnElement[bool] = column == wanted.value
    return clause


def run_on_cursor(conn: Connection, sql: str, params: Any, many: bool = False) -> list[Any]:
    """Run driver-level SQL on the connection's DBAPI cursor, inside its SQLAlchemy
    transaction; the rows it returns, if any. Driver errors become SQLAlchemy's classes."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, params)
            return []
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
    except dbapi_error as exc:
        raise sa_exc.DBAPIError.instance(
            sql, params, exc, dbapi_error, dialect=conn.dialect, ismulti=many
        ) from exc
    finally:
        cursor.close()


class Prepared:
    """A Core statement compiled once for an engine's dialect, run with plain tuples.

    The hot path hands rows straight to the driver's cursor, inside the caller's SQLAlchemy
    transaction: SQLAlchemy's per-call execution machinery (result proxies, events, parameter
    processing) costs more than the database's own work for these small statements. Driver
    errors are re-raised as SQLAlchemy's exception classes, so callers translate them as usual.
    Only for columns whose values the drivers take as they are (str, int, float, bool, None).
    """

    def __init__(self, engine: Engine, statement: Any, columns: Sequence[str]) -> None:
        compiled = statement.compile(dialect=engine.dialect, column_keys=list(columns))
        self.sql: str = compiled.string
        self.columns = tuple(columns)
        self.named = not compiled.positional
        self.order: list[int] | None = None
        if compiled.positional:
            order = [self.columns.index(name) for name in compiled.positiontup or ()]
            if order != list(range(len(self.columns))):
                self.order = order

    def _params(self, row: tuple[Any, ...]) -> Any:
        if self.named:
            return dict(zip(self.columns, row, strict=True))
        if self.order is not None:
            return tuple(row[i] for i in self.order)
        return row

    def execute(self, conn: Connection, row: tuple[Any, ...]) -> list[Any]:
        """Run the statement once with one row of parameters; the rows it returns, if any."""
        return run_on_cursor(conn, self.sql, self._params(row))

    def first(self, conn: Connection, row: tuple[Any, ...]) -> Any | None:
        """Run a query; its first row, or None."""
        rows = self.execute(conn, row)
        return rows[0] if rows else None

    def executemany(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Run the statement once per row, in one executemany call."""
        params: Any = rows if not self.named and self.order is None else map(self._params, rows)
        run_on_cursor(conn, self.sql, list(params), many=True)


def load_experiments(conn: Connection, where: Any) -> list[Experiment]:
    """Experiments matching ``where`` (None: all), ordered by id, with their tags."""
    e, t = s.experiments, s.experiment_tags
    query = select(e.c.id, e.c.name, e.c.lifecycle, e.c.created_at, e.c.updated_at)
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query.order_by(e.c.id)).all()
    tags: dict[int, dict[str, str]] = {r[0]: {} for r in rows}
    if rows:
        tag_query = select(t.c.experiment_id, t.c.key, t.c.value)
        if where is not None:
            tag_query = tag_query.where(t.c.experiment_id.in_(list(tags)))
        for eid, key, value in conn.execute(tag_query):
            if eid in tags:
                tags[eid][key] = value
    return [Experiment(r[0], r[1], Lifecycle(r[2]), r[3], r[4], tags[r[0]]) for r in rows]


_RUN_COLUMNS = tuple(
    s.runs.c[name]
    for name in (
        "id",
        "experiment_id",
        "name",
        "status",
        "lifecycle",
        "user",
        "start_time",
        "end_time",
        "parent_id",
        "heartbeat_at",
        "host",
        "pid",
    )
)


# The driver's positional placeholder, by DBAPI paramstyle (psycopg takes %s for pyformat).
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


class ByRunIds:
    """A SELECT filtered by ``<id column> IN (…)``: compiled once per dialect, the IN list
    added per call with the driver's placeholders, run on the driver's cursor."""

    def __init__(self, columns: Sequence[Any], id_column: Any) -> None:
        self._select = select(*columns)
        self._id_column = id_column
        self._prefix: dict[str, str] = {}

    def rows(self, conn: Connection, ids: Sequence[str]) -> list[Any]:
        """The rows whose id is in ``ids`` (at most IN_CHUNK of them)."""
        dialect = conn.dialect
        mark = _PLACEHOLDERS.get(dialect.paramstyle)
        if mark is None:  # a driver we have not met: let SQLAlchemy bind the list
            return list(conn.execute(self._select.where(self._id_column.in_(ids))))
        prefix = self._prefix.get(dialect.name)
        if prefix is None:
            where = self._id_column.compile(dialect=dialect)
            prefix = self._prefix[dialect.name] = (
                f"{self._select.compile(dialect=dialect)} WHERE {where}"
            )
        return run_on_cursor(conn, f"{prefix} IN ({', '.join([mark] * len(ids))})", tuple(ids))


_RUNS = ByRunIds(_RUN_COLUMNS, s.runs.c.id)
_PARAMS = ByRunIds((s.params.c.run_id, s.params.c.key, s.params.c.value), s.params.c.run_id)
_TAGS = ByRunIds((s.tags.c.run_id, s.tags.c.key, s.tags.c.value), s.tags.c.run_id)
_LATEST = ByRunIds(
    (
        s.latest_metrics.c.run_id,
        s.latest_metrics.c.key,
        s.latest_metrics.c.value,
        s.latest_metrics.c.is_nan,
    ),
    s.latest_metrics.c.run_id,
)


def load_runs(conn: Connection, run_ids: Sequence[str]) -> dict[str, Run]:
    """Bulk-load runs by id: one query per table (runs, params, tags, latest metrics)."""
    found: dict[str, Run] = {}
    for chunk in chunks(list(dict.fromkeys(run_ids))):
        rows = _RUNS.rows(conn, chunk)
        if not rows:
            continue
        ids = [r[0] for r in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        for loader, target in ((_PARAMS, params), (_TAGS, tags)):
            for rid, key, value in loader.rows(conn, ids):
                target[rid][key] = value
        for rid, key, value, nan in _LATEST.rows(conn, ids):
            metrics[rid][key] = NAN if nan else value
        for r in rows:
            rid = r[0]
            found[rid] = Run(
                rid, r[1], r[2], RunStatus(r[3]), Lifecycle(r[4]), r[5], r[6], r[7], r[8],
                r[9], r[10], r[11], params[rid], metrics[rid], tags[rid],
            )  # fmt: skip
    return found


class Statements:
    """The statements of the run lifecycle and the audit append, compiled once per engine.

    Starting and ending a run is on the hot path of every training loop; compiling once and
    handing tuples to the driver keeps SQLAlchemy's per-call overhead out of it.
    """

    def __init__(self, engine: Engine, dialect_insert: Callable[..., Any]) -> None:
        e, r, h = s.experiments, s.runs, s.audit_head
        self.experiment_state = Prepared(
            engine,
            select(e.c.name, e.c.lifecycle).where(e.c.id == bindparam("experiment_id")),
            ["experiment_id"],
        )
        self.run_state = Prepared(
            engine,
            select(r.c.status, r.c.lifecycle, r.c.end_time).where(r.c.id == bindparam("run_id")),
            ["run_id"],
        )
        self.run_insert = Prepared(engine, r.insert(), RUN_INSERT_COLUMNS)
        self.tag_insert = Prepared(engine, s.tags.insert(), ["run_id", "key", "value"])
        self.artifact_insert = Prepared(engine, s.artifacts.insert(), ARTIFACT_COLUMNS)
        self.status_update = Prepared(
            engine,
            update(r)
            .where(r.c.id == bindparam("the_run"))
            .values(status=bindparam("new_status"), end_time=bindparam("new_end")),
            ["new_status", "new_end", "the_run"],
        )
        self.head = Prepared(
            engine,
            select(h.c.seq, h.c.hash).where(h.c.id == bindparam("head_id")).with_for_update(),
            ["head_id"],
        )
        self.head_seed = Prepared(
            engine,
            dialect_insert(h).on_conflict_do_nothing(index_elements=[h.c.id]),
            ["id", "seq", "hash"],
        )
        self.event_insert = Prepared(engine, s.audit_events.insert(), AUDIT_COLUMNS)
        self.head_update = Prepared(
            engine,
            update(h)
            .where(h.c.id == bindparam("head_id"))
            .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")),
            ["new_seq", "new_hash", "head_id"],
        )


RUN_INSERT_COLUMNS = (
    "id", "experiment_id", "name", "status", "lifecycle", "user", "start_time", "end_time",
    "parent_id", "heartbeat_at", "host", "pid", "pid_started_at",
)  # fmt: skip
ARTIFACT_COLUMNS = ("owner_kind", "owner_id", "path", "digest", "size", "created_at")
AUDIT_COLUMNS = (
    "seq", "ts", "actor", "action", "object_type", "object_id", "before", "after", "prev_hash",
    "hash",
)  # fmt: skip


def append_event(
    conn: Connection,
    statements: Statements,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEvent:
    """Chain one audit event to the head, inside the caller's transaction.

    The head row is locked (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already
    serialises writers), so concurrent appends form one chain.
    """
    head = statements.head.first(conn, (1,))
    if head is None:
        statements.head_seed.execute(conn, (1, 0, audit.GENESIS_HASH))
        head = statements.head.first(conn, (1,))
        assert head is not None
    prev_hash = str(head[1])
    seq, ts = int(head[0]) + 1, now_ms()
    digest = audit.event_hash(
        prev_hash, seq, ts, actor, action, object_type, object_id, before, after
    )
    statements.event_insert.execute(
        conn,
        (
            seq, ts, actor, action, object_type, object_id,
            None if before is None else audit.canonical_json(before),
            None if after is None else audit.canonical_json(after),
            prev_hash, digest,
        ),
    )  # fmt: skip
    statements.head_update.execute(conn, (seq, digest, 1))
    return AuditEvent(
        seq, ts, actor, action, object_type, object_id, before, after, prev_hash, digest
    )


def audit_events(rows: Iterable[Any]) -> Iterator[AuditEvent]:
    """AuditEvent records from rows of the audit_events table."""
    for row in rows:
        yield AuditEvent(
            seq=row.seq,
            ts=row.ts,
            actor=row.actor,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            before=None if row.before is None else json.loads(row.before),
            after=None if row.after is None else json.loads(row.after),
            prev_hash=row.prev_hash,
            hash=row.hash,
        )


def artifact_rows(
    owner_kind: str, owner_id: str, entries: Sequence[tuple[str, str, int]]
) -> list[tuple[str, str, str, str, int, int]]:
    """Checked rows for the artifacts table. Raises InvalidInput (too long), Conflict (a path given
    twice with different digests)."""
    wanted: dict[str, tuple[str, int]] = {}
    for path, digest, size in entries:
        if len(path) > s.PATH_LEN or len(digest) > s.DIGEST_LEN:
            raise InvalidInput(
                f"artifact path {short(path)!r} or digest is too long (limits: "
                f"{s.PATH_LEN} and {s.DIGEST_LEN} characters)"
            )
        prior = wanted.setdefault(path, (digest, size))
        if prior[0] != digest:
            raise Conflict(
                f"artifact path {path!r} of {owner_kind} {owner_id} is given twice with "
                f"different contents ({prior[0][:12]}… and {digest[:12]}…)"
            )
    now = now_ms()
    return [(owner_kind, owner_id, p, d, n, now) for p, (d, n) in wanted.items()]


#: What a run id (or a fragment of one) is made of.
HEX = re.compile("[0-9a-f]+")


def new_run_id() -> str:
    """A new run id: 32 hex digits, the creation time in milliseconds then 80 random bits.

    Time-ordered ids keep inserts at the right edge of every index keyed by run id (fewer
    pages written per commit, on SQLite and PostgreSQL alike) and sort runs by creation; 80
    random bits keep ids created in the same millisecond apart.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"
