"""The blob interface every artifact backend implements: batch-shaped, bytes only.

A backend moves bytes under keys and nothing more. Hashing, key layout, deduplication and
verification live once, in :class:`mloop.artifacts.cas.ContentAddressedStore`, so that no
backend can get them wrong. Keys are relative POSIX paths chosen by that store
(``ab/ab12…``); a backend refuses any other shape rather than write outside its root.

Errors a backend raises: :class:`~mloop.errors.NotFound` for a missing key on ``get`` and
``open``; :class:`~mloop.errors.BackendError` when the storage fails or cannot be reached;
:class:`~mloop.errors.InvalidInput` for a malformed key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mloop.errors import InvalidInput

__all__ = ["TEMP_FOLDER", "BlobInfo", "BlobStore", "check_key"]

TEMP_FOLDER = ".tmp"
"""Folder under a backend's root for writes in progress; never listed as a blob."""


@dataclass(frozen=True)
class BlobInfo:
    """One stored object: its key, its size in bytes and its modification time (epoch seconds)."""

    key: str
    size: int
    modified: float


def check_key(key: str) -> str:
    """Return ``key`` if it is a plain relative POSIX key in a store, else raise InvalidInput."""
    parts = key.split("/") if isinstance(key, str) else [""]
    if (
        not key
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in parts)
        or parts[0] == TEMP_FOLDER
    ):
        raise InvalidInput(
            f"blob key {key!r} is malformed; keys are relative POSIX paths without '.', '..', "
            f"empty segments or a leading '{TEMP_FOLDER}/'"
        )
    return key


class BlobStore(ABC):
    """Bytes under keys, moved in batches; each write is atomic (never a partial object)."""

    uri: str

    @abstractmethod
    def exists(self, keys: Sequence[str]) -> set[str]:
        """Return the subset of ``keys`` that are stored."""

    @abstractmethod
    def put(self, items: Sequence[tuple[str, Path]]) -> None:
        """Upload each local file to its key; a reader sees the whole object or none of it."""

    @abstractmethod
    def get(self, items: Sequence[tuple[str, Path]]) -> None:
        """Download each key to its local path; raises NotFound if a key is missing."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open one stored object for reading; raises NotFound if it is missing."""

    @abstractmethod
    def delete(self, keys: Sequence[str]) -> None:
        """Delete the objects under ``keys``; missing keys are ignored."""

    @abstractmethod
    def iter_keys(self) -> Iterator[BlobInfo]:
        """Yield every stored object, never the leftovers of writes in progress."""

    @abstractmethod
    def cleanup_temporary(self, older_than_seconds: float) -> int:
        """Delete leftovers of interrupted writes older than the given age; return how many."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
