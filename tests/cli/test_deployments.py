"""``mloop deployments``: list, show, history, create, canary, shadow, promote, rollback, …"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke


@pytest.fixture
def fraud(mloop_home: Path) -> Iterator[None]:
    """Versions 1-3 of ``fraud`` (records only) in the default store, champion -> 1."""
    import mloop
    from mloop import registry
    from mloop.store.base import NewModelVersion

    client = mloop.TrackingClient()
    try:
        for n in (1, 2, 3):
            new = NewModelVersion(package_digest=f"{n:064x}", flavor="sklearn", files=[])
            client.store.create_model_version("fraud", new, actor="setup")
        registry.set_alias("fraud", "champion", 1, client=client)
    finally:
        client.close()
    yield None


def test_create_list_show(invoke: Invoke, fraud: None) -> None:
    made = as_json(invoke("deployments", "create", "api", "fraud@champion", "--json"))
    assert (made["alias"], made["revision"], made["model_uri"]) == (
        "champion", 1, "models:/fraud@champion",
    )  # fmt: skip
    assert made["targets"]["primary"] == 1 and made["targets"]["alias_version"] == 1
    text = invoke("deployments", "create", "batch", "models:/fraud/3")
    assert text.exit_code == 0 and "deployment batch: created" in text.stdout
    listed = as_json(invoke("deployments", "list", "--json"))
    assert [d["name"] for d in listed] == ["api", "batch"]
    table = invoke("deployments", "list").stdout
    assert "@champion → v1" in table and "v3" in table
    shown = as_json(invoke("deployments", "show", "api", "--json"))
    assert shown["targets"]["canary"] is None
    assert "models:/fraud@champion" in invoke("deployments", "show", "api").stdout


def test_canary_shadow_promote_rollback_history(invoke: Invoke, fraud: None) -> None:
    invoke("deployments", "create", "api", "fraud@champion")
    got = as_json(
        invoke("deployments", "canary", "api", "2", "--percent", "10", "--sticky-key", "cid",
               "--json")
    )  # fmt: skip
    assert got["targets"]["canary"] == 2 and got["targets"]["canary_percent"] == 10.0
    assert got["targets"]["sticky_key"] == "cid"
    shadow = invoke("deployments", "shadow", "api", "v3")
    assert "shadow v3" in shadow.stdout and "canary v2 10% by cid" in shadow.stdout
    assert (
        as_json(invoke("deployments", "shadow", "api", "--clear", "--json"))["shadow_version"]
        is None
    )
    promoted = as_json(invoke("deployments", "promote", "api", "--reason", "ok", "--json"))
    assert promoted["targets"]["primary"] == 2 and promoted["canary_version"] is None
    back = as_json(invoke("deployments", "rollback", "api", "--json"))
    assert back["targets"]["primary"] == 1 and back["canary_version"] == 2
    history = as_json(invoke("deployments", "history", "api", "--json"))
    assert [c["action"] for c in history] == [
        "created", "canary_set", "shadow_set", "shadow_cleared", "canary_promoted",
        "rolled_back",
    ]  # fmt: skip
    assert history[-1]["undoes"] == 5
    table = invoke("deployments", "history", "api").stdout
    assert "canary_promoted" in table and "undoes r5" in table
    cleared = invoke("deployments", "canary", "api", "--clear")
    assert "canary cleared" in cleared.stdout


def test_pin_follow_delete(invoke: Invoke, fraud: None) -> None:
    invoke("deployments", "create", "api", "fraud@champion")
    assert as_json(invoke("deployments", "pin", "api", "fraud/3", "--json"))["version"] == 3
    followed = invoke("deployments", "follow", "api", "champion")
    assert "follows @champion" in followed.stdout
    assert "deleted" in invoke("deployments", "delete", "api").stdout
    assert as_json(invoke("deployments", "list", "--json")) == []


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("create", "new", "fraud"), "names neither an alias nor a version"),
        (("create", "new", "fraud/9"), "no version 9"),
        (("create", "new", "ghost@champion"), "no registered model named 'ghost'"),
        (("create", "bad name", "fraud@champion"), "deployment name"),
        (("show", "nope"), "no deployment named 'nope'"),
        (("canary", "api", "2", "--percent", "150"), "0 to 100"),
        (("canary", "api", "1", "--percent", "10"), "canary version 1 is the primary"),
        (("canary", "api", "2"), "--percent"),
        (("canary", "api", "--clear", "--percent", "3"), "--clear takes no"),
        (("canary", "api", "two", "--percent", "5"), "not a version number"),
        (("shadow", "api"), "--clear"),
        (("shadow", "api", "1"), "shadow version 1 is the primary"),
        (("promote", "api"), "no canary to promote"),
        (("rollback", "api"), "no change to roll back"),
        (("follow", "api", "ghost"), "no alias 'ghost'"),
    ],
)
def test_errors_are_one_line_and_change_nothing(
    invoke: Invoke, fraud: None, args: tuple[str, ...], match: str
) -> None:
    invoke("deployments", "create", "api", "fraud@champion")
    line = assert_one_error_line(invoke("deployments", *args))
    assert match in line
    history = as_json(invoke("deployments", "history", "api", "--json"))
    assert [c["action"] for c in history] == ["created"]


def test_a_deployment_whose_alias_is_gone_still_lists(invoke: Invoke, fraud: None) -> None:
    import mloop

    invoke("deployments", "create", "api", "fraud@champion")
    client = mloop.TrackingClient()
    try:
        client.store.set_model_alias("fraud", "champion", None, actor="ops")
    finally:
        client.close()
    listed = as_json(invoke("deployments", "list", "--json"))
    assert listed[0]["targets"] is None and "points at no version" in listed[0]["problem"]
    assert "@champion → ?" in invoke("deployments", "list").stdout
    assert "points at no version" in invoke("deployments", "show", "api").stdout
