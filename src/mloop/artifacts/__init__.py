"""Content-addressed artifact storage over pluggable blob backends.

``open_artifact_store(uri)`` picks the backend from the URI's scheme: a plain folder or
``file://`` gives :class:`LocalBlobStore`; any other scheme (``s3://``, ``gs://``, ``memory://``
…) gives :class:`FsspecBlobStore`. Backends are imported only when chosen, so a missing optional
package (s3fs) costs nothing until an ``s3://`` store is opened.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mloop.artifacts.base import BlobInfo, BlobStore
from mloop.artifacts.cas import BlobRef, ContentAddressedStore, StoredBlob, VerifiedReader
from mloop.artifacts.gc import GcReport, collect_garbage
from mloop.artifacts.paths import join_artifact_path, validate_artifact_path
from mloop.errors import ConfigError

if TYPE_CHECKING:
    from mloop.artifacts.fsspec import FsspecBlobStore
    from mloop.artifacts.local import LocalBlobStore

__all__ = [
    "BACKENDS",
    "BlobInfo",
    "BlobRef",
    "BlobStore",
    "ContentAddressedStore",
    "FsspecBlobStore",
    "GcReport",
    "LocalBlobStore",
    "StoredBlob",
    "VerifiedReader",
    "collect_garbage",
    "join_artifact_path",
    "open_artifact_store",
    "open_blob_store",
    "validate_artifact_path",
]

BACKENDS: dict[str, str] = {
    "file": "mloop.artifacts.local:LocalBlobStore",
    "*": "mloop.artifacts.fsspec:FsspecBlobStore",
}
"""URI scheme → "module:Class" of its BlobStore; "*" is used for every scheme not listed."""

_LAZY = {
    "LocalBlobStore": "mloop.artifacts.local",
    "FsspecBlobStore": "mloop.artifacts.fsspec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load(target: str) -> Callable[..., BlobStore]:
    module, _, name = target.partition(":")
    backend = getattr(importlib.import_module(module), name)
    if not (isinstance(backend, type) and issubclass(backend, BlobStore)):
        raise ConfigError(f"artifact backend {target!r} is not a BlobStore class")
    return backend


def open_blob_store(uri: str, **storage_options: Any) -> BlobStore:
    """Open the blob backend a URI names (a folder, ``file://…``, ``s3://bucket/prefix``, …)."""
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(
            "the artifact store URI is empty; set MLOOP_ARTIFACT_URI to a folder or to an "
            "fsspec URI such as s3://bucket/prefix"
        )
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    # A one-letter "scheme" is a Windows drive (C:\artifacts), not a protocol.
    if len(scheme) <= 1 or "://" not in uri:
        return _load(BACKENDS["file"])(uri, **storage_options)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"artifact store {uri!r} names the remote host {parts.netloc!r}; "
                "file:// URIs must be local (file:///path/to/folder)"
            )
        return _load(BACKENDS["file"])(url2pathname(parts.path), **storage_options)
    return _load(BACKENDS.get(scheme, BACKENDS["*"]))(uri, **storage_options)


def open_artifact_store(uri: str, **storage_options: Any) -> ContentAddressedStore:
    """Open the content-addressed artifact store at ``uri`` (see :func:`open_blob_store`)."""
    return ContentAddressedStore(open_blob_store(uri, **storage_options))
