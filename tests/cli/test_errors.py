"""The one error handler: MloopError, unexpected exceptions, MLOOP_DEBUG."""

from __future__ import annotations

import pytest

from mloop.cli.session import CliSession
from mloop.errors import NotFound
from tests.cli.checks import assert_one_error_line
from tests.cli.conftest import Invoke


def _explode(self: CliSession) -> object:
    raise RuntimeError("disk on fire\nsecond line")


def _missing(self: CliSession) -> object:
    raise NotFound("no experiment named 'x'")


def test_unexpected_exception_is_one_line(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CliSession, "client", property(_explode))
    line = assert_one_error_line(invoke("experiments", "list"))
    assert line == (
        "error: unexpected RuntimeError: disk on fire second line "
        "(run with MLOOP_DEBUG=1 for the traceback)"
    )


def test_debug_shows_the_traceback(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CliSession, "client", property(_explode))
    result = invoke("experiments", "list", env={"MLOOP_DEBUG": "1"})
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


def test_mloop_error_is_one_line(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CliSession, "client", property(_missing))
    line = assert_one_error_line(invoke("runs", "list", "--json"))
    assert line == "error: no experiment named 'x'"


def test_debug_reraises_mloop_errors(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CliSession, "client", property(_missing))
    result = invoke("runs", "list", env={"MLOOP_DEBUG": "1"})
    assert isinstance(result.exception, NotFound)


def test_bad_tracking_uri(invoke: Invoke) -> None:
    line = assert_one_error_line(invoke("--tracking-uri", "mysql://nope/db", "runs", "list"))
    assert "mysql" in line or "supported" in line
