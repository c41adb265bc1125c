"""The ``mloop`` command: global options, the command groups, and the one place errors are shown.

Every error ends here: an :class:`~mloop.errors.MloopError` becomes one ``error: <message>``
line on stderr and exit code 1; usage errors keep click's exit code 2; anything unexpected
becomes one line naming its type, and the traceback is shown only with ``MLOOP_DEBUG=1``.
"""

from __future__ import annotations

import os
from typing import Any

import click

import mloop
from mloop.cli import (
    agent,
    artifacts,
    audit,
    config,
    data,
    datasets,
    db,
    demo,
    deployments,
    doctor,
    experiments,
    gc,
    models,
    monitor,
    pipelines,
    runs,
    schedules,
    serve,
    sweep,
)
from mloop.cli.session import CliSession
from mloop.errors import MloopError

__all__ = ["MloopGroup", "cli", "main"]

DEBUG_ENV = "MLOOP_DEBUG"


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _one_line(text: str) -> str:
    return " ".join(text.split())


class MloopGroup(click.Group):
    """The root group: runs a command and turns any error into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the chosen command; show errors the mloop way."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except MloopError as exc:
            if _debug():
                raise
            # The message may span lines on purpose (a search error's caret); keep them.
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(1)
        except Exception as exc:
            if _debug():
                raise
            click.echo(
                f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} "
                f"(run with {DEBUG_ENV}=1 for the traceback)",
                err=True,
            )
            ctx.exit(1)


@click.group(
    cls=MloopGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--tracking-uri",
    metavar="URI",
    help="Metadata store for this command (overrides MLOOP_TRACKING_URI and the config file).",
)
@click.option(
    "--artifact-uri",
    metavar="URI",
    help="Artifact store for this command (overrides MLOOP_ARTIFACT_URI and the config file).",
)
@click.version_option(mloop.__version__, "--version", prog_name="mloop")
@click.pass_context
def cli(ctx: click.Context, tracking_uri: str | None, artifact_uri: str | None) -> None:
    """mloop: the machine-learning loop — data, tracking, pipelines, registry, serving,
    monitoring and retraining — with an audit log.

    \b
    Start with:
      mloop demo                      the closed loop on a simulated fraud service
      mloop runs list                 see what was recorded
      mloop doctor                    check that everything is set up
    Every command has --help, and --json for scripts.
    """
    session = CliSession(tracking_uri=tracking_uri, artifact_uri=artifact_uri)
    ctx.obj = session
    ctx.call_on_close(session.close)


for _group in (
    experiments.experiments,
    runs.runs,
    artifacts.artifacts,
    data.data,
    models.models,
    deployments.deployments,
    monitor.monitor,
    agent.policies,
    agent.agent,
    pipelines.pipelines,
    schedules.schedules,
    schedules.scheduler,
    sweep.sweep,
    serve.serve,
    gc.gc,
    db.db,
    audit.audit,
    doctor.doctor,
    demo.demo,
    config.config,
):
    cli.add_command(_group)
for _command in datasets.COMMANDS:
    data.data.add_command(_command)


def main() -> None:
    """Entry point of the ``mloop`` console script."""
    cli(prog_name="mloop")
