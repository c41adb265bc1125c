"""Blobs on any fsspec file system; S3 and S3-compatible servers are tested.

An object store (S3, GCS, Azure Blob) makes each put atomic by itself: an object appears whole
when its upload (single or multipart) completes, so blobs are written straight to their key.
On any other file system a blob is written to a temp key under ``<root>/.tmp/`` and then moved
into place.

S3 settings come from the usual places: credentials and region from the AWS environment
variables or configuration files, and, for S3-compatible servers (MinIO, Ceph, moto, …), the
endpoint from ``MLOOP_S3_ENDPOINT_URL`` (e.g. ``http://127.0.0.1:9000``) unless the storage
options name one. Listing caches are off for S3 so that blobs written by other processes are
seen at once.

An interrupted multipart upload to S3 leaves no visible object, but the parts it uploaded are
kept (and billed) until aborted; configure the bucket's ``AbortIncompleteMultipartUpload``
lifecycle rule to remove them.
"""

from __future__ import annotations

import importlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import fsspec

from mloop.artifacts.base import TEMP_FOLDER, BlobInfo, BlobStore, check_key
from mloop.errors import BackendError, ConfigError, MissingExtra, NotFound

__all__ = ["S3_ENDPOINT_ENV", "FsspecBlobStore"]

S3_ENDPOINT_ENV = "MLOOP_S3_ENDPOINT_URL"
"""Environment variable naming the endpoint of an S3-compatible server."""

_S3_PROTOCOLS = frozenset({"s3", "s3a"})
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
# Packages that provide a protocol and the mloop extra that installs them.
_EXTRAS: Mapping[str, tuple[str, str, str]] = {
    "s3": ("s3", "s3fs", "The S3 artifact store"),
    "s3a": ("s3", "s3fs", "The S3 artifact store"),
}
_EXISTS_WORKERS = 16


