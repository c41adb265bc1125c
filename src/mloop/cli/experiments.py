"""``mloop experiments``: list, create, rename, soft-delete and restore experiments."""

from __future__ import annotations

import click
from rich.table import Table

from mloop.cli.render import emit_json, format_time, out
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.store.base import Experiment

__all__ = ["experiments", "parse_tags"]

VIEWS = click.Choice(["active", "deleted", "all"], case_sensitive=False)


def parse_tags(pairs: tuple[str, ...]) -> dict[str, str]:
    """Turn ``key=value`` strings from ``--tag`` into a dict (a usage error if one has no '=')."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    return tags


def _show_one(experiment: Experiment, verb: str, as_json: bool) -> None:
    if as_json:
        emit_json({"experiment": experiment})
    else:
        out().print(f"{verb} experiment {experiment.name!r} (id {experiment.id})")


@click.group()
def experiments() -> None:
    """Manage experiments (named groups of runs)."""


@experiments.command("list")
@click.option("--view", type=VIEWS, default="active", show_default=True, help="Which to show.")
@json_option
@pass_session
def list_(session: CliSession, view: str, as_json: bool) -> None:
    """List experiments.

    \b
    Examples:
      mloop experiments list
      mloop experiments list --view all --json
    """
    found = session.client.list_experiments(view=view.lower())
    if as_json:
        emit_json({"experiments": found})
        return
    table = Table(title=f"Experiments ({view})", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("name", style="bold")
    table.add_column("lifecycle")
    table.add_column("created")
    table.add_column("tags")
    for exp in found:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(exp.tags.items()))
        table.add_row(str(exp.id), exp.name, str(exp.lifecycle), format_time(exp.created_at), tags)
    if found:
        out().print(table)
    else:
        out().print(f"no experiments ({view})")


@experiments.command()
@click.argument("name")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag it (repeatable).")
@json_option
@pass_session
def create(session: CliSession, name: str, tags: tuple[str, ...], as_json: bool) -> None:
    """Create an experiment.

    \b
    Example:
      mloop experiments create churn --tag team=growth
    """
    experiment = session.client.create_experiment(name, tags=parse_tags(tags) or None)
    _show_one(experiment, "created", as_json)


@experiments.command()
@click.argument("experiment")
@click.argument("new_name")
@json_option
@pass_session
def rename(session: CliSession, experiment: str, new_name: str, as_json: bool) -> None:
    """Rename an experiment (given by name or id).

    \b
    Example:
      mloop experiments rename churn churn-2024
    """
    renamed = session.client.rename_experiment(experiment, new_name)
    _show_one(renamed, "renamed to", as_json)


@experiments.command()
@click.argument("experiment")
@json_option
@pass_session
def delete(session: CliSession, experiment: str, as_json: bool) -> None:
    """Soft-delete an experiment and hide its runs (undo with restore).

    \b
    Example:
      mloop experiments delete churn
    """
    _show_one(session.client.delete_experiment(experiment), "deleted", as_json)


@experiments.command()
@click.argument("experiment")
@json_option
@pass_session
def restore(session: CliSession, experiment: str, as_json: bool) -> None:
    """Restore a soft-deleted experiment and its runs.

    \b
    Example:
      mloop experiments restore churn
    """
    _show_one(session.client.restore_experiment(experiment), "restored", as_json)
