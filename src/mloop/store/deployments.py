"""Deployments: the SQL half of :mod:`mloop.serving.deployments`.

A mixin of :class:`mloop.store.sql.SqlStore`. A deployment names the versions of one registered
model that an endpoint serves. Every change checks the whole new state (versions exist and are
ready, the followed alias exists, the canary share is in 0-100), bumps the revision, and writes
a ``deployment_history`` row (state before and after, with where the followed alias pointed)
and its audit event, in one write transaction that holds the deployment's row (``FOR UPDATE``
on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers).

:meth:`DeploymentTables.resolve_deployment` is what a server polls every second: two indexed
queries in one read transaction, compiled once per engine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection, Engine

from mloop.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidName,
    InvalidState,
    NotFound,
)
from mloop.store import queries as q
from mloop.store import schema as s
from mloop.store.datasets import dumps, loads
from mloop.store.part import StorePart
from mloop.store.records import (
    Deployment,
    DeploymentChange,
    ModelVersion,
    ModelVersionStatus,
    Targets,
)
from mloop.store.registry import _VERSION_COLUMNS, _check_number, _version_of, check_alias

__all__ = [
    "ACTIONS",
    "MAX_DEPLOYMENT_NAME",
    "STATE_FIELDS",
    "DeploymentStatements",
    "DeploymentTables",
    "check_deployment_name",
]

#: The fields of a deployment that a change may set (the rest is bookkeeping).
STATE_FIELDS = (
    "alias", "version", "canary_version", "canary_percent", "shadow_version", "sticky_key",
)  # fmt: skip
#: What a change of a deployment can be (``created`` is only written by create_deployment).
ACTIONS = (
    "created", "pinned", "followed", "canary_set", "canary_cleared", "canary_promoted",
    "shadow_set", "shadow_cleared", "rolled_back",
)  # fmt: skip
#: Longest deployment name: its prediction log is referenced as artifacts owned by the name,
#: which the artifacts table keys by at most 64 characters (``artifacts.owner_id``).
MAX_DEPLOYMENT_NAME = 64
#: What a sticky key (a request header name) is made of.
STICKY_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")

_d, _m = s.deployments, s.registered_models
_COLUMNS = (
    _d.c.id, _d.c.model_id, _d.c.name, _m.c.name, _d.c.alias, _d.c.version, _d.c.canary_version,
    _d.c.canary_percent, _d.c.shadow_version, _d.c.sticky_key, _d.c.revision, _d.c.created_at,
    _d.c.updated_at,
)  # fmt: skip


def check_deployment_name(name: object) -> str:
    """Return ``name`` if it is a valid deployment name; raise InvalidName otherwise."""
    q.check_object_name("deployment", name, "fraud-api")
    assert isinstance(name, str)
    if len(name) > MAX_DEPLOYMENT_NAME:
        raise InvalidName(
            f"deployment name {q.short(name)!r} is {len(name)} characters, more than the "
            f"{MAX_DEPLOYMENT_NAME} a deployment's prediction log allows: pick a shorter name "
            "(`mloop serve MODEL --deployment NAME` names the deployment of a long model name)"
        )
    return name


def _deployment(row: Any) -> Deployment:
    return Deployment(
        name=row[2], model=row[3], alias=row[4], version=row[5], canary_version=row[6],
        canary_percent=float(row[7]), shadow_version=row[8], sticky_key=row[9], revision=row[10],
        created_at=row[11], updated_at=row[12],
    )  # fmt: skip


def _state(dep: Deployment) -> dict[str, Any]:
    return {k: getattr(dep, k) for k in STATE_FIELDS}


def _no_deployment(name: str) -> NotFound:
    return NotFound(f"no deployment named {name!r} (see `mloop deployments list`)")


class DeploymentStatements:
    """The two queries of :meth:`DeploymentTables.resolve_deployment`, compiled once."""

    def __init__(self, engine: Engine) -> None:
        d, m, a, v, vt = (
            s.deployments, s.registered_models, s.model_aliases, s.model_versions,
            s.model_version_tags,
        )  # fmt: skip
        av = v.alias("alias_target")
        # The deployment and every alias of its model (one row per alias; one row of NULLs
        # when it has none): the followed alias's version and each version's aliases at once.
        self.deployment = q.Prepared(
            engine,
            select(
                d.c.model_id,
                m.c.name,
                d.c.alias,
                d.c.version,
                d.c.canary_version,
                d.c.canary_percent,
                d.c.shadow_version,
                d.c.sticky_key,
                d.c.revision,
                a.c.alias,
                av.c.version,
            )
            .join(m, m.c.id == d.c.model_id)
            .outerjoin(a, a.c.model_id == d.c.model_id)
            .outerjoin(av, av.c.id == a.c.version_id)
            .where(d.c.name == bindparam("name")),
            ["name"],
        )
        # Up to three versions of the model, one row per tag (one row of NULLs when untagged).
        self.versions = q.Prepared(
            engine,
            select(*_VERSION_COLUMNS, vt.c.key, vt.c.value)
            .join(m, m.c.id == v.c.model_id)
            .outerjoin(vt, vt.c.version_id == v.c.id)
            .where(
                v.c.model_id == bindparam("model_id"),
                v.c.version.in_([bindparam("a"), bindparam("b"), bindparam("c")]),
            ),
            ["model_id", "a", "b", "c"],
        )


class DeploymentTables(StorePart):
    """The deployment methods of the SQL store (mixed into ``SqlStore``)."""

    if TYPE_CHECKING:
        engine: Engine

    @property
    def _deployment_statements(self) -> DeploymentStatements:
        """Compiled on first use (two threads may both compile them; either is fine)."""
        found: DeploymentStatements | None = self.__dict__.get("_deployment_stmts")
        if found is None:
            found = self.__dict__["_deployment_stmts"] = DeploymentStatements(self.engine)
        return found

    # -- helpers ----------------------------------------------------------------------------
    def _deployment_row(
        self, conn: Connection, name: str, *, lock: bool = False
    ) -> tuple[int, int, Deployment]:
        d, m = s.deployments, s.registered_models
        query = select(*_COLUMNS).join(m, m.c.id == d.c.model_id).where(d.c.name == name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update(of=d)
        row = conn.execute(query).first()
        if row is None:
            raise _no_deployment(name)
        return int(row[0]), int(row[1]), _deployment(row)

    def _alias_target(self, conn: Connection, model_id: int, model: str, alias: str) -> int:
        a, v = s.model_aliases, s.model_versions
        found = conn.execute(
            select(v.c.version)
            .join(a, a.c.version_id == v.c.id)
            .where(a.c.model_id == model_id, a.c.alias == alias)
        ).scalar()
        if found is None:
            known = sorted(
                conn.execute(select(a.c.alias).where(a.c.model_id == model_id)).scalars()
            )
            raise NotFound(
                f"model {model!r} has no alias {alias!r} (aliases: {', '.join(known) or 'none'}); "
                f"set it first: mloop models promote {model}/VERSION --alias {alias}"
            )
        return int(found)

    def _check_version(
        self, conn: Connection, model_id: int, model: str, version: object, field: str
    ) -> int:
        number = _check_number(version, field)
        v = s.model_versions
        status = conn.execute(
            select(v.c.status).where(v.c.model_id == model_id, v.c.version == number)
        ).scalar()
        if status is None:
            raise NotFound(
                f"model {model!r} has no version {number} (see `mloop models versions {model}`)",
                field=field,
            )
        if status != ModelVersionStatus.READY.value:
            raise InvalidState(
                f"version {number} of {model!r} is deleted; a deployment cannot serve it",
                field=field,
            )
        return number

    def _validate(
        self,
        conn: Connection,
        model_id: int,
        model: str,
        state: dict[str, Any],
        *,
        check_primary: bool = True,
    ) -> int | None:
        """Check a whole deployment state; return the followed alias's version (or None)."""
        alias, version = state["alias"], state["version"]
        if (alias is None) == (version is None):
            raise InvalidInput(
                "a deployment serves a version pinned by number or follows an alias: give "
                "exactly one (e.g. fraud@champion or fraud/3)",
                field="alias" if alias is not None else "version",
            )
        alias_version: int | None = None
        if alias is not None:
            check_alias(alias)
            alias_version = primary = self._alias_target(conn, model_id, model, alias)
        else:
            primary = self._check_version(conn, model_id, model, version, "version")
        percent = state["canary_percent"]
        if (
            not isinstance(percent, int | float)
            or isinstance(percent, bool)
            or not math.isfinite(percent)
            or not 0 <= percent <= 100
        ):
            raise InvalidInput(
                f"canary_percent is a share of the traffic from 0 to 100, got {percent!r}",
                field="canary_percent",
            )
        state["canary_percent"] = float(percent)
        canary = state["canary_version"]
        if canary is None:
            if percent != 0 or state["sticky_key"] is not None:
                raise InvalidInput(
                    "a canary percentage or sticky key needs a canary version",
                    field="canary_version",
                )
        else:
            canary = self._check_version(conn, model_id, model, canary, "canary_version")
            if check_primary and canary == primary:
                raise InvalidInput(
                    f"the canary version {canary} is the primary version of the deployment; "
                    "choose another version",
                    field="canary_version",
                )
        sticky = state["sticky_key"]
        if sticky is not None and (not isinstance(sticky, str) or not STICKY_KEY.fullmatch(sticky)):
            raise InvalidInput(
                f"sticky_key {q.short(str(sticky))!r} is invalid: name a request header "
                "with 1-128 letters, digits, '.', '_' or '-' (e.g. X-Customer-Id)",
                field="sticky_key",
            )
        shadow = state["shadow_version"]
        if shadow is not None:
            shadow = self._check_version(conn, model_id, model, shadow, "shadow_version")
            if check_primary and shadow == primary:
                raise InvalidInput(
                    f"the shadow version {shadow} is the primary version of the deployment; "
                    "choose another version",
                    field="shadow_version",
                )
        return alias_version

    def _record(  # noqa: PLR0917
        self,
        conn: Connection,
        deployment_id: int,
        name: str,
        revision: int,
        action: str,
        before: dict[str, Any],
        after: dict[str, Any],
        undoes: int | None,
        actor: str,
        now: int,
        reason: str = "",
    ) -> None:
        conn.execute(
            s.deployment_history.insert().values(
                deployment_id=deployment_id, revision=revision, action=action,
                before=dumps(before, "deployment state"), after=dumps(after, "deployment state"),
                undoes=undoes, actor=actor, at=now,
            )
        )  # fmt: skip
        audited = {**after, "revision": revision}
        if undoes is not None:
            audited["undoes"] = undoes
        if reason:
            audited["reason"] = reason
        self._audit(conn, actor, f"deployment.{action}", name, before or None, audited)

    # -- changes ----------------------------------------------------------------------------
    def create_deployment(
        self,
        name: str,
        *,
        model: str,
        alias: str | None = None,
        version: int | None = None,
        actor: str,
    ) -> Deployment:
        """Create a deployment of ``model`` following ``alias`` or pinned to ``version``."""
        check_deployment_name(name)
        taken = f"a deployment named {name!r} already exists (see `mloop deployments show {name}`)"
        d = s.deployments
        with self._write(duplicate=taken) as conn:
            if conn.execute(select(d.c.id).where(d.c.name == name)).first() is not None:
                raise AlreadyExists(taken)
            model_id = conn.execute(
                select(s.registered_models.c.id).where(s.registered_models.c.name == model)
            ).scalar()
            if model_id is None:
                raise NotFound(f"no registered model named {model!r} (see `mloop models list`)")
            state: dict[str, Any] = dict.fromkeys(STATE_FIELDS)
            state.update(alias=alias, version=version, canary_percent=0.0)
            alias_version = self._validate(conn, model_id, model, state)
            now = q.now_ms()
            deployment_id = conn.execute(
                d.insert()
                .values(model_id=model_id, name=name, revision=1, created_at=now, updated_at=now,
                        **state)
                .returning(d.c.id)
            ).scalar_one()  # fmt: skip
            after = {**state, "alias_version": alias_version}
            self._record(conn, deployment_id, name, 1, "created", {}, after, None, actor, now)
            return self._deployment_row(conn, name)[2]

    def update_deployment(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        action: str,
        actor: str,
        expected_revision: int | None = None,
        undoes: int | None = None,
        reason: str = "",
    ) -> Deployment:
        """Apply ``changes`` (fields of STATE_FIELDS) as one change named ``action``."""
        if action not in ACTIONS or action == "created":
            raise InvalidInput(f"unknown deployment change {action!r}")
        unknown = sorted(set(changes) - set(STATE_FIELDS))
        if unknown:
            raise InvalidInput(
                f"a deployment change sets {', '.join(STATE_FIELDS)}; not {', '.join(unknown)}"
            )
        h = s.deployment_history
        with self._write() as conn:
            deployment_id, model_id, old = self._deployment_row(conn, name, lock=True)
            if expected_revision is not None and old.revision != expected_revision:
                raise Conflict(
                    f"deployment {name!r} changed while this change was prepared (revision "
                    f"{old.revision}, expected {expected_revision}); look at it again and retry"
                )
            state = {**_state(old), **changes}
            if state == _state(old) and action != "rolled_back":
                return old
            alias_version = self._validate(
                conn, model_id, old.model, state, check_primary=action != "rolled_back"
            )
            last = conn.execute(
                select(h.c.after).where(
                    h.c.deployment_id == deployment_id, h.c.revision == old.revision
                )
            ).scalar()
            before = loads(last) if last is not None else _state(old)
            revision = old.revision + 1
            now = q.now_ms()
            conn.execute(
                update(s.deployments)
                .where(s.deployments.c.id == deployment_id)
                .values(revision=revision, updated_at=now, **state)
            )
            after = {**state, "alias_version": alias_version}
            self._record(
                conn, deployment_id, name, revision, action, before, after, undoes, actor, now,
                reason,
            )  # fmt: skip
            return self._deployment_row(conn, name)[2]

    def delete_deployment(self, name: str, *, actor: str) -> None:
        """Delete a deployment and its history (its audit events stay)."""
        with self._write() as conn:
            deployment_id, _, old = self._deployment_row(conn, name, lock=True)
            h = s.deployment_history
            conn.execute(delete(h).where(h.c.deployment_id == deployment_id))
            conn.execute(delete(s.deployments).where(s.deployments.c.id == deployment_id))
            self._audit(
                conn, actor, "deployment.deleted", name,
                {**_state(old), "model": old.model, "revision": old.revision}, None,
            )  # fmt: skip

    # -- reads ------------------------------------------------------------------------------
    def get_deployment(self, name: str) -> Deployment:
        """A deployment by name."""
        with self._read() as conn:
            return self._deployment_row(conn, name)[2]

    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""
        d, m = s.deployments, s.registered_models
        with self._read() as conn:
            rows = conn.execute(select(*_COLUMNS).join(m, m.c.id == d.c.model_id)).all()
        return sorted((_deployment(r) for r in rows), key=lambda x: x.name)

    def list_deployment_history(self, name: str) -> list[DeploymentChange]:
        """Every change of a deployment, oldest first."""
        h = s.deployment_history
        with self._read() as conn:
            deployment_id = self._deployment_row(conn, name)[0]
            rows = conn.execute(
                select(h.c.revision, h.c.action, h.c.before, h.c.after, h.c.actor, h.c.at,
                       h.c.undoes)
                .where(h.c.deployment_id == deployment_id)
                .order_by(h.c.revision)
            ).all()  # fmt: skip
        return [
            DeploymentChange(
                deployment=name,
                revision=r[0],
                action=r[1],
                before=loads(r[2]) or {},
                after=loads(r[3]) or {},
                actor=r[4],
                at=r[5],
                undoes=r[6],
            )
            for r in rows
        ]

    def resolve_deployment(self, name: str) -> Targets:
        """The versions a deployment serves now, in two queries."""
        st = self._deployment_statements
        with self._read() as conn:
            rows = st.deployment.execute(conn, (name,))
            if not rows:
                raise _no_deployment(name)
            model_id, model, alias, pinned, canary, percent, shadow, sticky, revision = rows[0][:9]
            aliases: dict[int, list[str]] = {}
            alias_version: int | None = None
            for row in rows:
                if row[9] is None:
                    continue
                aliases.setdefault(row[10], []).append(row[9])
                if row[9] == alias:
                    alias_version = int(row[10])
            if alias is not None and alias_version is None:
                raise NotFound(
                    f"deployment {name!r} follows {model}@{alias}, which points at no version; "
                    f"set it (mloop models promote {model}/VERSION --alias {alias}) or pin a "
                    f"version (mloop deployments pin {name} VERSION)"
                )
            primary = int(pinned if alias_version is None else alias_version)
            wanted = (primary, canary or primary, shadow or primary)
            found = st.versions.execute(conn, (model_id, *wanted))
        tags: dict[int, dict[str, str]] = {}
        first: dict[int, Any] = {}
        for row in found:
            number = row[2]
            first.setdefault(number, row)
            if row[-2] is not None:
                tags.setdefault(number, {})[row[-2]] = row[-1]

        def version(number: int, role: str) -> ModelVersion:
            row = first.get(number)
            if row is None:
                raise NotFound(f"deployment {name!r}: model {model!r} has no version {number}")
            found_version = _version_of(
                row[:-2], tags.get(number, {}), tuple(sorted(aliases.get(number, [])))
            )
            if found_version.status != ModelVersionStatus.READY:
                raise InvalidState(
                    f"deployment {name!r} serves version {number} of {model!r} as its {role}, "
                    "but that version is deleted; change the deployment"
                )
            return found_version

        has_canary = canary is not None and canary != primary
        has_shadow = shadow is not None and shadow != primary
        return Targets(
            primary=version(primary, "primary"),
            canary=version(canary, "canary") if has_canary else None,
            canary_percent=float(percent) if has_canary else 0.0,
            shadow=version(shadow, "shadow") if has_shadow else None,
            revision=int(revision),
            alias_version=alias_version,
            sticky_key=sticky if has_canary else None,
        )
