"""Registered models, versions, aliases, records and alias policies: the SQL half of the registry.

A mixin of :class:`mloop.store.sql.SqlStore`. A new version takes the next number of its model
inside one write transaction that first locks the model's row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so numbers stay unique
and gap-free when many processes register at once. Every change writes its audit event in the
same transaction; every alias move is also a row of ``alias_history``, which rollback reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from mloop.errors import AlreadyExists, InvalidInput, InvalidName, InvalidState, NotFound
from mloop.store import queries as q
from mloop.store import schema as s
from mloop.store.base import (
    AliasChange,
    ModelRecord,
    ModelVersion,
    ModelVersionStatus,
    NewModelVersion,
    RegisteredModel,
)
from mloop.store.datasets import dumps, loads
from mloop.store.part import StorePart

if TYPE_CHECKING:
    from sqlalchemy.sql.schema import Table

__all__ = [
    "ALIAS_NAME",
    "OWNER_KIND",
    "RECORD_KINDS",
    "PolicyCheck",
    "RegistryStatements",
    "RegistryTables",
    "check_alias",
    "check_model_name",
]

#: What an alias is made of; it must not look like a version number.
ALIAS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
#: owner_kind of the artifact rows that keep a version's files.
OWNER_KIND = "model_version"
#: The kinds of records kept about a version.
RECORD_KINDS = ("evaluation", "gate", "approval")


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a valid registered-model name; raise InvalidName otherwise."""
    return q.check_object_name("model", name, "fraud-detector")


def check_alias(alias: object) -> str:
    """Return ``alias`` if it is a valid alias; raise InvalidName otherwise."""
    if not isinstance(alias, str) or not ALIAS_NAME.fullmatch(alias) or alias == "latest":
        raise InvalidName(
            f"alias {q.short(str(alias))!r} is invalid: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter (e.g. champion); 'latest' is reserved"
        )
    return alias


def _check_tags(tags: dict[str, str], what: str) -> None:
    for key, value in tags.items():
        q.check_key(f"{what} tag key", key)
        if not isinstance(value, str):
            raise InvalidInput(f"{what} tag {key!r} must be a string, got {value!r}")


_VERSION_COLUMNS = (
    s.model_versions.c.id,
    s.registered_models.c.name,
    s.model_versions.c.version,
    s.model_versions.c.package_digest,
    s.model_versions.c.flavor,
    s.model_versions.c.signature_json,
    s.model_versions.c.run_id,
    s.model_versions.c.status,
    s.model_versions.c.description,
    s.model_versions.c.created_at,
    s.model_versions.c.created_by,
)


def _load_versions(conn: Connection, where: Any) -> list[ModelVersion]:
    """Versions matching ``where``, oldest first, with their tags and aliases."""
    v, m = s.model_versions, s.registered_models
    rows = conn.execute(
        select(*_VERSION_COLUMNS).join(m, m.c.id == v.c.model_id).where(where).order_by(v.c.id)
    ).all()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    aliases: dict[int, list[str]] = {i: [] for i in ids}
    t, a = s.model_version_tags, s.model_aliases
    for start in range(0, len(ids), q.IN_CHUNK):
        chunk = ids[start : start + q.IN_CHUNK]
        for version_id, key, value in conn.execute(
            select(t.c.version_id, t.c.key, t.c.value).where(t.c.version_id.in_(chunk))
        ):
            tags[version_id][key] = value
        for version_id, alias in conn.execute(
            select(a.c.version_id, a.c.alias).where(a.c.version_id.in_(chunk)).order_by(a.c.alias)
        ):
            aliases[version_id].append(alias)
    return [
        ModelVersion(
            id=row[0],
            model=row[1],
            version=row[2],
            package_digest=row[3],
            flavor=row[4],
            signature=loads(row[5]),
            run_id=row[6],
            status=ModelVersionStatus(row[7]),
            description=row[8],
            created_at=row[9],
            created_by=row[10],
            tags=tags[row[0]],
            aliases=tuple(aliases[row[0]]),
        )
        for row in rows
    ]


#: Called inside the write transaction of an alias move with the alias's policy (when one is
#: set) and the target version's records; raises (Forbidden) to refuse the move.
PolicyCheck = Callable[[dict[str, Any], list[ModelRecord]], None]


