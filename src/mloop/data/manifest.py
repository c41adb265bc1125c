"""Folder manifests: the digest of every file in a folder, found fast and stored once.

A :class:`Manifest` lists a folder's files (relative POSIX path, size, SHA-256 of the bytes,
the same digest the :class:`~mloop.artifacts.cas.ContentAddressedStore` names blobs by), sorted
by path. Its canonical form, which :meth:`Manifest.to_bytes` writes and whose SHA-256 is
:attr:`Manifest.digest`, is UTF-8 text::

    mloop-manifest 1
    <digest> <size> <path>
    ...

one line per file, each ending in ``\\n``, sorted by path compared as Unicode code points (the
same order as their UTF-8 bytes); ``<digest>`` is 64 lowercase hex characters, ``<size>`` a
decimal byte count without leading zeros. Two folders with the same files (paths and bytes)
have the same manifest digest, whatever the order the file system lists them in and whatever
their timestamps.

:func:`scan_folder` builds a manifest. It walks the folder with ``os.scandir``, looks every file
up in a :class:`HashCache` (keyed by absolute path, size, modification time in nanoseconds and
inode) in one batch, and hashes only the files the cache does not know, in parallel threads.
What a scan refuses rather than skips, with an error naming the file:

- a relative path that is not a valid artifact path (see :mod:`mloop.artifacts.paths`), or that
  validation would change (a name not in Unicode NFC form): rename the file;
- a symbolic link that leads out of the folder, dangles, or leads to a folder (folder links
  can loop); a link to a file inside the folder is followed and recorded as that file's bytes;
- anything that is neither a file nor a folder (a FIFO, a socket, a device);
- a file it cannot read, and a file that changes or vanishes while it is read.

Empty folders are not recorded: a manifest holds files only.

A file modified less than two seconds before the scan started is hashed but not cached: a
write in the same timestamp tick as the scan could change it without changing its
modification time (git calls these files "racily clean").

:func:`store_folder` puts the blobs the store lacks (looked up in one batch, each copy verified
against the scanned digest); :func:`materialise` writes a manifest's files out of the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple, TypeVar, cast

from mloop.artifacts.cas import ContentAddressedStore, hash_fd
from mloop.artifacts.paths import MAX_PATH_LENGTH, validate_artifact_path
from mloop.errors import Conflict, InvalidArtifactPath, InvalidInput, MloopError, NotFound

__all__ = [
    "FileEntry",
    "FileKey",
    "HashCache",
    "Manifest",
    "ManifestDiff",
    "materialise",
    "scan_folder",
    "store_folder",
]

_log = logging.getLogger(__name__)

_HEADER = b"mloop-manifest 1\n"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SIZE = re.compile(r"0|[1-9][0-9]*")
#: A name that is certainly a valid artifact path segment: plain ASCII letters, digits, '_',
#: '-' and inner dots, no leading dot, no trailing dot, and a stem (before the first dot) that
#: is no Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9). Anything else, and any
#: name longer than 255 characters, goes through the full validator.
_PLAIN_NAME = re.compile(
    r"(?!(?i:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\.|$))[A-Za-z0-9_-](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?"
)
_MAX_PLAIN_NAME = 255
#: Files modified this close to the scan's start are hashed but not cached (racily clean).
_RACY_NS = 2_000_000_000
#: Most files, and bytes, a hashing thread takes at a time.
_SLICE_FILES = 64
_SLICE_BYTES = 64 << 20
#: Files downloaded, then verified, then renamed into place per batch by materialise.
_MATERIALISE_BATCH = 256
_SQL_VARIABLES = 900
#: Retries, with exponential back-off from 20 ms, of a hash-cache operation that met a lock.
_LOCK_RETRIES = 6
_T = TypeVar("_T")


@dataclass(frozen=True)
class FileEntry:
    """One file of a manifest: its relative POSIX path, its size and its SHA-256 hex digest."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True)
class ManifestDiff:
    """What changed from one manifest to another: paths added, removed and modified."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    modified: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)


@dataclass(frozen=True)
class Manifest:
    """The files of a folder, sorted by path; see the module docstring for its canonical form."""

    files: tuple[FileEntry, ...]

    def __post_init__(self) -> None:
        previous = None
        for entry in self.files:
            if previous is not None and entry.path <= previous:
                raise InvalidInput(
                    f"manifest paths must be unique and sorted; {entry.path!r} comes after "
                    f"{previous!r}; build manifests with scan_folder or Manifest.from_bytes"
                )
            previous = entry.path

    def __len__(self) -> int:
        return len(self.files)

    @property
    def total_size(self) -> int:
        """The sum of the files' sizes in bytes."""
        return sum(entry.size for entry in self.files)

    @cached_property
    def digest(self) -> str:
        """SHA-256 hex digest of :meth:`to_bytes`: equal for equal folders, whatever the order."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def to_bytes(self) -> bytes:
        """The canonical serialisation (see the module docstring)."""
        lines = [f"{e.digest} {e.size} {e.path}\n" for e in self.files]
        return _HEADER + "".join(lines).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and validate a serialised manifest; raise InvalidInput naming the bad line."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInput(f"a manifest is bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data.startswith(_HEADER):
            raise InvalidInput(
                f"not an mloop manifest: it must start with {_HEADER.decode().strip()!r}"
            )
        try:
            text = data[len(_HEADER) :].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"manifest is not valid UTF-8 (byte {exc.start})") from None
        if text and not text.endswith("\n"):
            raise InvalidInput("manifest is truncated: its last line does not end with a newline")
        entries = []
        for number, line in enumerate(text.splitlines(keepends=False), start=2):
            entries.append(_parse_line(line, number))
        try:
            manifest = cls(tuple(entries))
        except InvalidInput as exc:
            raise InvalidInput(f"manifest is malformed: {exc.message}") from None
        if manifest.to_bytes() != data:
            raise InvalidInput("manifest is not in canonical form (stray line breaks)")
        _check_no_file_folder_clash(manifest.files)
        return manifest

    def diff(self, other: Manifest) -> ManifestDiff:
        """What changed from this manifest to ``other``."""
        mine = {entry.path: entry for entry in self.files}
        theirs = {entry.path: entry for entry in other.files}
        return ManifestDiff(
            added=tuple(path for path in theirs if path not in mine),
            removed=tuple(path for path in mine if path not in theirs),
            modified=tuple(
                path for path, entry in theirs.items() if path in mine and mine[path] != entry
            ),
        )


def _parse_line(line: str, number: int) -> FileEntry:
    digest, _, rest = line.partition(" ")
    size, _, path = rest.partition(" ")
    if not _DIGEST.fullmatch(digest) or not _SIZE.fullmatch(size) or not path:
        shown = line if len(line) <= 100 else line[:97] + "..."
        raise InvalidInput(
            f"manifest line {number} is malformed: {shown!r}; each line is "
            "'<64 lowercase hex digest> <size in bytes> <relative path>'"
        )
    try:
        _check_relative_path(path)
    except InvalidArtifactPath as exc:
        raise InvalidInput(f"manifest line {number}: {exc.message}") from None
    return FileEntry(path, int(size), digest)


def _check_no_file_folder_clash(files: Sequence[FileEntry]) -> None:
    paths = {entry.path for entry in files}
    for entry in files:
        parent = entry.path
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            if parent in paths:
                raise InvalidInput(
                    f"manifest is malformed: {parent!r} is both a file and the folder of "
                    f"{entry.path!r}"
                )


def _plain(name: str) -> bool:
    return len(name) <= _MAX_PLAIN_NAME and _PLAIN_NAME.fullmatch(name) is not None


def _check_relative_path(path: str) -> None:
    """Refuse ``path`` unless it is a valid artifact path that validation leaves unchanged."""
    if len(path) <= MAX_PATH_LENGTH and all(_plain(name) for name in path.split("/")):
        return
    if validate_artifact_path(path) != path:
        raise InvalidArtifactPath(
            f"path {path!r} is not in Unicode NFC form; rename it (its NFC form is "
            f"{validate_artifact_path(path)!r})",
            path=path,
        )


class FileKey(NamedTuple):
    """What identifies a file's bytes without reading them: absolute path, size, mtime, inode."""

    path: str
    size: int
    mtime_ns: int
    inode: int


