"""The dataset part of the MetadataStore contract, run against every backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mloop import audit
from mloop.errors import InvalidInput, InvalidName, NotFound
from mloop.store.base import DatasetKind, MetadataStore, NewDatasetVersion
from mloop.store.datasets import OWNER_KIND, parse_ref
from tests.store.test_contract import ACTOR, new_run


def digest(n: int) -> str:
    return f"{n:064x}"


def new_version(n: int, **kw: object) -> NewDatasetVersion:
    args: dict[str, object] = {
        "digest": digest(n),
        "kind": DatasetKind.TABLE,
        "storage_digest": digest(1000 + n),
        "size": 10 * n,
        "files": [("data.parquet", digest(1000 + n), 10 * n)],
        "schema": [{"name": "x", "type": "double", "nullable": True}],
        "num_rows": n,
        "profile": {"rows": n, "columns": []},
    }
    args.update(kw)
    return NewDatasetVersion(**args)  # type: ignore[arg-type]


def test_versions_number_up_and_same_digest_is_same_version(store: MetadataStore) -> None:
    v1, created1 = store.create_dataset_version("tx", new_version(1), actor=ACTOR)
    v2, created2 = store.create_dataset_version("tx", new_version(2), actor=ACTOR)
    again, created3 = store.create_dataset_version("tx", new_version(1), actor=ACTOR)
    assert (v1.version, v2.version, again.version) == (1, 2, 1)
    assert (created1, created2, created3) == (True, True, False)
    assert again.id == v1.id
    assert v1.ref == "tx@v1"
    assert v1.schema == [{"name": "x", "type": "double", "nullable": True}]
    assert v1.profile == {"rows": 1, "columns": []}
    assert store.get_dataset_version("tx").version == 2
    assert store.get_dataset_version("tx", 1).digest == digest(1)
    assert store.find_dataset_version("tx", digest(2)) == v2
    assert store.find_dataset_version("tx", digest(3)) is None
    listed = store.list_dataset_versions("tx")
    assert [v.version for v in listed] == [1, 2]
    assert all(v.profile is None for v in listed)
    (dataset,) = store.list_datasets()
    assert (dataset.name, dataset.versions, dataset.latest) == ("tx", 2, 2)


def test_other_dataset_numbers_apart(store: MetadataStore) -> None:
    store.create_dataset_version("a", new_version(1), actor=ACTOR)
    b, _ = store.create_dataset_version("b", new_version(1), actor=ACTOR)
    assert b.version == 1
    assert [d.name for d in store.list_datasets()] == ["a", "b"]


def test_blobs_are_referenced_for_gc(store: MetadataStore) -> None:
    files = [("manifest", digest(7), 5), ("files/a.txt", digest(8), 3)]
    v, _ = store.create_dataset_version(
        "imgs", new_version(3, kind=DatasetKind.FILES, files=files, num_files=1), actor=ACTOR
    )
    assert store.referenced_digests([digest(7), digest(8), digest(9)]) == {digest(7), digest(8)}
    assert [e.path for e in store.list_artifacts(OWNER_KIND, str(v.id))] == [
        "files/a.txt",
        "manifest",
    ]


def test_tags_parents_and_run(store: MetadataStore) -> None:
    run = new_run(store)
    raw, _ = store.create_dataset_version("raw", new_version(1), actor=ACTOR)
    clean, _ = store.create_dataset_version(
        "clean",
        new_version(2, parents=[raw.id], run_id=run.id, tags={"source": "etl"}),
        actor=ACTOR,
    )
    assert clean.parents == ("raw@v1",)
    assert clean.run_id == run.id
    assert clean.tags == {"source": "etl"}
    store.set_dataset_version_tags(clean.id, {"source": "etl2", "owner": "risk"}, actor=ACTOR)
    assert store.get_dataset_version("clean").tags == {"source": "etl2", "owner": "risk"}


def test_bad_input_records_nothing(store: MetadataStore) -> None:
    with pytest.raises(InvalidName):
        store.create_dataset_version("bad name", new_version(1), actor=ACTOR)
    with pytest.raises(InvalidName):
        store.create_dataset_version("a@b", new_version(1), actor=ACTOR)
    with pytest.raises(InvalidInput, match="digests"):
        store.create_dataset_version("x", new_version(1, digest="nothex"), actor=ACTOR)
    with pytest.raises(NotFound, match="dataset version"):
        store.create_dataset_version("x", new_version(1, parents=[999]), actor=ACTOR)
    with pytest.raises(NotFound, match="run"):
        store.create_dataset_version("x", new_version(1, run_id="f" * 32), actor=ACTOR)
    with pytest.raises(InvalidInput, match="JSON"):
        store.create_dataset_version(
            "x", new_version(1, profile={"mean": float("nan")}), actor=ACTOR
        )
    assert store.list_datasets() == []
    assert store.referenced_digests([digest(1001)]) == set()
    with pytest.raises(NotFound, match="no dataset named"):
        store.get_dataset_version("x")
    store.create_dataset_version("x", new_version(1), actor=ACTOR)
    with pytest.raises(NotFound, match="no version 5"):
        store.get_dataset_version("x", 5)


def test_run_inputs(store: MetadataStore) -> None:
    run = new_run(store)
    v1, _ = store.create_dataset_version("tx", new_version(1), actor=ACTOR)
    v2, _ = store.create_dataset_version("tx", new_version(2), actor=ACTOR)
    store.log_run_inputs(run.id, [(v1.id, "training"), (v2.id, "evaluation")], actor=ACTOR)
    store.log_run_inputs(run.id, [(v1.id, "training")], actor=ACTOR)  # no-op
    inputs = store.list_run_inputs(run.id)
    assert sorted((i.version.ref, i.context) for i in inputs) == [
        ("tx@v1", "training"),
        ("tx@v2", "evaluation"),
    ]
    assert store.list_version_consumers(v1.id) == [(run.id, "training")]
    with pytest.raises(NotFound):
        store.log_run_inputs("0" * 32, [(v1.id, "training")], actor=ACTOR)
    with pytest.raises(NotFound):
        store.log_run_inputs(run.id, [(12345, "training")], actor=ACTOR)
    with pytest.raises(InvalidName):
        store.log_run_inputs(run.id, [(v1.id, "")], actor=ACTOR)


def test_purging_a_run_keeps_versions_it_produced(store: MetadataStore) -> None:
    from mloop.store.base import Lifecycle

    run = new_run(store)
    v, _ = store.create_dataset_version("tx", new_version(1, run_id=run.id), actor=ACTOR)
    store.log_run_inputs(run.id, [(v.id, "training")], actor=ACTOR)
    store.add_validation_result(
        version_id=None, run_id=run.id, suite="s", success=True, body={}, actor=ACTOR
    )
    store.set_run_lifecycle(run.id, Lifecycle.DELETED, actor=ACTOR)
    assert store.purge_runs([run.id], actor=ACTOR) == 1
    kept = store.get_dataset_version("tx", 1)
    assert kept.run_id is None
    assert store.list_version_consumers(v.id) == []
    assert store.list_validation_results(run_id=run.id) == []


def test_validation_results(store: MetadataStore) -> None:
    run = new_run(store)
    v, _ = store.create_dataset_version("tx", new_version(1), actor=ACTOR)
    body = {"suite": "tx", "success": False, "results": [{"kind": "not_null", "failed": 3}]}
    stored = store.add_validation_result(
        version_id=v.id, run_id=run.id, suite="tx", success=False, body=body, actor=ACTOR
    )
    assert stored.body == body
    assert store.list_validation_results(version_id=v.id) == [stored]
    assert store.list_validation_results(run_id=run.id) == [stored]
    with pytest.raises(InvalidInput):
        store.add_validation_result(
            version_id=None, run_id=None, suite="tx", success=True, body={}, actor=ACTOR
        )
    with pytest.raises(NotFound):
        store.add_validation_result(
            version_id=424242, run_id=None, suite="tx", success=True, body={}, actor=ACTOR
        )


def test_every_change_is_audited(store: MetadataStore) -> None:
    run = new_run(store)
    v, _ = store.create_dataset_version("tx", new_version(1), actor=ACTOR)
    store.set_dataset_version_tags(v.id, {"k": "v"}, actor=ACTOR)
    store.log_run_inputs(run.id, [(v.id, "training")], actor=ACTOR)
    store.add_validation_result(
        version_id=v.id, run_id=None, suite="s", success=True, body={}, actor=ACTOR
    )
    actions = [e.action for e in store.iter_audit()]
    assert actions[-4:] == [
        "dataset.version_created",
        "dataset.tags_set",
        "run.inputs_logged",
        "dataset.validated",
    ]
    assert audit.verify(store).ok


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("tx", ("tx", None)), ("tx@v3", ("tx", 3)), ("tx@3", ("tx", 3)), ("tx@latest", ("tx", None))],
)
def test_parse_ref(ref: str, expected: tuple[str, int | None]) -> None:
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["", "tx@", "tx@vx", "@v1", "a b@v1", "tx@v1@v2"])
def test_parse_ref_refuses(ref: str) -> None:
    with pytest.raises((InvalidInput, InvalidName)):
        parse_ref(ref)


WORKER = """
import sys
from mloop.config import load_settings
from mloop.store import open_store
from mloop.store.base import DatasetKind, NewDatasetVersion
store = open_store(sys.argv[1], settings=load_settings(overrides={"home": sys.argv[2]}, environ={}))
base = int(sys.argv[3])
for i in range(base, base + 10):
    d = f"{i:064x}"
    store.create_dataset_version(
        "shared", NewDatasetVersion(d, DatasetKind.TABLE, d, 1, []), actor="w"
    )
store.close()
"""


@pytest.mark.slow
def test_concurrent_writers_get_unique_numbers(store: MetadataStore, tmp_path: Path) -> None:
    uri = store.engine.url.render_as_string(hide_password=False)  # type: ignore[attr-defined]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, uri, str(tmp_path / "home"), str(100 * (k + 1))],
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    versions = store.list_dataset_versions("shared")
    assert sorted(v.version for v in versions) == list(range(1, 31))
