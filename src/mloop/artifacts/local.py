"""Blobs as files in a local folder, each written atomically.

A write copies the source into a uniquely named file under ``<root>/.tmp/`` (the same file
system as its destination), flushes it to disk, then renames it into place with ``os.replace``,
which is atomic on POSIX and Windows. A process killed mid-write leaves only a file in
``.tmp/``, which no listing shows and :meth:`LocalBlobStore.cleanup_temporary` removes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from mloop.artifacts.base import TEMP_FOLDER, BlobInfo, BlobStore, check_key
from mloop.errors import BackendError, NotFound

__all__ = ["LocalBlobStore"]

_COPY_CHUNK = 1 << 20


def _fsync_folder(folder: Path) -> None:
    # Make the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        isfile, prefix, sep = os.path.isfile, self._prefix, os.sep
        return {key for key in keys if isfile(prefix + check_key(key).replace("/", sep))}

    def put(self, items: Sequence[tuple[str, Path]]) -> None:
        """Copy each local file into place through a temp file and an atomic rename."""
        for key, source in items:
            self._put_one(self._path(key), Path(source))

    def _put_one(self, dest: Path, source: Path) -> None:
        self._temp.mkdir(parents=True, exist_ok=True)
        temp = self._temp / f"{uuid.uuid4().hex}.part"
        try:
            with source.open("rb") as src, temp.open("xb") as out:
                shutil.copyfileobj(src, out, _COPY_CHUNK)
                out.flush()
                os.fsync(out.fileno())
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, dest)
            _fsync_folder(dest.parent)
        except FileNotFoundError as exc:
            if exc.filename == str(source):
                raise NotFound(f"cannot store {source}: no such file") from None
            raise BackendError(f"cannot write blob {dest} in {self.root}: {exc}") from exc
        except OSError as exc:
            raise BackendError(f"cannot write blob {dest} in {self.root}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

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
        """Delete files in the temp folder older than ``older_than_seconds``; return how many."""
        if not self._temp.is_dir():
            return 0
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self._temp.iterdir():
            try:
                if path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