class HashCache:
    """Digests of files already hashed, in a small SQLite file, keyed by :class:`FileKey`.

    Safe for concurrent processes (WAL journal, busy timeout). A cache file that is not a valid
    cache (corrupt, truncated, another format) is deleted and rebuilt; a cache that still cannot
    be used (locked beyond the timeout, unwritable) only costs re-hashing: no cache error is
    ever raised to the caller. One entry per path: a file's newer key replaces its older one.
    """

    _SCHEMA = 1

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = None
        self._disabled = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HashCache({str(self.path)!r})"

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # A cache: losing the last entries to a power cut costs re-hashing, nothing else.
            connection.execute("PRAGMA synchronous=NORMAL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, self._SCHEMA):
                connection.execute("DROP TABLE IF EXISTS file_hashes")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS file_hashes (path TEXT PRIMARY KEY, "
                "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, "
                "digest TEXT NOT NULL) WITHOUT ROWID"
            )
            connection.execute(f"PRAGMA user_version={self._SCHEMA}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _discard(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()

    def _run(self, action: str, work: Callable[[sqlite3.Connection], _T]) -> _T | None:
        """Run ``work`` on the connection; rebuild a corrupt file once; never raise."""
        with self._lock:
            rebuilt = False
            for waited in range(_LOCK_RETRIES + 1):
                if self._disabled:
                    return None
                try:
                    if self._connection is None:
                        self._connection = self._open()
                    return work(self._connection)
                except sqlite3.OperationalError as exc:
                    locked = "locked" in str(exc) or "busy" in str(exc)
                    if locked and waited < _LOCK_RETRIES:
                        # Some lock waits (switching a new file to WAL, a busy snapshot) skip
                        # SQLite's busy handler: back off and retry a few times.
                        time.sleep(0.02 * 2**waited)
                        continue
                    if locked or rebuilt:
                        _log.warning(
                            "hash cache %s: cannot %s (%s); hashing instead", self.path, action, exc
                        )
                        return None
                    rebuilt = True
                    self._rebuild(exc)
                except (sqlite3.DatabaseError, OSError) as exc:
                    if rebuilt:
                        _log.warning("hash cache %s unusable (%s); not caching", self.path, exc)
                        self._disabled = True
                        return None
                    rebuilt = True
                    self._rebuild(exc)
        return None

    def _rebuild(self, exc: Exception) -> None:
        _log.warning("hash cache %s is not a valid cache (%s); rebuilding it", self.path, exc)
        try:
            self._discard()
        except OSError:
            self._disabled = True

    def lookup(self, keys: Sequence[FileKey], *, under: str | None = None) -> dict[str, str]:
        """The cached digest, by path, of each key whose path, size, mtime and inode all match.

        ``under``, a folder that holds every key's path, lets one range query over the index
        replace many lookups by path.
        """
        if not keys:
            return {}

        def work(connection: sqlite3.Connection) -> dict[str, str]:
            wanted = {key.path: key for key in keys}
            found: dict[str, str] = {}
            if under is not None:
                low = under.rstrip(os.sep) + os.sep
                high = low[:-1] + chr(ord(os.sep) + 1)
                rows = connection.execute(
                    "SELECT path, size, mtime_ns, inode, digest FROM file_hashes "
                    "WHERE path >= ? AND path < ?",
                    (low, high),
                )
                for path, size, mtime_ns, inode, digest in rows:
                    key = wanted.get(path)
                    if key is not None and (size, mtime_ns, inode) == key[1:]:
                        found[path] = digest
                return found
            paths = list(wanted)
            for start in range(0, len(paths), _SQL_VARIABLES):
                chunk = paths[start : start + _SQL_VARIABLES]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    "SELECT path, size, mtime_ns, inode, digest FROM file_hashes "
                    f"WHERE path IN ({marks})",
                    chunk,
                )
                for path, size, mtime_ns, inode, digest in rows:
                    key = wanted[path]
                    if (size, mtime_ns, inode) == (key.size, key.mtime_ns, key.inode):
                        found[path] = digest
            return found

        return self._run("look up digests", work) or {}

    def store(self, entries: Iterable[tuple[FileKey, str]]) -> None:
        """Record digests in one transaction; a newer key replaces a path's older one."""
        rows = [(k.path, k.size, k.mtime_ns, k.inode, digest) for k, digest in entries]
        if not rows:
            return

        def work(connection: sqlite3.Connection) -> None:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, inode, digest) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

        self._run("store digests", work)

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class _Found(NamedTuple):
    relative: str
    key: FileKey


