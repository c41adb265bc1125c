"""Dataset versions, run inputs and validation results: the SQL half of :mod:`mloop.data`.

A mixin of :class:`mloop.store.sql.SqlStore`, kept apart so that sql.py stays about runs. A new
version takes the next number of its dataset inside one write transaction that first locks the
dataset's row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already
serialises writers), so numbers stay unique and gap-free with concurrent writers, and a digest
registered twice returns the first version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from mloop.errors import InvalidInput, NotFound
from mloop.store import queries as q
from mloop.store import schema as s
from mloop.store.base import (
    Dataset,
    DatasetKind,
    DatasetVersion,
    NewDatasetVersion,
    RunInput,
    ValidationRecord,
)
from mloop.store.part import StorePart

if TYPE_CHECKING:
    pass

__all__ = [
    "OWNER_KIND",
    "DatasetTables",
    "check_dataset_name",
    "dumps",
    "loads",
    "parse_ref",
]

#: owner_kind of the artifact rows that keep a version's blobs.
OWNER_KIND = "dataset_version"
CONTEXT_LEN = 64


def check_dataset_name(name: object) -> str:
    """Return ``name`` if it is a valid dataset name; raise InvalidName otherwise."""
    return q.check_object_name("dataset", name, "transactions or fraud.v2")


_REF = re.compile(r"(?P<name>[^@\s]+)(?:@(?:v(?P<v>\d+)|(?P<n>\d+)|(?P<latest>latest)))?")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name``, ``name@v3``, ``name@3`` or ``name@latest`` into (name, version or None)."""
    match = _REF.fullmatch(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise InvalidInput(
            f"dataset reference {ref!r} is not NAME, NAME@vN or NAME@latest (e.g. transactions@v3)"
        )
    name = check_dataset_name(match["name"])
    number = match["v"] or match["n"]
    return name, None if number is None else int(number)


def dumps(value: Any, what: str) -> str:
    """Canonical JSON for a stored body; InvalidInput if it is not JSON or holds NaN/inf."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the {what} is not JSON without NaN or infinities: {exc}") from None


def loads(text: str | None) -> Any:
    """The value of a stored JSON body (None stays None)."""
    return None if text is None else json.loads(text)


_VERSION_COLUMNS = (
    s.dataset_versions.c.id,
    s.datasets.c.name,
    s.dataset_versions.c.version,
    s.dataset_versions.c.digest,
    s.dataset_versions.c.kind,
    s.dataset_versions.c.storage_digest,
    s.dataset_versions.c.schema_json,
    s.dataset_versions.c.num_rows,
    s.dataset_versions.c.num_files,
    s.dataset_versions.c.size,
    s.dataset_versions.c.run_id,
    s.dataset_versions.c.description,
    s.dataset_versions.c.created_at,
    s.dataset_versions.c.created_by,
)


def _load_versions(conn: Connection, where: Any, *, with_profile: bool) -> list[DatasetVersion]:
    """Versions matching ``where``, oldest first, with their tags and parents."""
    v, d = s.dataset_versions, s.datasets
    columns = (*_VERSION_COLUMNS, v.c.profile_json) if with_profile else _VERSION_COLUMNS
    rows = conn.execute(
        select(*columns).join(d, d.c.id == v.c.dataset_id).where(where).order_by(v.c.id)
    ).all()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    parents: dict[int, list[str]] = {i: [] for i in ids}
    t, p = s.dataset_version_tags, s.dataset_version_parents
    pv, pd = v.alias("parent_version"), d.alias("parent_dataset")
    for chunk in _int_chunks(ids):
        for version_id, key, value in conn.execute(
            select(t.c.version_id, t.c.key, t.c.value).where(t.c.version_id.in_(chunk))
        ):
            tags[version_id][key] = value
        parent_rows = conn.execute(
            select(p.c.version_id, pd.c.name, pv.c.version)
            .join(pv, pv.c.id == p.c.parent_id)
            .join(pd, pd.c.id == pv.c.dataset_id)
            .where(p.c.version_id.in_(chunk))
            .order_by(p.c.version_id, pd.c.name, pv.c.version)
        )
        for version_id, parent_name, parent_version in parent_rows:
            parents[version_id].append(f"{parent_name}@v{parent_version}")
    return [
        DatasetVersion(
            id=row[0],
            dataset=row[1],
            version=row[2],
            digest=row[3],
            kind=DatasetKind(row[4]),
            storage_digest=row[5],
            schema=loads(row[6]),
            num_rows=row[7],
            num_files=row[8],
            size=row[9],
            run_id=row[10],
            description=row[11],
            created_at=row[12],
            created_by=row[13],
            tags=tags[row[0]],
            parents=tuple(parents[row[0]]),
            profile=loads(row[14]) if with_profile else None,
        )
        for row in rows
    ]


def _int_chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), q.IN_CHUNK):
        yield items[i : i + q.IN_CHUNK]


def _check_tags(tags: dict[str, str]) -> None:
    for key, value in tags.items():
        q.check_key("dataset version tag key", key)
        if not isinstance(value, str):
            raise InvalidInput(f"dataset version tag {key!r} must be a string, got {value!r}")


def _check_new(new: NewDatasetVersion) -> None:
    if not re.fullmatch("[0-9a-f]{64}", new.digest) or not re.fullmatch(
        "[0-9a-f]{64}", new.storage_digest
    ):
        raise InvalidInput("a dataset version's digests must be 64 lowercase hex characters")
    for what, number in (("size", new.size), ("row count", new.num_rows), ("files", new.num_files)):
        if number is not None and (not isinstance(number, int) or number < 0):
            raise InvalidInput(f"a dataset version's {what} must be an integer ≥ 0, got {number}")
    _check_tags(new.tags)


class DatasetTables(StorePart):
    """The dataset methods of the SQL store (mixed into ``SqlStore``)."""

    # -- writing ----------------------------------------------------------------------------
    def _lock_dataset(self, conn: Connection, name: str, now: int) -> int:
        """The dataset's id, creating it if needed, with its row locked until commit."""
        d = s.datasets
        conn.execute(
            self._insert(d)
            .values(name=name, description="", created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[d.c.name])
        )
        query = select(d.c.id).where(d.c.name == name)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        dataset_id: int = conn.execute(query).scalar_one()
        return dataset_id

    def create_dataset_version(
        self, name: str, new: NewDatasetVersion, *, actor: str
    ) -> tuple[DatasetVersion, bool]:
        """Record a version of dataset ``name`` (created on first use) with the next number, or
        return the version that already has this digest. Returns (version, created)."""
        check_dataset_name(name)
        _check_new(new)
        schema_json = None if new.schema is None else dumps(new.schema, "schema")
        profile_json = None if new.profile is None else dumps(new.profile, "profile")
        v = s.dataset_versions
        with self._write() as conn:
            now = q.now_ms()
            dataset_id = self._lock_dataset(conn, name, now)
            same = _load_versions(
                conn, (v.c.dataset_id == dataset_id) & (v.c.digest == new.digest),
                with_profile=True,
            )  # fmt: skip
            if same:
                return same[0], False
            if new.run_id is not None:
                found = conn.execute(select(s.runs.c.id).where(s.runs.c.id == new.run_id)).first()
                if found is None:
                    raise NotFound(f"no run with id {new.run_id}")
            parent_ids = list(dict.fromkeys(new.parents))
            if parent_ids:
                known = set(conn.execute(select(v.c.id).where(v.c.id.in_(parent_ids))).scalars())
                missing = [p for p in parent_ids if p not in known]
                if missing:
                    raise NotFound(f"no dataset version with id {missing[0]}")
            number = (
                conn.execute(
                    select(func.max(v.c.version)).where(v.c.dataset_id == dataset_id)
                ).scalar()
                or 0
            ) + 1
            version_id = conn.execute(
                v.insert()
                .values(
                    dataset_id=dataset_id,
                    version=number,
                    digest=new.digest,
                    kind=DatasetKind(new.kind).value,
                    storage_digest=new.storage_digest,
                    schema_json=schema_json,
                    num_rows=new.num_rows,
                    num_files=new.num_files,
                    size=new.size,
                    profile_json=profile_json,
                    run_id=new.run_id,
                    description=new.description,
                    created_at=now,
                    created_by=actor,
                )
                .returning(v.c.id)
            ).scalar_one()
            conn.execute(
                s.datasets.update().where(s.datasets.c.id == dataset_id).values(updated_at=now)
            )
            if new.tags:
                conn.execute(
                    s.dataset_version_tags.insert(),
                    [{"version_id": version_id, "key": k, "value": x} for k, x in new.tags.items()],
                )
            if parent_ids:
                conn.execute(
                    s.dataset_version_parents.insert(),
                    [{"version_id": version_id, "parent_id": p} for p in parent_ids],
                )
            rows = q.artifact_rows(OWNER_KIND, str(version_id), new.files)
            if rows:  # a folder version may hold many thousands: straight to the driver
                self._stmts.artifact_insert.executemany(conn, rows)
            created = _load_versions(conn, v.c.id == version_id, with_profile=True)[0]
            self._audit(
                conn,
                actor,
                "dataset.version_created",
                created.ref,
                None,
                {
                    "digest": new.digest,
                    "kind": created.kind.value,
                    "rows": new.num_rows,
                    "files": new.num_files,
                    "size": new.size,
                    "run_id": new.run_id,
                    "parents": list(created.parents),
                },
            )
            return created, True

    def set_dataset_version_tags(
        self, version_id: int, tags: dict[str, str], *, actor: str
    ) -> None:
        """Set (add or overwrite) tags of a version."""
        _check_tags(tags)
        if not tags:
            return
        t = s.dataset_version_tags
        with self._write() as conn:
            version = self._version_by_id(conn, version_id)
            before = {k: version.tags[k] for k in tags if k in version.tags}
            stmt = self._insert(t)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.c.version_id, t.c.key], set_={"value": stmt.excluded.value}
                ),
                [{"version_id": version_id, "key": k, "value": x} for k, x in tags.items()],
            )
            self._audit(
                conn, actor, "dataset.tags_set", version.ref, {"tags": before}, {"tags": tags}
            )

    def log_run_inputs(self, run_id: str, inputs: Sequence[tuple[int, str]], *, actor: str) -> None:
        """Record (version id, context) inputs of a run; re-logging one is a no-op."""
        for _, context in inputs:
            q.check_key("input context", context, CONTEXT_LEN)
        if not inputs:
            return
        r, i = s.runs, s.run_inputs
        with self._write() as conn:
            if conn.execute(select(r.c.id).where(r.c.id == run_id)).first() is None:
                raise NotFound(f"no run with id {run_id}")
            versions = {
                version.id: version
                for version in self._versions_by_id(conn, [v for v, _ in inputs])
            }
            now = q.now_ms()
            wanted = list(dict.fromkeys(inputs))
            conn.execute(
                self._insert(i).on_conflict_do_nothing(
                    index_elements=[i.c.run_id, i.c.version_id, i.c.context]
                ),
                [
                    {"run_id": run_id, "version_id": v, "context": c, "created_at": now}
                    for v, c in wanted
                ],
            )
            self._audit(
                conn,
                actor,
                "run.inputs_logged",
                run_id,
                None,
                {"inputs": [{"dataset": versions[v].ref, "context": c} for v, c in wanted]},
            )

    def add_validation_result(
        self,
        *,
        version_id: int | None,
        run_id: str | None,
        suite: str,
        success: bool,
        body: dict[str, Any],
        actor: str,
    ) -> ValidationRecord:
        """Store a validation result with a version and/or a run."""
        if version_id is None and run_id is None:
            raise InvalidInput("a validation result is stored with a dataset version or a run")
        q.check_key("suite name", suite, s.NAME_LEN)
        text = dumps(body, "validation result")
        vr = s.validation_results
        with self._write() as conn:
            subject = run_id or ""
            if version_id is not None:
                subject = self._version_by_id(conn, version_id).ref
            if run_id is not None:
                found = conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id)).first()
                if found is None:
                    raise NotFound(f"no run with id {run_id}")
            now = q.now_ms()
            record_id = conn.execute(
                vr.insert()
                .values(
                    version_id=version_id,
                    run_id=run_id,
                    suite=suite,
                    success=bool(success),
                    body=text,
                    created_at=now,
                    created_by=actor,
                )
                .returning(vr.c.id)
            ).scalar_one()
            self._audit(
                conn,
                actor,
                "dataset.validated",
                subject,
                None,
                {"suite": suite, "success": bool(success), "run_id": run_id, "result": record_id},
            )
        return ValidationRecord(
            record_id, version_id, run_id, suite, bool(success), body, now, actor
        )

    # -- reading ----------------------------------------------------------------------------
    def _versions_by_id(self, conn: Connection, version_ids: Sequence[int]) -> list[DatasetVersion]:
        wanted = list(dict.fromkeys(version_ids))
        found: dict[int, DatasetVersion] = {}
        for chunk in _int_chunks(wanted):
            for version in _load_versions(
                conn, s.dataset_versions.c.id.in_(chunk), with_profile=False
            ):
                found[version.id] = version
        for version_id in wanted:
            if version_id not in found:
                raise NotFound(f"no dataset version with id {version_id}")
        return [found[i] for i in version_ids]

    def _version_by_id(self, conn: Connection, version_id: int) -> DatasetVersion:
        return self._versions_by_id(conn, [version_id])[0]

    def find_dataset_version(self, name: str, digest: str) -> DatasetVersion | None:
        """The version of ``name`` with this content digest, if there is one."""
        v, d = s.dataset_versions, s.datasets
        with self._read() as conn:
            found = _load_versions(
                conn, (d.c.name == name) & (v.c.digest == digest), with_profile=True
            )
        return found[0] if found else None

    def get_dataset_version(
        self, name: str, version: int | None = None, *, with_profile: bool = True
    ) -> DatasetVersion:
        """A version of a dataset (None: the newest). Raises NotFound."""
        v, d = s.dataset_versions, s.datasets
        with self._read() as conn:
            dataset_id = conn.execute(select(d.c.id).where(d.c.name == name)).scalar()
            if dataset_id is None:
                raise NotFound(f"no dataset named {name!r} (see `mloop data list`)")
            if version is None:
                version = conn.execute(
                    select(func.max(v.c.version)).where(v.c.dataset_id == dataset_id)
                ).scalar()
            found = _load_versions(
                conn,
                (v.c.dataset_id == dataset_id) & (v.c.version == version),
                with_profile=with_profile,
            )
        if not found:
            raise NotFound(
                f"dataset {name!r} has no version {version} (see `mloop data list {name}`)"
            )
        return found[0]

    def get_dataset_versions_by_id(self, version_ids: Sequence[int]) -> list[DatasetVersion]:
        """Versions by id, in the order given (without profiles). Raises NotFound."""
        with self._read() as conn:
            return self._versions_by_id(conn, version_ids)

    def list_datasets(self) -> list[Dataset]:
        """Every dataset, by name, with its number of versions and newest version."""
        d, v = s.datasets, s.dataset_versions
        query = (
            select(
                d.c.id, d.c.name, d.c.description, d.c.created_at, d.c.updated_at,
                func.count(v.c.id), func.max(v.c.version),
            )
            .outerjoin(v, v.c.dataset_id == d.c.id)
            .group_by(d.c.id, d.c.name, d.c.description, d.c.created_at, d.c.updated_at)
        )  # fmt: skip
        with self._read() as conn:
            rows = conn.execute(query).all()
        return sorted((Dataset(*row) for row in rows if row[5]), key=lambda x: x.name)

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        """The versions of a dataset, oldest first, without profiles. Raises NotFound."""
        d = s.datasets
        with self._read() as conn:
            dataset_id = conn.execute(select(d.c.id).where(d.c.name == name)).scalar()
            if dataset_id is None:
                raise NotFound(f"no dataset named {name!r} (see `mloop data list`)")
            return _load_versions(
                conn, s.dataset_versions.c.dataset_id == dataset_id, with_profile=False
            )

    def list_run_inputs(self, run_id: str) -> list[RunInput]:
        """The dataset versions a run read, in the order they were logged."""
        i = s.run_inputs
        with self._read() as conn:
            rows = conn.execute(
                select(i.c.version_id, i.c.context, i.c.created_at)
                .where(i.c.run_id == run_id)
                .order_by(i.c.created_at, i.c.version_id, i.c.context)
            ).all()
            versions = self._versions_by_id(conn, [row[0] for row in rows])
        return [
            RunInput(run_id, version, row[1], row[2])
            for row, version in zip(rows, versions, strict=True)
        ]

    def list_version_consumers(self, version_id: int) -> list[tuple[str, str]]:
        """(run id, context) of every run that read a version, oldest first."""
        i = s.run_inputs
        with self._read() as conn:
            rows = conn.execute(
                select(i.c.run_id, i.c.context)
                .where(i.c.version_id == version_id)
                .order_by(i.c.created_at, i.c.run_id)
            ).all()
        return [(row[0], row[1]) for row in rows]

    def list_validation_results(
        self, *, version_id: int | None = None, run_id: str | None = None
    ) -> list[ValidationRecord]:
        """Stored validation results of a version and/or a run, oldest first."""
        vr = s.validation_results
        query = select(
            vr.c.id, vr.c.version_id, vr.c.run_id, vr.c.suite, vr.c.success, vr.c.body,
            vr.c.created_at, vr.c.created_by,
        ).order_by(vr.c.id)  # fmt: skip
        if version_id is not None:
            query = query.where(vr.c.version_id == version_id)
        if run_id is not None:
            query = query.where(vr.c.run_id == run_id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            ValidationRecord(row[0], row[1], row[2], row[3], bool(row[4]), json.loads(row[5]),
                             row[6], row[7])
            for row in rows
        ]  # fmt: skip
