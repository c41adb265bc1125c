"""Backends the artifact contract suite runs against: adding one is one line in BACKENDS."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pytest

from mloop.artifacts import ContentAddressedStore
from mloop.artifacts.base import BlobInfo, BlobStore
from mloop.artifacts.fsspec import FsspecBlobStore
from mloop.artifacts.local import LocalBlobStore

Factory = Callable[[pytest.FixtureRequest, Path], BlobStore]


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    store = FsspecBlobStore(f"memory://mloop-test-{uuid.uuid4().hex}")

    def remove() -> None:
        if store._fs.exists(store._root):
            store._fs.rm(store._root, recursive=True)

    request.addfinalizer(remove)
    return store


# name → (factory, marks)
BACKENDS: dict[str, tuple[Factory, Sequence[pytest.MarkDecorator]]] = {
    "local": (lambda request, tmp: LocalBlobStore(tmp / "store"), ()),
    "fsspec-file": (lambda request, tmp: FsspecBlobStore((tmp / "store").as_uri()), ()),
    "memory": (_memory, ()),
    "s3": (
        lambda request, tmp: FsspecBlobStore(request.getfixturevalue("s3_artifact_uri")),
        (pytest.mark.s3,),
    ),
}


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (_, marks) in BACKENDS.items()])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A fresh, empty blob store of each backend in turn."""
    factory, _ = BACKENDS[request.param]
    return factory(request, tmp_path)


class RecordingBlobStore(BlobStore):
    """Passes every call through to another store and records the batched ones."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.calls: list[tuple[str, list[str]]] = []

    def exists(self, keys: Sequence[str]) -> set[str]:
        self.calls.append(("exists", list(keys)))
        return self.inner.exists(keys)

    def put(self, items: Sequence[tuple[str, Path]]) -> None:
        self.calls.append(("put", [key for key, _ in items]))
        self.inner.put(items)

    def get(self, items: Sequence[tuple[str, Path]]) -> None:
        self.calls.append(("get", [key for key, _ in items]))
        self.inner.get(items)

    def open(self, key: str) -> BinaryIO:
        return self.inner.open(key)

    def delete(self, keys: Sequence[str]) -> None:
        self.calls.append(("delete", list(keys)))
        self.inner.delete(keys)

    def iter_keys(self) -> Iterator[BlobInfo]:
        return self.inner.iter_keys()

    def cleanup_temporary(self, older_than_seconds: float) -> int:
        return self.inner.cleanup_temporary(older_than_seconds)


@pytest.fixture
def recorder(blob_store: BlobStore) -> RecordingBlobStore:
    """The backend under test, wrapped to record calls."""
    return RecordingBlobStore(blob_store)


@pytest.fixture
def cas(recorder: RecordingBlobStore) -> ContentAddressedStore:
    """A content-addressed store over the backend under test."""
    return ContentAddressedStore(recorder)