def _root_of(root: str | os.PathLike[str]) -> Path:
    path = Path(root)
    try:
        base = path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"cannot scan {path}: no such folder") from None
    if not base.is_dir():
        raise InvalidInput(f"cannot scan {path}: it is a file, not a folder")
    return base


def _walk(base: Path) -> list[_Found]:
    """Every file under ``base``, found with an explicit stack of os.scandir calls."""
    found: list[_Found] = []
    base_text = str(base)
    inside = base_text.rstrip(os.sep) + os.sep
    stack: list[tuple[str, str, bool]] = [(base_text, "", True)]
    while stack:
        folder, prefix, plain_prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise InvalidInput(
                f"cannot list folder {folder}: {exc.strerror}; make it readable or move it out"
            ) from None
        for entry in entries:
            name = entry.name
            relative = prefix + name
            plain = plain_prefix and _plain(name)
            if not plain:
                _check_relative_path(relative)
            elif len(relative) > MAX_PATH_LENGTH:
                validate_artifact_path(relative)  # raises: too long
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, relative + "/", plain))
                continue
            if entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                inode = entry.inode() or info.st_ino
            elif entry.is_symlink():
                info = _followed_link(entry.path, relative, inside)
                inode = info.st_ino
            else:
                raise InvalidInput(
                    f"cannot add {relative!r}: it is not a regular file (a FIFO, socket or "
                    "device); move it out of the folder"
                )
            found.append(
                _Found(relative, FileKey(entry.path, info.st_size, info.st_mtime_ns, inode))
            )
    return found


