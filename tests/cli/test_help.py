"""Every command answers --help with a summary; the group answers --version."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

import mloop
from mloop.cli.main import cli
from tests.cli.conftest import Invoke


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path under ``command``, the group itself included."""
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


ALL_COMMANDS = list(walk(cli))

EXPECTED = {
    ("experiments", "list"),
    ("experiments", "create"),
    ("experiments", "rename"),
    ("experiments", "delete"),
    ("experiments", "restore"),
    ("runs", "list"),
    ("runs", "show"),
    ("runs", "search"),
    ("runs", "compare"),
    ("runs", "delete"),
    ("runs", "restore"),
    ("artifacts", "ls"),
    ("artifacts", "get"),
    ("gc",),
    ("db", "upgrade"),
    ("db", "current"),
    ("audit", "verify"),
    ("audit", "log"),
    ("doctor",),
    ("demo",),
    ("config",),
}


def test_every_specified_command_exists() -> None:
    assert set(ALL_COMMANDS) >= EXPECTED


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "mloop")
def test_help(invoke: Invoke, path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    summary = command.get_short_help_str(limit=200)
    assert summary and not summary.endswith("...")
    assert summary.split()[0] in result.stdout


@pytest.mark.parametrize("path", [p for p in ALL_COMMANDS if p and p[0] not in ("demo",)])
def test_leaf_commands_offer_json(path: tuple[str, ...]) -> None:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    if isinstance(command, click.Group):
        return
    assert any("--json" in p.opts for p in command.params), path


def test_demo_offers_json() -> None:
    assert any("--json" in p.opts for p in cli.commands["demo"].params)


def test_version(invoke: Invoke) -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert mloop.__version__ in result.stdout


def test_unknown_command_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.stderr
