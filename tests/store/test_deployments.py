"""The deployment part of the MetadataStore contract, run against every backend."""

from __future__ import annotations

import math

import pytest

from mloop.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidName,
    InvalidState,
    NotFound,
)
from mloop.store.base import MetadataStore
from tests.store.test_contract import ACTOR
from tests.store.test_registry import new_version

CANARY = {"canary_version": 2, "canary_percent": 10, "sticky_key": "customer_id"}


@pytest.fixture
def fraud(store: MetadataStore) -> MetadataStore:
    """Model ``fraud`` with versions 1-4, champion -> 1, version 2 tagged."""
    for n in (1, 2, 3, 4):
        tags = {"stage": "candidate"} if n == 2 else {}
        store.create_model_version("fraud", new_version(n, tags=tags), actor=ACTOR)
    store.set_model_alias("fraud", "champion", 1, actor=ACTOR)
    return store


def deployment_events(store: MetadataStore) -> list[tuple[str, str]]:
    return [(e.action, e.object_id) for e in store.iter_audit() if e.object_type == "deployment"]


def test_create_follow_and_pin(fraud: MetadataStore) -> None:
    dep = fraud.create_deployment("fraud-api", model="fraud", alias="champion", actor=ACTOR)
    assert (dep.name, dep.model, dep.alias, dep.version, dep.revision) == (
        "fraud-api", "fraud", "champion", None, 1,
    )  # fmt: skip
    assert (dep.canary_version, dep.canary_percent, dep.shadow_version, dep.sticky_key) == (
        None, 0.0, None, None,
    )  # fmt: skip
    assert dep.model_uri == "models:/fraud@champion"
    pinned = fraud.create_deployment("batch", model="fraud", version=3, actor=ACTOR)
    assert (pinned.alias, pinned.version, pinned.model_uri) == (None, 3, "models:/fraud/3")
    assert fraud.get_deployment("fraud-api") == dep
    assert [d.name for d in fraud.list_deployments()] == ["batch", "fraud-api"]
    assert deployment_events(fraud) == [
        ("deployment.created", "fraud-api"),
        ("deployment.created", "batch"),
    ]
    created = next(e for e in fraud.iter_audit() if e.action == "deployment.created")
    assert created.before is None
    assert created.after is not None and created.after["alias_version"] == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "bad name", "alias": "champion"}, InvalidName, "deployment name"),
        ({"model": "nope", "alias": "champion"}, NotFound, "no registered model named 'nope'"),
        ({"alias": "ghost"}, NotFound, "has no alias 'ghost' \\(aliases: champion\\)"),
        ({"alias": "bad alias"}, InvalidName, "alias"),
        ({"version": 9}, NotFound, "has no version 9"),
        ({"version": 0}, InvalidInput, "version number"),
        ({"version": True}, InvalidInput, "version number"),
        ({}, InvalidInput, "exactly one"),
        ({"alias": "champion", "version": 1}, InvalidInput, "exactly one"),
    ],
)
def test_create_refuses_bad_input_and_stores_nothing(
    fraud: MetadataStore, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    args: dict[str, object] = {"name": "api", "model": "fraud", "actor": ACTOR, **kwargs}
    name = args.pop("name")
    with pytest.raises(error, match=match):
        fraud.create_deployment(name, **args)  # type: ignore[arg-type]
    assert fraud.list_deployments() == []
    assert deployment_events(fraud) == []


def test_duplicate_name_and_deleted_version(fraud: MetadataStore) -> None:
    fraud.create_deployment("api", model="fraud", alias="champion", actor=ACTOR)
    with pytest.raises(AlreadyExists, match="already exists"):
        fraud.create_deployment("api", model="fraud", version=2, actor=ACTOR)
    fraud.delete_model_version("fraud", 4, actor=ACTOR)
    with pytest.raises(InvalidState, match="deleted"):
        fraud.create_deployment("other", model="fraud", version=4, actor=ACTOR)
    with pytest.raises(InvalidState, match="deleted"):
        fraud.update_deployment("api", {"shadow_version": 4}, action="shadow_set", actor=ACTOR)


def test_changes_bump_the_revision_and_keep_history(fraud: MetadataStore) -> None:
    fraud.create_deployment("api", model="fraud", alias="champion", actor=ACTOR)
    dep = fraud.update_deployment("api", CANARY, action="canary_set", actor=ACTOR)
    assert (dep.canary_version, dep.canary_percent, dep.sticky_key, dep.revision) == (
        2, 10.0, "customer_id", 2,
    )  # fmt: skip
    dep = fraud.update_deployment("api", {"shadow_version": 3}, action="shadow_set", actor="bob")
    assert (dep.shadow_version, dep.revision) == (3, 3)
    same = fraud.update_deployment("api", {"shadow_version": 3}, action="shadow_set", actor=ACTOR)
    assert same == dep  # nothing changed: not recorded
    pinned = fraud.update_deployment(
        "api", {"alias": None, "version": 1}, action="pinned", actor=ACTOR
    )
    assert (pinned.alias, pinned.version, pinned.revision) == (None, 1, 4)
    history = fraud.list_deployment_history("api")
    assert [(c.revision, c.action) for c in history] == [
        (1, "created"), (2, "canary_set"), (3, "shadow_set"), (4, "pinned"),
    ]  # fmt: skip
    assert history[0].before == {}
    assert history[1].before["canary_version"] is None
    assert history[1].after["canary_version"] == 2
    assert history[2].before == history[1].after and history[2].actor == "bob"
    assert history[3].after["alias_version"] is None and history[3].after["version"] == 1
    assert all(c.deployment == "api" and c.at > 0 for c in history)
    assert [a for a, _ in deployment_events(fraud)] == [
        "deployment.created", "deployment.canary_set", "deployment.shadow_set",
        "deployment.pinned",
    ]  # fmt: skip
    event = next(e for e in fraud.iter_audit() if e.action == "deployment.pinned")
    assert event.before is not None and event.before["alias"] == "champion"
    assert event.after is not None and event.after["revision"] == 4


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"canary_version": 2, "canary_percent": 101}, InvalidInput, "0 to 100"),
        ({"canary_version": 2, "canary_percent": -1}, InvalidInput, "0 to 100"),
        ({"canary_version": 2, "canary_percent": math.nan}, InvalidInput, "0 to 100"),
        ({"canary_version": 2, "canary_percent": "10"}, InvalidInput, "0 to 100"),
        ({"canary_version": 1, "canary_percent": 10}, InvalidInput, "canary version 1 is the"),
        ({"canary_version": 9, "canary_percent": 10}, NotFound, "no version 9"),
        ({"canary_percent": 10}, InvalidInput, "needs a canary version"),
        ({"sticky_key": "cid"}, InvalidInput, "needs a canary version"),
        ({"canary_version": 2, "sticky_key": "a b"}, InvalidInput, "sticky_key"),
        ({"shadow_version": 1}, InvalidInput, "shadow version 1 is the"),
        ({"alias": None}, InvalidInput, "exactly one"),
        ({"alias": "ghost"}, NotFound, "no alias 'ghost'"),
        ({"colour": "red"}, InvalidInput, "not colour"),
    ],
)
def test_bad_changes_are_refused_and_nothing_changes(
    fraud: MetadataStore, changes: dict[str, object], error: type[Exception], match: str
) -> None:
    before = fraud.create_deployment("api", model="fraud", alias="champion", actor=ACTOR)
    with pytest.raises(error, match=match):
        fraud.update_deployment("api", changes, action="canary_set", actor=ACTOR)
    assert fraud.get_deployment("api") == before
    assert len(fraud.list_deployment_history("api")) == 1


