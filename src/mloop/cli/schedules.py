"""``mloop schedules add|list|enable|disable|delete`` and ``mloop scheduler``.

The commands call :mod:`mloop.pipelines.scheduler`, the same functions a Python user calls.
Pipelines are named ``module:attribute`` and imported with the current folder on the path, as
``mloop pipelines run`` does.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from rich.table import Table

from mloop.cli.pipelines import cwd_on_path, parse_params
from mloop.cli.render import emit_json, format_time, out, short_id
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.store.records import Schedule

__all__ = ["scheduler", "schedules"]


def _row(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name, "pipeline": s.pipeline, "cron": s.cron, "tz": s.tz, "params": s.params,
        "enabled": s.enabled, "next_fire_at": s.next_fire_at, "last_fired_at": s.last_fired_at,
        "last_run_id": s.last_run_id, "lease_owner": s.lease_owner, "lease_until": s.lease_until,
    }  # fmt: skip


@click.group()
def schedules() -> None:
    """Cron schedules of pipelines, fired by `mloop scheduler`."""


@schedules.command("add")
@click.argument("name")
@click.argument("ref", metavar="MODULE:PIPELINE")
@click.option("--cron", required=True, help='Five cron fields or a macro, e.g. "0 2 * * *".')
@click.option("--tz", default="UTC", show_default=True, help="IANA timezone the cron is read in.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A pipeline parameter.")
@json_option
@pass_session
def add(
    session: CliSession,
    *,
    name: str,
    ref: str,
    cron: str,
    tz: str,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Schedule a pipeline; the cron, the pipeline and its params are checked first.

    \b
    Example:
      mloop schedules add nightly flows.training:training --cron "0 2 * * *" --param depth=8
    """
    from mloop.pipelines.scheduler import add_schedule

    cwd_on_path()
    s = add_schedule(name, ref, cron, tz=tz, params=parse_params(params), client=session.client)
    if as_json:
        emit_json(_row(s))
        return
    when = format_time(s.next_fire_at)
    out().print(f"schedule {s.name}: {s.pipeline} at '{s.cron}' ({s.tz}), next {when}")


@schedules.command("list")
@json_option
@pass_session
def list_(session: CliSession, as_json: bool) -> None:
    """List schedules: pipeline, cron, enabled, next and last fire.

    \b
    Example:
      mloop schedules list --json
    """
    from mloop.pipelines.scheduler import list_schedules

    found = list_schedules(client=session.client)
    if as_json:
        emit_json([_row(s) for s in found])
        return
    table = Table(title="Schedules", title_justify="left")
    for column in ("name", "pipeline", "cron", "tz", "enabled", "next", "last", "last run"):
        table.add_column(column)
    for s in found:
        table.add_row(
            s.name, s.pipeline, s.cron, s.tz, "yes" if s.enabled else "no",
            format_time(s.next_fire_at) if s.enabled else "-", format_time(s.last_fired_at),
            short_id(s.last_run_id) if s.last_run_id else "-",
        )  # fmt: skip
    out().print(table)


@schedules.command("enable")
@click.argument("name")
@json_option
@pass_session
def enable(session: CliSession, name: str, as_json: bool) -> None:
    """Enable a schedule; it next fires at its next cron time from now.

    \b
    Example:
      mloop schedules enable nightly
    """
    from mloop.pipelines.scheduler import enable_schedule

    s = enable_schedule(name, client=session.client)
    if as_json:
        emit_json(_row(s))
        return
    out().print(f"schedule {s.name}: enabled, next {format_time(s.next_fire_at)}")


@schedules.command("disable")
@click.argument("name")
@json_option
@pass_session
def disable(session: CliSession, name: str, as_json: bool) -> None:
    """Disable a schedule: the scheduler skips it until it is enabled.

    \b
    Example:
      mloop schedules disable nightly
    """
    from mloop.pipelines.scheduler import disable_schedule

    s = disable_schedule(name, client=session.client)
    if as_json:
        emit_json(_row(s))
        return
    out().print(f"schedule {s.name}: disabled")


@schedules.command("delete")
@click.argument("name")
@json_option
@pass_session
def delete(session: CliSession, name: str, as_json: bool) -> None:
    """Delete a schedule (the runs it started stay).

    \b
    Example:
      mloop schedules delete nightly
    """
    from mloop.pipelines.scheduler import delete_schedule

    delete_schedule(name, client=session.client)
    if as_json:
        emit_json({"name": name, "deleted": True})
        return
    out().print(f"schedule {name}: deleted")


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Fire what is due now, then exit.")
@click.option(
    "--poll-seconds", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
    help="How often to look for due schedules.",
)  # fmt: skip
@click.option(
    "--lease-seconds", type=click.FloatRange(min=1), default=3600.0, show_default=True,
    help="How long a fire may take before another scheduler may fire it again.",
)  # fmt: skip
@json_option
@pass_session
def scheduler(
    session: CliSession, once: bool, poll_seconds: float, lease_seconds: float, as_json: bool
) -> None:
    """Fire due schedules until SIGTERM or Ctrl-C; safe to run several at once or restart.

    \b
    Examples:
      mloop scheduler                 run until stopped, checking every 30 s
      mloop scheduler --once --json   fire what is due now, print what ran
    """
    from mloop.pipelines.scheduler import Scheduler

    cwd_on_path()
    runner = Scheduler(session.client, lease_seconds=lease_seconds)
    if not once:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        if not as_json:
            click.echo(f"scheduler {runner.owner}: polling every {poll_seconds:g} s", err=True)
        runner.run_forever(poll_seconds=poll_seconds)
        return
    fired = runner.tick()
    if as_json:
        emit_json(
            [
                {"schedule": f.schedule, "fired_at": f.fired_at, "next_fire_at": f.next_fire_at,
                 "run_id": f.run_id, "status": f.status, "error": f.error, "recorded": f.recorded}
                for f in fired
            ]
        )  # fmt: skip
        return
    console = out()
    for f in fired:
        run = f" run {f.run_id}" if f.run_id else ""
        why = f": {f.error}" if f.error else ""
        console.print(f"{f.schedule}: {f.status}{run}{why}; next {format_time(f.next_fire_at)}")
    if not fired:
        console.print("nothing due")
