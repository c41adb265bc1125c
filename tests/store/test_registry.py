"""The model-registry part of the MetadataStore contract, run against every backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mloop import audit
from mloop.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    InvalidName,
    InvalidState,
    NotFound,
)
from mloop.store.base import (
    Lifecycle,
    MetadataStore,
    ModelRecord,
    ModelVersionStatus,
    NewModelVersion,
)
from mloop.store.registry import OWNER_KIND, check_alias
from tests.store.test_contract import ACTOR, new_run


def new_version(n: int = 1, **kw: object) -> NewModelVersion:
    args: dict[str, object] = {
        "package_digest": f"{n:064x}",
        "flavor": "sklearn",
        "files": [("model.skops", f"{1000 + n:064x}", 10), ("mloop-model.json", f"{n:064x}", 3)],
        "signature": {"inputs": [{"name": "x", "type": "double"}]},
    }
    args.update(kw)
    return NewModelVersion(**args)  # type: ignore[arg-type]


def test_versions_number_up_and_models_are_created_on_first_use(store: MetadataStore) -> None:
    run = new_run(store)
    v1 = store.create_model_version("fraud", new_version(1, run_id=run.id), actor=ACTOR)
    v2 = store.create_model_version("fraud", new_version(2, tags={"k": "v"}), actor=ACTOR)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.uri == "models:/fraud/1"
    assert v1.run_id == run.id and v1.signature == {"inputs": [{"name": "x", "type": "double"}]}
    assert v2.tags == {"k": "v"}
    assert store.get_model_version("fraud", 2) == v2
    assert [v.version for v in store.list_model_versions("fraud")] == [1, 2]
    model = store.get_registered_model("fraud")
    assert (model.name, model.latest_version, model.aliases) == ("fraud", 2, {})
    assert [m.name for m in store.list_registered_models()] == ["fraud"]
    assert store.referenced_digests([f"{1001:064x}"]) == {f"{1001:064x}"}
    assert [e.path for e in store.list_artifacts(OWNER_KIND, str(v1.id))] == [
        "mloop-model.json",
        "model.skops",
    ]


def test_create_registered_model(store: MetadataStore) -> None:
    model = store.create_registered_model(
        "churn", description="who leaves", tags={"team": "risk"}, actor=ACTOR
    )
    assert (model.description, model.tags, model.latest_version) == (
        "who leaves",
        {"team": "risk"},
        None,
    )
    with pytest.raises(AlreadyExists):
        store.create_registered_model("churn", actor=ACTOR)
    with pytest.raises(InvalidName):
        store.create_registered_model("bad name", actor=ACTOR)


def test_aliases_move_and_keep_history(store: MetadataStore) -> None:
    for n in (1, 2, 3):
        store.create_model_version("m", new_version(n), actor=ACTOR)
    store.set_model_alias("m", "champion", 1, reason="first", actor=ACTOR)
    change = store.set_model_alias("m", "champion", 2, reason="better", actor=ACTOR)
    assert (change.version, change.previous, change.reason) == (2, 1, "better")
    store.set_model_alias("m", "challenger", 3, actor=ACTOR)
    model = store.get_registered_model("m")
    assert model.aliases == {"challenger": 3, "champion": 2}
    assert store.get_model_version("m", 2).aliases == ("champion",)
    history = store.list_alias_history("m", "champion")
    assert [(c.version, c.previous) for c in history] == [(1, None), (2, 1)]
    removed = store.set_model_alias("m", "challenger", None, actor=ACTOR)
    assert (removed.version, removed.previous) == (None, 3)
    assert store.get_registered_model("m").aliases == {"champion": 2}
    assert len(store.list_alias_history("m")) == 4


def test_alias_errors(store: MetadataStore) -> None:
    store.create_model_version("m", new_version(1), actor=ACTOR)
    with pytest.raises(NotFound, match="no version 7"):
        store.set_model_alias("m", "champion", 7, actor=ACTOR)
    with pytest.raises(NotFound, match="no registered model"):
        store.set_model_alias("nope", "champion", 1, actor=ACTOR)
    with pytest.raises(NotFound, match="no alias"):
        store.set_model_alias("m", "champion", None, actor=ACTOR)
    for bad in ("", "1", "latest", "has space", "a" * 65):
        with pytest.raises(InvalidName):
            check_alias(bad)
    assert store.list_alias_history("m") == []


def test_a_version_behind_an_alias_cannot_be_deleted(store: MetadataStore) -> None:
    store.create_model_version("m", new_version(1), actor=ACTOR)
    store.create_model_version("m", new_version(2), actor=ACTOR)
    store.set_model_alias("m", "champion", 1, actor=ACTOR)
    with pytest.raises(InvalidState, match="champion"):
        store.delete_model_version("m", 1, actor=ACTOR)
    deleted = store.delete_model_version("m", 2, actor=ACTOR)
    assert deleted.status == ModelVersionStatus.DELETED
    with pytest.raises(InvalidState, match="deleted"):
        store.set_model_alias("m", "challenger", 2, actor=ACTOR)
    assert store.get_registered_model("m").latest_version == 1


def test_records_and_policies(store: MetadataStore) -> None:
    store.create_model_version("m", new_version(1), actor=ACTOR)
    evaluation = store.add_model_record(
        "m", 1, kind="evaluation", subject="abc", passed=None, body={"roc_auc": 0.9}, actor=ACTOR
    )
    store.add_model_record(
        "m", 1, kind="approval", subject="champion", passed=True, body={"by": "risk"}, actor=ACTOR
    )
    assert store.list_model_records("m", 1, "evaluation") == [evaluation]
    assert [r.kind for r in store.list_model_records("m")] == ["evaluation", "approval"]
    with pytest.raises(InvalidInput, match="record kind"):
        store.add_model_record("m", 1, kind="vibe", subject="x", passed=None, body={}, actor=ACTOR)
    with pytest.raises(InvalidInput, match="JSON"):
        store.add_model_record(
            "m", 1, kind="evaluation", subject="x", passed=None, body={"x": float("nan")},
            actor=ACTOR,
        )  # fmt: skip
    assert store.get_alias_policy("m", "champion") is None
    store.set_alias_policy("m", "champion", {"approvals": 1}, actor=ACTOR)
    assert store.get_alias_policy("m", "champion") == {"approvals": 1}
    store.set_alias_policy("m", "champion", None, actor=ACTOR)
    assert store.get_alias_policy("m", "champion") is None


def test_bad_versions_record_nothing(store: MetadataStore) -> None:
    with pytest.raises(InvalidInput, match="digest"):
        store.create_model_version("m", new_version(1, package_digest="zz"), actor=ACTOR)
    with pytest.raises(NotFound, match="run"):
        store.create_model_version("m", new_version(1, run_id="a" * 32), actor=ACTOR)
    with pytest.raises(InvalidName):
        store.create_model_version("m/1", new_version(1), actor=ACTOR)
    assert store.list_registered_models() == []
    with pytest.raises(InvalidInput):
        store.get_model_version("m", 0)


def test_purging_the_run_keeps_the_version(store: MetadataStore) -> None:
    run = new_run(store)
    store.create_model_version("m", new_version(1, run_id=run.id), actor=ACTOR)
    store.set_run_lifecycle(run.id, Lifecycle.DELETED, actor=ACTOR)
    store.purge_runs([run.id], actor=ACTOR)
    assert store.get_model_version("m", 1).run_id is None


def test_every_registry_change_is_audited(store: MetadataStore) -> None:
    store.create_model_version("m", new_version(1), actor=ACTOR)
    store.set_model_alias("m", "champion", 1, actor=ACTOR)
    store.add_model_record(
        "m", 1, kind="gate", subject="champion", passed=True, body={}, actor=ACTOR
    )
    store.set_alias_policy("m", "champion", {"approvals": 1}, actor=ACTOR)
    store.set_model_alias("m", "champion", None, actor=ACTOR)
    store.delete_model_version("m", 1, actor=ACTOR)
    actions = [e.action for e in store.iter_audit()]
    assert actions == [
        "model.version_created",
        "model.alias_set",
        "model.gate_recorded",
        "model.policy_set",
        "model.alias_removed",
        "model.version_deleted",
    ]
    assert audit.verify(store).ok


WORKER = """
import sys
from mloop.config import load_settings
from mloop.store import open_store
from mloop.store.base import NewModelVersion
store = open_store(sys.argv[1], settings=load_settings(overrides={"home": sys.argv[2]}, environ={}))
numbers = []
for i in range(int(sys.argv[3])):
    new = NewModelVersion(f"{i:064x}", "sklearn", [])
    numbers.append(store.create_model_version("shared", new, actor="w").version)
