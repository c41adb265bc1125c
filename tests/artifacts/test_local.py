"""LocalBlobStore: atomic writes survive SIGKILL; keys cannot leave the root."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mloop.artifacts import ContentAddressedStore
from mloop.artifacts.base import TEMP_FOLDER
from mloop.artifacts.cas import blob_key
from mloop.artifacts.local import LocalBlobStore
from mloop.errors import InvalidInput, NotFound

CHUNK = bytes(range(256)) * 4096  # 1 MiB
CONTENT = CHUNK * 8

_CHILD = """
import sys
from pathlib import Path
from mloop.artifacts.local import LocalBlobStore
LocalBlobStore(sys.argv[1]).put([(sys.argv[2], Path(sys.argv[3]))])
"""


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX named pipes and SIGKILL")
def test_sigkill_mid_write_leaves_no_visible_blob(tmp_path: Path) -> None:
    root = tmp_path / "store"
    digest = hashlib.sha256(CONTENT).hexdigest()
    key = blob_key(digest)
    # The child reads its source from a pipe that we feed, so that it is provably mid-write
    # (half the bytes copied, the rest not yet sent) when it is killed.
    fifo = tmp_path / "source.fifo"
    os.mkfifo(fifo)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), key, str(fifo)])
    try:
        with fifo.open("wb") as feed:
            for _ in range(4):
                feed.write(CHUNK)
                feed.flush()
            temp_folder = root / TEMP_FOLDER

            def half_written() -> bool:
                parts = list(temp_folder.rglob("*.part")) if temp_folder.is_dir() else []
                return any(p.stat().st_size >= 3 * len(CHUNK) for p in parts)

            _wait_for(half_written)
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    store = LocalBlobStore(root)
    # Temp files live in shard folders of .tmp/ (one per blob shard).
    leftovers = [p for p in (root / TEMP_FOLDER).rglob("*") if p.is_file()]
    assert len(leftovers) == 1
    assert store.exists([key]) == set()
    assert list(store.iter_keys()) == []
    assert not (root / key).exists()
    cas = ContentAddressedStore(store)
    assert list(cas.iter_blobs()) == []

    ref = cas.put_bytes(CONTENT)
    assert ref.digest == digest
    assert cas.get_bytes(digest) == CONTENT
    assert [info.key for info in store.iter_keys()] == [key]
    assert store.cleanup_temporary(0) == 1
    assert [p for p in (root / TEMP_FOLDER).rglob("*") if p.is_file()] == []
    assert cas.verify(digest)


def test_put_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    source = tmp_path / "src"
    source.write_bytes(b"data")
    store.put([("ab/x", source)])
    assert (tmp_path / "store" / "ab" / "x").read_bytes() == b"data"
    assert [p for p in (tmp_path / "store" / TEMP_FOLDER).rglob("*") if p.is_file()] == []


def test_failed_put_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    with pytest.raises(NotFound, match="no such file"):
        store.put([("ab/x", tmp_path / "missing")])
    assert list(store.iter_keys()) == []
    assert [p for p in (tmp_path / "store" / TEMP_FOLDER).rglob("*") if p.is_file()] == []


def test_cleanup_temporary_respects_age(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    temp = tmp_path / "store" / TEMP_FOLDER
    temp.mkdir(parents=True)
    old, young = temp / "old.part", temp / "young.part"
    old.write_bytes(b"o")
    young.write_bytes(b"y")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert store.cleanup_temporary(600) == 1
    assert [p.name for p in temp.iterdir()] == ["young.part"]
    assert LocalBlobStore(tmp_path / "empty").cleanup_temporary(0) == 0


def test_iter_keys_reports_size_and_mtime(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    source = tmp_path / "src"
    source.write_bytes(b"12345")
    store.put([("a/b/c", source)])
    (info,) = store.iter_keys()
    assert (info.key, info.size) == ("a/b/c", 5)
    assert abs(info.modified - time.time()) < 60


def test_missing_root_lists_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "nowhere")
    assert list(store.iter_keys()) == []
    assert store.exists(["ab/cd"]) == set()
    with pytest.raises(NotFound):
        store.open("ab/cd")
    with pytest.raises(NotFound):
        store.get([("ab/cd", tmp_path / "out")])


@pytest.mark.parametrize(
    "key", ["", "../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\b", ".tmp/x", "a\x00"]
)
def test_refuses_malformed_keys(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "store")
    source = tmp_path / "src"
    source.write_bytes(b"data")
    with pytest.raises(InvalidInput, match="malformed"):
        store.put([(key, source)])
    with pytest.raises(InvalidInput):
        store.exists([key])
    with pytest.raises(InvalidInput):
        store.delete([key])
    assert not (tmp_path / "x").exists()


def test_uri_and_repr(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    assert store.uri == (tmp_path / "store").resolve().as_uri()
    assert "LocalBlobStore" in repr(store)