def test_unknown_deployment_action_and_stale_revision(fraud: MetadataStore) -> None:
    with pytest.raises(NotFound, match="no deployment named 'ghost'"):
        fraud.update_deployment("ghost", {"shadow_version": 2}, action="shadow_set", actor=ACTOR)
    for getter in (fraud.get_deployment, fraud.list_deployment_history, fraud.resolve_deployment):
        with pytest.raises(NotFound, match="no deployment"):
            getter("ghost")
    fraud.create_deployment("api", model="fraud", alias="champion", actor=ACTOR)
    with pytest.raises(InvalidInput, match="unknown deployment change"):
        fraud.update_deployment("api", {"shadow_version": 2}, action="created", actor=ACTOR)
    with pytest.raises(Conflict, match="revision 1, expected 7"):
        fraud.update_deployment(
            "api", {"shadow_version": 2}, action="shadow_set", actor=ACTOR, expected_revision=7
        )
    done = fraud.update_deployment(
        "api", {"shadow_version": 2}, action="shadow_set", actor=ACTOR, expected_revision=1
    )
    assert done.revision == 2


def test_rollback_rows_name_what_they_undo(fraud: MetadataStore) -> None:
    fraud.create_deployment("api", model="fraud", alias="champion", actor=ACTOR)
    fraud.update_deployment("api", CANARY, action="canary_set", actor=ACTOR)
    # A rollback may restore a canary that is now the primary version (the alias moved onto
    # it); resolving then leaves the canary out.
    fraud.update_deployment(
        "api", {"canary_version": None, "canary_percent": 0, "sticky_key": None},
        action="canary_cleared", actor=ACTOR,
    )  # fmt: skip
    fraud.set_model_alias("fraud", "champion", 2, actor=ACTOR)
    back = fraud.update_deployment(
        "api", CANARY, action="rolled_back", actor=ACTOR, undoes=3, reason="alerts"
    )
    assert back.canary_version == 2
    last = fraud.list_deployment_history("api")[-1]
    assert (last.action, last.undoes, last.after["alias_version"]) == ("rolled_back", 3, 2)
    event = list(fraud.iter_audit())[-1]
    assert event.after is not None
    assert (event.after["undoes"], event.after["reason"]) == (3, "alerts")
    targets = fraud.resolve_deployment("api")
    assert (targets.primary.version, targets.canary, targets.canary_percent) == (2, None, 0.0)
    assert targets.sticky_key is None


