"""collect_garbage: batching, progress, temp leftovers and bad input (local backend)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mloop.artifacts import ContentAddressedStore, collect_garbage
from mloop.artifacts import gc as gc_module
from mloop.artifacts.base import TEMP_FOLDER
from mloop.artifacts.cas import blob_key
from mloop.artifacts.local import LocalBlobStore
from mloop.errors import InvalidInput

from .conftest import RecordingBlobStore


def _age(root: Path, digest: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(root / blob_key(digest), (then, then))


@pytest.fixture
def store(tmp_path: Path) -> RecordingBlobStore:
    return RecordingBlobStore(LocalBlobStore(tmp_path / "store"))


def test_deletes_in_batches_and_reports_progress(
    store: RecordingBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gc_module, "DELETE_BATCH_SIZE", 3)
    cas = ContentAddressedStore(store)
    refs = [cas.put_bytes(f"blob {i}".encode()) for i in range(8)]
    for ref in refs:
        _age(tmp_path / "store", ref.digest, 7200)
    keep = {refs[0].digest}
    seen: list[int] = []
    store.calls.clear()
    report = collect_garbage(cas, lambda _: keep, grace_seconds=3600, progress=seen.append)
    deletes = [keys for name, keys in store.calls if name == "delete"]
    assert all(0 < len(keys) <= 3 for keys in deletes)
    assert len(deletes) >= 3
    assert sum(len(keys) for keys in deletes) == 7
    assert sum(seen) == report.scanned == 8
    assert report.deleted == 7
    assert report.kept_referenced == 1
    assert report.freed_bytes == sum(ref.size for ref in refs[1:])
    assert cas.exists([ref.digest for ref in refs]) == keep


def test_a_reference_recorded_during_the_collection_saves_its_blob(
    store: RecordingBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gc_module, "DELETE_BATCH_SIZE", 2)
    cas = ContentAddressedStore(store)
    refs = [cas.put_bytes(f"blob {i}".encode()) for i in range(4)]
    for ref in refs:
        _age(tmp_path / "store", ref.digest, 7200)
    recorded: set[str] = set()
    asked: list[list[str]] = []

    def referenced(candidates: list[str]) -> set[str]:
        asked.append(candidates)
        answer = recorded & set(candidates)
        # A writer records a reference to every blob once the first batch has been checked.
        recorded.update(ref.digest for ref in refs)
        return answer

    report = collect_garbage(cas, referenced, grace_seconds=3600)
    assert [len(batch) for batch in asked] == [2, 2]
    assert (report.deleted, report.kept_referenced) == (2, 2)
    assert len(cas.exists([ref.digest for ref in refs])) == 2


def test_grace_protects_young_blobs(store: RecordingBlobStore) -> None:
    cas = ContentAddressedStore(store)
    cas.put_bytes(b"just uploaded, not yet referenced")
    report = collect_garbage(cas, lambda _: set(), grace_seconds=3600)
    assert (report.deleted, report.kept_young) == (0, 1)
    assert len(list(cas.iter_blobs())) == 1


def test_cleans_old_temp_leftovers_unless_dry_run(
    store: RecordingBlobStore, tmp_path: Path
) -> None:
    cas = ContentAddressedStore(store)
    temp = tmp_path / "store" / TEMP_FOLDER
    temp.mkdir(parents=True)
    old, young = temp / "old.part", temp / "young.part"
    old.write_bytes(b"o")
    young.write_bytes(b"y")
    then = time.time() - 7200
    os.utime(old, (then, then))
    assert (
        collect_garbage(cas, lambda _: set(), grace_seconds=3600, dry_run=True).temporary_removed
        == 0
    )
    assert old.exists()
    report = collect_garbage(cas, lambda _: set(), grace_seconds=3600)
    assert report.temporary_removed == 1
    assert [p.name for p in temp.iterdir()] == ["young.part"]


def test_dry_run_deletes_nothing(store: RecordingBlobStore, tmp_path: Path) -> None:
    cas = ContentAddressedStore(store)
    ref = cas.put_bytes(b"orphan")
    _age(tmp_path / "store", ref.digest, 7200)
    store.calls.clear()
    report = collect_garbage(cas, lambda _: set(), grace_seconds=60, dry_run=True)
    assert (report.deleted, report.freed_bytes, report.dry_run) == (1, ref.size, True)
    assert not [name for name, _ in store.calls if name == "delete"]
    assert cas.exists([ref.digest]) == {ref.digest}


@pytest.mark.parametrize("grace", [-1.0, float("nan")])
def test_refuses_bad_grace(store: RecordingBlobStore, grace: float) -> None:
    with pytest.raises(InvalidInput, match="grace_seconds"):
        collect_garbage(ContentAddressedStore(store), lambda _: set(), grace_seconds=grace)


def test_does_not_import_the_metadata_store() -> None:
    source = Path(gc_module.__file__).read_text()
    assert "mloop.store" not in source
    assert "mloop.tracking" not in source
