"""The content-addressed store: every blob is named by the SHA-256 of its bytes.

This class is the only place that hashes, lays out keys, deduplicates and verifies; backends
(:class:`~mloop.artifacts.base.BlobStore`) only move bytes, so none can weaken these rules.

Key layout: a blob with digest ``ab12…`` (64 lowercase hex characters) is stored under
``ab/ab12…``: the first two hex characters name a shard folder (256 of them, so no folder grows
huge on a file system) and the full digest names the object, so a blob copied out of the store
still carries the name it can be checked against. Objects under the store's root that do not
follow this layout are ignored by :meth:`ContentAddressedStore.iter_blobs` and so never
collected.

Every read is verified: ``get_bytes`` and ``download`` before returning, the reader from
``open`` when it reaches the end. A blob whose bytes do not hash to its name raises
:class:`~mloop.errors.DigestMismatch`. Files must not change while ``put_files`` stores them:
their digest is taken before the upload, and a later read of a changed file fails verification.

``put_known`` stores files whose digests the caller already has (a folder scan with a hash
cache): it looks up which blobs are missing in one batch and copies only those, and every copy
is hashed before it becomes visible, so a file that changed since it was hashed is refused
(:class:`~mloop.errors.Conflict`) instead of being stored under a name its bytes do not have.
On a backend that offers ``put_checked`` (:class:`~mloop.artifacts.local.LocalBlobStore`) the
copy is hashed where it lands; on the others the file is copied to a local staging file while
being hashed, in one pass, and that staged copy, which nothing else writes, is uploaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar, cast, final, runtime_checkable

from mloop.artifacts.base import BlobStore
from mloop.errors import Conflict, DigestMismatch, InvalidInput, NotFound

if TYPE_CHECKING:
    from collections.abc import Callable

    from _typeshed import WriteableBuffer

__all__ = [
    "CHUNK_SIZE",
    "BlobRef",
    "CheckedBlobStore",
    "ContentAddressedStore",
    "StoredBlob",
    "VerifiedReader",
    "blob_key",
    "check_digest",
    "hash_fd",
    "hash_file",
]

CHUNK_SIZE = 1 << 20
"""Bytes read at a time when hashing or verifying; no blob is ever read whole into memory."""

_DIGEST = re.compile(r"[0-9a-f]{64}")
#: Files staged per upload batch on a backend without ``put_checked``: bounds local disk use.
_STAGE_BATCH = 64
#: A batch of at most this many files, this many bytes in all, is hashed in the calling
#: thread: starting a thread pool costs about a millisecond, more than hashing such a batch.
_INLINE_FILES = 16
_INLINE_BYTES = 4 << 20
_buffers = threading.local()
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: the SHA-256 hex digest of its bytes and its size in bytes."""

    digest: str
    size: int


@dataclass(frozen=True)
class StoredBlob:
    """A blob found in the store: digest, size and modification time (epoch seconds)."""

    digest: str
    size: int
    modified: float


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise InvalidInput."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        shown = repr(digest) if len(repr(digest)) <= 80 else repr(digest)[:77] + "..."
        raise InvalidInput(
            f"{shown} is not a blob digest; a digest is the SHA-256 of the bytes, written as "
            "64 lowercase hexadecimal characters",
            digest=shown,
        )
    return digest


def blob_key(digest: str) -> str:
    """The key a blob is stored under: ``<first two hex chars>/<full digest>``."""
    return f"{digest[:2]}/{check_digest(digest)}"


def _digest_of_key(key: str) -> str | None:
    shard, _, name = key.partition("/")
    if _DIGEST.fullmatch(name) and shard == name[:2]:
        return name
    return None


