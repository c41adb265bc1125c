"""The SQL metadata store: every query written once, in SQLAlchemy Core, over ``schema.py``.

Backends (``sqlite.SQLiteStore``, ``postgres.PostgresStore``) only build the engine and name
their dialect's INSERT construct (for ON CONFLICT). Reads run on connections marked "read" and
writes on connections marked "write", so SQLite can start write transactions with
``BEGIN IMMEDIATE``. Every state change writes its audit event in the transaction of the change.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import delete, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select
from sqlalchemy.sql.schema import Table

from mloop import audit
from mloop.config import Settings, load_settings
from mloop.errors import (
    AlreadyExists,
    BackendError,
    Conflict,
    InvalidInput,
    InvalidName,
    InvalidState,
    MloopError,
    NotFound,
    PayloadTooLarge,
)
from mloop.store import migrate as migrations
from mloop.store import queries as q
from mloop.store import schema as s
from mloop.store.base import (
    ArtifactEntry,
    AuditEvent,
    Experiment,
    Lifecycle,
    MetadataStore,
    Metric,
    MetricRow,
    Page,
    Run,
    RunEnd,
    RunLiveness,
    RunStatus,
    TagRow,
    ViewType,
)
from mloop.store.batch import BatchStatements
from mloop.store.datasets import DatasetTables
from mloop.store.deployments import DeploymentTables
from mloop.store.loop import LoopTables
from mloop.store.monitoring import MonitorTables
from mloop.store.pipelines import PipelineTables
from mloop.store.registry import RegistryTables

__all__ = ["MAX_SEARCH_RESULTS", "SqlStore"]

MAX_SEARCH_RESULTS = 50_000


class SqlStore(
    DatasetTables,
    RegistryTables,
    PipelineTables,
    DeploymentTables,
    MonitorTables,
    LoopTables,
    MetadataStore,
):
    """The metadata store over any SQLAlchemy engine whose dialect has INSERT … ON CONFLICT."""

    #: The dialect's ``insert`` construct (sqlite.insert or postgresql.insert).
    dialect_insert: ClassVar[Callable[..., Any]]

    def __init__(
        self, uri: str, engine: Engine, *, settings: Settings | None = None, migrate: bool = True
    ) -> None:
        self.uri = uri
        self.engine = engine
        self.settings = settings or load_settings()
        self._reader = engine.execution_options(**{migrations.TXN_OPTION: "read"})
        self._writer = engine.execution_options(**{migrations.TXN_OPTION: "write"})
        self._batch = BatchStatements(engine, type(self).dialect_insert)
        self._stmts = q.Statements(engine, type(self).dialect_insert)
        _stores.add(self)
        if migrate:
            try:
                self.upgrade()
            except BaseException:
                engine.dispose()  # the store is not returned: do not leak its connections
                raise

    # -- plumbing ---------------------------------------------------------------------------
    def upgrade(self) -> None:
        """Bring the schema to the head revision (done on open unless ``migrate=False``)."""
        migrations.upgrade(self.engine)

    def _describe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _backend_error(self, exc: sa_exc.SQLAlchemyError) -> MloopError:
        orig = getattr(exc, "orig", None)
        reason = str(orig if orig is not None else exc).strip().splitlines()[0]
        if "database is locked" in reason:
            return BackendError(
                f"the SQLite database {self._describe()} stayed locked by another writer for "
                f"more than {self.settings.sqlite_busy_timeout:g}s; raise "
                "MLOOP_SQLITE_BUSY_TIMEOUT or use PostgreSQL for many concurrent writers"
            )
        if getattr(orig, "sqlstate", None) == "54000":  # program_limit_exceeded
            return PayloadTooLarge(f"a value is too large for the database: {reason}")
        if isinstance(exc, sa_exc.IntegrityError):
            return Conflict(f"the change clashes with stored records: {reason}")
        if isinstance(exc, sa_exc.DataError):
            return InvalidInput(f"a value was rejected by the database: {reason}")
        return BackendError(f"the metadata database {self._describe()} failed: {reason}")

    @contextmanager
    def _translated(self, duplicate: str = "") -> Iterator[None]:
        try:
            yield
        except MloopError:
            raise
        except sa_exc.IntegrityError as exc:
            if duplicate:  # a concurrent writer took the name between our check and insert
                raise AlreadyExists(duplicate) from None
            raise self._backend_error(exc) from exc
        except sa_exc.SQLAlchemyError as exc:
            raise self._backend_error(exc) from exc

    @contextmanager
    def _write(self, duplicate: str = "") -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite), committed on success; a unique
        violation becomes AlreadyExists(duplicate) when ``duplicate`` is given."""
        with self._translated(duplicate), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction (a consistent snapshot), rolled back at the end."""
        with self._translated(), self._reader.connect() as conn:
            yield conn

    def _insert(self, table: Table) -> Any:
        return type(self).dialect_insert(table)

    def _audit(  # noqa: PLR0917
        self,
        conn: Connection,
        actor: str,
        action: str,
        object_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> AuditEvent:
        """Append the audit event of a change; the object type is the action's prefix."""
        return q.append_event(
            conn, self._stmts, actor=actor, action=action,
            object_type=action.partition(".")[0], object_id=object_id, before=before, after=after,
        )  # fmt: skip

    # -- experiments ------------------------------------------------------------------------
    def _experiment(self, conn: Connection, experiment_id: int) -> Experiment:
        found = q.load_experiments(conn, s.experiments.c.id == experiment_id)
        if not found:
            raise NotFound(f"no experiment with id {experiment_id}")
        return found[0]

    def _check_name_free(self, conn: Connection, name: str) -> None:
        e = s.experiments
        taken = conn.execute(select(e.c.id, e.c.lifecycle).where(e.c.name == name)).first()
        if taken is not None:
            hint = (
                " (it is deleted: restore it, or pick another name)"
                if (taken[1] == Lifecycle.DELETED)
                else ""
            )
            raise AlreadyExists(f"an experiment named {name!r} already exists{hint}", id=taken[0])

    def create_experiment(
        self, name: str, *, actor: str, tags: dict[str, str] | None = None
    ) -> Experiment:
        """Create an experiment. Raises AlreadyExists if the name is taken (even if deleted)."""
        q.check_key("experiment name", name, s.NAME_LEN)
        tags = dict(tags or {})
        for key in tags:
            q.check_key("experiment tag key", key)
        with self._write(duplicate=f"an experiment named {name!r} already exists") as conn:
            self._check_name_free(conn, name)
            now = q.now_ms()
            e = s.experiments
            experiment_id = conn.execute(
                e.insert()
                .values(name=name, lifecycle=Lifecycle.ACTIVE.value, created_at=now, updated_at=now)
                .returning(e.c.id)
            ).scalar_one()
            if tags:
                conn.execute(
                    s.experiment_tags.insert(),
                    [
                        {"experiment_id": experiment_id, "key": k, "value": v}
                        for k, v in tags.items()
                    ],
                )
            self._audit(
                conn,
                actor,
                "experiment.created",
                str(experiment_id),
                None,
                {"name": name, "tags": tags},
            )
            return Experiment(experiment_id, name, Lifecycle.ACTIVE, now, now, tags)

    def get_experiment(self, experiment_id: int) -> Experiment:
        """Return an experiment by id. Raises NotFound."""
        with self._read() as conn:
            return self._experiment(conn, experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        with self._read() as conn:
            found = q.load_experiments(conn, s.experiments.c.name == name)
        return found[0] if found else None

    def list_experiments(self, view: ViewType = ViewType.ACTIVE) -> list[Experiment]:
        """Return experiments in the given view, ordered by id."""
        with self._read() as conn:
            return q.load_experiments(conn, q.view_clause(s.experiments.c.lifecycle, view))

    def rename_experiment(self, experiment_id: int, new_name: str, *, actor: str) -> Experiment:
        """Rename an experiment. Raises NotFound, AlreadyExists."""
        q.check_key("experiment name", new_name, s.NAME_LEN)
        with self._write(duplicate=f"an experiment named {new_name!r} already exists") as conn:
            old = self._experiment(conn, experiment_id)
            if old.name == new_name:
                return old
            self._check_name_free(conn, new_name)
            e = s.experiments
            conn.execute(
                update(e)
                .where(e.c.id == experiment_id)
                .values(name=new_name, updated_at=q.now_ms())
            )
            self._audit(
                conn,
                actor,
                "experiment.renamed",
                str(experiment_id),
                {"name": old.name},
                {"name": new_name},
            )
            return self._experiment(conn, experiment_id)

    def set_experiment_lifecycle(
        self, experiment_id: int, lifecycle: Lifecycle, *, actor: str
    ) -> Experiment:
        """Soft-delete or restore an experiment (its runs follow). Raises NotFound."""
        lifecycle = Lifecycle(lifecycle)
        with self._write() as conn:
            old = self._experiment(conn, experiment_id)
            if old.lifecycle is lifecycle:
                return old
            e, r = s.experiments, s.runs
            conn.execute(
                update(e)
                .where(e.c.id == experiment_id)
                .values(lifecycle=lifecycle.value, updated_at=q.now_ms())
            )
            conn.execute(
                update(r)
                .where(r.c.experiment_id == experiment_id)
                .values(lifecycle=lifecycle.value)
            )
            action = "deleted" if lifecycle is Lifecycle.DELETED else "restored"
            self._audit(
                conn,
                actor,
                f"experiment.{action}",
                str(experiment_id),
                {"lifecycle": old.lifecycle.value},
                {"lifecycle": lifecycle.value},
            )
            return self._experiment(conn, experiment_id)

    def set_experiment_tags(self, experiment_id: int, tags: dict[str, str], *, actor: str) -> None:
        """Set (upsert) experiment tags. Raises NotFound."""
        for key in tags:
            q.check_key("experiment tag key", key)
        with self._write() as conn:
            old = self._experiment(conn, experiment_id)
            changed = {k: v for k, v in tags.items() if old.tags.get(k) != v}
            if not changed:
                return
            t = s.experiment_tags
            ins = self._insert(t)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=[t.c.experiment_id, t.c.key],
                    set_={"value": ins.excluded.value},
                ),
                [
                    {"experiment_id": experiment_id, "key": k, "value": v}
                    for k, v in changed.items()
                ],
            )
            e = s.experiments
            conn.execute(update(e).where(e.c.id == experiment_id).values(updated_at=q.now_ms()))
            self._audit(
                conn,
                actor,
                "experiment.tags_set",
                str(experiment_id),
                {k: old.tags.get(k) for k in changed},
                changed,
            )

    # -- runs -------------------------------------------------------------------------------
    def _run(self, conn: Connection, run_id: str) -> Run:
        found = q.load_runs(conn, [run_id])
        if run_id not in found:
            raise NotFound(f"no run with id {run_id!r}")
        return found[run_id]

    def _run_state(self, conn: Connection, run_id: str) -> Any:
        row = self._stmts.run_state.first(conn, (run_id,))
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        return row

    def create_run(
        self,
        *,
        experiment_id: int,
        name: str,
        user: str,
        start_time: int,
        parent_id: str | None,
        host: str,
        pid: int,
        pid_started_at: int,
        tags: dict[str, str] | None,
        actor: str,
        run_id: str | None = None,
        artifacts: Sequence[tuple[str, str, int]] = (),
    ) -> Run:
        """Create a RUNNING run, with its tags and artifact references, in one transaction.
        Raises NotFound (experiment or parent), InvalidState (deleted experiment),
        AlreadyExists (run_id given and taken), Conflict (one path given twice)."""
        if len(name) > s.NAME_LEN:
            raise InvalidName(f"run name {q.short(name)!r} is longer than {s.NAME_LEN} characters")
        if run_id is not None and (not run_id or len(run_id) > s.RUN_ID_LEN):
            raise InvalidInput(f"run id {q.short(run_id)!r} must be 1 to {s.RUN_ID_LEN} characters")
        tags = dict(tags or {})
        for key in tags:
            q.check_key("tag key", key)
        new_id = run_id or q.new_run_id()
        refs = q.artifact_rows("run", new_id, artifacts)
        st = self._stmts
        with self._write(duplicate=f"a run with id {new_id!r} already exists") as conn:
            experiment = st.experiment_state.first(conn, (experiment_id,))
            if experiment is None:
                raise NotFound(f"no experiment with id {experiment_id}")
            if experiment[1] == Lifecycle.DELETED:
                raise InvalidState(
                    f"experiment {experiment[0]!r} (id {experiment_id}) is deleted; "
                    "restore it before creating runs in it"
                )
            if parent_id is not None:
                self._run_state(conn, parent_id)
            st.run_insert.execute(
                conn,
                (
                    new_id, experiment_id, name, RunStatus.RUNNING.value, Lifecycle.ACTIVE.value,
                    user, start_time, None, parent_id, start_time, host, pid, pid_started_at,
                ),
            )  # fmt: skip
            if tags:
                st.tag_insert.executemany(conn, [(new_id, k, v) for k, v in tags.items()])
            if refs:
                st.artifact_insert.executemany(conn, refs)
            self._audit(
                conn,
                actor,
                "run.created",
                new_id,
                None,
                {
                    "experiment_id": experiment_id,
                    "name": name,
                    "status": RunStatus.RUNNING.value,
                    "parent_id": parent_id,
                },
            )
        return Run(
            new_id, experiment_id, name, RunStatus.RUNNING, Lifecycle.ACTIVE, user, start_time,
            None, parent_id, start_time, host, pid, {}, {}, tags,
        )  # fmt: skip

    def get_run(self, run_id: str) -> Run:
        """Return a run with params, tags and latest metrics. Raises NotFound."""
        with self._read() as conn:
            return self._run(conn, run_id)

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Return the runs that exist among ``run_ids``, in the order given."""
        if not run_ids:
            return []
        with self._read() as conn:
            found = q.load_runs(conn, run_ids)
        return [found[i] for i in run_ids if i in found]

    def find_run_ids(self, fragment: str, limit: int = 2) -> list[str]:
        """Ids of runs (any lifecycle) that start or end with ``fragment``, at most ``limit``.
        Raises InvalidInput unless the fragment is hexadecimal."""
        if not fragment or len(fragment) > s.RUN_ID_LEN or not q.HEX.fullmatch(fragment):
            raise InvalidInput(f"{q.short(fragment)!r} is not part of a run id (hex digits)")
        r = s.runs
        query = (
            select(r.c.id)
            .where(or_(r.c.id.startswith(fragment), r.c.id.endswith(fragment)))
            .order_by(r.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    def set_run_status(
        self, run_id: str, status: RunStatus, *, end_time: int | None, actor: str
    ) -> None:
        """Move a run to a status. Moving a terminal run to another status raises InvalidState;
        setting the status it already has is a no-op. Raises NotFound."""
        with self._write() as conn:
            self._set_status(conn, run_id, RunStatus(status), end_time, actor)

    def _set_status(
        self, conn: Connection, run_id: str, status: RunStatus, end_time: int | None, actor: str
    ) -> None:
        state = self._run_state(conn, run_id)
        old = RunStatus(state[0])
        if old is status:
            return
        if old.is_terminal:
            raise InvalidState(
                f"run {run_id} is already {old.value}; a finished run cannot become "
                f"{status.value} — start a new run instead"
            )
        if status.is_terminal and end_time is None:
            end_time = q.now_ms()
        self._stmts.status_update.execute(conn, (status.value, end_time, run_id))
        self._audit(
            conn,
            actor,
            "run.status_changed",
            run_id,
            {"status": old.value, "end_time": state[2]},
            {"status": status.value, "end_time": end_time},
        )

    def set_run_lifecycle(self, run_id: str, lifecycle: Lifecycle, *, actor: str) -> Run:
        """Soft-delete or restore a run. Raises NotFound."""
        lifecycle = Lifecycle(lifecycle)
        with self._write() as conn:
            old = Lifecycle(self._run_state(conn, run_id)[1])
            if old is not lifecycle:
                r = s.runs
                conn.execute(update(r).where(r.c.id == run_id).values(lifecycle=lifecycle.value))
                action = "deleted" if lifecycle is Lifecycle.DELETED else "restored"
                self._audit(
                    conn,
                    actor,
                    f"run.{action}",
                    run_id,
                    {"lifecycle": old.value},
                    {"lifecycle": lifecycle.value},
                )
            return self._run(conn, run_id)

    def heartbeat(self, run_ids: Sequence[str], now: int) -> None:
        """Record that the processes behind these RUNNING runs are alive."""
        if not run_ids:
            return
        r = s.runs
        with self._write() as conn:
            for chunk in q.chunks(list(run_ids)):
                conn.execute(
                    update(r)
                    .where(r.c.id.in_(chunk), r.c.status == RunStatus.RUNNING.value)
                    .values(heartbeat_at=now)
                )

    def list_running(self) -> list[RunLiveness]:
        """Every RUNNING run with what is needed to decide whether its process is alive."""
        r = s.runs
        with self._read() as conn:
            rows = conn.execute(
                select(r.c.id, r.c.host, r.c.pid, r.c.pid_started_at, r.c.heartbeat_at)
                .where(r.c.status == RunStatus.RUNNING.value)
                .order_by(r.c.start_time, r.c.id)
            ).all()
        return [RunLiveness(*row) for row in rows]

    # -- the hot path -----------------------------------------------------------------------
    def write_batch(
        self,
        *,
        metrics: Sequence[MetricRow] = (),
        params: Sequence[TagRow] = (),
        tags: Sequence[TagRow] = (),
        end: RunEnd | None = None,
    ) -> None:
        """Write metric points, params and tags for any runs in one transaction: all or none.
        With ``end``, that run also moves to its final status in the same transaction.
        Raises NotFound (a run), InvalidState (a deleted run, or ``end`` on a run already in
        another final status), ParamConflict (a param already logged with another value)."""
        if not (metrics or params or tags or end):
            return
        batch = self._batch.prepare(metrics, params, tags)
        wanted = self._artifact_refs("run", end.run_id, end.artifacts) if end else {}
        with self._write() as conn:
            self._batch.write(conn, batch)
            if end is not None:
                if wanted:
                    self._insert_artifacts(conn, "run", end.run_id, wanted)
                self._set_status(conn, end.run_id, end.status, end.end_time, end.actor)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """All points of one metric of a run, ordered by step then timestamp. Raises NotFound."""
        m = s.metrics
        with self._read() as conn:
            self._run_state(conn, run_id)
            rows = conn.execute(
                select(m.c.value, m.c.is_nan, m.c.step, m.c.timestamp)
                .where(m.c.run_id == run_id, m.c.key == key)
                .order_by(m.c.step, m.c.timestamp, m.c.id)
            ).all()
        return [Metric(key, q.NAN if nan else value, step, ts) for value, nan, step, ts in rows]

    # -- search -----------------------------------------------------------------------------
    def search_runs(
        self,
        *,
        experiment_ids: Sequence[int] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE,
    ) -> Page[Run]:
        """Runs matching an MLflow-style filter (with OR and parentheses), ordered and paged.
        Raises SearchSyntaxError, InvalidPageToken, InvalidInput (max_results out of range)."""
        from mloop.store import search

        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not (1 <= max_results <= MAX_SEARCH_RESULTS)
        ):
            raise InvalidInput(
                f"max_results must be an integer from 1 to {MAX_SEARCH_RESULTS}, "
                f"got {max_results!r}"
            )
        view = ViewType(view)
        fingerprint = search.query_fingerprint(experiment_ids, filter_string, order_by, view)
        offset = search.decode_page_token(page_token, fingerprint) if page_token else 0
        query: Select[Any] = search.build_search_select(
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
            view=view,
            offset=offset,
            limit=max_results + 1,
        )
        with self._read() as conn:
            ids = [row[0] for row in conn.execute(query)]
            more = len(ids) > max_results
            ids = ids[:max_results]
            found = q.load_runs(conn, ids)
        token = search.encode_page_token(offset + max_results, fingerprint) if more else None
        return Page([found[i] for i in ids if i in found], token)

    def purge_runs(self, run_ids: Sequence[str], *, actor: str) -> int:
        """Delete deleted runs for good, with their params, metrics, tags and artifact
        references. Raises InvalidState if one is not deleted. Returns how many were purged."""
        if not run_ids:
            return 0
        r = s.runs
        with self._write() as conn:
            rows: list[Any] = []
            for chunk in q.chunks(sorted(set(run_ids))):
                rows.extend(
                    conn.execute(
                        select(
                            r.c.id, r.c.lifecycle, r.c.experiment_id, r.c.name, r.c.status
                        ).where(r.c.id.in_(chunk))
                    ).all()
                )
            active = [row[0] for row in rows if row[1] != Lifecycle.DELETED]
            if active:
                raise InvalidState(
                    f"run {active[0]} is not deleted; delete it first (only deleted runs can be "
                    "purged)",
                    run_ids=active[:20],
                )
            ids = [row[0] for row in rows]
            for chunk in q.chunks(ids):
                # Children of a purged run lose their parent link, not their own records.
                conn.execute(update(r).where(r.c.parent_id.in_(chunk)).values(parent_id=None))
                for table in (
                    s.metrics,
                    s.latest_metrics,
                    s.params,
                    s.tags,
                    s.run_inputs,
                    s.validation_results,
                    s.step_cache,
                ):
                    conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
                # Dataset and model versions a purged run produced stay, without the link.
                for made in (s.dataset_versions, s.model_versions):
                    conn.execute(update(made).where(made.c.run_id.in_(chunk)).values(run_id=None))
                a = s.artifacts
                conn.execute(delete(a).where(a.c.owner_kind == "run", a.c.owner_id.in_(chunk)))
                conn.execute(delete(r).where(r.c.id.in_(chunk)))
            for row in rows:
                self._audit(
                    conn,
                    actor,
                    "run.purged",
                    row[0],
                    {
                        "experiment_id": row[2],
                        "name": row[3],
                        "status": row[4],
                        "lifecycle": row[1],
                    },
                    None,
                )
            return len(rows)

    # -- artifact references ----------------------------------------------------------------
    def add_artifacts(
        self, owner_kind: str, owner_id: str, entries: Sequence[tuple[str, str, int]]
    ) -> None:
        """Record (path, digest, size) references. Re-adding a path with the same digest is a
        no-op; with another digest raises Conflict (recorded paths are immutable)."""
        if not entries:
            return
        wanted = self._artifact_refs(owner_kind, owner_id, entries)
        with self._write() as conn:
            self._insert_artifacts(conn, owner_kind, owner_id, wanted)

    @staticmethod
    def _artifact_refs(
        owner_kind: str, owner_id: str, entries: Sequence[tuple[str, str, int]]
    ) -> dict[str, tuple[str, int]]:
        """Checked references, path -> (digest, size). Raises InvalidInput, Conflict."""
        if not entries:
            return {}
        rows = q.artifact_rows(owner_kind, owner_id, entries)
        return {row[2]: (row[3], row[4]) for row in rows}

    def _insert_artifacts(
        self,
        conn: Connection,
        owner_kind: str,
        owner_id: str,
        wanted: Mapping[str, tuple[str, int]],
    ) -> None:
        """Insert references in ``conn``'s transaction; raise Conflict if a recorded path
        holds another digest."""
        a = s.artifacts
        now = q.now_ms()
        conn.execute(
            self._insert(a).on_conflict_do_nothing(
                index_elements=[a.c.owner_kind, a.c.owner_id, a.c.path]
            ),
            [
                {
                    "owner_kind": owner_kind,
                    "owner_id": owner_id,
                    "path": p,
                    "digest": d,
                    "size": n,
                    "created_at": now,
                }
                for p, (d, n) in wanted.items()
            ],
        )
        for chunk in q.chunks(list(wanted)):
            for path, stored in conn.execute(
                select(a.c.path, a.c.digest).where(
                    a.c.owner_kind == owner_kind,
                    a.c.owner_id == owner_id,
                    a.c.path.in_(chunk),
                )
            ):
                if stored != wanted[path][0]:
                    raise Conflict(
                        f"artifact {path!r} of {owner_kind} {owner_id} is already recorded "
                        f"with digest {stored[:12]}…, not {wanted[path][0][:12]}…; recorded "
                        "artifacts are immutable — log it under another path"
                    )

    def list_artifacts(
        self, owner_kind: str, owner_id: str, prefix: str = ""
    ) -> list[ArtifactEntry]:
        """References of an owner whose path starts with ``prefix``, ordered by path."""
        a = s.artifacts
        query = select(a.c.path, a.c.digest, a.c.size, a.c.created_at).where(
            a.c.owner_kind == owner_kind, a.c.owner_id == owner_id
        )
        if prefix:
            query = query.where(a.c.path.startswith(prefix, autoescape=True))
        with self._read() as conn:
            rows = conn.execute(query).all()
        # Sorted here, by code point, so both databases agree whatever their collation.
        return sorted((ArtifactEntry(*row) for row in rows), key=lambda e: e.path)

    def referenced_digests(self, among: Sequence[str] | None = None) -> set[str]:
        """The digests some record references (what garbage collection must keep): all of
        them, or those of ``among``."""
        a = s.artifacts
        query = select(a.c.digest).distinct()
        with self._read() as conn:
            if among is None:
                return set(conn.execute(query).scalars())
            found: set[str] = set()
            for chunk in q.chunks(list(dict.fromkeys(among))):
                found.update(conn.execute(query.where(a.c.digest.in_(chunk))).scalars())
            return found

    # -- audit ------------------------------------------------------------------------------
    def append_audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> AuditEvent:
        """Append one event (for changes not made through another store method)."""
        with self._write() as conn:
            return q.append_event(
                conn, self._stmts, actor=actor, action=action,
                object_type=object_type, object_id=object_id, before=before, after=after,
            )  # fmt: skip

    def iter_audit(self, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditEvent]:
        """Every audit event with seq > after_seq, in order, fetched in batches."""
        ev = s.audit_events
        cursor = after_seq
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    select(ev).where(ev.c.seq > cursor).order_by(ev.c.seq).limit(batch)
                ).all()
            yield from q.audit_events(rows)
            if len(rows) < batch:
                return
            cursor = rows[-1].seq

    def audit_head(self) -> tuple[int, str] | None:
        """The (seq, hash) the head row records, or None for an empty log."""
        h = s.audit_head
        with self._read() as conn:
            row = conn.execute(select(h.c.seq, h.c.hash).where(h.c.id == 1)).first()
        if row is None or (row[0] == 0 and row[1] == audit.GENESIS_HASH):
            return None
        return int(row[0]), str(row[1])

    # -- lifecycle --------------------------------------------------------------------------
    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None before the first migration)."""
        return migrations.current_revision(self.engine)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()!r})"


# A forked child must not use connections inherited from its parent (both would talk on one
# socket or file handle): drop them from the pool without closing them, which the parent
# still uses, so the child opens its own.
_stores: weakref.WeakSet[SqlStore] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for store in list(_stores):
        store.engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)
