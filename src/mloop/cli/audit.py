"""``mloop audit``: verify the hash-chained audit log and list recent events."""

from __future__ import annotations

import json

import click
from rich.table import Table

from mloop.cli.render import emit_json, format_time, out, spinner
from mloop.cli.session import CliSession, json_option, pass_session

__all__ = ["audit"]

CHANGE_WIDTH = 80


@click.group()
def audit() -> None:
    """The append-only, hash-chained log of every change."""


@audit.command()
@json_option
@pass_session
def verify(session: CliSession, as_json: bool) -> None:
    """Check every event's hash and link; exit 1 if the chain is broken.

    \b
    Example:
      mloop audit verify && echo "audit log intact"
    """
    with spinner("verifying the audit chain", enabled=not as_json):
        report = session.client.verify_audit()
    problems = [{"seq": seq, "reason": reason} for seq, reason in report.problems]
    if as_json:
        emit_json({"ok": report.ok, "events_checked": report.events_checked, "problems": problems})
    elif report.ok:
        out().print(f"✓ audit chain verifies ({report.events_checked} events)", style="green")
    else:
        table = Table(title="Audit chain problems", title_justify="left")
        table.add_column("seq", justify="right")
        table.add_column("problem", overflow="fold")
        for problem in problems:
            table.add_row(str(problem["seq"]), str(problem["reason"]))
        out().print(table)
    # The one error handler prints the summary line and exits 1.
    report.raise_if_broken()


def _change(before: dict[str, object] | None, after: dict[str, object] | None) -> str:
    def short(value: dict[str, object] | None) -> str:
        return "-" if value is None else json.dumps(value, sort_keys=True, default=str)

    text = f"{short(before)} → {short(after)}"
    return text if len(text) <= CHANGE_WIDTH else text[: CHANGE_WIDTH - 1] + "…"


@audit.command()
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many of the newest events to show.",
)
@click.option("--object-id", metavar="ID", help="Only events about this object (run id, …).")
@json_option
@pass_session
def log(session: CliSession, limit: int, object_id: str | None, as_json: bool) -> None:
    """List the newest audit events: who did what to which object, and when.

    \b
    Examples:
      mloop audit log -n 50
      mloop audit log --object-id 3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8 --json
    """
    store = session.client.store
    head = store.audit_head()
    if object_id is None:
        after = max(0, head[0] - limit) if head else 0
        events = list(store.iter_audit(after_seq=after))[-limit:]
    else:
        # The log is walked once, keeping only the newest matches.
        events = []
        for event in store.iter_audit():
            if event.object_id == object_id:
                events.append(event)
                if len(events) > limit:
                    events.pop(0)
    if as_json:
        emit_json({"events": events})
        return
    if not events:
        out().print("no audit events")
        return
    table = Table(title=f"Audit log (newest {len(events)})", title_justify="left")
    table.add_column("seq", justify="right")
    table.add_column("time", no_wrap=True)
    table.add_column("actor")
    table.add_column("action", style="bold")
    table.add_column("object", overflow="fold")
    table.add_column("change", overflow="fold")
    for event in events:
        table.add_row(
            str(event.seq),
            format_time(event.ts),
            event.actor,
            event.action,
            f"{event.object_type} {event.object_id}",
            _change(event.before, event.after),
        )
    out().print(table)
