"""mloop demo: the closed loop on the fraud scenario (the default) and the breast-cancer sweep
(--scenario breast-cancer), end to end."""

from __future__ import annotations

import pytest

from tests.cli.checks import as_json
from tests.cli.conftest import Invoke

pytestmark = pytest.mark.slow


def test_demo_end_to_end(invoke: Invoke) -> None:
    summary = as_json(invoke("demo", "--scenario", "breast-cancer", "--json"))
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
    result = invoke("demo", "--scenario", "breast-cancer")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "breast-cancer-demo" in out and "★" in out
    assert "mloop runs list --experiment breast-cancer-demo" in out
    assert "mloop audit verify" in out
    assert "Traceback" not in result.output


def test_the_default_demo_is_the_closed_loop(invoke: Invoke) -> None:
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    # The live timeline, the summary, the report and what to run next.
    assert "the fraud pattern changes at row 12,000" in out
    assert "episode fraud-detector/1 promoted" in out
    assert "the closed loop in" in out and "false alarms before the change" in out
    assert "demo-fraud-report.html" in out
    assert "mloop policies episodes fraud-detector" in out and "mloop audit verify" in out
    assert "Traceback" not in result.output

    # Run again, it uses a fresh embedded store under MLOOP_HOME/demo-runs and says so; its
    # next commands name that store.
    import shlex

    again = as_json(invoke("demo", "--json"))
    assert again["store"].endswith("demo-runs/fraud-2") and again["promoted"] is True
    show = shlex.split(next(c for c in again["next_commands"] if " policies episodes " in c))
    assert "--tracking-uri" in show
    listed = invoke(*show[1:])
    assert listed.exit_code == 0 and "promoted" in listed.output


def test_the_closed_loop_json_and_its_next_commands(invoke: Invoke) -> None:
    import shlex

    summary = as_json(invoke("demo", "--scenario", "fraud", "--json"))
    assert summary["scenario"] == "fraud" and summary["promoted"] is True
    assert summary["pre_change_alarms"] == 0
    assert 1 <= summary["detection_delay_windows"] <= 2
    assert summary["gain"] >= 0.05
    assert [e["kind"] for e in summary["timeline"]][:2] == ["start", "data"]
    for command in summary["next_commands"]:
        args = shlex.split(command)[1:]
        if args[0] == "serve":
            continue  # serves until stopped
        result = invoke(*args)
        assert result.exit_code == 0, (command, result.output)


def test_a_stationary_demo_counts_its_alarms(invoke: Invoke) -> None:
    result = invoke("demo", "--stationary", "--windows", "3")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "stationary" in out and "no change" in out
    assert "alarms: 0 of 3" in out
    assert "Traceback" not in result.output
    refused = invoke("demo", "--scenario", "breast-cancer", "--stationary")
    assert refused.exit_code == 2 and "--scenario fraud or demand" in refused.output
    refused = invoke("demo", "--scenario", "breast-cancer", "--windows", "3")
    assert refused.exit_code == 2 and "--scenario fraud or demand" in refused.output
