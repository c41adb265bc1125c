"""Folder manifests: scanning with a hash cache, storing, materialising, the canonical form."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mloop.artifacts.cas import ContentAddressedStore, blob_key
from mloop.artifacts.local import LocalBlobStore
from mloop.data import manifest as mf
from mloop.data.manifest import (
    FileEntry,
    FileKey,
    HashCache,
    Manifest,
    materialise,
    scan_folder,
)
from mloop.errors import Conflict, DigestMismatch, InvalidArtifactPath, InvalidInput, NotFound

OLD = time.time_ns() - 3600 * 10**9  # an hour ago: safely outside the racy window

FILES = {
    "a.txt": b"alpha",
    "sub/b.bin": bytes(range(256)) * 10,
    "sub/deeper/c.csv": b"x,y\n1,2\n",
    "same-as-a.txt": b"alpha",
}


def _write(root: Path, files: dict[str, bytes], mtime_ns: int = OLD) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    _write(root, FILES)
    return root


@pytest.fixture
def cache(tmp_path: Path) -> HashCache:
    return HashCache(tmp_path / "cache" / "hashes.db")


@pytest.fixture
def store(tmp_path: Path) -> ContentAddressedStore:
    return ContentAddressedStore(LocalBlobStore(tmp_path / "store"))


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The relative paths the scan hashes, in the order it hashes them."""
    calls: list[str] = []
    original = mf._hash_found

    def counting(item: mf._Found) -> str:
        calls.append(item.relative)
        return original(item)

    monkeypatch.setattr(mf, "_hash_found", counting)
    return calls


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- scanning --------------------------------------------------------------------------------


def test_scan_lists_every_file_with_its_cas_digest(tree: Path) -> None:
    manifest = scan_folder(tree)
    assert [e.path for e in manifest.files] == sorted(FILES)
    assert {e.path: e.digest for e in manifest.files} == {p: _sha(d) for p, d in FILES.items()}
    assert {e.path: e.size for e in manifest.files} == {p: len(d) for p, d in FILES.items()}
    assert len(manifest) == 4
    assert manifest.total_size == sum(len(d) for d in FILES.values())


def test_cache_hit_avoids_rehashing(tree: Path, cache: HashCache, hashed: list[str]) -> None:
    first = scan_folder(tree, cache=cache)
    assert sorted(hashed) == sorted(FILES)
    hashed.clear()
    second = scan_folder(tree, cache=cache)
    assert hashed == []
    assert second == first


