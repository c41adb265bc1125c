"""Assertions the CLI tests share."""

from __future__ import annotations

import json
from typing import Any

from click.testing import Result


def as_json(result: Result) -> Any:
    """Parse a command's stdout as one JSON document (failing loudly with its output)."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def assert_one_error_line(result: Result, *, code: int = 1) -> str:
    """The command failed with ``code`` and printed exactly one ``error:`` line, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