def test_resolve_deployment(fraud: MetadataStore) -> None:
    fraud.set_model_alias("fraud", "challenger", 2, actor=ACTOR)
    fraud.create_deployment("api", model="fraud", alias="champion", actor=ACTOR)
    plain = fraud.resolve_deployment("api")
    assert (plain.primary.version, plain.canary, plain.shadow) == (1, None, None)
    assert (plain.revision, plain.alias_version, plain.canary_percent) == (1, 1, 0.0)
    assert plain.primary == fraud.get_model_version("fraud", 1)
    fraud.update_deployment("api", CANARY, action="canary_set", actor=ACTOR)
    fraud.update_deployment("api", {"shadow_version": 3}, action="shadow_set", actor=ACTOR)
    full = fraud.resolve_deployment("api")
    assert full.canary is not None and full.shadow is not None
    assert (full.canary.version, full.canary_percent, full.shadow.version) == (2, 10.0, 3)
    assert full.canary == fraud.get_model_version("fraud", 2)  # tags and aliases included
    assert full.canary.tags == {"stage": "candidate"} and full.canary.aliases == ("challenger",)
    assert (full.revision, full.sticky_key) == (3, "customer_id")
    # The alias moves: the primary follows, and a canary or shadow on that version drops out.
    fraud.set_model_alias("fraud", "champion", 3, actor=ACTOR)
    moved = fraud.resolve_deployment("api")
    assert (moved.primary.version, moved.alias_version, moved.shadow) == (3, 3, None)
    assert moved.canary is not None and moved.revision == 3
    fraud.set_model_alias("fraud", "champion", None, actor=ACTOR)
    with pytest.raises(NotFound, match="follows fraud@champion, which points at no version"):
        fraud.resolve_deployment("api")
    pinned = fraud.create_deployment("pinned", model="fraud", version=4, actor=ACTOR)
    assert fraud.resolve_deployment(pinned.name).alias_version is None
    fraud.delete_model_version("fraud", 4, actor=ACTOR)
    with pytest.raises(InvalidState, match="serves version 4 of 'fraud' as its primary"):
        fraud.resolve_deployment("pinned")


def test_delete_deployment(fraud: MetadataStore) -> None:
    fraud.create_deployment("api", model="fraud", alias="champion", actor=ACTOR)
    fraud.update_deployment("api", CANARY, action="canary_set", actor=ACTOR)
    fraud.delete_deployment("api", actor=ACTOR)
    with pytest.raises(NotFound):
        fraud.get_deployment("api")
    with pytest.raises(NotFound):
        fraud.delete_deployment("api", actor=ACTOR)
    again = fraud.create_deployment("api", model="fraud", version=2, actor=ACTOR)
    assert again.revision == 1
    assert [c.action for c in fraud.list_deployment_history("api")] == ["created"]
    deleted = [e for e in fraud.iter_audit() if e.action == "deployment.deleted"]
    assert len(deleted) == 1 and deleted[0].after is None
    assert deleted[0].before is not None and deleted[0].before["canary_version"] == 2


def test_concurrent_changes_get_distinct_revisions(fraud: MetadataStore) -> None:
    import itertools
    from concurrent.futures import ThreadPoolExecutor

    fraud.create_deployment("api", model="fraud", alias="champion", actor=ACTOR)

    def change(i: int) -> int:
        changes = {"canary_version": 2, "canary_percent": i + 1}
        return fraud.update_deployment("api", changes, action="canary_set", actor=ACTOR).revision

    with ThreadPoolExecutor(4) as pool:
        revisions = sorted(pool.map(change, range(12)))
    assert revisions == list(range(2, 14))
    history = fraud.list_deployment_history("api")
    assert [c.revision for c in history] == list(range(1, 14))
    # Each change's "before" is exactly the state the previous one left.
    for older, newer in itertools.pairwise(history):
        assert newer.before == older.after
