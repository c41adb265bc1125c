"""The docs cannot go stale: every setting, every command and the quickstart are checked."""

from __future__ import annotations

from pathlib import Path

from mloop.cli.main import cli
from mloop.config import SETTINGS
from tests.cli.test_help import ALL_COMMANDS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"`{setting.env}`" in text, setting.env
        assert f"`{setting.name}`" in text, setting.name


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for path in ALL_COMMANDS:
        if path:
            assert f"mloop {' '.join(path)}" in text, path
    for option in ("--tracking-uri", "--artifact-uri", "--version", "--json"):
        assert option in text
    assert cli.name


def test_docs_pages_exist_and_are_linked() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (
        "tracking", "search", "artifacts", "backends", "audit", "configuration", "cli",
        "data", "models", "evaluation", "registry", "autolog",
    ):  # fmt: skip
        assert (DOCS / f"{page}.md").is_file()
        assert f"{page}.md" in index
        assert f"docs/{page}.md" in readme


def test_readme_quickstart_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = quickstart.split("```console", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("$ ")]
    assert commands == [
        "$ pip install -e . && mloop demo",
        "$ pip install -e '.[dev]' && pytest",
    ]
