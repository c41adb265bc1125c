"""Deployments: which versions of a registered model an endpoint serves, and how traffic splits.

::

    create_deployment("fraud-api", "fraud@champion")            # follows the alias
    set_canary("fraud-api", 4, 10, sticky_key="X-Customer-Id")  # 10 % to version 4
    set_shadow("fraud-api", 5)                                  # version 5 sees every request
    promote_canary("fraud-api")                                 # champion -> 4 (policy applies)
    rollback("fraud-api")                                       # undo the newest change

A deployment follows an alias (``fraud@champion``: when the alias moves, servers swap models)
or is pinned to a version (``fraud/3``). Every change is checked whole, bumps the deployment's
revision, and is kept in its history and the audit log (object type ``deployment``).
:func:`resolve_targets` is what a server polls: two queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, InvalidState, NotFound
from mloop.registry.uri import parse_model_uri
from mloop.store.deployments import STATE_FIELDS, check_deployment_name
from mloop.store.records import Deployment, DeploymentChange, Targets
from mloop.tracking.fluent import client_or_default

if TYPE_CHECKING:
    from mloop.tracking import TrackingClient

__all__ = [
    "Deployment",
    "DeploymentChange",
    "Targets",
    "clear_canary",
    "create_deployment",
    "delete_deployment",
    "deployment_history",
    "follow_alias",
    "get_deployment",
    "list_deployments",
    "pin_version",
    "promote_canary",
    "resolve_targets",
    "rollback",
    "set_canary",
    "set_shadow",
]


def _who(client: TrackingClient, actor: str | None) -> str:
    if actor is None:
        return client.settings.actor
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidInput(f"actor names who makes the change, got {actor!r}", field="actor")
    return actor


def create_deployment(
    name: str, model_uri: str, *, actor: str | None = None, client: TrackingClient | None = None
) -> Deployment:
    """Create a deployment that follows an alias (``fraud@champion``, ``models:/fraud@champion``)
    or is pinned to a version (``fraud/3``, ``models:/fraud/3``). Raises InvalidName,
    InvalidInput (a URI naming neither), AlreadyExists, NotFound (model, version or alias),
    InvalidState (a deleted version)."""
    check_deployment_name(name)
    ref = parse_model_uri(model_uri)
    if ref.alias is None and ref.version is None:
        raise InvalidInput(
            f"model URI {model_uri!r} names neither an alias nor a version: use "
            f"{ref.name}@champion to follow an alias or {ref.name}/3 to pin a version",
            field="model_uri",
        )
    client = client_or_default(client)
    return client.store.create_deployment(
        name, model=ref.name, alias=ref.alias, version=ref.version, actor=_who(client, actor)
    )


def get_deployment(name: str, *, client: TrackingClient | None = None) -> Deployment:
    """A deployment by name. Raises NotFound."""
    return client_or_default(client).store.get_deployment(name)


def list_deployments(*, client: TrackingClient | None = None) -> list[Deployment]:
    """Every deployment, by name."""
    return client_or_default(client).store.list_deployments()


def deployment_history(
    name: str, *, client: TrackingClient | None = None
) -> list[DeploymentChange]:
    """Every change of a deployment, oldest first. Raises NotFound."""
    return client_or_default(client).store.list_deployment_history(name)


def resolve_targets(dep: str | Deployment, client: TrackingClient | None = None) -> Targets:
    """The versions a deployment (by name or record) serves now, read fresh from the store in
    two queries, its alias resolved: cheap enough to poll every second. A canary or shadow
    that is the primary version (the alias moved onto it) is left out. Raises NotFound (no
    such deployment; its alias points nowhere), InvalidState (a version it serves was
    deleted)."""
    name = dep.name if isinstance(dep, Deployment) else dep
    return client_or_default(client).store.resolve_deployment(name)


def _change(
    name: str,
    changes: dict[str, Any],
    action: str,
    actor: str | None,
    client: TrackingClient | None,
    **extra: Any,
) -> Deployment:
    client = client_or_default(client)
    return client.store.update_deployment(
        name, changes, action=action, actor=_who(client, actor), **extra
    )


def set_canary(
    name: str,
    version: int,
    percent: float,
    *,
    sticky_key: str | None = None,
    actor: str | None = None,
    client: TrackingClient | None = None,
) -> Deployment:
    """Send ``percent`` (0-100) of the traffic to ``version``; with ``sticky_key`` (a request
    header name), requests with the same value of it always go the same way. Raises
    NotFound, InvalidInput (percent outside 0-100, the canary is the primary version),
    InvalidState (a deleted version)."""
    changes = {"canary_version": version, "canary_percent": percent, "sticky_key": sticky_key}
    return _change(name, changes, "canary_set", actor, client)


def clear_canary(
    name: str, *, actor: str | None = None, client: TrackingClient | None = None
) -> Deployment:
    """Send all the traffic to the primary version again. Raises NotFound."""
    changes = {"canary_version": None, "canary_percent": 0.0, "sticky_key": None}
    return _change(name, changes, "canary_cleared", actor, client)


def promote_canary(
    name: str, *, reason: str = "", actor: str | None = None, client: TrackingClient | None = None
) -> Deployment:
    """Make the canary the primary version and clear the canary. A deployment that follows an
    alias moves the alias (:func:`mloop.registry.set_alias`: its policy applies, and every
    deployment following it moves too); a pinned one is pinned to the canary. Raises NotFound,
    InvalidState (no canary), Forbidden (the alias's policy does not hold)."""
    from mloop import registry

    client = client_or_default(client)
    who = _who(client, actor)
    dep = client.store.get_deployment(name)
    if dep.canary_version is None:
        raise InvalidState(
            f"deployment {name!r} has no canary to promote; set one first "
            f"(mloop deployments canary {name} VERSION --percent 10)"
        )
    cleared: dict[str, Any] = {"canary_version": None, "canary_percent": 0.0, "sticky_key": None}
    if dep.alias is not None:
        registry.set_alias(
            dep.model,
            dep.alias,
            dep.canary_version,
            reason=reason or f"canary of deployment {name} promoted",
            client=client,
        )
        changes = cleared
    else:
        changes = {**cleared, "version": dep.canary_version}
    return client.store.update_deployment(
        name, changes, action="canary_promoted", actor=who, expected_revision=dep.revision,
        reason=reason,
    )  # fmt: skip


def set_shadow(
    name: str,
    version: int | None,
    *,
    actor: str | None = None,
    client: TrackingClient | None = None,
) -> Deployment:
    """Mirror every request to ``version`` (its answers are logged, not returned); None stops
    mirroring. Raises NotFound, InvalidInput (the shadow is the primary version), InvalidState
    (a deleted version)."""
    action = "shadow_cleared" if version is None else "shadow_set"
    return _change(name, {"shadow_version": version}, action, actor, client)


def pin_version(
    name: str, version: int, *, actor: str | None = None, client: TrackingClient | None = None
) -> Deployment:
    """Serve ``version`` of the deployment's model, whatever its aliases do. Raises NotFound,
    InvalidInput (the canary or shadow is that version), InvalidState (a deleted version)."""
    return _change(name, {"alias": None, "version": version}, "pinned", actor, client)


def follow_alias(
    name: str, alias: str, *, actor: str | None = None, client: TrackingClient | None = None
) -> Deployment:
    """Serve the version behind ``alias`` of the deployment's model, moving when it moves.
    Raises NotFound (no such alias), InvalidName, InvalidInput (the canary or shadow is the
    alias's version)."""
    return _change(name, {"alias": alias, "version": None}, "followed", actor, client)


def delete_deployment(
    name: str, *, actor: str | None = None, client: TrackingClient | None = None
) -> None:
    """Delete a deployment and its history (its audit events stay). Raises NotFound."""
    client = client_or_default(client)
    client.store.delete_deployment(name, actor=_who(client, actor))


def _to_undo(history: list[DeploymentChange]) -> DeploymentChange | None:
    """The newest change not undone yet (rollbacks themselves are never undone)."""
    undone: set[int] = set()
    for change in reversed(history):
        if change.action == "rolled_back":
            if change.undoes is not None:
                undone.add(change.undoes)
            continue
        if change.revision in undone:
            continue
        return None if change.action == "created" else change
    return None


def rollback(
    name: str, *, reason: str = "", actor: str | None = None, client: TrackingClient | None = None
) -> Deployment:
    """Undo the newest change of what the deployment serves.

    When it follows an alias that points elsewhere than at the deployment's last change, the
    alias moved since: it goes back with :func:`mloop.registry.rollback` (every deployment
    following it goes back too). Otherwise the newest change of the deployment not undone yet
    is undone, as a new revision: its previous state comes back (undoing a promotion of the
    canary of an alias-following deployment also moves the alias back). Repeated rollbacks keep
    going back. Raises NotFound, InvalidState (nothing to roll back), Conflict (the deployment
    changed meanwhile)."""
    from mloop import registry

    client = client_or_default(client)
    who = _who(client, actor)
    store = client.store
    dep = store.get_deployment(name)
    history = store.list_deployment_history(name)
    current: int | None = None
    if dep.alias is not None:
        try:
            current = store.resolve_model_version(dep.model, alias=dep.alias).version
        except NotFound:
            current = None
        seen = history[-1].after.get("alias_version") if history else None
        if current != seen:
            moved = registry.rollback(dep.model, dep.alias, reason=reason, client=client)
            store.append_audit(
                actor=who,
                action="deployment.alias_rolled_back",
                object_type="deployment",
                object_id=name,
                before={"alias": dep.alias, "alias_version": moved.previous},
                after={"alias": dep.alias, "alias_version": moved.version, "reason": reason},
            )
            return store.get_deployment(name)
    target = _to_undo(history)
    if target is None:
        raise InvalidState(
            f"deployment {name!r} has no change to roll back: it is as it was created "
            f"(see `mloop deployments history {name}`)"
        )
    before_alias, after_alias = target.before.get("alias"), target.after.get("alias")
    if (
        target.action == "canary_promoted"
        and after_alias is not None
        and before_alias == after_alias == dep.alias
        and current == target.after.get("alias_version")
        and target.before.get("alias_version") != current
    ):
        registry.rollback(dep.model, after_alias, reason=reason, client=client)
    restore = {k: target.before.get(k) for k in STATE_FIELDS}
    return store.update_deployment(
        name, restore, action="rolled_back", actor=who, expected_revision=dep.revision,
        undoes=target.revision, reason=reason,
    )  # fmt: skip
