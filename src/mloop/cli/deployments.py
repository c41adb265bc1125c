"""``mloop deployments``: what a serving endpoint serves, its traffic split, history, rollback.

The commands call :mod:`mloop.serving.deployments`, the same functions a Python user calls.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click
from rich.panel import Panel
from rich.table import Table

from mloop.cli.render import emit_json, format_time, out
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import InvalidInput, MloopError
from mloop.store.records import Deployment, DeploymentChange, ModelVersion, Targets

__all__ = ["deployments"]


def _version_number(text: str) -> int:
    """``3``, ``v3`` or ``NAME/3`` → 3."""
    raw = text.strip().rpartition("/")[2].removeprefix("v")
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"{text!r} is not a version number; give one like 3 (or v3)")
    return int(raw)


def _targets_json(t: Targets) -> dict[str, Any]:
    return {
        "primary": t.primary.version,
        "canary": None if t.canary is None else t.canary.version,
        "canary_percent": t.canary_percent,
        "shadow": None if t.shadow is None else t.shadow.version,
        "alias_version": t.alias_version,
        "sticky_key": t.sticky_key,
        "revision": t.revision,
    }


def _json(d: Deployment, targets: Targets | None = None, problem: str = "") -> dict[str, Any]:
    doc: dict[str, Any] = {**dataclasses.asdict(d), "model_uri": d.model_uri}
    doc["targets"] = None if targets is None else _targets_json(targets)
    if problem:
        doc["problem"] = problem
    return doc


def _resolved(session: CliSession, d: Deployment) -> tuple[Targets | None, str]:
    """The deployment's targets, or why they cannot be resolved now."""
    from mloop.serving.deployments import resolve_targets

    try:
        return resolve_targets(d.name, client=session.client), ""
    except MloopError as exc:
        return None, exc.message


def _v(version: ModelVersion | int | None) -> str:
    if version is None:
        return "-"
    return f"v{version.version if isinstance(version, ModelVersion) else version}"


def _primary(d: Deployment, t: Targets | None) -> str:
    if d.alias is not None:
        return f"@{d.alias} → {_v(t.primary) if t is not None else '?'}"
    return _v(d.version)


def _canary(d: Deployment) -> str:
    if d.canary_version is None:
        return "-"
    sticky = f" by {d.sticky_key}" if d.sticky_key else ""
    return f"{_v(d.canary_version)} {d.canary_percent:g}%{sticky}"


def _summary(d: Deployment, t: Targets | None) -> str:
    parts = [f"{d.model} {_primary(d, t)}"]
    if d.canary_version is not None:
        parts.append(f"canary {_canary(d)}")
    if d.shadow_version is not None:
        parts.append(f"shadow {_v(d.shadow_version)}")
    return ", ".join(parts)


def _report(session: CliSession, d: Deployment, verb: str, as_json: bool) -> None:
    t, problem = _resolved(session, d)
    if as_json:
        emit_json(_json(d, t, problem))
        return
    out().print(f"deployment {d.name}: {verb}; revision {d.revision}: {_summary(d, t)}")


def _what_changed(c: DeploymentChange) -> str:
    if c.action == "created":
        after = c.after
        target = f"@{after.get('alias')}" if after.get("alias") else _v(after.get("version"))
        seen = f" (v{after['alias_version']})" if after.get("alias_version") else ""
        return f"serves {target}{seen}"
    names = ("alias", "version", "canary_version", "canary_percent", "shadow_version",
             "sticky_key", "alias_version")  # fmt: skip
    changed = [
        f"{k} {c.before.get(k)!s}→{c.after.get(k)!s}"
        for k in names
        if c.before.get(k) != c.after.get(k)
    ]
    text = ", ".join(changed) or "no field changed"
    return f"undoes r{c.undoes}: {text}" if c.undoes is not None else text


@click.group()
def deployments() -> None:
    """Deployments: the model versions an endpoint serves, canary split, shadow, rollback."""