def test_cache_is_shared_through_its_file(tree: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache_file = tmp_path / "c.db"
    first = HashCache(cache_file)
    manifest = scan_folder(tree, cache=first)
    first.close()
    hashed.clear()
    assert scan_folder(tree, cache=HashCache(cache_file)) == manifest
    assert hashed == []


def test_modified_file_with_same_size_is_rehashed(
    tree: Path, cache: HashCache, hashed: list[str]
) -> None:
    scan_folder(tree, cache=cache)
    hashed.clear()
    _write(tree, {"a.txt": b"ALPHA"}, mtime_ns=OLD + 10**9)  # same size, new mtime
    manifest = scan_folder(tree, cache=cache)
    assert hashed == ["a.txt"]
    assert {e.path: e.digest for e in manifest.files}["a.txt"] == _sha(b"ALPHA")


def test_replaced_file_with_new_inode_is_rehashed(
    tree: Path, cache: HashCache, hashed: list[str]
) -> None:
    scan_folder(tree, cache=cache)
    hashed.clear()
    # Same path, size and mtime, but a different file (new inode): replaced by a rename.
    spare = tree.parent / "spare"
    spare.write_bytes(b"omega")
    os.utime(spare, ns=(OLD, OLD))
    os.replace(spare, tree / "a.txt")
    manifest = scan_folder(tree, cache=cache)
    assert hashed == ["a.txt"]
    assert {e.path: e.digest for e in manifest.files}["a.txt"] == _sha(b"omega")


def test_renamed_file_is_rehashed_under_its_new_path(
    tree: Path, cache: HashCache, hashed: list[str]
) -> None:
    scan_folder(tree, cache=cache)
    hashed.clear()
    os.rename(tree / "a.txt", tree / "renamed.txt")
    manifest = scan_folder(tree, cache=cache)
    assert hashed == ["renamed.txt"]
    assert "renamed.txt" in {e.path for e in manifest.files}


def test_recently_modified_files_are_not_cached(
    tmp_path: Path, cache: HashCache, hashed: list[str]
) -> None:
    root = tmp_path / "fresh"
    _write(root, {"new.txt": b"just written"}, mtime_ns=time.time_ns())
    scan_folder(root, cache=cache)
    scan_folder(root, cache=cache)
    assert hashed == ["new.txt", "new.txt"]


def test_digest_is_deterministic_and_independent_of_scan_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _write(one, FILES)
    _write(two, dict(reversed(list(FILES.items()))), mtime_ns=OLD + 5 * 10**9)
    expected = scan_folder(one)
    original = os.scandir

    def reversed_scandir(path: str) -> object:
        with original(path) as entries:
            return iter(sorted(entries, key=lambda e: e.name, reverse=True))

    monkeypatch.setattr(mf.os, "scandir", reversed_scandir)
    other = scan_folder(two, workers=1)
    assert other == expected
    assert other.digest == expected.digest
    assert Manifest.from_bytes(expected.to_bytes()).digest == expected.digest


def test_canonical_form_is_documented_format(tree: Path) -> None:
    data = scan_folder(tree).to_bytes()
    lines = data.decode().splitlines()
    assert lines[0] == "mloop-manifest 1"
    assert lines[1] == f"{_sha(b'alpha')} 5 a.txt"
    assert scan_folder(tree).digest == _sha(data)


def test_corrupt_cache_is_discarded_and_rebuilt(
    tree: Path, tmp_path: Path, hashed: list[str]
) -> None:
    cache_file = tmp_path / "hashes.db"
    cache_file.write_bytes(b"this is not a database" * 100)
    cache = HashCache(cache_file)
    manifest = scan_folder(tree, cache=cache)
    assert manifest == scan_folder(tree)
    hashed.clear()
    assert scan_folder(tree, cache=cache) == manifest
    assert hashed == []  # the rebuilt cache works
    cache.close()
    with sqlite3.connect(cache_file) as connection:
        assert connection.execute("SELECT count(*) FROM file_hashes").fetchone()[0] == 4


_CHILD = """
import sys
from mloop.data.manifest import FileKey, HashCache
cache = HashCache(sys.argv[1])
for batch in range(20):
    cache.store(
        (FileKey(f"/{sys.argv[2]}/{batch}/{i}", i, i, i), "0" * 64) for i in range(100)
    )
"""


def test_cache_is_safe_with_concurrent_processes(tmp_path: Path) -> None:
    cache_file = tmp_path / "shared.db"
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(cache_file), name])
        for name in ("one", "two")
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    keys = [
        FileKey(f"/{name}/{batch}/{i}", i, i, i)
        for name in ("one", "two")
        for batch in range(20)
        for i in range(100)
    ]
    assert len(HashCache(cache_file).lookup(keys)) == 4000


