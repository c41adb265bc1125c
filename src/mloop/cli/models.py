"""``mloop models``: registered models, versions, aliases, approvals, lineage and cards.

The commands call :mod:`mloop.registry`, the same functions a Python user calls.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.panel import Panel
from rich.table import Table

from mloop.cli.render import emit_json, format_time, out, short_id
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import InvalidInput
from mloop.store.base import AliasChange, ModelVersion

__all__ = ["models"]


def _version_json(v: ModelVersion) -> dict[str, object]:
    return {
        "model": v.model,
        "version": v.version,
        "uri": v.uri,
        "flavor": v.flavor,
        "package_digest": v.package_digest,
        "run_id": v.run_id,
        "status": v.status.value,
        "aliases": list(v.aliases),
        "tags": v.tags,
        "description": v.description,
        "created_at": v.created_at,
        "created_by": v.created_by,
        "signature": v.signature,
    }


def _change_json(c: AliasChange) -> dict[str, object]:
    return {
        "model": c.model,
        "alias": c.alias,
        "version": c.version,
        "previous": c.previous,
        "reason": c.reason,
        "at": c.at,
        "actor": c.actor,
    }


def _split(ref: str) -> tuple[str, int]:
    """``NAME/VERSION`` or ``models:/NAME/VERSION`` → (name, version)."""
    from mloop.registry import parse_model_uri

    parsed = parse_model_uri(ref)
    if parsed.version is None:
        raise InvalidInput(f"{ref!r} names no version number; use NAME/VERSION (e.g. fraud/4)")
    return parsed.name, parsed.version


@click.group()
def models() -> None:
    """Registered models: versions, aliases (champion, …), approvals, lineage, model cards."""


@models.command("list")
@json_option
@pass_session
def list_(session: CliSession, as_json: bool) -> None:
    """List registered models with their newest version and aliases.

    \b
    Example:
      mloop models list
    """
    from mloop import registry

    found = registry.list_models(client=session.client)
    if as_json:
        emit_json(
            [
                {"name": m.name, "latest_version": m.latest_version, "aliases": m.aliases,
                 "description": m.description, "tags": m.tags, "updated_at": m.updated_at}
                for m in found
            ]
        )  # fmt: skip
        return
    table = Table(title="Registered models", title_justify="left")
    for column in ("name", "latest", "aliases", "updated", "description"):
        table.add_column(column)
    for m in found:
        aliases = ", ".join(f"{a}→v{n}" for a, n in m.aliases.items())
        latest = f"v{m.latest_version}" if m.latest_version else "-"
        table.add_row(m.name, latest, aliases, format_time(m.updated_at), m.description)
    out().print(table)


@models.command("versions")
@click.argument("name")
@json_option
@pass_session
def versions(session: CliSession, name: str, as_json: bool) -> None:
    """List the versions of model NAME.

    \b
    Example:
      mloop models versions fraud-detector
    """
    from mloop import registry

    found = registry.list_versions(name, client=session.client)
    if as_json:
        emit_json([_version_json(v) for v in found])
        return
    table = Table(title=f"Versions of {name}", title_justify="left")
    for column in ("version", "status", "aliases", "flavor", "run", "created", "package"):
        table.add_column(column)
    for v in found:
        table.add_row(
            f"v{v.version}",
            v.status.value,
            ", ".join(v.aliases),
            v.flavor,
            short_id(v.run_id) or "-",
            format_time(v.created_at),
            v.package_digest[:12],
        )
    out().print(table)


@models.command("show")
@click.argument("uri", metavar="URI")
@json_option
@pass_session
def show(session: CliSession, uri: str, as_json: bool) -> None:
    """Show one version (models:/NAME/N, models:/NAME@ALIAS, or NAME for the newest).

    \b
    Examples:
      mloop models show models:/fraud-detector@champion
      mloop models show fraud-detector/4 --json
    """
    from mloop import registry

    client = session.client
    version = registry.resolve(uri, client=client)
    records = client.store.list_model_records(version.model, version.version)
    if as_json:
        emit_json(
            {
                **_version_json(version),
                "records": [
                    {"id": r.id, "kind": r.kind, "subject": r.subject, "passed": r.passed,
                     "created_at": r.created_at, "created_by": r.created_by}
                    for r in records
                ],
            }
        )  # fmt: skip
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("status", version.status.value)
    grid.add_row("aliases", ", ".join(version.aliases) or "-")
    grid.add_row("flavor", version.flavor)
    grid.add_row("package", version.package_digest)
    grid.add_row("run", version.run_id or "-")
    grid.add_row("created", f"{format_time(version.created_at)} by {version.created_by}")
    if version.description:
        grid.add_row("description", version.description)
    inputs = (version.signature or {}).get("inputs") or {}
    columns = inputs.get("columns") if isinstance(inputs, dict) else None
    if columns:
        grid.add_row("inputs", ", ".join(f"{c['name']}: {c['type']}" for c in columns))
    for r in records:
        verdict = "" if r.passed is None else (" passed" if r.passed else " FAILED")
        grid.add_row(r.kind, f"{r.subject[:24]}{verdict} ({format_time(r.created_at)})")
    out().print(Panel(grid, title=version.uri, title_align="left"))


@models.command("promote")
@click.argument("ref", metavar="NAME/VERSION")
@click.option("--alias", default="champion", show_default=True, help="The alias to move.")
@click.option("--reason", default="", help="Why (recorded with the move).")
@json_option
@pass_session
def promote(session: CliSession, ref: str, alias: str, reason: str, as_json: bool) -> None:
    """Point ALIAS at a version; refused unless the alias's policy (approvals, gate) holds.

    \b
    Example:
      mloop models promote fraud-detector/4 --alias champion --reason "beats v3"
    """
    from mloop import registry

    name, number = _split(ref)
    change = registry.set_alias(name, alias, number, reason=reason, client=session.client)
    if as_json:
        emit_json(_change_json(change))
        return
    before = f"v{change.previous}" if change.previous else "nothing"
    out().print(f"{name}@{alias}: {before} → v{change.version}")


@models.command("rollback")
@click.argument("name")
@click.option("--alias", default="champion", show_default=True, help="The alias to move back.")
@click.option("--reason", default="", help="Why (recorded with the move).")
@json_option
@pass_session
def rollback(session: CliSession, name: str, alias: str, reason: str, as_json: bool) -> None:
    """Move ALIAS back to the version it pointed at before (no policy check).

    \b
    Example:
      mloop models rollback fraud-detector --alias champion --reason "alerts"
    """
    from mloop import registry

    change = registry.rollback(name, alias, reason=reason, client=session.client)
    if as_json:
        emit_json(_change_json(change))
        return
    out().print(f"{name}@{alias}: v{change.previous} → v{change.version} (rolled back)")


@models.command("approve")
@click.argument("ref", metavar="NAME/VERSION")
@click.option("--by", "by", required=True, help="Who approves (a person or a team).")
@click.option("--note", default="", help="What was reviewed.")
@click.option("--alias", default="*", show_default=True, help="The alias it is approved for.")
@json_option
@pass_session
def approve(
    session: CliSession, *, ref: str, by: str, note: str, alias: str, as_json: bool
) -> None:
    """Record an approval of a version (for one alias, or any).

    \b
    Example:
      mloop models approve fraud-detector/4 --by risk-team --note "reviewed fairness"
    """
    from mloop import registry

    name, number = _split(ref)
    record = registry.approve(name, number, by=by, note=note, alias=alias, client=session.client)
    if as_json:
        emit_json({"id": record.id, "model": name, "version": number, "by": by, "alias": alias})
        return
    out().print(f"approved {name}/{number} for {alias} by {by}")


@models.command("policy")
@click.argument("name")
@click.option("--alias", default="champion", show_default=True, help="The alias it governs.")
@click.option("--approvals", type=click.IntRange(min=0), default=0, help="Approvals needed.")
@click.option("--approver", "approvers", multiple=True, help="Who may approve (repeatable).")
@click.option("--gate/--no-gate", default=False, help="Require a passing gate decision.")
@json_option
@pass_session
def policy(
    session: CliSession,
    *,
    name: str,
    alias: str,
    approvals: int,
    approvers: tuple[str, ...],
    gate: bool,
    as_json: bool,
) -> None:
    """Set what moving ALIAS requires (no options: remove the policy).

    \b
    Example:
      mloop models policy fraud-detector --alias champion --approvals 1 --approver risk-team --gate
    """
    from mloop import registry

    result = registry.set_policy(
        name, alias, approvals=approvals, approvers=approvers, gate=gate, client=session.client
    )
    if as_json:
        emit_json({"model": name, "alias": alias, "policy": result})
        return
    out().print(f"{name}@{alias}: {result or 'no policy'}")


@models.command("lineage")
@click.argument("uri", metavar="URI")
@json_option
@pass_session
def lineage(session: CliSession, uri: str, as_json: bool) -> None:
    """Show where a version came from: run, code commit, dataset versions (as a tree).

    \b
    Example:
      mloop models lineage models:/fraud-detector@champion
    """
    from mloop.registry.lineage import lineage as walk

    found = walk(uri, client=session.client)
    if as_json:
        emit_json(found.to_dict())
    else:
        out().print(found.tree())


@models.command("card")
@click.argument("uri", metavar="URI")
@click.option(
    "--format",
    "card_format",
    type=click.Choice(["markdown", "html"]),
    default="markdown",
    show_default=True,
    help="Markdown (printed) or HTML.",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
@json_option
@pass_session
def card(
    session: CliSession, *, uri: str, card_format: str, output: Path | None, as_json: bool
) -> None:
    """Generate the model card of a version from what is recorded.

    \b
    Examples:
      mloop models card models:/fraud-detector@champion
      mloop models card fraud-detector/4 --format html --output card.html
    """
    from mloop.registry.card import model_card

    made = model_card(uri, client=session.client)
    if as_json:
        emit_json(
            {"uri": made.uri, "sections": [{"title": t, "body": b} for t, b in made.sections()]}
        )
        return
    text = made.to_html() if card_format == "html" else made.to_markdown()
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    output.write_text(text, encoding="utf-8")
    out().print(f"wrote the model card of {made.uri} to {output}")
