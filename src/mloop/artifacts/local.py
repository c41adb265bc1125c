"""Blobs as files in a local folder, each written atomically.

A write copies the source into a uniquely named file under ``<root>/.tmp/`` (the same file
system as its destination), flushes it to disk, then renames it into place with ``os.replace``,
which is atomic on POSIX and Windows. A process killed mid-write leaves only a file in
``.tmp/``, which no listing shows and :meth:`LocalBlobStore.cleanup_temporary` removes.

A batch is written in parallel threads, and its flushes are batched, in this order so that a
blob's name never appears before its bytes are on disk: every copy is written to its temp file;
the copies' data is flushed; only then are they renamed into place; finally the renames are
flushed, before ``put`` returns. On Linux each flush is one ``syncfs(2)`` of the store's file
system (it also writes out other dirty data of that file system, which costs time but never
correctness); elsewhere each temp file is fsynced in its thread and each touched folder once.
Copies use the kernel's ``copy_file_range`` where it works (no pass through Python).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from mloop.artifacts.base import TEMP_FOLDER, BlobInfo, BlobStore, check_key
from mloop.errors import BackendError, NotFound

__all__ = ["LocalBlobStore"]

_COPY_CHUNK = 1 << 20
#: Threads copying one batch; copies wait on the disk and the kernel, not on the GIL.
_COPY_WORKERS = 4
#: Files handed to a thread at a time: one future per file costs more than a small copy.
_COPY_SLICE = 64
_BINARY = getattr(os, "O_BINARY", 0)
_SHARDS = frozenset(f"{index:02x}" for index in range(256))
_BLOB_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}")


def _fsync_folder(folder: Path) -> None:
    # Make the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SYNCFS = _load_syncfs()


def _syncfs(folder: str | Path) -> bool:
    """Flush the whole file system holding ``folder``; False if that is not possible here."""
    if _SYNCFS is None:
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs failed: {os.strerror(errno)}", str(folder))
    finally:
        os.close(fd)
    return True


def _copy_into(source: str, temp: str, *, fsync: bool) -> None:
    """Copy ``source`` to the new file ``temp`` (kernel copy where possible)."""
    src = os.open(source, os.O_RDONLY | _BINARY)
    try:
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o644)
        try:
            if not _kernel_copy(src, out):
                with (
                    open(src, "rb", closefd=False) as reader,
                    open(out, "wb", closefd=False) as writer,
                ):
                    shutil.copyfileobj(reader, writer, _COPY_CHUNK)
            if fsync:
                os.fsync(out)
        finally:
            os.close(out)
    finally:
        os.close(src)


def _kernel_copy(src: int, out: int) -> bool:
    """Copy with ``copy_file_range``; False (nothing written) where the kernel cannot."""
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is None:
        return False
    copied = 0
    while True:
        try:
            count = copy_range(src, out, 1 << 30)
        except OSError:
            if copied:
                raise
            return False  # EXDEV, ENOSYS, EINVAL…: fall back to a plain copy
        if count == 0:
            return True
        copied += count


class LocalBlobStore(BlobStore):
    """A folder of blobs on a local or mounted file system."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()
        self._temp = self.root / TEMP_FOLDER
        self._prefix = str(self.root) + os.sep

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def exists(self, keys: Sequence[str]) -> set[str]:
        """Return the subset of ``keys`` that are stored."""
        # Plain string paths: this runs for every put (deduplication), pathlib costs more
        # than the stat itself.
        isfile, prefix, sep, blob = os.path.isfile, self._prefix, os.sep, _BLOB_KEY.fullmatch
        return {
            key
            for key in keys
            # A content-addressed key (ab/ab12…) is valid by its shape; others are checked.
            if isfile(prefix + (key if blob(key) else check_key(key)).replace("/", sep))
        }

    def put(self, items: Sequence[tuple[str, Path]]) -> None:
        """Copy each local file into place through a temp file and an atomic rename."""
        self.put_checked(items, None)

    def put_checked(
        self,
        items: Sequence[tuple[str, str | os.PathLike[str]]],
        check: Callable[[str, Path], None] | None,
    ) -> None:
        """Like :meth:`put`; ``check(key, copy)`` runs on each finished copy before any of the
        batch becomes visible, and an exception from it stores nothing of the batch."""
        if not items:
            return
        # Plain strings, not pathlib: this loop runs once per file of a folder of 50,000.
        sep, prefix = os.sep, self._prefix
        temp_prefix = str(self._temp) + sep
        work = []
        for key, source in items:
            # Temp files are spread over shard folders of .tmp/, like the blobs: threads
            # creating files in one folder contend for it in the kernel (several times the
            # system time for 50,000 small files).
            shard = key[:2] if key[:2] in _SHARDS else "xx"
            dest = prefix + check_key(key).replace("/", sep)
            work.append((dest, key, os.fspath(source), temp_prefix + shard + sep))
        batched = _SYNCFS is not None
        temps: list[str] = []

        def copy_slice(start: int) -> list[tuple[str, str]]:
            done = []
            for dest, key, source, temp_folder in work[start : start + _COPY_SLICE]:
                temp = f"{temp_folder}{uuid.uuid4().hex}.part"
                temps.append(temp)  # list.append is atomic: the cleanup sees every temp
                try:
                    _copy_into(source, temp, fsync=not batched)
                except FileNotFoundError as exc:
                    if not os.path.isfile(source):
                        raise NotFound(f"cannot store {source}: no such file") from None
                    raise BackendError(f"cannot write blob {dest} in {self.root}: {exc}") from exc
                if check is not None:
                    check(key, Path(temp))
                done.append((temp, dest))
            return done

        try:
            for folder in {temp_folder for _, _, _, temp_folder in work}:
                os.makedirs(folder, exist_ok=True)
            starts = range(0, len(work), _COPY_SLICE)
            if len(starts) == 1:
                copied = copy_slice(0)
            else:
                with ThreadPoolExecutor(min(_COPY_WORKERS, len(starts))) as pool:
                    copied = [pair for part in pool.map(copy_slice, starts) for pair in part]
            if batched:
                _syncfs(self._temp)  # every copy is on disk before any name points at it
            self._rename_all(copied, batched=batched)
            temps.clear()  # all renamed: nothing left to clean up
        except OSError as exc:
            raise BackendError(f"cannot write blobs in {self.root}: {exc}") from exc
        finally:
            for temp in temps:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)

    def _rename_all(self, copied: Sequence[tuple[str, str]], *, batched: bool) -> None:
        folders = {os.path.dirname(dest) for _, dest in copied}
        created = False
        for folder in folders:
            if not os.path.isdir(folder):
                os.makedirs(folder, exist_ok=True)
                created = True
        replace = os.replace
        for temp, dest in copied:
            replace(temp, dest)
        if batched:
            _syncfs(self.root)
            return
        for folder in sorted(folders):
            _fsync_folder(Path(folder))
        if created:
            _fsync_folder(self.root)

    def get(self, items: Sequence[tuple[str, Path]]) -> None:
        """Copy each stored blob to its local path."""
        for key, dest in items:
            path = self._path(key)
            try:
                shutil.copyfile(path, dest)
            except FileNotFoundError:
                if not path.is_file():
                    raise NotFound(f"no blob under key {key!r} in {self.uri}") from None
                raise
            except OSError as exc:
                raise BackendError(f"cannot read blob {key!r} from {self.uri}: {exc}") from exc

    def open(self, key: str) -> BinaryIO:
        """Open one stored blob for reading."""
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"no blob under key {key!r} in {self.uri}") from None
        except OSError as exc:
            raise BackendError(f"cannot read blob {key!r} from {self.uri}: {exc}") from exc

    def delete(self, keys: Sequence[str]) -> None:
        """Delete the blobs under ``keys``; missing keys are ignored."""
        # Empty shard folders are kept: removing one could race with a concurrent put into it.
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError as exc:
                raise BackendError(f"cannot delete blob {key!r} from {self.uri}: {exc}") from exc

    def iter_keys(self) -> Iterator[BlobInfo]:
        """Yield every stored blob; the temp folder is skipped."""
        for folder, subfolders, files in os.walk(self.root):
            here = Path(folder)
            if here == self.root:
                subfolders[:] = [name for name in subfolders if name != TEMP_FOLDER]
            subfolders.sort()
            for name in sorted(files):
                path = here / name
                try:
                    stat = path.stat()
                except FileNotFoundError:  # deleted while we walked
                    continue
                key = path.relative_to(self.root).as_posix()
                yield BlobInfo(key=key, size=stat.st_size, modified=stat.st_mtime)

    def cleanup_temporary(self, older_than_seconds: float) -> int:
        """Delete files in the temp folder (and its shard folders) older than
        ``older_than_seconds``; return how many. Folders are kept: a put may be using them."""
        if not self._temp.is_dir():
            return 0
        cutoff = time.time() - older_than_seconds
        removed = 0
        for folder, _, files in os.walk(self._temp):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    if os.stat(path).st_mtime <= cutoff:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed
