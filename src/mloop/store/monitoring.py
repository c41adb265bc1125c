"""Monitors and their reports: the SQL half of :mod:`mloop.monitoring`.

A mixin of :class:`mloop.store.sql.SqlStore`. A monitor is created with its audit event and the
artifact reference that keeps its reference blob (owner kind ``monitor``) in one transaction.
Refreshing its reference (after the deployment's primary version changed) adds the new blob
under a new path, so every reference it ever had stays readable. A report and all its
per-feature results are written in one transaction too; a window already reported (unique
``(monitor_id, window_start_ms)``) is left as it is, so two runs racing on one window store
it once. Reports are derived data: they are not audited one by one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from mloop.errors import AlreadyExists, InvalidInput, NotFound
from mloop.store import queries as q
from mloop.store import schema as s
from mloop.store.datasets import dumps, loads
from mloop.store.part import StorePart
from mloop.store.records import Monitor, MonitorReport, MonitorResult

__all__ = [
    "OWNER_KIND",
    "REPORT_COLUMNS",
    "REPORT_STATUSES",
    "MonitorTables",
    "check_monitor_name",
    "finite",
    "report_record",
]

#: owner_kind of the artifact row that keeps a monitor's reference blob.
OWNER_KIND = "monitor"
#: What a report's status can be.
REPORT_STATUSES = ("ok", "alert", "no_data", "error")
#: Path of the reference blob among the monitor's artifacts.
REFERENCE_PATH = "reference.json"

_m, _r, _x = s.monitors, s.monitor_reports, s.monitor_results
_MONITOR_COLUMNS = (
    _m.c.id, _m.c.name, _m.c.deployment, _m.c.reference, _m.c.window, _m.c.config,
    _m.c.reference_digest, _m.c.created_at, _m.c.created_by,
)  # fmt: skip
REPORT_COLUMNS = (
    _r.c.id, _r.c.window_start_ms, _r.c.window_end_ms, _r.c.rows, _r.c.labelled_rows,
    _r.c.status, _r.c.alerts, _r.c.summary, _r.c.created_at,
)  # fmt: skip


def check_monitor_name(name: object) -> str:
    """Return ``name`` if it is a valid monitor name; raise InvalidName otherwise."""
    return q.check_object_name("monitor", name, "fraud-drift")


def _monitor(row: Any) -> Monitor:
    return Monitor(
        id=int(row[0]), name=row[1], deployment=row[2], reference=row[3], window=row[4],
        config=loads(row[5]) or {}, reference_digest=row[6], created_at=row[7],
        created_by=row[8],
    )  # fmt: skip


def report_record(monitor: str, row: Any, results: Sequence[MonitorResult] = ()) -> MonitorReport:
    """A report record from a row of ``REPORT_COLUMNS``."""
    return MonitorReport(
        id=int(row[0]), monitor=monitor, window_start_ms=int(row[1]), window_end_ms=int(row[2]),
        rows=int(row[3]), labelled_rows=int(row[4]), status=row[5], alerts=loads(row[6]) or [],
        summary=loads(row[7]) or {}, created_at=int(row[8]), results=tuple(results),
    )  # fmt: skip


def finite(value: float | None) -> float | None:
    """``value`` as a float, or None when it is None, NaN or infinite (what a result stores)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _no_monitor(name: str) -> NotFound:
    return NotFound(f"no monitor named {name!r} (see `mloop monitor list`)")


class MonitorTables(StorePart):
    """The monitor methods of the SQL store (mixed into ``SqlStore``)."""

    def _monitor_row(self, conn: Connection, name: str) -> Monitor:
        row = conn.execute(select(*_MONITOR_COLUMNS).where(_m.c.name == name)).first()
        if row is None:
            raise _no_monitor(name)
        return _monitor(row)

    # -- monitors ---------------------------------------------------------------------------
    def create_monitor(
        self,
        name: str,
        *,
        deployment: str,
        reference: str,
        reference_version_id: int,
        window: str,
        config: dict[str, Any],
        reference_digest: str,
        reference_size: int,
        actor: str,
    ) -> Monitor:
        """Create a monitor, keeping its reference blob as an artifact of the monitor."""
        check_monitor_name(name)
        taken = f"a monitor named {name!r} already exists (see `mloop monitor show {name}`)"
        with self._write(duplicate=taken) as conn:
            if conn.execute(select(_m.c.id).where(_m.c.name == name)).first() is not None:
                raise AlreadyExists(taken)
            version = conn.execute(
                select(s.dataset_versions.c.id).where(
                    s.dataset_versions.c.id == reference_version_id
                )
            ).scalar()
            if version is None:
                raise NotFound(f"the reference dataset version {reference!r} is not recorded")
            now = q.now_ms()
            monitor_id = conn.execute(
                _m.insert()
                .values(
                    name=name, deployment=deployment, reference=reference,
                    reference_version_id=reference_version_id, window=window,
                    config=dumps(config, "monitor configuration"),
                    reference_digest=reference_digest, created_at=now, created_by=actor,
                )
                .returning(_m.c.id)
            ).scalar_one()  # fmt: skip
            rows = q.artifact_rows(
                OWNER_KIND, str(monitor_id), [(REFERENCE_PATH, reference_digest, reference_size)]
            )
            self._stmts.artifact_insert.executemany(conn, rows)
            created = self._monitor_row(conn, name)
            self._audit(
                conn, actor, "monitor.created", name, None,
                {"deployment": deployment, "reference": reference, "window": window, **config},
            )  # fmt: skip
            return created

    def update_monitor_reference(
        self,
        name: str,
        *,
        expect_digest: str,
        config: dict[str, Any],
        event: str,
        detail: dict[str, Any],
        actor: str,
        reference: tuple[str, int, str, int] | None = None,
    ) -> Monitor | None:
        """Replace a monitor's config and, when ``reference`` (dataset ref, dataset version
        id, blob digest, blob size) is given, its reference, if its reference blob is still
        ``expect_digest``; audited as ``event``. None when another process changed it first."""
        with self._write() as conn:
            old = self._monitor_row(conn, name)
            if old.reference_digest != expect_digest:
                return None
            values: dict[str, Any] = {"config": dumps(config, "monitor configuration")}
            if reference is not None:
                ref, version_id, digest, size = reference
                values.update(reference=ref, reference_version_id=version_id,
                              reference_digest=digest)  # fmt: skip
            changed = conn.execute(
                update(_m)
                .where(_m.c.id == old.id, _m.c.reference_digest == expect_digest)
                .values(**values)
                .returning(_m.c.id)
            ).first()
            if changed is None:
                return None
            if reference is not None:
                a = s.artifacts
                held = conn.execute(
                    select(func.count())
                    .select_from(a)
                    .where(a.c.owner_kind == OWNER_KIND, a.c.owner_id == str(old.id))
                ).scalar_one()
                rows = q.artifact_rows(
                    OWNER_KIND, str(old.id), [(f"reference-{int(held) + 1}.json", digest, size)]
                )
                self._stmts.artifact_insert.executemany(conn, rows)
            self._audit(
                conn, actor, event, name,
                {"reference": old.reference, "model_version": old.config.get("model_version")},
                detail,
            )  # fmt: skip
            return self._monitor_row(conn, name)

    def get_monitor(self, name: str) -> Monitor:
        """A monitor by name."""
        with self._read() as conn:
            return self._monitor_row(conn, name)

    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        """Every monitor (of one deployment, when given), by name."""
        query = select(*_MONITOR_COLUMNS).order_by(_m.c.name)
        if deployment is not None:
            query = query.where(_m.c.deployment == deployment)
        with self._read() as conn:
            return [_monitor(r) for r in conn.execute(query).all()]

    def delete_monitor(self, name: str, *, actor: str) -> None:
        """Delete a monitor, its reports and results (its audit events stay)."""
        with self._write() as conn:
            found = self._monitor_row(conn, name)
            reports = select(_r.c.id).where(_r.c.monitor_id == found.id).scalar_subquery()
            conn.execute(delete(_x).where(_x.c.report_id.in_(reports)))
            conn.execute(delete(_r).where(_r.c.monitor_id == found.id))
            a = s.artifacts
            conn.execute(
                delete(a).where(a.c.owner_kind == OWNER_KIND, a.c.owner_id == str(found.id))
            )
            conn.execute(delete(_m).where(_m.c.id == found.id))
            self._audit(
                conn, actor, "monitor.deleted", name,
                {"deployment": found.deployment, "reference": found.reference,
                 "window": found.window}, None,
            )  # fmt: skip

    # -- reports ----------------------------------------------------------------------------
    def add_monitor_report(
        self,
        name: str,
        *,
        window_start_ms: int,
        window_end_ms: int,
        rows: int,
        labelled_rows: int,
        status: str,
        alerts: Sequence[dict[str, str]],
        summary: dict[str, Any],
        results: Sequence[MonitorResult],
    ) -> MonitorReport | None:
        """Store one window's report and its results in one transaction; None (nothing
        written) when that window was already reported."""
        if status not in REPORT_STATUSES:
            raise InvalidInput(
                f"report status must be one of {', '.join(REPORT_STATUSES)}, got {status!r}",
                field="status",
            )
        if window_end_ms <= window_start_ms:
            raise InvalidInput(
                f"window_end_ms={window_end_ms} must be after window_start_ms={window_start_ms}",
                field="window_end_ms",
            )
        keys = [(r.check, r.feature, r.statistic) for r in results]
        if len(set(keys)) != len(keys):
            raise InvalidInput("a report holds one result per (check, feature, statistic)")
        for check, feature, _ in keys:
            q.check_key("result feature", feature)
            q.check_key("result check", check, 32)
        with self._write() as conn:
            monitor = self._monitor_row(conn, name)
            inserted = conn.execute(
                self._insert(_r)
                .values(
                    monitor_id=monitor.id, window_start_ms=window_start_ms,
                    window_end_ms=window_end_ms, rows=rows, labelled_rows=labelled_rows,
                    status=status, alerts=dumps(list(alerts), "report alerts"),
                    summary=dumps(summary, "report summary"), created_at=q.now_ms(),
                )
                .on_conflict_do_nothing(index_elements=[_r.c.monitor_id, _r.c.window_start_ms])
                .returning(_r.c.id)
            ).scalar()  # fmt: skip
            if inserted is None:
                return None
            if results:
                conn.execute(
                    _x.insert(),
                    [
                        {
                            "report_id": inserted, "check": r.check, "feature": r.feature,
                            "statistic": r.statistic, "value": finite(r.value),
                            "threshold": finite(r.threshold), "p_value": finite(r.p_value),
                            "drifted": r.drifted,
                        }
                        for r in results
                    ],
                )  # fmt: skip
            row = conn.execute(select(*REPORT_COLUMNS).where(_r.c.id == inserted)).one()
            bounds = {int(inserted): (window_start_ms, window_end_ms)}
            stored = self._results(conn, [int(inserted)], window=bounds)
            return report_record(name, row, stored.get(int(inserted), []))

    def _results(
        self,
        conn: Connection,
        report_ids: Sequence[int],
        *,
        window: dict[int, tuple[int, int]],
        check: str | None = None,
        feature: str | None = None,
    ) -> dict[int, list[MonitorResult]]:
        found: dict[int, list[MonitorResult]] = {}
        for start in range(0, len(report_ids), 500):
            chunk = list(report_ids[start : start + 500])
            query = select(
                _x.c.report_id, _x.c.check, _x.c.feature, _x.c.statistic, _x.c.value,
                _x.c.threshold, _x.c.p_value, _x.c.drifted,
            ).where(_x.c.report_id.in_(chunk))  # fmt: skip
            if check is not None:
                query = query.where(_x.c.check == check)
            if feature is not None:
                query = query.where(_x.c.feature == feature)
            for row in conn.execute(query).all():
                bounds = window.get(int(row[0]), (0, 0))
                found.setdefault(int(row[0]), []).append(
                    MonitorResult(
                        check=row[1], feature=row[2], statistic=row[3], value=row[4],
                        threshold=row[5], p_value=row[6],
                        drifted=None if row[7] is None else bool(row[7]),
                        report_id=int(row[0]), window_start_ms=bounds[0],
                        window_end_ms=bounds[1],
                    )
                )  # fmt: skip
        for items in found.values():
            items.sort(key=lambda r: (r.check, r.feature, r.statistic))
        return found

    def list_monitor_reports(
        self,
        name: str,
        *,
        since_ms: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        with_results: bool = False,
    ) -> list[MonitorReport]:
        """A monitor's reports by window (oldest first unless ``newest_first``), those whose
        window ends after ``since_ms`` when given, at most ``limit``."""
        with self._read() as conn:
            monitor = self._monitor_row(conn, name)
            query = select(*REPORT_COLUMNS).where(_r.c.monitor_id == monitor.id)
            if since_ms is not None:
                query = query.where(_r.c.window_end_ms > since_ms)
            order = _r.c.window_start_ms.desc() if newest_first else _r.c.window_start_ms
            query = query.order_by(order)
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).all()
            results: dict[int, list[MonitorResult]] = {}
            if with_results and rows:
                bounds = {int(r[0]): (int(r[1]), int(r[2])) for r in rows}
                results = self._results(conn, list(bounds), window=bounds)
        return [report_record(name, r, results.get(int(r[0]), [])) for r in rows]

    def list_monitor_results(
        self,
        name: str,
        *,
        check: str | None = None,
        feature: str | None = None,
        since_ms: int | None = None,
    ) -> list[MonitorResult]:
        """The per-feature results of a monitor over time (by window, then check, feature and
        statistic), optionally of one check and/or feature, of windows ending after
        ``since_ms``."""
        with self._read() as conn:
            monitor = self._monitor_row(conn, name)
            query = select(_r.c.id, _r.c.window_start_ms, _r.c.window_end_ms).where(
                _r.c.monitor_id == monitor.id
            )
            if since_ms is not None:
                query = query.where(_r.c.window_end_ms > since_ms)
            rows = conn.execute(query.order_by(_r.c.window_start_ms)).all()
            bounds = {int(r[0]): (int(r[1]), int(r[2])) for r in rows}
            found = self._results(conn, list(bounds), window=bounds, check=check, feature=feature)
        return [item for report_id in bounds for item in found.get(report_id, [])]