def test_unusable_cache_location_is_not_fatal(tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    cache = HashCache(blocker / "cache" / "hashes.db")  # its folder cannot be made
    assert scan_folder(tree, cache=cache) == scan_folder(tree)


def test_unreadable_file_gives_a_clear_error(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: permission bits do not stop root, who may run the tests.
    original = os.open

    def refuse(path: str, flags: int, *args: int) -> int:
        if str(path).endswith(f"{os.sep}a.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return original(path, flags, *args)

    monkeypatch.setattr(mf.os, "open", refuse)
    with pytest.raises(InvalidInput, match=r"cannot read 'a.txt': Permission denied; make it"):
        scan_folder(tree)


def test_file_changed_while_hashing_is_refused(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = mf.hash_fd

    def then_change(fd: int) -> object:
        ref = original(fd)
        _write(tree, {"a.txt": b"alphabet"}, mtime_ns=OLD + 7)
        return ref

    monkeypatch.setattr(mf, "hash_fd", then_change)
    with pytest.raises(Conflict, match="changed while it was being hashed"):
        scan_folder(tree, workers=1)


def test_missing_root_and_file_root_are_refused(tree: Path) -> None:
    with pytest.raises(NotFound, match="no such folder"):
        scan_folder(tree / "nope")
    with pytest.raises(InvalidInput, match="it is a file"):
        scan_folder(tree / "a.txt")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names")
@pytest.mark.parametrize(
    "name",
    ["back\\slash.txt", "trailing.", "NUL.txt", "bad\nline", "%2e%2e", "e\u0301.txt"],
)
def test_unsafe_names_are_refused_not_skipped(tmp_path: Path, name: str) -> None:
    root = tmp_path / "tree"
    _write(root, {"fine.txt": b"1"})
    (root / name).write_bytes(b"2")
    with pytest.raises(InvalidArtifactPath, match=r"refused|NFC"):
        scan_folder(root)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlinks_escaping_the_root_are_refused(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    (tree / "escape").symlink_to(outside)
    with pytest.raises(InvalidInput, match="outside the folder"):
        scan_folder(tree)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlinks_to_folders_and_dangling_links_are_refused(tree: Path) -> None:
    (tree / "loop").symlink_to(tree / "sub")
    with pytest.raises(InvalidInput, match="links are followed only to files"):
        scan_folder(tree)
    (tree / "loop").unlink()
    (tree / "dangling").symlink_to(tree / "nothing")
    with pytest.raises(InvalidInput, match=r"outside the folder|does not exist"):
        scan_folder(tree)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_to_a_file_inside_is_recorded_as_that_file(tree: Path) -> None:
    (tree / "link.txt").symlink_to(tree / "sub" / "b.bin")
    entries = {e.path: e for e in scan_folder(tree).files}
    assert entries["link.txt"].digest == entries["sub/b.bin"].digest


@pytest.mark.parametrize(
    "name",
    [
        "plain-file_name.bin",
        "data.csv",
        "0001.jpg",
        "a",
        "CON",
        "con.txt",
        "Com1.tar.gz",
        "LPT9",
        "console.txt",
        "nul-not.txt",
        "comx",
        ".hidden",
        "trailing.",
        "-dash",
        "x" * 255,
        "x" * 256,
        "a..b",
        "%2e%2e",
        "~home",
    ],
)
def test_fast_name_check_agrees_with_the_validator(name: str) -> None:
    from mloop.artifacts.paths import validate_artifact_path

    if mf._plain(name):
        assert validate_artifact_path(name) == name


def test_cache_lookup_under_a_folder_matches_lookup_by_path(tree: Path, cache: HashCache) -> None:
    scan_folder(tree, cache=cache)
    keys = [item.key for item in mf._walk(tree.resolve())]
    assert cache.lookup(keys, under=str(tree.resolve())) == cache.lookup(keys)
    assert len(cache.lookup(keys)) == 4


# -- the manifest format -------------------------------------------------------------------


def test_from_bytes_round_trips_and_refuses_bad_bytes(tree: Path) -> None:
    manifest = scan_folder(tree)
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest
    digest = _sha(b"x")
    bad = {
        b"": "not an mloop manifest",
        b"mloop-manifest 2\n": "not an mloop manifest",
        b"mloop-manifest 1\n" + f"{digest} 1 a".encode(): "truncated",
        b"mloop-manifest 1\nnot a line\n": "line 2 is malformed",
        b"mloop-manifest 1\n" + f"{digest} 01 a\n".encode(): "line 2 is malformed",
        b"mloop-manifest 1\n" + f"{digest.upper()} 1 a\n".encode(): "line 2 is malformed",
        b"mloop-manifest 1\n" + f"{digest} 1 ../etc/passwd\n".encode(): "line 2",
        b"mloop-manifest 1\n" + f"{digest} 1 b\n{digest} 1 a\n".encode(): "sorted",
        b"mloop-manifest 1\n" + f"{digest} 1 a\n{digest} 1 a\n".encode(): "unique",
        b"mloop-manifest 1\n" + f"{digest} 1 a\n{digest} 1 a/b\n".encode(): "both a file",
        b"mloop-manifest 1\n\xff\n": "UTF-8",
        b"mloop-manifest 1\r\n": "not an mloop manifest",
        b"mloop-manifest 1\n" + f"{digest} 1 a\r\n".encode(): "line 2|canonical form",
    }
    for data, message in bad.items():
        with pytest.raises(InvalidInput, match=message):
            Manifest.from_bytes(data)


def test_diff_lists_added_removed_and_modified(tree: Path) -> None:
    before = scan_folder(tree)
    _write(tree, {"a.txt": b"changed", "new.txt": b"new"})
    (tree / "sub" / "b.bin").unlink()
    changes = before.diff(scan_folder(tree))
    assert (changes.added, changes.removed, changes.modified) == (
        ("new.txt",),
        ("sub/b.bin",),
        ("a.txt",),
    )
    assert not before.diff(before)


def test_manifest_refuses_unsorted_entries() -> None:
    entry = FileEntry("b", 1, _sha(b"b"))
    with pytest.raises(InvalidInput, match="sorted"):
        Manifest((entry, FileEntry("a", 1, _sha(b"a"))))


# -- storing and materialising ------------------------------------------------------------


def test_store_folder_copies_only_missing_blobs(
    tree: Path, store: ContentAddressedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = scan_folder(tree)
    assert mf.store_folder(store, tree, manifest) == 3  # a.txt and same-as-a.txt share a blob
    assert store.exists([e.digest for e in manifest.files]) == {e.digest for e in manifest.files}
    assert mf.store_folder(store, tree, manifest) == 0


def test_store_folder_refuses_a_file_changed_since_the_scan(
    tree: Path, store: ContentAddressedStore
) -> None:
    manifest = scan_folder(tree)
    (tree / "a.txt").write_bytes(b"ALPHA")
    (tree / "same-as-a.txt").write_bytes(b"ALPHA")
    with pytest.raises(Conflict, match="changed after it was hashed"):
        mf.store_folder(store, tree, manifest)
    assert not store.exists([_sha(b"alpha"), _sha(b"ALPHA")])
    temp = Path(store.blobs.root) / ".tmp"  # type: ignore[attr-defined]
    assert not [path for path in temp.rglob("*") if path.is_file()]


def test_materialise_round_trip(tree: Path, store: ContentAddressedStore, tmp_path: Path) -> None:
    manifest = scan_folder(tree)
    mf.store_folder(store, tree, manifest)
    dest = tmp_path / "out"
    materialise(store, manifest, dest)
    for relative, data in FILES.items():
        assert (dest / relative).read_bytes() == data
    assert scan_folder(dest) == manifest


def test_materialise_refuses_a_non_empty_dest_unless_told(
    tree: Path, store: ContentAddressedStore, tmp_path: Path
) -> None:
    manifest = scan_folder(tree)
    mf.store_folder(store, tree, manifest)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_bytes(b"mine")
    with pytest.raises(Conflict, match="not empty"):
        materialise(store, manifest, dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    materialise(store, manifest, dest, overwrite=True)
    assert (dest / "keep.txt").read_bytes() == b"mine"
    assert (dest / "a.txt").read_bytes() == b"alpha"
    with pytest.raises(InvalidInput, match="it is a file"):
        materialise(store, manifest, dest / "keep.txt")


def test_materialise_refuses_a_tampered_blob(
    tree: Path, store: ContentAddressedStore, tmp_path: Path
) -> None:
    manifest = scan_folder(tree)
    mf.store_folder(store, tree, manifest)
    blob = Path(store.blobs.root) / blob_key(_sha(b"alpha"))  # type: ignore[attr-defined]
    blob.chmod(0o644)
    blob.write_bytes(b"alpHa")
    dest = tmp_path / "out"
    with pytest.raises(DigestMismatch):
        materialise(store, manifest, dest)
    assert not [p for p in dest.rglob("*") if p.is_file()]


def test_materialise_of_a_missing_blob_is_not_found(
    tree: Path, store: ContentAddressedStore, tmp_path: Path
) -> None:
    with pytest.raises(NotFound):
        materialise(store, scan_folder(tree), tmp_path / "out")
