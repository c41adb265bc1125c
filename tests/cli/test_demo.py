"""mloop demo: a real tracked sweep, end to end."""

from __future__ import annotations

import pytest

from tests.cli.checks import as_json
from tests.cli.conftest import Invoke

pytestmark = pytest.mark.slow


def test_demo_end_to_end(invoke: Invoke) -> None:
    summary = as_json(invoke("demo", "--json"))
    assert summary["experiment"] == "breast-cancer-demo"
    children = summary["children"]
    assert len(children) == 8
    assert {c["family"] for c in children} == {"logreg", "hgb"}
    best = summary["best_run_id"]
    assert best in {c["run_id"] for c in children}
    assert summary["best_metrics"]["roc_auc"] > 0.9

    # The parent records the best child; every child is nested under it.
    parent = as_json(invoke("runs", "show", summary["parent_run_id"], "--json"))
    assert parent["run"]["tags"]["best_run_id"] == best
    assert parent["run"]["metrics"]["best_roc_auc"] == summary["best_metrics"]["roc_auc"]
    assert {c["id"] for c in parent["children"]} == {c["run_id"] for c in children}

    shown = as_json(invoke("runs", "show", best, "--json"))
    run = shown["run"]
    assert {"roc_auc", "accuracy", "f1", "log_loss", "val_roc_auc"} <= set(run["metrics"])
    assert shown["metric_history"]["val_log_loss"]["points"] > 10
    assert {a["path"] for a in shown["artifacts"]} >= {
        "confusion_matrix.json",
        "classification_report.txt",
    }

    # The data it trained on is a validated dataset version the sweep read; the best model is
    # registered, gated and, on a fresh store, the champion.
    assert summary["dataset"] == "breast-cancer@v1"
    assert "passed" in summary["validation"]
    assert summary["model"] == "models:/breast-cancer-classifier/1"
    assert summary["champion"] is True
    lineage = as_json(invoke("models", "lineage", "breast-cancer-classifier@champion", "--json"))
    assert lineage["run"]["id"] == summary["parent_run_id"]
    assert [d["ref"] for d in lineage["data"]] == ["breast-cancer@v1"]

    # The champion was served on loopback and called in three protocols; every prediction and
    # the labels sent after them are in the prediction log.
    served = summary["served"]
    assert served["deployment"] == "breast-cancer-classifier" and served["version"] == 1
    assert served["logged_rows"] == 30 and served["labelled_rows"] == 20
    assert served["labelled_accuracy"] > 0.8

    # The commands the demo suggests work as printed.
    for command in summary["next_commands"]:
        import shlex

        args = shlex.split(command)[1:]
        if args[:2] == ["artifacts", "get"] or args[0] == "serve":
            continue  # writes into the working folder / serves until stopped
        result = invoke(*args)
        assert result.exit_code == 0, (command, result.output)


def test_demo_table(invoke: Invoke) -> None:
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "breast-cancer-demo" in out and "★" in out
    assert "mloop runs list --experiment breast-cancer-demo" in out
    assert "mloop audit verify" in out
    assert "Traceback" not in result.output
