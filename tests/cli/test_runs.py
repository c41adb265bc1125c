"""mloop runs: list, search, show, compare, delete, restore — and bad input."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke, Populated


def test_list_table(invoke: Invoke, populated: Populated) -> None:
    result = invoke("runs", "list", "--experiment", "exp-a")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for run_id in (populated.parent, *populated.children):
        assert run_id[-8:] in out
    assert populated.other[-8:] not in out
    assert "child-0" in out and "FINISHED" in out and "exp-a" in out
    assert "acc" in out  # a key metric column


def test_list_json(invoke: Invoke, populated: Populated) -> None:
    doc = as_json(invoke("runs", "list", "--json"))
    assert set(doc) == {"runs", "next_page_token"}
    assert doc["next_page_token"] is None
    ids = {r["id"] for r in doc["runs"]}
    assert ids == {populated.parent, *populated.children, populated.other}
    run = next(r for r in doc["runs"] if r["id"] == populated.children[1])
    assert run["params"] == {"lr": "0.01", "epochs": "5"}
    assert run["status"] == "FINISHED"
    assert run["parent_id"] == populated.parent


def test_list_repeatable_experiment(invoke: Invoke, populated: Populated) -> None:
    doc = as_json(invoke("runs", "list", "-e", "exp-a", "-e", "exp-b", "--json"))
    assert len(doc["runs"]) == 4


def test_search_filter_and_order(invoke: Invoke, populated: Populated) -> None:
    doc = as_json(
        invoke(
            "runs",
            "search",
            "metrics.acc > 0.8 and (tags.family = 'sgd' or params.lr = 'x')",
            "--order-by",
            "metrics.acc DESC",
            "--json",
        )
    )
    assert [r["id"] for r in doc["runs"]] == [populated.children[1], populated.children[0]]

    same = as_json(
        invoke(
            "runs",
            "list",
            "--filter",
            "metrics.acc > 0.8",
            "--order-by",
            "metrics.acc ASC",
            "--json",
        )
    )
    assert [r["id"] for r in same["runs"]] == populated.children


def test_search_table(invoke: Invoke, populated: Populated) -> None:
    result = invoke("runs", "search", "params.lr = '0.1'")
    assert result.exit_code == 0, result.output
    assert populated.children[0][-8:] in result.stdout
    assert populated.children[1][-8:] not in result.stdout


def test_search_filter_twice_is_a_usage_error(invoke: Invoke, populated: Populated) -> None:
    result = invoke("runs", "search", "metrics.acc > 0", "--filter", "metrics.acc > 1")
    assert result.exit_code == 2


def test_paging(invoke: Invoke, populated: Populated) -> None:
    first = as_json(invoke("runs", "list", "--max-results", "3", "--json"))
    assert len(first["runs"]) == 3 and first["next_page_token"]
    second = as_json(
        invoke(
            "runs", "list", "--max-results", "3", "--page-token", first["next_page_token"], "--json"
        )
    )
    assert len(second["runs"]) == 1 and second["next_page_token"] is None
    seen = {r["id"] for r in first["runs"] + second["runs"]}
    assert len(seen) == 4

    table = invoke("runs", "list", "--max-results", "3")
    assert f"--page-token {first['next_page_token']}" in table.stdout


def test_show(invoke: Invoke, populated: Populated) -> None:
    result = invoke("runs", "show", populated.children[0])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert populated.children[0] in out
    assert "lr" in out and "0.1" in out
    assert "loss" in out and "acc" in out
    assert any(bar in out for bar in "▁▂▃▄▅▆▇█")  # the sparkline
    assert "reports/summary.txt" in out and "config.json" in out
    assert "family" in out
    assert populated.parent in out  # the parent
    assert "System tags (mloop.*)" in out


@pytest.mark.parametrize("cut", [lambda i: i[-8:], lambda i: i[:20], lambda i: i.upper()])
def test_commands_take_an_abbreviated_id(
    invoke: Invoke, populated: Populated, cut: Callable[[str], str]
) -> None:
    run_id = populated.children[0]
    doc = as_json(invoke("runs", "show", cut(run_id), "--json"))
    assert doc["run"]["id"] == run_id
    assert as_json(invoke("artifacts", "ls", cut(run_id), "--json"))["run_id"] == run_id


def test_too_short_or_unknown_abbreviation_is_one_error_line(
    invoke: Invoke, populated: Populated
) -> None:
    assert "too short" in assert_one_error_line(invoke("runs", "show", "abc"))
    assert "no run id" in assert_one_error_line(invoke("runs", "show", "ffffffffff"))
    assert "hex" in assert_one_error_line(invoke("runs", "show", "zzzzzzzz"))


def test_show_parent_lists_children(invoke: Invoke, populated: Populated) -> None:
    doc = as_json(invoke("runs", "show", populated.parent, "--json"))
    assert {c["id"] for c in doc["children"]} == set(populated.children)
    assert doc["parent"] is None
    assert doc["experiment"]["name"] == "exp-a"


def test_show_json(invoke: Invoke, populated: Populated) -> None:
    doc = as_json(invoke("runs", "show", populated.children[0], "--json"))
    assert set(doc) == {"run", "experiment", "parent", "children", "artifacts", "metric_history"}
    assert doc["parent"]["id"] == populated.parent
    assert doc["metric_history"]["loss"]["points"] == 5
    assert doc["metric_history"]["loss"]["last_step"] == 4
    assert {a["path"] for a in doc["artifacts"]} >= {"reports/summary.txt", "config.json"}


def test_compare(invoke: Invoke, populated: Populated) -> None:
    result = invoke("runs", "compare", *populated.children)
    assert result.exit_code == 0, result.output
    assert "lr" in result.stdout and "differ" in result.stdout

    doc = as_json(invoke("runs", "compare", *populated.children, "--json"))
    assert "lr" in doc["differing"]["params"]
    assert "epochs" not in doc["differing"]["params"]
    assert "acc" in doc["differing"]["metrics"]
    assert doc["params"]["lr"] == {populated.children[0]: "0.1", populated.children[1]: "0.01"}


def test_compare_needs_two(invoke: Invoke, populated: Populated) -> None:
    assert invoke("runs", "compare", populated.parent).exit_code == 2


def test_delete_and_restore(invoke: Invoke, populated: Populated) -> None:
    result = invoke("runs", "delete", populated.other)
    assert result.exit_code == 0, result.output
    active = as_json(invoke("runs", "list", "--json"))
    assert populated.other not in {r["id"] for r in active["runs"]}
    deleted = as_json(invoke("runs", "list", "--view", "deleted", "--json"))
    assert [r["id"] for r in deleted["runs"]] == [populated.other]

    doc = as_json(invoke("runs", "restore", populated.other, "--json"))
    assert doc == {"restored": [populated.other]}
    active = as_json(invoke("runs", "list", "--json"))
    assert populated.other in {r["id"] for r in active["runs"]}


def test_unknown_run_is_one_error_line(invoke: Invoke, mloop_home: object) -> None:
    for args in (
        ("runs", "show", "0" * 32),
        ("runs", "show", "nope", "--json"),
        ("runs", "delete", "f" * 32),
    ):
        result = invoke(*args)
        line = assert_one_error_line(result)
        assert result.stdout == ""
        assert "run" in line


def test_malformed_filter_shows_the_caret(invoke: Invoke, populated: Populated) -> None:
    result = invoke("runs", "search", "metrics.acc > 'high'")
    assert result.exit_code == 1
    lines = result.stderr.rstrip("\n").splitlines()
    assert lines[0].startswith("error: metrics compare with numbers")
    assert lines[1].strip() == "metrics.acc > 'high'"
    assert lines[2].strip() == "^"
    assert lines[2].index("^") == lines[1].index("'high'")
    assert "Traceback" not in result.output


def test_malformed_order_by(invoke: Invoke, populated: Populated) -> None:
    result = invoke("runs", "list", "--order-by", "metrics.acc sideways")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: expected ASC, DESC")


def test_bad_max_results(invoke: Invoke, populated: Populated) -> None:
    for bad in ("0", "-3", "many"):
        result = invoke("runs", "list", "--max-results", bad)
        assert result.exit_code == 2, (bad, result.output)
        assert "--max-results" in result.stderr
    too_many = invoke("runs", "list", "--max-results", "1000000")
    assert_one_error_line(too_many)
    assert "max_results" in too_many.stderr


def test_bad_page_token(invoke: Invoke, populated: Populated) -> None:
    assert_one_error_line(invoke("runs", "list", "--page-token", "garbage!"))


def test_empty_store(invoke: Invoke) -> None:
    result = invoke("runs", "list")
    assert result.exit_code == 0
    assert "no runs" in result.stdout
