"""``mloop gc``: delete artifact blobs no record references any more."""

from __future__ import annotations

import click
from rich.table import Table

from mloop.cli.render import emit_json, format_bytes, out, spinner
from mloop.cli.session import CliSession, json_option, pass_session

__all__ = ["gc"]


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Keep blobs younger than this (default: the gc_grace setting, MLOOP_GC_GRACE).",
)
@click.option(
    "--purge-deleted",
    is_flag=True,
    help="First delete soft-deleted runs for good, so their artifacts can be collected.",
)
@json_option
@pass_session
def gc(
    session: CliSession, dry_run: bool, grace: float | None, purge_deleted: bool, as_json: bool
) -> None:
    """Garbage-collect unreferenced artifact blobs (younger than the grace period are kept).

    \b
    Examples:
      mloop gc --dry-run
      mloop gc --purge-deleted --grace 0
    """
    with spinner("collecting unreferenced blobs", enabled=not as_json):
        report = session.client.gc(grace=grace, dry_run=dry_run, purge_deleted=purge_deleted)
    if as_json:
        emit_json({"gc": report})
        return
    table = Table(
        title="Garbage collection" + (" (dry run)" if report.dry_run else ""),
        title_justify="left",
        show_header=False,
    )
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    verb = "would delete" if report.dry_run else "deleted"
    table.add_row("blobs scanned", str(report.scanned))
    table.add_row(f"blobs {verb}", str(report.deleted))
    table.add_row(f"bytes {verb}", format_bytes(report.freed_bytes))
    table.add_row("kept (younger than grace)", str(report.kept_young))
    out().print(table)
