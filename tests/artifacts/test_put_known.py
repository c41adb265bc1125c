"""put_known: files with known digests, one batched lookup, every copy verified; on every backend
through the staged path, and on LocalBlobStore through its checked put."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mloop.artifacts import ContentAddressedStore
from mloop.artifacts import local as local_module
from mloop.artifacts.base import TEMP_FOLDER, BlobStore
from mloop.artifacts.cas import blob_key
from mloop.artifacts.local import LocalBlobStore
from mloop.errors import Conflict, InvalidInput, NotFound

from .conftest import RecordingBlobStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files(folder: Path, count: int) -> list[tuple[str, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for index in range(count):
        data = f"file {index}\n".encode() * (index + 1)
        path = folder / f"f{index}.txt"
        path.write_bytes(data)
        pairs.append((sha(data), path))
    return pairs


# -- every backend (the staged path) ----------------------------------------------------------


def test_put_known_uploads_only_missing_blobs_in_one_lookup(
    cas: ContentAddressedStore, recorder: RecordingBlobStore, tmp_path: Path
) -> None:
    pairs = files(tmp_path / "src", 5)
    cas.put_file(pairs[0][1])
    recorder.calls.clear()
    assert cas.put_known([*pairs, pairs[1]]) == 4
    assert [name for name, _ in recorder.calls if name == "exists"] == ["exists"]
    uploaded = [key for name, keys in recorder.calls if name == "put" for key in keys]
    assert sorted(uploaded) == sorted(blob_key(d) for d, _ in pairs[1:])
    for digest, path in pairs:
        assert cas.get_bytes(digest) == path.read_bytes()
    recorder.calls.clear()
    assert cas.put_known(pairs) == 0
    assert [name for name, _ in recorder.calls] == ["exists"]


def test_put_known_refuses_a_changed_file(cas: ContentAddressedStore, tmp_path: Path) -> None:
    (digest, path), *_ = files(tmp_path / "src", 1)
    path.write_bytes(b"changed since it was hashed")
    with pytest.raises(Conflict, match="changed after it was hashed"):
        cas.put_known([(digest, path)])
    assert cas.exists([digest, sha(b"changed since it was hashed")]) == set()


def test_put_known_missing_file_and_bad_digest(cas: ContentAddressedStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        cas.put_known([(sha(b"x"), tmp_path / "nope")])
    with pytest.raises(InvalidInput, match="not a blob digest"):
        cas.put_known([("abc", tmp_path / "nope")])
    assert cas.put_known([]) == 0


# -- LocalBlobStore: the checked put ----------------------------------------------------------


@pytest.fixture(params=["syncfs", "fsync"])
def local(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> LocalBlobStore:
    """A local store, with batched syncfs flushes (Linux) and with per-file fsyncs."""
    if request.param == "fsync":
        monkeypatch.setattr(local_module, "_SYNCFS", None)
    elif local_module._SYNCFS is None:
        pytest.skip("syncfs is Linux only")
    return LocalBlobStore(tmp_path / "store")


def test_local_put_known_many_files_in_parallel(local: LocalBlobStore, tmp_path: Path) -> None:
    cas = ContentAddressedStore(local)
    pairs = files(tmp_path / "src", 300)  # several slices, so several threads
    assert cas.put_known(pairs) == 300
    for digest, path in pairs:
        assert (local.root / blob_key(digest)).read_bytes() == path.read_bytes()
    assert not [path for path in (local.root / TEMP_FOLDER).rglob("*") if path.is_file()]


def test_local_put_known_refuses_the_whole_batch_on_a_changed_file(
    local: LocalBlobStore, tmp_path: Path
) -> None:
    cas = ContentAddressedStore(local)
    pairs = files(tmp_path / "src", 200)
    pairs[150][1].write_bytes(b"edited after the scan")
    with pytest.raises(Conflict, match=r"f150\.txt changed after it was hashed"):
        cas.put_known(pairs)
    assert cas.exists([digest for digest, _ in pairs]) == set()
    assert not [path for path in (local.root / TEMP_FOLDER).rglob("*") if path.is_file()]


def test_local_put_checked_runs_the_check_on_each_copy(
    local: LocalBlobStore, tmp_path: Path
) -> None:
    pairs = files(tmp_path / "src", 3)
    seen: dict[str, bytes] = {}

    def check(key: str, copy: Path) -> None:
        assert copy.parent.parent == local.root / TEMP_FOLDER
        seen[key] = copy.read_bytes()

    local.put_checked([(blob_key(d), p) for d, p in pairs], check)
    assert seen == {blob_key(d): p.read_bytes() for d, p in pairs}


def test_local_put_of_a_missing_source_is_not_found(local: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        local.put([(blob_key(sha(b"x")), tmp_path / "nope")])


def test_local_cleanup_reaches_temp_shard_folders(local: LocalBlobStore) -> None:
    shard = local.root / TEMP_FOLDER / "ab"
    shard.mkdir(parents=True)
    (shard / "left.part").write_bytes(b"interrupted")
    (local.root / TEMP_FOLDER / "flat.part").write_bytes(b"older layout")
    assert local.cleanup_temporary(3600) == 0
    assert local.cleanup_temporary(0) == 2
    assert shard.is_dir()