def _small(paths: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether ``paths`` are few and small enough to hash without a thread pool."""
    if len(paths) > _INLINE_FILES:
        return False
    total = 0
    for path in paths:
        try:
            total += os.stat(path).st_size
        except OSError:
            return True  # the hashing reports it, in this thread
    return total <= _INLINE_BYTES


def _buffer() -> bytearray:
    # One reused buffer per thread: allocating a fresh one per file costs more than hashing a
    # small file.
    buffer: bytearray | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = bytearray(CHUNK_SIZE)
    return buffer


def hash_fd(fd: int) -> BlobRef:
    """Hash an open file descriptor from its position to its end; return digest and size.

    Reads ``CHUNK_SIZE`` bytes at a time into a buffer reused per thread; hashlib releases the
    GIL on buffers this large, so threads hash in parallel.
    """
    sha = hashlib.sha256()
    buffer = _buffer()
    view = memoryview(buffer)
    size = 0
    with open(fd, "rb", buffering=0, closefd=False) as raw:
        while count := raw.readinto(buffer):
            sha.update(view[:count])
            size += count
    return BlobRef(sha.hexdigest(), size)


def hash_file(path: Path) -> BlobRef:
    """Hash a local file by streaming it in chunks; return its digest and size."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise NotFound(f"cannot store {path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"cannot store {path}: it is a folder; store the files in it") from None
    try:
        return hash_fd(fd)
    except IsADirectoryError:
        raise InvalidInput(f"cannot store {path}: it is a folder; store the files in it") from None
    finally:
        os.close(fd)


@runtime_checkable
class CheckedBlobStore(Protocol):
    """A backend that lets the store check each copy before it becomes visible."""

    def put_checked(
        self,
        items: Sequence[tuple[str, str | os.PathLike[str]]],
        check: Callable[[str, Path], None] | None,
    ) -> None:
        """Like ``put``; ``check(key, copy)`` runs on each finished copy before it is visible."""


def _changed(path: str | os.PathLike[str], expected: str, actual: str) -> Conflict:
    return Conflict(
        f"{path} changed after it was hashed: its bytes now hash to {actual}, not {expected}; "
        "nothing was stored for it — add it again once nothing writes to it",
        path=str(path),
        digest=expected,
        actual=actual,
    )


def _hash_stream(stream: BinaryIO) -> str:
    sha = hashlib.sha256()
    while chunk := stream.read(CHUNK_SIZE):
        sha.update(chunk)
    return sha.hexdigest()


def _mismatch(digest: str, actual: str, where: str) -> DigestMismatch:
    return DigestMismatch(
        f"blob {digest} in {where} is corrupt: its bytes hash to {actual}; "
        "it was edited or damaged in storage — restore it from a copy or store it again",
        digest=digest,
        actual=actual,
    )


class VerifiedReader(io.BufferedIOBase):
    """A read-only stream over a blob that raises DigestMismatch at EOF if its bytes are wrong."""

    def __init__(self, raw: BinaryIO, digest: str, where: str) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._where = where
        self._sha = hashlib.sha256()
        self._verified = False

    @property
    def verified(self) -> bool:
        """True once the whole blob was read and matched its digest."""
        return self._verified

    def readable(self) -> bool:
        """Always True: the reader is read-only."""
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        """Read up to ``size`` bytes (all if negative); at EOF, check the digest."""
        if self.closed:
            raise ValueError("I/O operation on closed file")
        whole = size is None or size < 0
        data = self._raw.read(-1 if size is None or size < 0 else size)
        self._sha.update(data)
        if whole or (size != 0 and not data):
            self._finish()
        return data

    def read1(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes; same as :meth:`read`."""
        return self.read(size)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Read into a writable buffer; return the number of bytes read."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        if self._verified:
            return
        actual = self._sha.hexdigest()
        if actual != self._digest:
            raise _mismatch(self._digest, actual, self._where)
        self._verified = True

    def close(self) -> None:
        """Close the underlying stream."""
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


@final
class ContentAddressedStore:
    """Blobs named by their SHA-256, stored once, verified on every read, over any BlobStore."""

    def __init__(self, blobs: BlobStore, *, hash_workers: int | None = None) -> None:
        self._blobs = blobs
        self._hash_workers = hash_workers or min(8, os.cpu_count() or 1)

    @property
    def uri(self) -> str:
        """Where the blobs live (the backend's URI)."""
        return self._blobs.uri

    @property
    def blobs(self) -> BlobStore:
        """The backend that moves the bytes."""
        return self._blobs

    def __repr__(self) -> str:
        return f"ContentAddressedStore({self._blobs!r})"

    def _parallel(
        self, function: Callable[[_T], _R], items: Sequence[_T], *, inline: bool = False
    ) -> list[_R]:
        if inline or len(items) <= 1 or self._hash_workers <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(min(self._hash_workers, len(items))) as pool:
            return list(pool.map(function, items))

    def _not_found(self, digest: str) -> NotFound:
        return NotFound(f"blob {digest} is not in the artifact store {self.uri}", digest=digest)

    # -- writing ------------------------------------------------------------------------------

    def put_files(self, paths: Sequence[Path]) -> list[BlobRef]:
        """Store local files (hashed in parallel, uploaded only if missing); refs in order."""
        paths = [Path(path) for path in paths]
        refs = self._parallel(hash_file, paths, inline=_small(paths))
        first_source: dict[str, Path] = {}
        for ref, path in zip(refs, paths, strict=True):
            first_source.setdefault(ref.digest, path)
        if not first_source:
            return refs
        keys = {blob_key(digest): path for digest, path in first_source.items()}
        present = self._blobs.exists(list(keys))
        missing = [(key, path) for key, path in keys.items() if key not in present]
        if missing:
            self._blobs.put(missing)
        return refs

    def put_known(self, items: Sequence[tuple[str, str | os.PathLike[str]]]) -> int:
        """Store local files whose digests are known: one batched lookup, then only the missing
        blobs are copied, each verified against its digest; return how many were copied.

        Raises Conflict (and stores nothing for that file) if a file no longer hashes to the
        digest given for it, NotFound if it is gone.
        """
        sources: dict[str, str | os.PathLike[str]] = {}
        for digest, path in items:
            sources.setdefault(blob_key(digest), path)
        if not sources:
            return 0
        present = self._blobs.exists(list(sources))
        missing = [(key, path) for key, path in sources.items() if key not in present]
        if not missing:
            return 0

        def check(key: str, copy: Path) -> None:
            fd = os.open(copy, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            try:
                actual = hash_fd(fd).digest
            finally:
                os.close(fd)
            expected = key.rpartition("/")[2]
            if actual != expected:
                raise _changed(sources[key], expected, actual)

        if isinstance(self._blobs, CheckedBlobStore):
            self._blobs.put_checked(missing, check)
        else:
            for start in range(0, len(missing), _STAGE_BATCH):
                self._put_staged(missing[start : start + _STAGE_BATCH])
        return len(missing)

    def _put_staged(self, items: Sequence[tuple[str, str | os.PathLike[str]]]) -> None:
        # Copy each file to a private staging file while hashing it (one read), refuse it if it
        # changed, then upload the staged copies, which nothing else can modify.
        with tempfile.TemporaryDirectory(prefix="mloop-stage-") as folder:

            def stage(item: tuple[str, str | os.PathLike[str]]) -> tuple[str, Path]:
                key, source = item
                target = Path(folder) / key.rpartition("/")[2]
                sha = hashlib.sha256()
                buffer = _buffer()
                view = memoryview(buffer)
                try:
                    with open(source, "rb", buffering=0) as src, target.open("xb") as out:
                        while count := src.readinto(buffer):
                            sha.update(view[:count])
                            out.write(view[:count])
                except FileNotFoundError:
                    raise NotFound(f"cannot store {source}: no such file") from None
                expected = key.rpartition("/")[2]
                if sha.hexdigest() != expected:
                    raise _changed(source, expected, sha.hexdigest())
                return key, target

            small = _small([source for _, source in items])
            self._blobs.put(self._parallel(stage, items, inline=small))

    def put_file(self, path: Path) -> BlobRef:
        """Store one local file; see :meth:`put_files`."""
        return self.put_files([path])[0]

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store bytes held in memory; return their ref."""
        data = bytes(data)
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        key = blob_key(ref.digest)
        if self._blobs.exists([key]):
            return ref
        fd, name = tempfile.mkstemp(prefix="mloop-blob-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self._blobs.put([(key, Path(name))])
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        return ref

    # -- reading ------------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        """Open a blob for streaming; the reader raises DigestMismatch at EOF if it is corrupt."""
        key = blob_key(digest)
        try:
            raw = self._blobs.open(key)
        except NotFound:
            raise self._not_found(digest) from None
        return cast(BinaryIO, VerifiedReader(raw, digest, self.uri))

    def get_bytes(self, digest: str) -> bytes:
        """Return a blob's bytes, verified against its digest."""
        with self.open(digest) as reader:
            return reader.read()

    def download(self, digest: str, dest: Path) -> None:
        """Write a verified blob to ``dest`` atomically; nothing is left at ``dest`` on error."""
        self.download_many([(digest, dest)])

    def download_many(self, items: Sequence[tuple[str, Path]]) -> None:
        """Download blobs in one batch; all are verified before any is renamed into place."""
        for digest, _ in items:
            check_digest(digest)
        staged: list[tuple[str, Path, Path]] = []
        for digest, target in items:
            dest = Path(target)
            dest.parent.mkdir(parents=True, exist_ok=True)
            temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
            staged.append((digest, temp, dest))
        try:
            try:
                self._blobs.get([(blob_key(digest), temp) for digest, temp, _ in staged])
            except NotFound:
                present = self.exists([digest for digest, _ in items])
                for digest, _ in items:
                    if digest not in present:
                        raise self._not_found(digest) from None
                raise
            actual = self._parallel(
                lambda entry: hash_file(entry[1]).digest,
                staged,
                inline=_small([temp for _, temp, _ in staged]),
            )
            for (digest, _, _), found in zip(staged, actual, strict=True):
                if found != digest:
                    raise _mismatch(digest, found, self.uri)
            for _, temp, dest in staged:
                os.replace(temp, dest)
        finally:
            for _, temp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()

    def verify(self, digest: str) -> bool:
        """Read a blob through and return whether its bytes match its digest."""
        key = blob_key(digest)
        try:
            with self._blobs.open(key) as raw:
                return _hash_stream(raw) == digest
        except NotFound:
            raise self._not_found(digest) from None

    # -- inventory ----------------------------------------------------------------------------

    def exists(self, digests: Sequence[str]) -> set[str]:
        """Return the subset of ``digests`` that are stored (one batched lookup)."""
        keys = {blob_key(digest): digest for digest in digests}
        return {keys[key] for key in self._blobs.exists(list(keys))}

    def delete(self, digests: Sequence[str]) -> None:
        """Delete blobs by digest; missing ones are ignored."""
        keys = [blob_key(digest) for digest in digests]
        if keys:
            self._blobs.delete(keys)

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Yield every blob in the store; objects outside the key layout are skipped."""
        for info in self._blobs.iter_keys():
            digest = _digest_of_key(info.key)
            if digest is not None:
                yield StoredBlob(digest=digest, size=info.size, modified=info.modified)

    def cleanup_temporary(self, older_than_seconds: float) -> int:
        """Delete the backend's leftovers of interrupted writes older than the given age."""
        return self._blobs.cleanup_temporary(older_than_seconds)