def _version_of(row: Any, tags: dict[str, str], aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        id=row[0],
        model=row[1],
        version=row[2],
        package_digest=row[3],
        flavor=row[4],
        signature=loads(row[5]),
        run_id=row[6],
        status=ModelVersionStatus(row[7]),
        description=row[8],
        created_at=row[9],
        created_by=row[10],
        tags=tags,
        aliases=aliases,
    )


class RegistryStatements:
    """The registry's hot statements (resolve, alias moves, new versions), compiled once per
    engine and run on the driver's cursor (see :class:`~mloop.store.queries.Prepared`)."""

    def __init__(self, engine: Engine, dialect_insert: Callable[[Table], Any]) -> None:
        m, v, a, h, p = (
            s.registered_models, s.model_versions, s.model_aliases, s.alias_history,
            s.alias_policies,
        )  # fmt: skip
        vt = s.model_version_tags
        joined = select(*_VERSION_COLUMNS).join(m, m.c.id == v.c.model_id)
        name = m.c.name == bindparam("name")
        self.model_id = q.Prepared(engine, select(m.c.id).where(name), ["name"])
        # FOR UPDATE on PostgreSQL; SQLite's compiler leaves it out (BEGIN IMMEDIATE serialises).
        self.model_lock = q.Prepared(engine, select(m.c.id).where(name).with_for_update(), ["name"])
        self.by_number = q.Prepared(
            engine, joined.where(name, v.c.version == bindparam("version")), ["name", "version"]
        )
        self.by_alias = q.Prepared(
            engine,
            joined.join(a, a.c.version_id == v.c.id).where(name, a.c.alias == bindparam("alias")),
            ["name", "alias"],
        )
        older = v.alias("older")
        newest = (
            select(func.max(older.c.version))
            .where(older.c.model_id == v.c.model_id, older.c.status == bindparam("ready"))
            .scalar_subquery()
        )
        self.newest_ready = q.Prepared(
            engine, joined.where(name, v.c.version == newest), ["name", "ready"]
        )
        self.version_tags = q.Prepared(
            engine, select(vt.c.key, vt.c.value).where(vt.c.version_id == bindparam("id")), ["id"]
        )
        self.version_aliases = q.Prepared(
            engine,
            select(a.c.alias).where(a.c.version_id == bindparam("id")).order_by(a.c.alias),
            ["id"],
        )
        self.model_aliases = q.Prepared(
            engine, select(a.c.alias).where(a.c.model_id == bindparam("id")), ["id"]
        )
        self.policy = q.Prepared(
            engine,
            select(p.c.body).where(
                p.c.model_id == bindparam("id"), p.c.alias == bindparam("alias")
            ),
            ["id", "alias"],
        )
        self.alias_target = q.Prepared(
            engine,
            select(v.c.version)
            .join(a, a.c.version_id == v.c.id)
            .where(a.c.model_id == bindparam("id"), a.c.alias == bindparam("alias")),
            ["id", "alias"],
        )
        self.version_state = q.Prepared(
            engine,
            select(v.c.id, v.c.status).where(
                v.c.model_id == bindparam("id"), v.c.version == bindparam("version")
            ),
            ["id", "version"],
        )
        upsert = dialect_insert(a)
        self.alias_upsert = q.Prepared(
            engine,
            upsert.on_conflict_do_update(
                index_elements=[a.c.model_id, a.c.alias],
                set_={
                    "version_id": upsert.excluded.version_id,
                    "updated_at": upsert.excluded.updated_at,
                },
            ),
            ["model_id", "alias", "version_id", "updated_at"],
        )
        self.history_insert = q.Prepared(
            engine,
            h.insert().returning(h.c.id),
            ["model_id", "alias", "version", "previous", "reason", "at", "actor"],
        )
        self.model_insert = q.Prepared(
            engine,
            dialect_insert(m).on_conflict_do_nothing(index_elements=[m.c.name]),
            ["name", "description", "created_at", "updated_at"],
        )
        self.run_exists = q.Prepared(
            engine, select(s.runs.c.id).where(s.runs.c.id == bindparam("id")), ["id"]
        )
        self.max_version = q.Prepared(
            engine, select(func.max(v.c.version)).where(v.c.model_id == bindparam("id")), ["id"]
        )
        self.version_insert = q.Prepared(
            engine, v.insert().returning(v.c.id), VERSION_INSERT_COLUMNS
        )
        self.model_touch = q.Prepared(
            engine,
            update(m).where(m.c.id == bindparam("the_model")).values(updated_at=bindparam("now")),
            ["now", "the_model"],
        )
        self.tag_insert = q.Prepared(engine, vt.insert(), ["version_id", "key", "value"])


