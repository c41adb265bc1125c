"""open_artifact_store: the URI picks the backend, imported only when chosen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mloop.artifacts
from mloop.artifacts import (
    ContentAddressedStore,
    FsspecBlobStore,
    LocalBlobStore,
    open_artifact_store,
    open_blob_store,
)
from mloop.errors import ConfigError


def test_plain_folder_is_local(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "artifacts"))
    assert isinstance(store, ContentAddressedStore)
    assert isinstance(store.blobs, LocalBlobStore)
    assert store.blobs.root == (tmp_path / "artifacts").resolve()


def test_relative_folder_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blobs = open_blob_store("./.mloop/artifacts")
    assert isinstance(blobs, LocalBlobStore)
    assert blobs.root == tmp_path.resolve() / ".mloop" / "artifacts"


def test_file_uri_is_local(tmp_path: Path) -> None:
    blobs = open_blob_store((tmp_path / "a b").as_uri())
    assert isinstance(blobs, LocalBlobStore)
    assert blobs.root == (tmp_path / "a b").resolve()
    blobs = open_blob_store(f"file://localhost{(tmp_path / 'c').as_posix()}")
    assert isinstance(blobs, LocalBlobStore)


def test_windows_drive_is_a_folder_not_a_scheme() -> None:
    assert isinstance(open_blob_store("C:\\mloop\\artifacts"), LocalBlobStore)


def test_other_schemes_use_fsspec() -> None:
    blobs = open_blob_store("memory://mloop-registry-test")
    assert isinstance(blobs, FsspecBlobStore)
    assert blobs.uri == "memory://mloop-registry-test"


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("file://otherhost/x", "remote host"),
        ("nosuchproto://x/y", "unknown scheme"),
    ],
)
def test_bad_uris(uri: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_artifact_store(uri)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        mloop.artifacts.NoSuchThing  # noqa: B018


def test_public_names_are_exported() -> None:
    for name in mloop.artifacts.__all__:
        assert getattr(mloop.artifacts, name) is not None


@pytest.mark.slow
def test_backends_are_imported_lazily(tmp_path: Path) -> None:
    code = (
        "import sys, mloop.artifacts as a\n"
        "assert 'mloop.artifacts.fsspec' not in sys.modules\n"
        "assert 's3fs' not in sys.modules\n"
        f"a.open_artifact_store({str(tmp_path / 'store')!r})\n"
        "assert 'mloop.artifacts.local' in sys.modules\n"
        "assert 's3fs' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