def _followed_link(link: str, relative: str, inside: str) -> os.stat_result:
    target = os.path.realpath(link)
    if not target.startswith(inside):
        raise InvalidInput(
            f"cannot add {relative!r}: it is a symbolic link to {target}, outside the folder; "
            "copy the file in or remove the link"
        )
    try:
        info = os.stat(link)
    except FileNotFoundError:
        raise InvalidInput(
            f"cannot add {relative!r}: it is a symbolic link to {target}, which does not exist"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(
            f"cannot add {relative!r}: it is a symbolic link to a folder or a special file; "
            "links are followed only to files (folder links can loop); replace it with a copy"
        )
    return info


def _hash_found(item: _Found) -> str:
    path = item.key.path
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise Conflict(
            f"{item.relative!r} was deleted while the folder was scanned; add it again"
        ) from None
    except OSError as exc:
        raise InvalidInput(
            f"cannot read {item.relative!r}: {exc.strerror}; make it readable or move it out "
            "of the folder"
        ) from None
    try:
        ref = hash_fd(fd)
        after = os.fstat(fd)
    except OSError as exc:
        raise InvalidInput(f"cannot read {item.relative!r}: {exc.strerror}") from None
    finally:
        os.close(fd)
    expected = item.key
    if ref.size != expected.size or (after.st_size, after.st_mtime_ns) != (
        expected.size,
        expected.mtime_ns,
    ):
        raise Conflict(
            f"{item.relative!r} changed while it was being hashed; add the folder again once "
            "nothing writes to it",
            path=item.relative,
        )
    return ref.digest


def _slices(items: Sequence[_Found]) -> list[Sequence[_Found]]:
    slices: list[Sequence[_Found]] = []
    start = size = 0
    for index, item in enumerate(items):
        size += item.key.size
        if index + 1 - start >= _SLICE_FILES or size >= _SLICE_BYTES:
            slices.append(items[start : index + 1])
            start, size = index + 1, 0
    if start < len(items):
        slices.append(items[start:])
    return slices


def _hash_all(items: Sequence[_Found], workers: int) -> list[str]:
    def run(part: Sequence[_Found]) -> list[str]:
        return [_hash_found(item) for item in part]

    slices = _slices(items)
    if workers <= 1 or len(slices) <= 1:
        return [digest for part in slices for digest in run(part)]
    with ThreadPoolExecutor(min(workers, len(slices))) as pool:
        return [digest for part in pool.map(run, slices) for digest in part]


def scan_folder(
    root: str | os.PathLike[str],
    *,
    cache: HashCache | None = None,
    workers: int | None = None,
) -> Manifest:
    """The manifest of every file under ``root``, hashing only files the cache does not know.

    ``workers`` threads hash (default: the CPU count plus 2, at most 8). Raises
    NotFound if ``root`` is missing, InvalidInput for a path, link or file the scan refuses
    (see the module docstring), Conflict for a file that changes while it is read.
    """
    started_ns = time.time_ns()
    base = _root_of(root)
    found = _walk(base)
    found.sort(key=lambda item: item.relative)
    known = {}
    if cache is not None:
        known = cache.lookup([item.key for item in found], under=str(base))
    # Keyed by path (a string caches its hash; a FileKey tuple would be hashed again).
    digests = [known.get(item.key.path) for item in found]
    todo = [index for index, digest in enumerate(digests) if digest is None]
    # More threads than CPUs: a thread waiting for the disk or the page cache is not hashing.
    threads = workers if workers is not None else min(8, (os.cpu_count() or 1) + 2)
    hashed = _hash_all([found[index] for index in todo], threads)
    for index, digest in zip(todo, hashed, strict=True):
        digests[index] = digest
    if cache is not None and todo:
        settled = started_ns - _RACY_NS
        cache.store(
            (found[index].key, digest)
            for index, digest in zip(todo, hashed, strict=True)
            if found[index].key.mtime_ns < settled
        )
    return Manifest(
        tuple(
            FileEntry(item.relative, item.key.size, digest)
            for item, digest in zip(found, cast("list[str]", digests), strict=True)
        )
    )


def _local_path(base: Path, relative: str) -> Path:
    return base.joinpath(*relative.split("/"))


def store_folder(
    store: ContentAddressedStore, root: str | os.PathLike[str], manifest: Manifest
) -> int:
    """Put the blobs of ``manifest`` that ``store`` lacks, copied from ``root``; return how many.

    Digests come from the manifest (nothing is hashed to find them); each copied blob is hashed
    once as it is stored and refused (Conflict) if the file changed since the scan.
    """
    # Plain strings, not pathlib: one per file of a folder of maybe 50,000.
    base, sep = str(_root_of(root)) + os.sep, os.sep
    sources = [(e.digest, base + e.path.replace("/", sep)) for e in manifest.files]
    return store.put_known(sources)


def materialise(
    store: ContentAddressedStore,
    manifest: Manifest,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> None:
    """Write every file of ``manifest`` under ``dest``, each verified and renamed into place.

    ``dest`` must be missing or an empty folder unless ``overwrite`` is True, in which case
    files of the manifest replace what is there and other files are left alone. Files are
    written in batches; a batch is verified whole before any of it is renamed into place, so a
    corrupt blob (DigestMismatch) leaves no partial file, only the earlier batches.
    """
    target = Path(dest)
    if target.exists() and not target.is_dir():
        raise InvalidInput(f"cannot write the dataset to {target}: it is a file, not a folder")
    if target.is_dir() and not overwrite:
        with os.scandir(target) as entries:
            if next(entries, None) is not None:
                raise Conflict(
                    f"cannot write the dataset to {target}: the folder is not empty; choose an "
                    "empty or new folder, or pass overwrite=True to replace its files"
                )
    target.mkdir(parents=True, exist_ok=True)
    items = [(e.digest, _local_path(target, e.path)) for e in manifest.files]
    for start in range(0, len(items), _MATERIALISE_BATCH):
        batch = items[start : start + _MATERIALISE_BATCH]
        try:
            store.download_many(batch)
        except MloopError:
            raise
        except OSError as exc:
            raise Conflict(f"cannot write the dataset under {target}: {exc}") from exc