@deployments.command("list")
@json_option
@pass_session
def list_(session: CliSession, as_json: bool) -> None:
    """List deployments: model, primary (alias resolved), canary, shadow, revision.

    \b
    Example:
      mloop deployments list
    """
    from mloop.serving.deployments import list_deployments

    found = [(d, *_resolved(session, d)) for d in list_deployments(client=session.client)]
    if as_json:
        emit_json([_json(d, t, problem) for d, t, problem in found])
        return
    table = Table(title="Deployments", title_justify="left")
    for column in ("name", "model", "primary", "canary", "shadow", "revision", "updated"):
        table.add_column(column)
    for d, t, _ in found:
        table.add_row(
            d.name, d.model, _primary(d, t), _canary(d), _v(d.shadow_version), str(d.revision),
            format_time(d.updated_at),
        )  # fmt: skip
    out().print(table)


@deployments.command("show")
@click.argument("name")
@json_option
@pass_session
def show(session: CliSession, name: str, as_json: bool) -> None:
    """Show one deployment and the versions it serves now.

    \b
    Example:
      mloop deployments show fraud-api --json
    """
    from mloop.serving.deployments import get_deployment

    d = get_deployment(name, client=session.client)
    t, problem = _resolved(session, d)
    if as_json:
        emit_json(_json(d, t, problem))
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("model", d.model_uri)
    grid.add_row("primary", _primary(d, t))
    grid.add_row("canary", _canary(d))
    grid.add_row("shadow", _v(d.shadow_version))
    grid.add_row("revision", str(d.revision))
    grid.add_row("created", format_time(d.created_at))
    grid.add_row("updated", format_time(d.updated_at))
    if problem:
        grid.add_row("problem", problem)
    out().print(Panel(grid, title=f"deployment {d.name}", title_align="left"))


@deployments.command("history")
@click.argument("name")
@json_option
@pass_session
def history(session: CliSession, name: str, as_json: bool) -> None:
    """List every change of a deployment, oldest first.

    \b
    Example:
      mloop deployments history fraud-api
    """
    from mloop.serving.deployments import deployment_history

    changes = deployment_history(name, client=session.client)
    if as_json:
        emit_json([dataclasses.asdict(c) for c in changes])
        return
    table = Table(title=f"History of {name}", title_justify="left")
    for column in ("revision", "action", "when", "by", "what changed"):
        table.add_column(column)
    for c in changes:
        table.add_row(str(c.revision), c.action, format_time(c.at), c.actor, _what_changed(c))
    out().print(table)


@deployments.command("create")
@click.argument("name")
@click.argument("model_uri", metavar="MODEL_URI")
@json_option
@pass_session
def create(session: CliSession, name: str, model_uri: str, as_json: bool) -> None:
    """Create a deployment following an alias (NAME@ALIAS) or pinned to a version (NAME/N).

    \b
    Examples:
      mloop deployments create fraud-api fraud-detector@champion
      mloop deployments create fraud-batch models:/fraud-detector/3
    """
    from mloop.serving.deployments import create_deployment

    d = create_deployment(name, model_uri, client=session.client)
    _report(session, d, "created", as_json)


@deployments.command("canary")
@click.argument("name")
@click.argument("version", required=False)
@click.option(
    "--percent", type=float, default=None, help="Share of the traffic (0-100) for VERSION."
)
@click.option(
    "--sticky-key", default=None, metavar="HEADER",
    help="Route by the hash of this request header's value (same value, same version).",
)  # fmt: skip
@click.option("--clear", is_flag=True, help="Remove the canary: all traffic to the primary.")
@json_option
@pass_session
def canary(  # noqa: PLR0917
    session: CliSession,
    name: str,
    version: str | None,
    percent: float | None,
    sticky_key: str | None,
    clear: bool,
    as_json: bool,
) -> None:
    """Send a share of the traffic to a canary VERSION, or --clear it.

    \b
    Examples:
      mloop deployments canary fraud-api 5 --percent 10 --sticky-key X-Customer-Id
      mloop deployments canary fraud-api --clear
    """
    from mloop.serving.deployments import clear_canary, set_canary

    if clear:
        if version is not None or percent is not None or sticky_key is not None:
            raise InvalidInput("--clear takes no VERSION, --percent or --sticky-key")
        _report(session, clear_canary(name, client=session.client), "canary cleared", as_json)
        return
    if version is None or percent is None:
        raise InvalidInput(
            "give the canary VERSION and --percent (e.g. canary fraud-api 5 --percent 10), "
            "or --clear"
        )
    d = set_canary(
        name, _version_number(version), percent, sticky_key=sticky_key, client=session.client
    )
    _report(session, d, "canary set", as_json)


