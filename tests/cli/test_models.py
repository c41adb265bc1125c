"""``mloop models``: list, versions, show, promote, rollback, approve, policy, lineage, card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke


@pytest.fixture
def registered(mloop_home: Path) -> None:
    """Two versions of 'fraud', trained by runs that read a dataset version."""
    import mloop
    from mloop.data import register
    from mloop.registry import set_card_fields

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"amount": rng.normal(size=120), "age": rng.normal(size=120)})
    y = (x["amount"] > 0).astype(int)
    client = mloop.TrackingClient()
    try:
        data = register("tx", x.assign(y=y), client=client)
        for c in (1.0, 0.1):
            with client.start_run("fraud") as run:
                run.log_input(data, context="training")
                run.log_model(LogisticRegression(C=c).fit(x, y), "fraud", input_example=x[:3])
        set_card_fields("fraud", intended_use="flag card fraud", client=client)
    finally:
        client.close()


def test_list_versions_show(invoke: Invoke, registered: None) -> None:
    listed = as_json(invoke("models", "list", "--json"))
    assert [(m["name"], m["latest_version"]) for m in listed] == [("fraud", 2)]
    assert "fraud" in invoke("models", "list").stdout
    versions = as_json(invoke("models", "versions", "fraud", "--json"))
    assert [v["version"] for v in versions] == [1, 2]
    assert "v2" in invoke("models", "versions", "fraud").stdout
    shown = as_json(invoke("models", "show", "models:/fraud/1", "--json"))
    assert shown["flavor"] == "sklearn"
    assert "amount" in invoke("models", "show", "fraud").stdout


def test_promote_policy_approve_rollback(invoke: Invoke, registered: None) -> None:
    assert invoke("models", "promote", "fraud/1").exit_code == 0
    assert (
        invoke("models", "policy", "fraud", "--approvals", "1", "--approver", "risk").exit_code == 0
    )
    line = assert_one_error_line(invoke("models", "promote", "fraud/2"))
    assert "approval" in line
    assert invoke("models", "approve", "fraud/2", "--by", "risk", "--note", "ok").exit_code == 0
    moved = as_json(invoke("models", "promote", "fraud/2", "--reason", "better", "--json"))
    assert (moved["previous"], moved["version"]) == (1, 2)
    back = as_json(invoke("models", "rollback", "fraud", "--json"))
    assert (back["previous"], back["version"]) == (2, 1)
    assert "rolled back" not in back["reason"] and back["reason"] == "rollback"
    assert_one_error_line(invoke("models", "rollback", "fraud"))


def test_lineage_and_card(invoke: Invoke, registered: None, tmp_path: Path) -> None:
    tree = invoke("models", "lineage", "models:/fraud/2")
    assert tree.exit_code == 0, tree.output
    assert "training: tx@v1" in tree.stdout
    walked = as_json(invoke("models", "lineage", "fraud/2", "--json"))
    assert walked["data"][0]["ref"] == "tx@v1"
    card = invoke("models", "card", "fraud/2")
    assert card.exit_code == 0
    assert "# Model card: fraud v2" in card.stdout
    assert "flag card fraud" in card.stdout and "tx@v1" in card.stdout
    target = tmp_path / "card.html"
    assert (
        invoke("models", "card", "fraud/2", "--format", "html", "--output", str(target)).exit_code
        == 0
    )
    assert target.read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("models", "show", "models:/nope/1"), "no registered model"),
        (("models", "show", "runs:/x"), "models:/"),
        (("models", "promote", "fraud"), "no version number"),
        (("models", "promote", "fraud/9"), "no version 9"),
        (("models", "approve", "fraud/1", "--by", " "), "approval"),
        (("models", "card", "fraud@champion"), "no alias"),
    ],
)
def test_errors_are_one_line(
    invoke: Invoke, registered: None, args: tuple[str, ...], match: str
) -> None:
    assert match in assert_one_error_line(invoke(*args))
