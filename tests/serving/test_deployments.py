"""Deployments through the domain functions: URIs, canary, shadow, promotion, rollback, audit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from mloop import registry
from mloop.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    InvalidName,
    InvalidState,
    NotFound,
)
from mloop.serving import deployments as deps
from mloop.store import queries
from mloop.store.base import NewModelVersion
from mloop.tracking import TrackingClient


def champion(client: TrackingClient) -> int | None:
    return client.store.get_registered_model("fraud").aliases.get("champion")


@pytest.fixture
def fraud(client: TrackingClient) -> TrackingClient:
    """Versions 1-4 of ``fraud`` (records only, no packages), champion -> 1."""
    for n in (1, 2, 3, 4):
        new = NewModelVersion(package_digest=f"{n:064x}", flavor="sklearn", files=[])
        client.store.create_model_version("fraud", new, actor="setup")
    registry.set_alias("fraud", "champion", 1, client=client)
    return client


def actions(client: TrackingClient) -> list[str]:
    return [e.action for e in client.store.iter_audit() if e.object_type == "deployment"]


def test_create_from_uris(fraud: TrackingClient) -> None:
    followed = deps.create_deployment("api", "fraud@champion", client=fraud)
    assert (followed.alias, followed.version) == ("champion", None)
    pinned = deps.create_deployment("batch", "models:/fraud/3", actor="ci", client=fraud)
    assert (pinned.alias, pinned.version) == (None, 3)
    also = deps.create_deployment("b2", "models:/fraud@champion", client=fraud)
    assert also.model_uri == "models:/fraud@champion"
    assert [d.name for d in deps.list_deployments(client=fraud)] == ["api", "b2", "batch"]
    assert deps.get_deployment("batch", client=fraud) == pinned
    creators = [e.actor for e in fraud.store.iter_audit() if e.action == "deployment.created"]
    assert creators == [fraud.settings.actor, "ci", fraud.settings.actor]


@pytest.mark.parametrize(
    ("name", "uri", "error", "match"),
    [
        ("api", "fraud", InvalidInput, "names neither an alias nor a version"),
        ("api", "models:/fraud/latest", InvalidInput, "names neither"),
        ("api", "s3://bucket/model", InvalidInput, "must start with models:/"),
        ("api", "fraud@", InvalidInput, "is not models:/NAME"),
        ("api", "nope@champion", NotFound, "no registered model named 'nope'"),
        ("api", "fraud/9", NotFound, "no version 9"),
        ("api", "fraud@ghost", NotFound, "no alias 'ghost'"),
        ("bad/name", "fraud@champion", InvalidName, "deployment name"),
        ("", "fraud@champion", InvalidName, "deployment name"),
    ],
)
def test_create_refuses_bad_input(
    fraud: TrackingClient, name: str, uri: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        deps.create_deployment(name, uri, client=fraud)
    assert deps.list_deployments(client=fraud) == []
    assert actions(fraud) == []


def test_a_deployment_name_is_one_its_prediction_log_accepts(fraud: TrackingClient) -> None:
    """The 64-character limit of a deployment name is the one the prediction log keeps."""
    from mloop.serving.predlog import PredictionLog

    with pytest.raises(InvalidName, match="more than the 64") as caught:
        deps.create_deployment("d" * 100, "fraud@champion", client=fraud)
    assert "--deployment" in str(caught.value)
    assert deps.list_deployments(client=fraud) == []
    longest = deps.create_deployment("d" * 64, "fraud@champion", client=fraud)
    PredictionLog(longest.name, client=fraud).close()
    with pytest.raises(InvalidName, match="more than the 64") as refused:
        PredictionLog("d" * 100, client=fraud)
    assert refused.value.details["field"] == "deployment"


def test_bad_actor_is_refused(fraud: TrackingClient) -> None:
    with pytest.raises(InvalidInput, match="actor"):
        deps.create_deployment("api", "fraud@champion", actor=" ", client=fraud)
    deps.create_deployment("api", "fraud@champion", client=fraud)
    with pytest.raises(AlreadyExists):
        deps.create_deployment("api", "fraud/2", client=fraud)


def test_canary_shadow_pin_follow(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    dep = deps.set_canary("api", 2, 25, sticky_key="customer_id", client=fraud)
    assert (dep.canary_version, dep.canary_percent, dep.sticky_key) == (2, 25.0, "customer_id")
    dep = deps.set_shadow("api", 3, client=fraud)
    targets = deps.resolve_targets("api", client=fraud)
    assert targets.canary is not None and targets.shadow is not None
    assert (targets.primary.version, targets.canary.version, targets.shadow.version) == (1, 2, 3)
    assert (targets.canary_percent, targets.sticky_key, targets.revision) == (
        25.0,
        "customer_id",
        3,
    )
    assert deps.resolve_targets(dep, fraud) == targets  # by record, client positional
    with pytest.raises(InvalidInput, match="0 to 100"):
        deps.set_canary("api", 2, 120, client=fraud)
    with pytest.raises(InvalidInput, match="canary version 1 is the primary"):
        deps.set_canary("api", 1, 10, client=fraud)
    with pytest.raises(InvalidInput, match="shadow version 1 is the primary"):
        deps.set_shadow("api", 1, client=fraud)
    with pytest.raises(NotFound, match="no version 7"):
        deps.set_shadow("api", 7, client=fraud)
    assert deps.get_deployment("api", client=fraud).revision == 3  # nothing was recorded
    dep = deps.clear_canary("api", client=fraud)
    assert (dep.canary_version, dep.canary_percent, dep.sticky_key) == (None, 0.0, None)
    dep = deps.set_shadow("api", None, client=fraud)
    assert dep.shadow_version is None
    dep = deps.pin_version("api", 4, client=fraud)
    assert (dep.alias, dep.version) == (None, 4)
    assert deps.resolve_targets("api", client=fraud).alias_version is None
    dep = deps.follow_alias("api", "champion", client=fraud)
    assert (dep.alias, dep.version, dep.revision) == ("champion", None, 7)
    with pytest.raises(NotFound, match="no alias 'ghost'"):
        deps.follow_alias("api", "ghost", client=fraud)
    assert actions(fraud) == [
        "deployment.created", "deployment.canary_set", "deployment.shadow_set",
        "deployment.canary_cleared", "deployment.shadow_cleared", "deployment.pinned",
        "deployment.followed",
    ]  # fmt: skip
    history = deps.deployment_history("api", client=fraud)
    assert [c.revision for c in history] == list(range(1, 8))


def test_following_deployment_moves_with_its_alias(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    before = deps.resolve_targets("api", client=fraud)
    registry.set_alias("fraud", "champion", 3, client=fraud)
    after = deps.resolve_targets("api", client=fraud)
    assert (before.primary.version, after.primary.version) == (1, 3)
    assert before.revision == after.revision and after.alias_version == 3


def test_resolve_targets_is_two_queries(
    fraud: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    deps.set_canary("api", 2, 10, client=fraud)
    deps.set_shadow("api", 3, client=fraud)
    deps.resolve_targets("api", client=fraud)  # statements compiled
    statements: list[str] = []
    real = queries.run_on_cursor

    def counting(conn: Any, sql: str, params: Any, many: bool = False) -> list[Any]:
        statements.append(sql)
        return real(conn, sql, params, many)

    def on_execute(*args: Any) -> None:
        statement = args[2]
        if not statement.lstrip().upper().startswith(("BEGIN", "ROLLBACK", "COMMIT")):
            statements.append(statement)

    monkeypatch.setattr(queries, "run_on_cursor", counting)
    engine = fraud.store.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        targets = deps.resolve_targets("api", client=fraud)
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert len(statements) == 2, statements
    assert targets.shadow is not None and targets.shadow.version == 3


def test_promote_a_following_deployment_moves_the_alias(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    deps.create_deployment("other", "fraud@champion", client=fraud)
    with pytest.raises(InvalidState, match="no canary to promote"):
        deps.promote_canary("api", client=fraud)
    deps.set_canary("api", 2, 10, client=fraud)
    registry.set_policy("fraud", "champion", approvals=1, client=fraud)
    with pytest.raises(Forbidden, match="approval"):
        deps.promote_canary("api", client=fraud)
    assert champion(fraud) == 1 and deps.get_deployment("api", client=fraud).canary_version == 2
    registry.approve("fraud", 2, by="risk-team", client=fraud)
    dep = deps.promote_canary("api", reason="canary healthy", client=fraud)
    assert (dep.alias, dep.canary_version, dep.canary_percent) == ("champion", None, 0.0)
    assert champion(fraud) == 2
    assert deps.resolve_targets("other", client=fraud).primary.version == 2  # everyone follows
    change = fraud.store.list_alias_history("fraud", "champion")[-1]
    assert (change.version, change.previous, change.reason) == (2, 1, "canary healthy")
    promoted = deps.deployment_history("api", client=fraud)[-1]
    assert promoted.action == "canary_promoted"
    assert (promoted.before["alias_version"], promoted.after["alias_version"]) == (1, 2)


def test_promote_a_pinned_deployment_pins_the_canary(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud/1", client=fraud)
    deps.set_canary("api", 3, 50, client=fraud)
    dep = deps.promote_canary("api", client=fraud)
    assert (dep.version, dep.canary_version) == (3, None)
    assert champion(fraud) == 1  # aliases untouched


def test_rollback_undoes_changes_one_by_one(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    with pytest.raises(InvalidState, match="no change to roll back"):
        deps.rollback("api", client=fraud)
    deps.set_canary("api", 2, 10, sticky_key="cid", client=fraud)
    deps.set_shadow("api", 3, client=fraud)
    dep = deps.rollback("api", reason="noisy shadow", client=fraud)
    assert (dep.shadow_version, dep.canary_version, dep.revision) == (None, 2, 4)
    dep = deps.rollback("api", client=fraud)  # keeps going back: the canary goes too
    assert (dep.shadow_version, dep.canary_version, dep.sticky_key) == (None, None, None)
    with pytest.raises(InvalidState, match="no change to roll back"):
        deps.rollback("api", client=fraud)
    deps.pin_version("api", 4, client=fraud)
    dep = deps.rollback("api", client=fraud)  # a later change is undone first
    assert (dep.alias, dep.version) == ("champion", None)
    history = deps.deployment_history("api", client=fraud)
    assert [(c.action, c.undoes) for c in history] == [
        ("created", None), ("canary_set", None), ("shadow_set", None), ("rolled_back", 3),
        ("rolled_back", 2), ("pinned", None), ("rolled_back", 6),
    ]  # fmt: skip
    audited = [e for e in fraud.store.iter_audit() if e.action == "deployment.rolled_back"]
    assert len(audited) == 3 and audited[0].after is not None
    assert audited[0].after["reason"] == "noisy shadow"


def test_rollback_moves_the_alias_back_when_it_moved_last(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    deps.set_shadow("api", 4, client=fraud)
    registry.set_alias("fraud", "champion", 2, client=fraud)
    registry.set_alias("fraud", "champion", 3, client=fraud)
    dep = deps.rollback("api", reason="alerts", client=fraud)
    assert champion(fraud) == 2 and dep.shadow_version == 4 and dep.revision == 2
    deps.rollback("api", client=fraud)
    assert champion(fraud) == 1  # back where it was at the deployment's last change
    dep = deps.rollback("api", client=fraud)  # now the deployment's own change is undone
    assert champion(fraud) == 1 and dep.shadow_version is None
    moves = fraud.store.list_alias_history("fraud", "champion")
    assert [(m.version, m.reason) for m in moves[-2:]] == [(2, "rollback: alerts"), (1, "rollback")]
    alias_events = [
        e for e in fraud.store.iter_audit() if e.action == "deployment.alias_rolled_back"
    ]
    assert (alias_events[0].before, alias_events[0].after) == (
        {"alias": "champion", "alias_version": 3},
        {"alias": "champion", "alias_version": 2, "reason": "alerts"},
    )
    assert all(e.object_type == "deployment" and e.object_id == "api" for e in alias_events)


def test_rollback_restores_a_removed_alias(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    fraud.store.set_model_alias("fraud", "champion", None, actor="ops")
    with pytest.raises(NotFound, match="points at no version"):
        deps.resolve_targets("api", client=fraud)
    deps.rollback("api", client=fraud)
    assert deps.resolve_targets("api", client=fraud).primary.version == 1


def test_rollback_of_a_promotion_moves_the_alias_back(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    deps.set_canary("api", 2, 10, client=fraud)
    deps.promote_canary("api", client=fraud)
    assert champion(fraud) == 2
    dep = deps.rollback("api", client=fraud)
    assert champion(fraud) == 1
    assert (dep.canary_version, dep.canary_percent) == (2, 10.0)
    targets = deps.resolve_targets("api", client=fraud)
    assert targets.primary.version == 1 and targets.canary is not None
    dep = deps.rollback("api", client=fraud)  # then the canary itself
    assert dep.canary_version is None and champion(fraud) == 1


def test_rollback_of_a_pinned_promotion(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud/1", client=fraud)
    deps.set_canary("api", 3, 50, client=fraud)
    deps.promote_canary("api", client=fraud)
    dep = deps.rollback("api", client=fraud)
    assert (dep.version, dep.canary_version, dep.canary_percent) == (1, 3, 50.0)


def test_delete_deployment(fraud: TrackingClient) -> None:
    deps.create_deployment("api", "fraud@champion", client=fraud)
    deps.delete_deployment("api", actor="ops", client=fraud)
    with pytest.raises(NotFound, match="no deployment named 'api'"):
        deps.get_deployment("api", client=fraud)
    with pytest.raises(NotFound):
        deps.rollback("api", client=fraud)
    deleted = [e for e in fraud.store.iter_audit() if e.action == "deployment.deleted"]
    assert [e.actor for e in deleted] == ["ops"]