store.close()
print(" ".join(map(str, numbers)))
"""


@pytest.mark.slow
def test_four_processes_register_1000_versions(store: MetadataStore, tmp_path: Path) -> None:
    uri = store.engine.url.render_as_string(hide_password=False)  # type: ignore[attr-defined]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, uri, str(tmp_path / "home"), "250"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    numbers: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        numbers.extend(int(n) for n in out.split())
    assert sorted(numbers) == list(range(1, 1001))
    assert [v.version for v in store.list_model_versions("shared")] == list(range(1, 1001))


def test_resolve_model_version_by_number_alias_and_newest(store: MetadataStore) -> None:
    for n in (1, 2, 3):
        store.create_model_version("m", new_version(n, tags={"n": str(n)}), actor=ACTOR)
    store.set_model_alias("m", "champion", 1, actor=ACTOR)
    store.set_model_alias("m", "challenger", 1, actor=ACTOR)
    store.delete_model_version("m", 3, actor=ACTOR)
    by_alias = store.resolve_model_version("m", alias="champion")
    assert by_alias == store.get_model_version("m", 1)
    assert by_alias.aliases == ("challenger", "champion") and by_alias.tags == {"n": "1"}
    assert store.resolve_model_version("m", version=3).status == ModelVersionStatus.DELETED
    newest = store.resolve_model_version("m")  # the newest *ready* version
    assert (newest.version, newest.tags, newest.aliases) == (2, {"n": "2"}, ())


def test_resolve_model_version_errors(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="no registered model named 'm'"):
        store.resolve_model_version("m", alias="champion")
    with pytest.raises(NotFound, match="no registered model named 'm'"):
        store.resolve_model_version("m", version=1)
    with pytest.raises(NotFound, match="no registered model named 'm'"):
        store.resolve_model_version("m")
    store.create_model_version("m", new_version(1), actor=ACTOR)
    with pytest.raises(NotFound, match=r"has no alias 'champion' \(aliases: none\)"):
        store.resolve_model_version("m", alias="champion")
    store.set_model_alias("m", "challenger", 1, actor=ACTOR)
    store.set_model_alias("m", "b-side", 1, actor=ACTOR)
    with pytest.raises(NotFound, match=r"no alias 'champion' \(aliases: b-side, challenger\)"):
        store.resolve_model_version("m", alias="champion")
    with pytest.raises(NotFound, match="has no version 2"):
        store.resolve_model_version("m", version=2)
    for bad in (0, -1, True, "1"):
        with pytest.raises(InvalidInput, match="integer"):
            store.resolve_model_version("m", version=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not both"):
        store.resolve_model_version("m", version=1, alias="challenger")
    store.create_registered_model("empty", actor=ACTOR)
    with pytest.raises(NotFound, match="'empty' has no ready version"):
        store.resolve_model_version("empty")


def test_an_alias_policy_is_checked_in_the_move(store: MetadataStore) -> None:
    store.create_model_version("m", new_version(1), actor=ACTOR)
    store.create_model_version("m", new_version(2), actor=ACTOR)
    seen: list[tuple[dict[str, object], list[str]]] = []

    def check(policy: dict[str, object], records: list[ModelRecord]) -> None:
        seen.append((policy, [r.subject for r in records]))

    store.set_model_alias("m", "champion", 1, actor=ACTOR, check=check)
    assert seen == []  # no policy: nothing to check
    store.set_alias_policy("m", "champion", {"approvals": 1}, actor=ACTOR)
    store.add_model_record(
        "m", 2, kind="approval", subject="champion", passed=True, body={"by": "a"}, actor=ACTOR
    )
    store.add_model_record(
        "m", 1, kind="approval", subject="other", passed=True, body={"by": "b"}, actor=ACTOR
    )
    store.set_model_alias("m", "champion", 2, actor=ACTOR, check=check)
    assert seen == [({"approvals": 1}, ["champion"])]  # the target version's records only
    head = store.audit_head()

    def refuse(policy: dict[str, object], records: list[ModelRecord]) -> None:
        raise Forbidden("no")

    with pytest.raises(Forbidden):
        store.set_model_alias("m", "champion", 1, actor=ACTOR, check=refuse)
    assert store.get_registered_model("m").aliases == {"champion": 2}
    assert len(store.list_alias_history("m")) == 2
    assert store.audit_head() == head
    removed = store.set_model_alias("m", "champion", None, actor=ACTOR, check=refuse)
    assert removed.previous == 2  # removing an alias is never refused by its policy
