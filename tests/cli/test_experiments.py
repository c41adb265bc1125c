"""mloop experiments: list, create, rename, delete, restore."""

from __future__ import annotations

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke


def test_create_and_list(invoke: Invoke) -> None:
    result = invoke("experiments", "create", "churn", "--tag", "team=growth")
    assert result.exit_code == 0, result.output
    assert "churn" in result.stdout

    doc = as_json(invoke("experiments", "list", "--json"))
    names = {e["name"]: e for e in doc["experiments"]}
    assert names["churn"]["tags"] == {"team": "growth"}
    assert names["churn"]["lifecycle"] == "active"

    table = invoke("experiments", "list")
    assert table.exit_code == 0
    assert "churn" in table.stdout and "team=growth" in table.stdout


def test_create_json(invoke: Invoke) -> None:
    doc = as_json(invoke("experiments", "create", "fraud", "--json"))
    assert doc["experiment"]["name"] == "fraud"
    assert isinstance(doc["experiment"]["id"], int)


def test_rename_delete_restore(invoke: Invoke) -> None:
    as_json(invoke("experiments", "create", "old", "--json"))
    doc = as_json(invoke("experiments", "rename", "old", "new", "--json"))
    assert doc["experiment"]["name"] == "new"

    result = invoke("experiments", "delete", "new")
    assert result.exit_code == 0, result.output
    active = as_json(invoke("experiments", "list", "--json"))
    assert "new" not in {e["name"] for e in active["experiments"]}
    deleted = as_json(invoke("experiments", "list", "--view", "deleted", "--json"))
    assert "new" in {e["name"] for e in deleted["experiments"]}

    doc = as_json(invoke("experiments", "restore", "new", "--json"))
    assert doc["experiment"]["lifecycle"] == "active"


def test_duplicate_name_is_one_error_line(invoke: Invoke) -> None:
    invoke("experiments", "create", "dup")
    line = assert_one_error_line(invoke("experiments", "create", "dup"))
    assert "dup" in line


def test_bad_tag_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("experiments", "create", "x", "--tag", "novalue")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.stderr


def test_unknown_experiment(invoke: Invoke) -> None:
    assert_one_error_line(invoke("experiments", "delete", "nope"))


def test_empty_list(invoke: Invoke) -> None:
    result = invoke("experiments", "list", "--view", "deleted")
    assert result.exit_code == 0
    assert "no experiments" in result.stdout