@deployments.command("shadow")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--clear", is_flag=True, help="Stop mirroring traffic.")
@json_option
@pass_session
def shadow(session: CliSession, name: str, version: str | None, clear: bool, as_json: bool) -> None:
    """Mirror every request to a shadow VERSION (answers logged, not returned), or --clear it.

    \b
    Examples:
      mloop deployments shadow fraud-api 6
      mloop deployments shadow fraud-api --clear
    """
    from mloop.serving.deployments import set_shadow

    if clear == (version is not None):
        raise InvalidInput("give the shadow VERSION, or --clear (not both)")
    number = None if version is None else _version_number(version)
    d = set_shadow(name, number, client=session.client)
    _report(session, d, "shadow cleared" if number is None else "shadow set", as_json)


@deployments.command("promote")
@click.argument("name")
@click.option("--reason", default="", help="Why (recorded with the alias move and the change).")
@json_option
@pass_session
def promote(session: CliSession, name: str, reason: str, as_json: bool) -> None:
    """Make the canary the primary: move the followed alias (its policy applies) or pin it.

    \b
    Example:
      mloop deployments promote fraud-api --reason "canary healthy for 24 h"
    """
    from mloop.serving.deployments import promote_canary

    d = promote_canary(name, reason=reason, client=session.client)
    _report(session, d, "canary promoted", as_json)


@deployments.command("rollback")
@click.argument("name")
@click.option("--reason", default="", help="Why (recorded with the rollback).")
@json_option
@pass_session
def rollback(session: CliSession, name: str, reason: str, as_json: bool) -> None:
    """Undo the newest change: the followed alias's move, or the deployment's own change.

    \b
    Example:
      mloop deployments rollback fraud-api --reason "error rate up"
    """
    from mloop.serving.deployments import rollback as roll_back

    d = roll_back(name, reason=reason, client=session.client)
    _report(session, d, "rolled back", as_json)


@deployments.command("pin")
@click.argument("name")
@click.argument("version")
@json_option
@pass_session
def pin(session: CliSession, name: str, version: str, as_json: bool) -> None:
    """Serve VERSION of the deployment's model whatever its aliases do.

    \b
    Example:
      mloop deployments pin fraud-api 3
    """
    from mloop.serving.deployments import pin_version

    d = pin_version(name, _version_number(version), client=session.client)
    _report(session, d, f"pinned to v{d.version}", as_json)


@deployments.command("follow")
@click.argument("name")
@click.argument("alias")
@json_option
@pass_session
def follow(session: CliSession, name: str, alias: str, as_json: bool) -> None:
    """Serve the version behind ALIAS of the deployment's model, moving when it moves.

    \b
    Example:
      mloop deployments follow fraud-api champion
    """
    from mloop.serving.deployments import follow_alias

    d = follow_alias(name, alias, client=session.client)
    _report(session, d, f"follows @{alias}", as_json)


@deployments.command("delete")
@click.argument("name")
@json_option
@pass_session
def delete(session: CliSession, name: str, as_json: bool) -> None:
    """Delete a deployment and its history (its audit events stay).

    \b
    Example:
      mloop deployments delete fraud-api
    """
    from mloop.serving.deployments import delete_deployment

    delete_deployment(name, client=session.client)
    if as_json:
        emit_json({"name": name, "deleted": True})
        return
    out().print(f"deployment {name}: deleted")