def _protocol(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else "file"


def _epoch(info: Mapping[str, Any]) -> float:
    """The modification time in an fsspec ``info`` record, as epoch seconds (0.0 if absent)."""
    for field in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(field)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


class FsspecBlobStore(BlobStore):
    """Blobs under a root URI of any fsspec file system (``s3://bucket/prefix``, …)."""

    def __init__(self, uri: str, **storage_options: Any) -> None:
        self.uri = uri.rstrip("/")
        self.protocol = _protocol(uri)
        options = dict(storage_options)
        if self.protocol in _S3_PROTOCOLS:
            options = self._s3_options(options)
        if self.protocol in _EXTRAS:
            extra, module, purpose = _EXTRAS[self.protocol]
            try:
                importlib.import_module(module)
            except ImportError:
                raise MissingExtra(extra, module, purpose) from None
        try:
            fs, root = fsspec.core.url_to_fs(self.uri, **options)
        except ImportError as exc:
            raise ConfigError(
                f"artifact store {self.uri!r} needs the fsspec implementation of "
                f"'{self.protocol}://', which is not installed: {exc}"
            ) from None
        except ValueError as exc:
            raise ConfigError(
                f"artifact store {self.uri!r} has an unknown scheme '{self.protocol}://': {exc}; "
                "use a local folder or an fsspec URI such as s3://bucket/prefix"
            ) from None
        self._fs: Any = fs
        self._root = str(root).rstrip("/")
        self._atomic_put = self.protocol in _ATOMIC_PUT_PROTOCOLS

    @staticmethod
    def _s3_options(options: dict[str, Any]) -> dict[str, Any]:
        endpoint = os.environ.get(S3_ENDPOINT_ENV, "")
        client_kwargs = dict(options.get("client_kwargs") or {})
        if endpoint and "endpoint_url" not in options and "endpoint_url" not in client_kwargs:
            client_kwargs["endpoint_url"] = endpoint
            options["client_kwargs"] = client_kwargs
        options.setdefault("use_listings_cache", False)
        return options

    def _path(self, key: str) -> str:
        return f"{self._root}/{check_key(key)}"

    def _fail(self, action: str, exc: Exception) -> BackendError:
        return BackendError(f"cannot {action} in {self.uri}: {type(exc).__name__}: {exc}")

    def exists(self, keys: Sequence[str]) -> set[str]:
        """Return the subset of ``keys`` that are stored (looked up concurrently)."""
        unique = list(dict.fromkeys(keys))
        paths = [self._path(key) for key in unique]
        if not paths:
            return set()
        try:
            with ThreadPoolExecutor(min(_EXISTS_WORKERS, len(paths))) as pool:
                found = list(pool.map(self._fs.isfile, paths))
        except (OSError, ValueError) as exc:
            raise self._fail("look up blobs", exc) from exc
        return {key for key, present in zip(unique, found, strict=True) if present}

    def put(self, items: Sequence[tuple[str, Path]]) -> None:
        """Upload each local file to its key; one whole object appears per key, or none."""
        if not items:
            return
        sources = [str(Path(source)) for _, source in items]
        missing = [source for source in sources if not os.path.isfile(source)]
        if missing:
            raise NotFound(f"cannot store {missing[0]}: no such file")
        targets = [self._path(key) for key, _ in items]
        try:
            if self._atomic_put:
                self._fs.put(sources, targets)
                return
            temps = [f"{self._root}/{TEMP_FOLDER}/{uuid.uuid4().hex}.part" for _ in targets]
            self._fs.makedirs(f"{self._root}/{TEMP_FOLDER}", exist_ok=True)
            try:
                self._fs.put(sources, temps)
                for temp, target in zip(temps, targets, strict=True):
                    self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                    self._fs.mv(temp, target)
            finally:
                leftovers = [temp for temp in temps if self._fs.exists(temp)]
                if leftovers:
                    self._fs.rm(leftovers)
        except (OSError, ValueError) as exc:
            raise self._fail("write blobs", exc) from exc

    def get(self, items: Sequence[tuple[str, Path]]) -> None:
        """Download each key to its local path (concurrently where the file system can)."""
        if not items:
            return
        sources = [self._path(key) for key, _ in items]
        targets = [str(Path(dest)) for _, dest in items]
        try:
            self._fs.get(sources, targets)
        except FileNotFoundError:
            present = self.exists([key for key, _ in items])
            missing = [key for key, _ in items if key not in present]
            if missing:
                raise NotFound(f"no blob under key {missing[0]!r} in {self.uri}") from None
            raise
        except (OSError, ValueError) as exc:
            raise self._fail("read blobs", exc) from exc

    def open(self, key: str) -> BinaryIO:
        """Open one stored object for reading."""
        try:
            return cast(BinaryIO, self._fs.open(self._path(key), "rb"))
        except FileNotFoundError:
            raise NotFound(f"no blob under key {key!r} in {self.uri}") from None
        except (OSError, ValueError) as exc:
            raise self._fail(f"read blob {key!r}", exc) from exc

    def delete(self, keys: Sequence[str]) -> None:
        """Delete the objects under ``keys`` (in bulk where the file system can)."""
        paths = [self._path(key) for key in dict.fromkeys(keys)]
        if not paths:
            return
        try:
            self._fs.rm(paths)
        except FileNotFoundError:
            # Some file systems refuse a batch holding a missing path: delete one by one.
            for path in paths:
                try:
                    self._fs.rm_file(path)
                except FileNotFoundError:
                    continue
        except (OSError, ValueError) as exc:
            raise self._fail("delete blobs", exc) from exc

    def _find(self, root: str) -> dict[str, Mapping[str, Any]]:
        try:
            found: dict[str, Mapping[str, Any]] = self._fs.find(root, detail=True)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise self._fail("list blobs", exc) from exc
        return found

    def iter_keys(self) -> Iterator[BlobInfo]:
        """Yield every stored object under the root, skipping the temp folder."""
        prefix = f"{self._root}/"
        temp_prefix = f"{prefix}{TEMP_FOLDER}/"
        for path, info in sorted(self._find(self._root).items()):
            if info.get("type", "file") != "file" or not path.startswith(prefix):
                continue
            if path.startswith(temp_prefix):
                continue
            yield BlobInfo(key=path[len(prefix) :], size=int(info["size"]), modified=_epoch(info))

    def cleanup_temporary(self, older_than_seconds: float) -> int:
        """Delete temp objects older than ``older_than_seconds``; return how many."""
        if self._atomic_put:
            return 0
        cutoff = time.time() - older_than_seconds
        old = [
            path
            for path, info in self._find(f"{self._root}/{TEMP_FOLDER}").items()
            if info.get("type", "file") == "file" and _epoch(info) <= cutoff
        ]
        for path in old:
            try:
                self._fs.rm_file(path)
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                raise self._fail("delete temp objects", exc) from exc
        return len(old)
