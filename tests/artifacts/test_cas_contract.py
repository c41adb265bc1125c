"""The ContentAddressedStore contract, run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mloop.artifacts import ContentAddressedStore, collect_garbage
from mloop.artifacts.base import BlobStore
from mloop.artifacts.cas import CHUNK_SIZE, VerifiedReader, blob_key
from mloop.errors import DigestMismatch, InvalidInput, NotFound

from .conftest import RecordingBlobStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def tamper(blob_store: BlobStore, digest: str, data: bytes, tmp_path: Path) -> None:
    """Overwrite a stored object directly, below the content-addressed layer."""
    blob_store.put([(blob_key(digest), write(tmp_path / "tampered.bin", data))])


BIG = os.urandom(CHUNK_SIZE * 2 + 12345)


def test_put_bytes_round_trip(cas: ContentAddressedStore) -> None:
    ref = cas.put_bytes(b"hello mloop")
    assert ref.digest == sha(b"hello mloop")
    assert ref.size == 11
    assert cas.get_bytes(ref.digest) == b"hello mloop"
    assert cas.exists([ref.digest]) == {ref.digest}


def test_empty_blob_round_trip(cas: ContentAddressedStore, tmp_path: Path) -> None:
    ref = cas.put_bytes(b"")
    assert ref.size == 0
    assert cas.get_bytes(ref.digest) == b""
    cas.download(ref.digest, tmp_path / "out" / "empty")
    assert (tmp_path / "out" / "empty").read_bytes() == b""


def test_put_file_and_download_multi_chunk(cas: ContentAddressedStore, tmp_path: Path) -> None:
    ref = cas.put_file(write(tmp_path / "src" / "big.bin", BIG))
    assert (ref.digest, ref.size) == (sha(BIG), len(BIG))
    dest = tmp_path / "out" / "nested" / "big.bin"
    cas.download(ref.digest, dest)
    assert dest.read_bytes() == BIG
    assert os.listdir(dest.parent) == ["big.bin"]  # no temp file left beside it


def test_download_replaces_existing_file(cas: ContentAddressedStore, tmp_path: Path) -> None:
    ref = cas.put_bytes(b"new")
    dest = write(tmp_path / "out.txt", b"old contents")
    cas.download(ref.digest, dest)
    assert dest.read_bytes() == b"new"


def test_same_bytes_are_stored_once(
    cas: ContentAddressedStore, recorder: RecordingBlobStore, tmp_path: Path
) -> None:
    first = cas.put_bytes(b"same")
    second = cas.put_bytes(b"same")
    third = cas.put_file(write(tmp_path / "same.txt", b"same"))
    assert first == second == third
    assert [blob.digest for blob in cas.iter_blobs()] == [first.digest]
    assert [name for name, _ in recorder.calls].count("put") == 1


def test_batch_put_uploads_only_missing(
    cas: ContentAddressedStore, recorder: RecordingBlobStore, tmp_path: Path
) -> None:
    existing = cas.put_bytes(b"a")
    recorder.calls.clear()
    paths = [
        write(tmp_path / "a.txt", b"a"),
        write(tmp_path / "b.txt", b"b"),
        write(tmp_path / "b-copy.txt", b"b"),
        write(tmp_path / "c.txt", b"c"),
    ]
    refs = cas.put_files(paths)
    assert [ref.digest for ref in refs] == [sha(b"a"), sha(b"b"), sha(b"b"), sha(b"c")]
    assert refs[0] == existing
    exists_calls = [keys for name, keys in recorder.calls if name == "exists"]
    put_calls = [keys for name, keys in recorder.calls if name == "put"]
    assert len(exists_calls) == 1
    assert sorted(exists_calls[0]) == sorted(blob_key(sha(x)) for x in (b"a", b"b", b"c"))
    assert put_calls == [[blob_key(sha(b"b")), blob_key(sha(b"c"))]]
    assert cas.exists([sha(x) for x in (b"a", b"b", b"c")]) == {sha(x) for x in (b"a", b"b", b"c")}


def test_put_files_many(cas: ContentAddressedStore, tmp_path: Path) -> None:
    contents = [f"file {i}".encode() * (i * 1000 + 1) for i in range(24)]
    paths = [write(tmp_path / f"f{i}.bin", data) for i, data in enumerate(contents)]
    refs = cas.put_files(paths)
    assert [(ref.digest, ref.size) for ref in refs] == [(sha(d), len(d)) for d in contents]
    for ref, data in zip(refs, contents, strict=True):
        assert cas.get_bytes(ref.digest) == data


def test_put_files_empty_batch(cas: ContentAddressedStore, recorder: RecordingBlobStore) -> None:
    assert cas.put_files([]) == []
    assert recorder.calls == []


def test_open_streams_and_verifies(cas: ContentAddressedStore) -> None:
    ref = cas.put_bytes(BIG)
    with cas.open(ref.digest) as reader:
        parts = []
        while chunk := reader.read(100_000):
            parts.append(chunk)
        assert isinstance(reader, VerifiedReader) and reader.verified
    assert b"".join(parts) == BIG


def test_tampered_blob_fails_every_read(
    cas: ContentAddressedStore, blob_store: BlobStore, tmp_path: Path
) -> None:
    ref = cas.put_bytes(b"original bytes")
    tamper(blob_store, ref.digest, b"evil bytes", tmp_path)
    with pytest.raises(DigestMismatch, match=ref.digest):
        cas.get_bytes(ref.digest)
    assert cas.verify(ref.digest) is False
    with cas.open(ref.digest) as reader, pytest.raises(DigestMismatch):
        while reader.read(4):
            pass
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DigestMismatch) as info:
        cas.download(ref.digest, dest)
    assert info.value.details["actual"] == sha(b"evil bytes")
    assert not dest.exists()
    assert os.listdir(dest.parent) == []


def test_tampered_blob_in_batch_download_places_nothing(
    cas: ContentAddressedStore, blob_store: BlobStore, tmp_path: Path
) -> None:
    good = cas.put_bytes(b"good")
    bad = cas.put_bytes(b"bad")
    tamper(blob_store, bad.digest, b"worse", tmp_path)
    out = tmp_path / "out"
    with pytest.raises(DigestMismatch):
        cas.download_many([(good.digest, out / "good"), (bad.digest, out / "bad")])
    assert os.listdir(out) == []


def test_missing_blob_is_not_found(cas: ContentAddressedStore, tmp_path: Path) -> None:
    digest = sha(b"never stored")
    with pytest.raises(NotFound, match=digest):
        cas.get_bytes(digest)
    with pytest.raises(NotFound, match=digest):
        cas.open(digest)
    with pytest.raises(NotFound, match=digest):
        cas.verify(digest)
    dest = tmp_path / "out" / "x"
    with pytest.raises(NotFound, match=digest) as info:
        cas.download(digest, dest)
    assert info.value.details == {"digest": digest}
    assert os.listdir(dest.parent) == []
    assert cas.exists([digest]) == set()


BAD_DIGESTS = ["", "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65, "../" + "0" * 61, "0" * 64 + "\n"]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_bad_digest_is_invalid_input(
    cas: ContentAddressedStore, recorder: RecordingBlobStore, tmp_path: Path, bad: str
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: cas.get_bytes(bad),
        lambda: cas.open(bad),
        lambda: cas.verify(bad),
        lambda: cas.download(bad, tmp_path / "x"),
        lambda: cas.exists([sha(b"ok"), bad]),
        lambda: cas.delete([sha(b"ok"), bad]),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="64 lowercase hexadecimal"):
            call()
    assert recorder.calls == []
    assert not (tmp_path / "x").exists()


def test_delete(cas: ContentAddressedStore) -> None:
    keep = cas.put_bytes(b"keep")
    drop = cas.put_bytes(b"drop")
    cas.delete([drop.digest, sha(b"never stored")])
    assert cas.exists([keep.digest, drop.digest]) == {keep.digest}
    assert [blob.digest for blob in cas.iter_blobs()] == [keep.digest]
    cas.delete([drop.digest])  # deleting twice is fine
    cas.delete([])
    assert cas.put_bytes(b"drop") == drop  # and it can be stored again
    assert cas.get_bytes(drop.digest) == b"drop"


def test_iter_blobs_lists_blobs_and_skips_foreign_objects(
    cas: ContentAddressedStore, blob_store: BlobStore, tmp_path: Path
) -> None:
    refs = {cas.put_bytes(data) for data in (b"one", b"two two", b"")}
    foreign = write(tmp_path / "foreign.txt", b"not a blob")
    blob_store.put(
        [
            ("notes/readme.txt", foreign),
            (f"ff/{sha(b'one')}", foreign),  # wrong shard for this digest
            ("ab/not-a-digest", foreign),
        ]
    )
    found = list(cas.iter_blobs())
    assert {(blob.digest, blob.size) for blob in found} == {(r.digest, r.size) for r in refs}
    now = time.time()
    assert all(now - 3600 < blob.modified <= now + 5 for blob in found)


def test_gc_keeps_referenced_and_young_blobs(cas: ContentAddressedStore) -> None:
    old_referenced = cas.put_bytes(b"old, referenced")
    old_orphan = cas.put_bytes(b"old, orphan")
    old_done = time.time()
    time.sleep(2.5)
    young_start = time.time()
    young_orphan = cas.put_bytes(b"young, orphan")
    everything = {old_referenced.digest, old_orphan.digest, young_orphan.digest}
    assert young_start - old_done >= 2.5

    def grace() -> float:
        # Old blobs are >= 2.5 s older than young_start, the young one at most ~1 s (stores
        # such as S3 keep whole seconds): this grace sits 1 s inside both margins.
        return time.time() - young_start + 1.5

    dry = collect_garbage(
        cas, lambda _: {old_referenced.digest}, grace_seconds=grace(), dry_run=True
    )
    assert (dry.scanned, dry.deleted, dry.kept_young, dry.kept_referenced) == (3, 1, 1, 1)
    assert dry.freed_bytes == old_orphan.size
    assert dry.dry_run is True
    assert cas.exists(list(everything)) == everything

    report = collect_garbage(cas, lambda _: {old_referenced.digest}, grace_seconds=grace())
    assert (report.scanned, report.deleted, report.kept_young) == (3, 1, 1)
    assert report.freed_bytes == old_orphan.size
    assert report.dry_run is False
    assert cas.exists(list(everything)) == {old_referenced.digest, young_orphan.digest}

    final = collect_garbage(cas, lambda _: set(), grace_seconds=0)
    assert final.deleted == 2
    assert list(cas.iter_blobs()) == []


def test_gc_of_empty_store(cas: ContentAddressedStore) -> None:
    report = collect_garbage(cas, lambda _: set(), grace_seconds=0)
    assert (report.scanned, report.deleted, report.freed_bytes) == (0, 0, 0)