VERSION_INSERT_COLUMNS = (
    "model_id", "version", "package_digest", "flavor", "signature_json", "run_id", "status",
    "description", "created_at", "created_by",
)  # fmt: skip


def _no_model(name: str) -> NotFound:
    return NotFound(f"no registered model named {name!r} (see `mloop models list`)")


def _no_version(name: str, version: int) -> NotFound:
    return NotFound(f"model {name!r} has no version {version} (see `mloop models versions`)")


def _check_number(version: object, field: str = "version") -> int:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInput(
            f"{field} is a model version number, an integer ≥ 1, got {version!r}", field=field
        )
    return version


class RegistryTables(StorePart):
    """The registry methods of the SQL store (mixed into ``SqlStore``)."""

    if TYPE_CHECKING:
        engine: Engine

    @property
    def _registry(self) -> RegistryStatements:
        """The registry's statements, compiled on first use (two threads may both compile
        them; either result is fine)."""
        found: RegistryStatements | None = self.__dict__.get("_registry_statements")
        if found is None:
            found = self.__dict__["_registry_statements"] = RegistryStatements(
                self.engine, self._insert
            )
        return found

    # -- models -----------------------------------------------------------------------------
    def _model_id(self, conn: Connection, name: str, *, lock: bool = False) -> int:
        m = s.registered_models
        query = select(m.c.id).where(m.c.name == name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        model_id = conn.execute(query).scalar()
        if model_id is None:
            raise _no_model(name)
        return int(model_id)

    def _insert_model(
        self, conn: Connection, name: str, description: str, tags: dict[str, str], actor: str
    ) -> int:
        m = s.registered_models
        now = q.now_ms()
        model_id: int = conn.execute(
            m.insert()
            .values(name=name, description=description, created_at=now, updated_at=now)
            .returning(m.c.id)
        ).scalar_one()
        if tags:
            conn.execute(
                s.registered_model_tags.insert(),
                [{"model_id": model_id, "key": k, "value": x} for k, x in tags.items()],
            )
        self._audit(
            conn, actor, "model.created", name, None, {"description": description, "tags": tags}
        )
        return model_id

    def create_registered_model(
        self, name: str, *, description: str = "", tags: dict[str, str] | None = None, actor: str
    ) -> RegisteredModel:
        """Create a registered model. Raises InvalidName, AlreadyExists."""
        check_model_name(name)
        tags = dict(tags or {})
        _check_tags(tags, "model")
        taken = f"a registered model named {name!r} already exists"
        with self._write(duplicate=taken) as conn:
            m = s.registered_models
            if conn.execute(select(m.c.id).where(m.c.name == name)).first() is not None:
                raise AlreadyExists(taken)
            self._insert_model(conn, name, description, tags, actor)
            return self._model(conn, name)

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        m, v, a = s.registered_models, s.model_versions, s.model_aliases
        row = conn.execute(
            select(m.c.id, m.c.name, m.c.description, m.c.created_at, m.c.updated_at).where(
                m.c.name == name
            )
        ).first()
        if row is None:
            raise NotFound(f"no registered model named {name!r} (see `mloop models list`)")
        tags = dict(
            conn.execute(
                select(s.registered_model_tags.c.key, s.registered_model_tags.c.value).where(
                    s.registered_model_tags.c.model_id == row[0]
                )
            ).all()
        )
        aliases = dict(
            conn.execute(
                select(a.c.alias, v.c.version)
                .join(v, v.c.id == a.c.version_id)
                .where(a.c.model_id == row[0])
                .order_by(a.c.alias)
            ).all()
        )
        latest = conn.execute(
            select(func.max(v.c.version)).where(
                v.c.model_id == row[0], v.c.status == ModelVersionStatus.READY.value
            )
        ).scalar()
        return RegisteredModel(*row, tags=tags, aliases=aliases, latest_version=latest)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags, aliases and newest version. Raises NotFound."""
        with self._read() as conn:
            return self._model(conn, name)

    def list_registered_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        m = s.registered_models
        with self._read() as conn:
            names = conn.execute(select(m.c.name)).scalars().all()
            return [self._model(conn, name) for name in sorted(names)]

    def set_registered_model_tags(
        self, name: str, tags: dict[str, str], *, actor: str
    ) -> RegisteredModel:
        """Set (add or overwrite) tags of a registered model."""
        _check_tags(tags, "model")
        t = s.registered_model_tags
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            before = self._model(conn, name).tags
            if tags:
                stmt = self._insert(t)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[t.c.model_id, t.c.key], set_={"value": stmt.excluded.value}
                    ),
                    [{"model_id": model_id, "key": k, "value": x} for k, x in tags.items()],
                )
                self._audit(
                    conn,
                    actor,
                    "model.tags_set",
                    name,
                    {"tags": {k: before[k] for k in tags if k in before}},
                    {"tags": tags},
                )
            return self._model(conn, name)

    # -- versions ---------------------------------------------------------------------------
    def create_model_version(self, name: str, new: NewModelVersion, *, actor: str) -> ModelVersion:
        """Register a version of model ``name`` (created on first use) with the next number."""
        check_model_name(name)
        if not re.fullmatch("[0-9a-f]{64}", new.package_digest):
            raise InvalidInput("a model version's package digest must be 64 lowercase hex digits")
        if not new.flavor or len(new.flavor) > 64:
            raise InvalidInput("a model version needs a flavor name of at most 64 characters")
        _check_tags(new.tags, "model version")
        signature = None if new.signature is None else dumps(new.signature, "signature")
        st = self._registry
        ready = ModelVersionStatus.READY.value
        with self._write() as conn:
            now = q.now_ms()
            found = st.model_lock.first(conn, (name,))
            if found is None:  # created on first use; a concurrent creator makes this a no-op
                st.model_insert.execute(conn, (name, "", now, now))
                found = st.model_lock.first(conn, (name,))
                assert found is not None
            model_id = int(found[0])
            if new.run_id is not None and st.run_exists.first(conn, (new.run_id,)) is None:
                raise NotFound(f"no run with id {new.run_id}")
            top = st.max_version.first(conn, (model_id,))
            number = (top[0] if top is not None and top[0] is not None else 0) + 1
            row = (
                model_id, number, new.package_digest, new.flavor, signature, new.run_id, ready,
                new.description, now, actor,
            )  # fmt: skip
            version_id = int(st.version_insert.execute(conn, row)[0][0])
            st.model_touch.execute(conn, (now, model_id))
            tags = dict(new.tags)
            if tags:
                st.tag_insert.executemany(conn, [(version_id, k, x) for k, x in tags.items()])
            rows = q.artifact_rows(OWNER_KIND, str(version_id), new.files)
            if rows:
                self._stmts.artifact_insert.executemany(conn, rows)
            self._audit(
                conn,
                actor,
                "model.version_created",
                f"{name}/{number}",
                None,
                {
                    "package_digest": new.package_digest,
                    "flavor": new.flavor,
                    "run_id": new.run_id,
                    "files": len(rows),
                },
            )
            return _version_of((version_id, name, *row[1:]), tags, ())

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        v, m = s.model_versions, s.registered_models
        _check_number(version)
        found = _load_versions(conn, (m.c.name == name) & (v.c.version == version))
        if not found:
            self._model_id(conn, name)  # NotFound for the model first
            raise _no_version(name, version)
        return found[0]

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model. Raises NotFound."""
        return self.resolve_model_version(name, version=version)

    def resolve_model_version(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ModelVersion:
        """The version numbered ``version``, or behind ``alias``, or (neither) the newest ready
        one, with its tags and aliases, in one read transaction."""
        if version is not None and alias is not None:
            raise InvalidInput("name a model version by its number or by an alias, not both")
        if version is not None:
            _check_number(version)
        st = self._registry
        with self._read() as conn:
            if version is not None:
                row = st.by_number.first(conn, (name, version))
            elif alias is not None:
                row = st.by_alias.first(conn, (name, alias))
            else:
                row = st.newest_ready.first(conn, (name, ModelVersionStatus.READY.value))
            if row is None:
                model = st.model_id.first(conn, (name,))
                if model is None:
                    raise _no_model(name)
                if version is not None:
                    raise _no_version(name, version)
                if alias is not None:
                    known = sorted(r[0] for r in st.model_aliases.execute(conn, (model[0],)))
                    listed = ", ".join(known) or "none"
                    raise NotFound(f"model {name!r} has no alias {alias!r} (aliases: {listed})")
                raise NotFound(f"model {name!r} has no ready version")
            tags: dict[str, str] = dict(st.version_tags.execute(conn, (row[0],)))
            aliases = tuple(r[0] for r in st.version_aliases.execute(conn, (row[0],)))
        return _version_of(row, tags, aliases)

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """The versions of a model, oldest first (deleted ones included). Raises NotFound."""
        with self._read() as conn:
            model_id = self._model_id(conn, name)
            return _load_versions(conn, s.model_versions.c.model_id == model_id)

    def delete_model_version(self, name: str, version: int, *, actor: str) -> ModelVersion:
        """Mark a version deleted; refused while an alias points at it."""
        v = s.model_versions
        with self._write() as conn:
            found = self._version(conn, name, version)
            if found.aliases:
                raise InvalidState(
                    f"version {version} of {name!r} is behind the alias(es) "
                    f"{', '.join(found.aliases)}; move or remove them first"
                )
            if found.status == ModelVersionStatus.DELETED:
                return found
            conn.execute(
                update(v).where(v.c.id == found.id).values(status=ModelVersionStatus.DELETED.value)
            )
            self._audit(
                conn,
                actor,
                "model.version_deleted",
                f"{name}/{version}",
                {"status": found.status.value},
                {"status": ModelVersionStatus.DELETED.value},
            )
            return self._version(conn, name, version)

    # -- aliases ----------------------------------------------------------------------------
    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        reason: str = "",
        actor: str,
        check: PolicyCheck | None = None,
    ) -> AliasChange:
        """Point ``alias`` at a ready version (None: remove it) and record the move; ``check``
        sees the alias's policy (if set) and the version's records first, in the same
        transaction."""
        check_alias(alias)
        st = self._registry
        with self._write() as conn:
            found = st.model_lock.first(conn, (name,))
            if found is None:
                raise _no_model(name)
            model_id = int(found[0])
            if check is not None and version is not None:
                body = st.policy.first(conn, (model_id, alias))
                policy: dict[str, Any] | None = None if body is None else loads(body[0])
                if policy:
                    check(policy, self._records(conn, model_id, name, version, None))
            current = st.alias_target.first(conn, (model_id, alias))
            previous: int | None = None if current is None else int(current[0])
            now = q.now_ms()
            if version is None:
                if previous is None:
                    raise NotFound(f"model {name!r} has no alias {alias!r}")
                a = s.model_aliases
                conn.execute(delete(a).where(a.c.model_id == model_id, a.c.alias == alias))
            else:
                _check_number(version)
                target = st.version_state.first(conn, (model_id, version))
                if target is None:
                    raise _no_version(name, version)
                if target[1] != ModelVersionStatus.READY.value:
                    raise InvalidState(
                        f"version {version} of {name!r} is deleted; an alias cannot point at it"
                    )
                st.alias_upsert.execute(conn, (model_id, alias, target[0], now))
            change_id = int(
                st.history_insert.execute(
                    conn, (model_id, alias, version, previous, reason, now, actor)
                )[0][0]
            )
            self._audit(
                conn,
                actor,
                "model.alias_set" if version is not None else "model.alias_removed",
                f"{name}@{alias}",
                {"version": previous},
                {"version": version, "reason": reason},
            )
            return AliasChange(change_id, name, alias, version, previous, reason, now, actor)

    def list_alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every move of a model's aliases (or of one), oldest first."""
        h = s.alias_history
        with self._read() as conn:
            model_id = self._model_id(conn, name)
            query = (
                select(h.c.id, h.c.alias, h.c.version, h.c.previous, h.c.reason, h.c.at, h.c.actor)
                .where(h.c.model_id == model_id)
                .order_by(h.c.id)
            )
            if alias is not None:
                query = query.where(h.c.alias == alias)
            rows = conn.execute(query).all()
        return [AliasChange(r[0], name, r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    # -- records ----------------------------------------------------------------------------
    def add_model_record(
        self,
        name: str,
        version: int,
        *,
        kind: str,
        subject: str,
        passed: bool | None,
        body: dict[str, Any],
        actor: str,
    ) -> ModelRecord:
        """Record an evaluation, gate decision or approval about a version."""
        if kind not in RECORD_KINDS:
            raise InvalidInput(
                f"record kind must be one of {', '.join(RECORD_KINDS)}, not {kind!r}"
            )
        q.check_key("record subject", subject)
        text = dumps(body, f"{kind} record")
        r = s.model_version_records
        with self._write() as conn:
            target = self._version(conn, name, version)
            now = q.now_ms()
            record_id = conn.execute(
                r.insert()
                .values(
                    version_id=target.id,
                    kind=kind,
                    subject=subject,
                    passed=passed,
                    body=text,
                    created_at=now,
                    created_by=actor,
                )
                .returning(r.c.id)
            ).scalar_one()
            self._audit(
                conn,
                actor,
                f"model.{kind}_recorded",
                f"{name}/{version}",
                None,
                {"record": record_id, "subject": subject, "passed": passed},
            )
        return ModelRecord(record_id, name, version, kind, subject, passed, body, now, actor)

    def _records(
        self, conn: Connection, model_id: int, name: str, version: int | None, kind: str | None
    ) -> list[ModelRecord]:
        r, v = s.model_version_records, s.model_versions
        query = (
            select(
                r.c.id, v.c.version, r.c.kind, r.c.subject, r.c.passed, r.c.body,
                r.c.created_at, r.c.created_by,
            )
            .join(v, v.c.id == r.c.version_id)
            .where(v.c.model_id == model_id)
            .order_by(r.c.id)
        )  # fmt: skip
        if version is not None:
            query = query.where(v.c.version == version)
        if kind is not None:
            query = query.where(r.c.kind == kind)
        return [
            ModelRecord(row[0], name, row[1], row[2], row[3], row[4], loads(row[5]) or {},
                        row[6], row[7])
            for row in conn.execute(query)
        ]  # fmt: skip

    def list_model_records(
        self, name: str, version: int | None = None, kind: str | None = None
    ) -> list[ModelRecord]:
        """Records of a model (or of one version), optionally of one kind, oldest first."""
        with self._read() as conn:
            return self._records(conn, self._model_id(conn, name), name, version, kind)

    # -- policies ---------------------------------------------------------------------------
    def set_alias_policy(
        self, name: str, alias: str, policy: dict[str, Any] | None, *, actor: str
    ) -> None:
        """Set (None: remove) what moving ``alias`` requires."""
        check_alias(alias)
        p = s.alias_policies
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            before = conn.execute(
                select(p.c.body).where(p.c.model_id == model_id, p.c.alias == alias)
            ).scalar()
            if policy is None:
                conn.execute(delete(p).where(p.c.model_id == model_id, p.c.alias == alias))
            else:
                text = dumps(policy, "alias policy")
                now = q.now_ms()
                stmt = self._insert(p).values(
                    model_id=model_id, alias=alias, body=text, updated_at=now
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[p.c.model_id, p.c.alias],
                        set_={"body": text, "updated_at": now},
                    )
                )
            self._audit(
                conn,
                actor,
                "model.policy_set",
                f"{name}@{alias}",
                {"policy": loads(before)},
                {"policy": policy},
            )

    def get_alias_policy(self, name: str, alias: str) -> dict[str, Any] | None:
        """The policy of an alias, if one is set."""
        p = s.alias_policies
        with self._read() as conn:
            model_id = self._model_id(conn, name)
            text = conn.execute(
                select(p.c.body).where(p.c.model_id == model_id, p.c.alias == alias)
            ).scalar()
        policy: dict[str, Any] | None = loads(text)
        return policy
