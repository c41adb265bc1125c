"""Garbage collection: delete blobs that nothing references any more.

The caller decides what is referenced (the metadata store knows; this module does not import
it) and passes the set of digests. A blob outside that set is deleted only once it is older
than the grace period, because a blob just uploaded is not referenced until its run records it.

Caveat for callers: a blob that already existed is not uploaded again (deduplication), so its
age says nothing about a run that has just started to reference it. Take the referenced set
after such writers have recorded their references, or keep the grace period longer than the
longest gap between storing a blob and recording it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mloop.artifacts.cas import ContentAddressedStore, StoredBlob
from mloop.errors import InvalidInput

__all__ = ["DELETE_BATCH_SIZE", "GcReport", "collect_garbage"]

DELETE_BATCH_SIZE = 1000
"""Blobs deleted per backend call (S3's DeleteObjects takes at most 1000 keys)."""


@dataclass(frozen=True)
class GcReport:
    """What a garbage collection found and did (in a dry run: what it would have deleted)."""

    scanned: int
    deleted: int
    freed_bytes: int
    kept_young: int
    dry_run: bool
    kept_referenced: int = 0
    temporary_removed: int = 0


def collect_garbage(
    cas: ContentAddressedStore,
    referenced: Iterable[str],
    *,
    grace_seconds: float,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> GcReport:
    """Delete unreferenced blobs older than ``grace_seconds``, in batches; report what was done.

    ``progress``, if given, is called after each batch with the number of blobs scanned in it.
    """
    if not grace_seconds >= 0:
        raise InvalidInput(
            f"grace_seconds must be >= 0, got {grace_seconds!r}; it protects uploads in flight"
        )
    keep = frozenset(referenced)
    cutoff = time.time() - grace_seconds
    scanned = deleted = freed = young = kept = 0
    unreported = 0
    batch: list[StoredBlob] = []

    def flush() -> None:
        nonlocal deleted, freed, unreported
        if batch and not dry_run:
            cas.delete([blob.digest for blob in batch])
        deleted += len(batch)
        freed += sum(blob.size for blob in batch)
        batch.clear()
        if progress is not None and unreported:
            progress(unreported)
        unreported = 0

    for blob in cas.iter_blobs():
        scanned += 1
        unreported += 1
        if blob.digest in keep:
            kept += 1
        elif blob.modified > cutoff:
            young += 1
        else:
            batch.append(blob)
        if len(batch) >= DELETE_BATCH_SIZE or unreported >= DELETE_BATCH_SIZE:
            flush()
    flush()
    removed = 0 if dry_run else cas.cleanup_temporary(grace_seconds)
    return GcReport(
        scanned=scanned,
        deleted=deleted,
        freed_bytes=freed,
        kept_young=young,
        dry_run=dry_run,
        kept_referenced=kept,
        temporary_removed=removed,
    )
