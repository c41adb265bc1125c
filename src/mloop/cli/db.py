"""``mloop db``: the metadata store's schema revision, and upgrading it."""

from __future__ import annotations

import click

from mloop.cli.render import emit_json, out
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.store import migrate, open_store

__all__ = ["db"]


@click.group()
def db() -> None:
    """Inspect and upgrade the metadata database schema."""


@db.command()
@json_option
@pass_session
def current(session: CliSession, as_json: bool) -> None:
    """Show the schema revision the database is at, and the one this mloop needs.

    \b
    Example:
      mloop --tracking-uri postgresql+psycopg://mloop@db/mloop db current
    """
    store = open_store(session.settings.tracking_uri, settings=session.settings, migrate=False)
    try:
        revision = store.schema_revision()
    finally:
        store.close()
    head = migrate.head_revision()
    if as_json:
        emit_json(
            {
                "tracking_uri": session.settings.tracking_uri,
                "current": revision,
                "head": head,
                "up_to_date": revision == head,
            }
        )
        return
    state = "up to date" if revision == head else "behind: run mloop db upgrade"
    out().print(f"current revision: {revision or '(empty database)'}")
    out().print(
        f"head revision:    {head}  ({state})", style=None if revision == head else "yellow"
    )


@db.command()
@json_option
@pass_session
def upgrade(session: CliSession, as_json: bool) -> None:
    """Bring the database schema to the head revision (safe to run again).

    \b
    Example:
      mloop db upgrade
    """
    store = open_store(session.settings.tracking_uri, settings=session.settings, migrate=False)
    try:
        before = store.schema_revision()
    finally:
        store.close()
    store = open_store(session.settings.tracking_uri, settings=session.settings, migrate=True)
    try:
        after = store.schema_revision()
    finally:
        store.close()
    if as_json:
        emit_json({"before": before, "after": after, "changed": before != after})
        return
    if before == after:
        out().print(f"already at the head revision {after}")
    else:
        out().print(f"upgraded {before or '(empty database)'} -> {after}")
