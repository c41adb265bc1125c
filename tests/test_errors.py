"""The error tree: one JSON shape and an HTTP status for every MloopError."""

from __future__ import annotations

import inspect

import pytest

from mloop import errors
from mloop.errors import MissingExtra, MloopError, SearchSyntaxError

ALL = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, MloopError)]


def test_every_error_is_exported_and_documented() -> None:
    assert sorted(c.__name__ for c in ALL) == sorted(errors.__all__)
    for cls in ALL:
        assert cls.__doc__, cls
        assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} missing from the tree"


@pytest.mark.parametrize("cls", [c for c in ALL if c not in (MissingExtra, SearchSyntaxError)])
def test_json_shape_is_locked(cls: type[MloopError]) -> None:
    err = cls("what went wrong; what to do", run_id="abc")
    assert err.to_dict() == {
        "error": cls.__name__,
        "message": "what went wrong; what to do",
        "details": {"run_id": "abc"},
    }
    assert 400 <= cls.http_status <= 599
    assert str(err) == "what went wrong; what to do"


def test_statuses_of_the_main_branches() -> None:
    assert errors.InvalidInput.http_status == 400
    assert errors.NotFound.http_status == 404
    assert errors.Conflict.http_status == errors.ParamConflict.http_status == 409
    assert errors.Forbidden.http_status == 403
    assert errors.PayloadTooLarge.http_status == 413
    assert errors.BackendError.http_status == 503


def test_search_syntax_error_points_at_the_column() -> None:
    err = SearchSyntaxError("expected a value", text="metrics.acc >", column=13)
    assert err.to_dict()["details"] == {"column": 14}
    assert str(err).splitlines()[-1] == " " * 15 + "^"


def test_missing_extra_names_the_pip_command() -> None:
    err = MissingExtra("postgres", "psycopg", "The PostgreSQL metadata store")
    assert "pip install 'mloop[postgres]'" in str(err)
    assert err.to_dict()["details"] == {"extra": "postgres", "module": "psycopg"}
