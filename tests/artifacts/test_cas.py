"""ContentAddressedStore details that do not depend on the backend."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from mloop.artifacts import ContentAddressedStore
from mloop.artifacts.cas import VerifiedReader, blob_key, check_digest, hash_file
from mloop.artifacts.local import LocalBlobStore
from mloop.errors import DigestMismatch, InvalidInput, NotFound

DATA = b"line one\nline two\nline three\n"
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def local_cas(tmp_path: Path) -> ContentAddressedStore:
    return ContentAddressedStore(LocalBlobStore(tmp_path / "store"))


def test_key_layout() -> None:
    assert blob_key(DIGEST) == f"{DIGEST[:2]}/{DIGEST}"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "A" * 64,
        "0" * 63,
        "0" * 65,
        "g" * 64,
        "0" * 63 + "\n",
        "0" * 64 + "\n",
        " " + "0" * 63,
        "../" + "0" * 61,
        "0" * 62 + "/0",
        "\uff10" * 64,  # fullwidth digits are not hex
        None,
        64,
    ],
)
def test_check_digest_refuses(bad: object) -> None:
    with pytest.raises(InvalidInput, match="not a blob digest"):
        check_digest(bad)  # type: ignore[arg-type]


def test_hash_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(DATA)
    ref = hash_file(path)
    assert (ref.digest, ref.size) == (DIGEST, len(DATA))


def test_put_files_refuses_missing_and_folders(
    local_cas: ContentAddressedStore, tmp_path: Path
) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"good")
    with pytest.raises(NotFound, match="no such file"):
        local_cas.put_files([good, tmp_path / "missing"])
    with pytest.raises(InvalidInput, match="is a folder"):
        local_cas.put_files([good, tmp_path])
    assert list(local_cas.iter_blobs()) == []  # nothing written when any input is bad


def test_reader_line_iteration_and_readinto(local_cas: ContentAddressedStore) -> None:
    local_cas.put_bytes(DATA)
    with local_cas.open(DIGEST) as reader:
        assert list(reader) == DATA.splitlines(keepends=True)
    with local_cas.open(DIGEST) as reader:
        buffer = bytearray(len(DATA) + 10)
        assert reader.readinto(buffer) == len(DATA)
        assert bytes(buffer[: len(DATA)]) == DATA
        assert reader.readinto(buffer) == 0
        assert isinstance(reader, VerifiedReader) and reader.verified
    with local_cas.open(DIGEST) as reader:
        assert reader.read(0) == b""
        assert isinstance(reader, VerifiedReader) and not reader.verified
        assert reader.read(None) == DATA
        assert isinstance(reader, VerifiedReader) and reader.verified
        assert reader.read() == b""  # reading again at EOF is harmless


def test_reader_is_read_only_and_not_seekable() -> None:
    reader = VerifiedReader(io.BytesIO(DATA), DIGEST, "memory")
    assert reader.readable()
    assert not reader.seekable()
    assert not reader.writable()
    reader.close()
    assert reader.closed
    with pytest.raises(ValueError):
        reader.read()


def test_reader_detects_truncation() -> None:
    reader = VerifiedReader(io.BytesIO(DATA[:-1]), DIGEST, "memory")
    with pytest.raises(DigestMismatch, match=DIGEST):
        reader.read()


def test_partial_read_is_not_verified() -> None:
    # Closing before EOF is allowed: the caller chose not to read the whole blob.
    reader = VerifiedReader(io.BytesIO(b"wrong bytes"), DIGEST, "memory")
    assert reader.read(3) == b"wro"
    reader.close()
    assert not reader.verified


def test_download_many(local_cas: ContentAddressedStore, tmp_path: Path) -> None:
    a = local_cas.put_bytes(b"a")
    b = local_cas.put_bytes(b"b")
    local_cas.download_many([(a.digest, tmp_path / "o" / "a"), (b.digest, tmp_path / "o" / "b")])
    assert (tmp_path / "o" / "a").read_bytes() == b"a"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a", "b"]


def test_download_many_missing_names_the_digest(
    local_cas: ContentAddressedStore, tmp_path: Path
) -> None:
    a = local_cas.put_bytes(b"a")
    missing = hashlib.sha256(b"missing").hexdigest()
    with pytest.raises(NotFound, match=missing):
        local_cas.download_many([(a.digest, tmp_path / "o" / "a"), (missing, tmp_path / "o" / "m")])
    assert list((tmp_path / "o").iterdir()) == []


def test_single_hash_worker(tmp_path: Path) -> None:
    cas = ContentAddressedStore(LocalBlobStore(tmp_path / "store"), hash_workers=1)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"f{i}")
        paths[-1].write_bytes(bytes([i]))
    assert [r.size for r in cas.put_files(paths)] == [1, 1, 1]
    assert "ContentAddressedStore" in repr(cas)
    assert cas.uri.startswith("file://")


def test_a_few_small_files_are_hashed_without_a_thread_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mloop.artifacts.cas as cas

    pools: list[int] = []
    real_pool = cas.ThreadPoolExecutor

    def counting_pool(workers: int) -> object:
        pools.append(workers)
        return real_pool(workers)

    monkeypatch.setattr(cas, "ThreadPoolExecutor", counting_pool)
    cas_store = ContentAddressedStore(LocalBlobStore(tmp_path / "many"), hash_workers=4)
    few = []
    for i in range(4):
        (tmp_path / f"few-{i}").write_bytes(DATA + bytes([i]))
        few.append(tmp_path / f"few-{i}")
    refs = cas_store.put_files(few)
    assert pools == []
    assert refs[0] == cas.BlobRef(hashlib.sha256(DATA + b"\0").hexdigest(), len(DATA) + 1)
    many = []
    for i in range(cas._INLINE_FILES + 1):
        (tmp_path / f"many-{i}").write_bytes(DATA + str(i).encode())
        many.append(tmp_path / f"many-{i}")
    assert len(cas_store.put_files(many)) == len(many)
    assert pools == [4]  # a larger batch is hashed in parallel
    dest = tmp_path / "out"
    cas_store.download_many([(ref.digest, dest / f"{n}") for n, ref in enumerate(refs)])
    assert pools == [4]
    assert (dest / "0").read_bytes() == DATA + b"\0"
