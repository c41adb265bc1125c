"""``mloop agent`` and ``mloop policies create|list|show|episodes|delete``.

The commands call :mod:`mloop.loop`, the same functions a Python user calls. Retraining
pipelines are named ``module:attribute`` and imported with the current folder on the path, as
``mloop pipelines run`` does.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click
from rich.table import Table

from mloop.cli.pipelines import cwd_on_path, parse_params
from mloop.cli.render import emit_json, format_time, out
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import InvalidInput
from mloop.store.records import Episode, Policy

__all__ = ["agent", "policies"]


def _policy_row(p: Policy) -> dict[str, Any]:
    return {
        "name": p.name, "deployment": p.deployment, "enabled": p.enabled,
        "cooldown_until": p.cooldown_until, "created_at": p.created_at,
        "created_by": p.created_by, **p.config,
    }  # fmt: skip


def _episode_row(e: Episode) -> dict[str, Any]:
    return {
        "id": e.id, "policy": e.policy, "state": e.state, "step": e.step, "events": e.events,
        "report_ids": e.report_ids, "reason": e.reason, "candidate_version": e.candidate_version,
        "pipeline_run_id": e.pipeline_run_id, "started_at": e.started_at,
        "updated_at": e.updated_at, "ended_at": e.ended_at, "lease_owner": e.lease_owner,
        "detail": e.detail,
    }  # fmt: skip


def _json_option_value(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        example = '{"min": {"roc_auc": 0.8}}'
        raise InvalidInput(f"{name} must be JSON (e.g. '{example}'): {exc}") from None


@click.group()
def policies() -> None:
    """Policies: retrain, gate, roll out and promote when monitors raise events."""


@policies.command("create")
@click.argument("name", required=False)
@click.option("--deployment", required=True, help="The deployment the policy acts on.")
@click.option("--retrain", required=True, metavar="MODULE:PIPELINE", help="Retraining pipeline.")
@click.option(
    "--on", "on", multiple=True, default=("drift", "performance_drop"), show_default=True,
    help="An event that starts an episode: drift, performance_drop, data_quality.",
)  # fmt: skip
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A pipeline param.")
@click.option(
    "--gate", "gate", metavar="JSON", help='e.g. \'{"beat_champion": {"roc_auc": 0.005}}\'.'
)
@click.option("--steps", default="0.1,0.5,1.0", show_default=True, help="Canary traffic steps.")
@click.option("--hold", default="15m", show_default=True, help="How long each step is held.")
@click.option(
    "--max-error-rate", type=float, default=0.01, show_default=True,
    help="How much the canary's error rate may exceed the primary's (significantly).",
)  # fmt: skip
@click.option("--max-p99-ms", type=float, default=None, help="Largest canary p99 latency.")
@click.option("--min-rows", type=int, default=20, show_default=True, help="Canary rows per step.")
@click.option("--alert", metavar="URL", help="Webhook; its host must be in MLOOP_ALERT_HOSTS.")
@click.option("--cooldown", default="6h", show_default=True, help="Quiet time after an episode.")
@click.option(
    "--against", default=None, metavar="ALIAS",
    help="The alias the candidate must beat (default: the deployment's alias, or champion).",
)  # fmt: skip
@click.option(
    "--holdout", type=float, default=0.3, show_default=True,
    help="Newest share of the fresh labelled rows held out for the gate.",
)  # fmt: skip
@click.option(
    "--min-labelled-rows", type=int, default=100, show_default=True,
    help="Labelled rows needed before retraining starts.",
)  # fmt: skip
@click.option(
    "--train-window", default=None, metavar="DURATION",
    help="Train on the last DURATION of labelled rows (default: since the first alerting "
    "window).",
)  # fmt: skip
@click.option(
    "--label-wait", default="6h", show_default=True, metavar="DURATION",
    help="How long an episode waits for labels before it fails.",
)  # fmt: skip
@json_option
@pass_session
def create(
    session: CliSession,
    *,
    name: str | None,
    deployment: str,
    retrain: str,
    on: tuple[str, ...],
    params: tuple[str, ...],
    gate: str | None,
    steps: str,
    hold: str,
    max_error_rate: float,
    max_p99_ms: float | None,
    min_rows: int,
    alert: str | None,
    cooldown: str,
    against: str | None,
    holdout: float,
    min_labelled_rows: int,
    train_window: str | None,
    label_wait: str,
    as_json: bool,
) -> None:
    """Create a policy of a deployment (named after it unless NAME is given); all is checked.

    \b
    Example:
      mloop policies create --deployment fraud-api --retrain flows.fraud:training \\
          --gate '{"beat_champion": {"roc_auc": 0.005}}' --steps 0.1,0.5,1 --hold 15m
    """
    from mloop.loop import Canary
    from mloop.loop import policies as api

    cwd_on_path()
    try:
        fractions = [float(s) for s in steps.split(",") if s.strip()]
    except ValueError:
        raise InvalidInput(f"--steps {steps!r} is not comma-separated fractions") from None
    rollout = Canary(
        steps=fractions, hold=hold, max_error_rate=max_error_rate, max_p99_ms=max_p99_ms,
        min_rows=min_rows,
    )  # fmt: skip
    policy = api.create(
        name, deployment=deployment, on=list(on), retrain=retrain,
        retrain_params=parse_params(params), gate=_json_option_value(gate, "--gate"),
        rollout=rollout, alert=alert, cooldown=cooldown, against=against, holdout=holdout,
        min_labelled_rows=min_labelled_rows, train_window=train_window, label_wait=label_wait,
        client=session.client,
    )  # fmt: skip
    if as_json:
        emit_json(_policy_row(policy))
        return
    out().print(
        f"policy {policy.name}: on {', '.join(policy.on)} of {policy.deployment} retrain "
        f"{policy.config['retrain']}, canary {fractions} held {hold}"
    )


@policies.command("list")
@click.option("--deployment", help="Only the policies of this deployment.")
@json_option
@pass_session
def list_(session: CliSession, deployment: str | None, as_json: bool) -> None:
    """List policies.

    \b
    Example:
      mloop policies list --json
    """
    from mloop.loop import policies as api

    found = api.list_policies(deployment, client=session.client)
    if as_json:
        emit_json([_policy_row(p) for p in found])
        return
    table = Table(title="Policies", title_justify="left")
    for column in ("name", "deployment", "on", "retrain", "cooling down until"):
        table.add_column(column)
    for p in found:
        table.add_row(
            p.name, p.deployment, ", ".join(p.on), str(p.config.get("retrain")),
            format_time(p.cooldown_until),
        )  # fmt: skip
    out().print(table)


@policies.command("show")
@click.argument("name")
@json_option
@pass_session
def show(session: CliSession, name: str, as_json: bool) -> None:
    """Show a policy, its newest episodes and webhook deliveries.

    \b
    Example:
      mloop policies show fraud-api
    """
    from mloop.loop import policies as api

    policy = api.get(name, client=session.client)
    recent = api.episodes(name, limit=10, client=session.client)
    deliveries = api.alerts(name, client=session.client)
    if as_json:
        emit_json(
            {**_policy_row(policy), "episodes": [_episode_row(e) for e in recent],
             "alerts": [{"event": a.event, "url": a.url, "status": a.status,
                         "attempts": a.attempts, "http_status": a.http_status,
                         "error": a.error, "at": a.at} for a in deliveries]}
        )  # fmt: skip
        return
    console = out()
    console.print(f"policy {policy.name} of deployment {policy.deployment}")
    for key in ("on", "retrain", "retrain_params", "gate", "rollout", "alert", "cooldown"):
        console.print(f"  {key}: {policy.config.get(key)}")
    console.print(f"  cooling down until: {format_time(policy.cooldown_until)}")
    for e in recent:
        console.print(f"  episode {e.id}: {e.state} — {e.reason}")
    for a in deliveries[-5:]:
        console.print(f"  alert {a.event}: {a.status} after {a.attempts} try(ies) {a.error or ''}")


@policies.command("episodes")
@click.argument("name", required=False)
@click.option("--open", "open_only", is_flag=True, help="Only episodes not ended yet.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True,
    help="Most episodes shown.",
)  # fmt: skip
@json_option
@pass_session
def episodes(
    session: CliSession, name: str | None, open_only: bool, limit: int, as_json: bool
) -> None:
    """List episodes (of one policy, or all), newest first, with why each is where it is.

    \b
    Example:
      mloop policies episodes fraud-api --json
    """
    from mloop.loop import policies as api

    found = api.episodes(name, open_only=open_only, limit=limit, client=session.client)
    if as_json:
        emit_json([_episode_row(e) for e in found])
        return
    table = Table(title="Episodes", title_justify="left")
    for column in ("id", "policy", "state", "candidate", "started", "ended", "reason"):
        table.add_column(column)
    for e in found:
        table.add_row(
            str(e.id), e.policy, e.state + (f" {e.step}" if e.state == "rolling_out" else ""),
            str(e.candidate_version or "-"), format_time(e.started_at),
            format_time(e.ended_at), e.reason,
        )  # fmt: skip
    out().print(table)


@policies.command("delete")
@click.argument("name")
@json_option
@pass_session
def delete(session: CliSession, name: str, as_json: bool) -> None:
    """Delete a policy and its episodes (audit events stay); refused while one is open.

    \b
    Example:
      mloop policies delete fraud-api
    """
    from mloop.loop import policies as api

    api.delete(name, client=session.client)
    if as_json:
        emit_json({"name": name, "deleted": True})
        return
    out().print(f"policy {name}: deleted")


@click.command("agent")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option(
    "--poll-seconds", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
    help="Time between passes.",
)  # fmt: skip
@click.option(
    "--lease-seconds", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
    help="How long another agent waits before taking over an episode this one stopped renewing.",
)  # fmt: skip
@click.option("--no-monitors", is_flag=True, help="Do not run monitors.")
@click.option("--no-schedules", is_flag=True, help="Do not fire pipeline schedules.")
@json_option
@pass_session
def agent(
    session: CliSession,
    *,
    once: bool,
    poll_seconds: float,
    lease_seconds: float,
    no_monitors: bool,
    no_schedules: bool,
    as_json: bool,
) -> None:
    """Run monitors, policies, episodes and schedules until SIGTERM or Ctrl-C.

    Safe to kill and restart at any point, and to run several at once. With --once, the exit
    status is 1 when a monitor, policy, episode or the scheduler met an error (listed).

    \b
    Examples:
      mloop agent                     run until stopped, every 30 s
      mloop agent --once --json       one pass, print what it did
    """
    from mloop.loop import Agent

    cwd_on_path()
    runner = Agent(
        session.client, lease_seconds=lease_seconds, monitors=not no_monitors,
        schedules=not no_schedules,
    )  # fmt: skip
    if not once:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        if not as_json:
            click.echo(f"agent {runner.owner}: every {poll_seconds:g} s", err=True)
        runner.run_forever(poll_seconds=poll_seconds)
        return
    result = runner.tick()
    if as_json:
        emit_json(
            {"reports": result.reports, "fired": result.fired, "errors": result.errors,
             "opened": [_episode_row(e) for e in result.opened],
             "advanced": [_episode_row(e) for e in result.advanced]}
        )  # fmt: skip
    else:
        console = out()
        console.print(f"{result.reports} new monitor report(s), {result.fired} schedule fire(s)")
        for e in result.opened:
            console.print(f"opened episode {e.id} of {e.policy}: {e.reason}")
        for e in result.advanced:
            console.print(f"episode {e.id} of {e.policy}: {e.state} — {e.reason}")
        for line in result.errors:
            click.echo(f"error: {line}", err=True)
    if result.errors:
        raise SystemExit(1)
