"""``mloop config``: every setting, its value, its default and where the value came from."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from mloop.cli.render import emit_json, out
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.config import SETTINGS, Setting, resolve_settings

__all__ = ["config"]


def _shown_default(setting: Setting) -> str:
    return "(empty)" if setting.default == "" else str(setting.default)


@click.command()
@json_option
@pass_session
def config(session: CliSession, as_json: bool) -> None:
    """Show every setting: value, default, environment variable and where the value came from.

    \b
    Examples:
      mloop config
      MLOOP_GC_GRACE=60 mloop config --json
    See docs/configuration.md for what each setting does.
    """
    settings = session.settings
    values = asdict(settings)
    sources = resolve_settings(session.overrides)[1]
    rows = [
        {
            "name": s.name,
            "env": s.env,
            "value": values[s.name],
            "default": s.default,
            "source": sources[s.name],
            "help": s.help,
        }
        for s in SETTINGS
    ]
    if as_json:
        emit_json(
            {
                "config_file": settings.config_file,
                "config_file_exists": Path(settings.config_file).is_file(),
                "settings": rows,
            }
        )
        return
    table = Table(title="mloop settings", title_justify="left")
    table.add_column("setting", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("default", overflow="fold")
    table.add_column("source", overflow="fold")
    table.add_column("environment variable", no_wrap=True)
    for setting, row in zip(SETTINGS, rows, strict=True):
        changed = row["source"] not in ("default",) and not row["source"].startswith("derived")
        table.add_row(
            setting.name,
            Text(str(row["value"]), style="yellow" if changed else ""),
            _shown_default(setting),
            str(row["source"]),
            setting.env,
        )
    console = out()
    console.print(table)
    exists = "exists" if Path(settings.config_file).is_file() else "not present"
    console.print(f"config file: {settings.config_file} ({exists})", soft_wrap=True)
