"""Garbage collection: delete blobs that nothing references any more.

The caller says what is referenced (the metadata store knows; this module does not import it)
through a function asked about each batch of candidates just before the batch is deleted, so a
reference recorded while the collection runs still saves its blob. A blob is a candidate only
once it is older than the grace period, because a blob just uploaded is not referenced until
its owner records it.

What remains: a writer that finds a blob already stored skips the upload (deduplication) and
records its reference a few milliseconds later; if the collection checks that very blob's
batch inside those milliseconds, the blob can go. Run gc when writers are quiet, or keep the
default grace period (which also covers every upload in flight).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
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
    referenced: Callable[[list[str]], Collection[str]],
    *,
    grace_seconds: float,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> GcReport:
    """Delete unreferenced blobs older than ``grace_seconds``, in batches; report what was done.

    ``referenced(digests)`` returns which of ``digests`` some record references now; it is
    called once per batch, right before the batch is deleted. ``progress``, if given, is
    called after each batch with the number of blobs scanned in it.
    """
    if not grace_seconds >= 0:
        raise InvalidInput(
            f"grace_seconds must be >= 0, got {grace_seconds!r}; it protects uploads in flight"
        )
    cutoff = time.time() - grace_seconds
    scanned = deleted = freed = young = kept = 0
    unreported = 0
    batch: list[StoredBlob] = []

    def flush() -> None:
        nonlocal deleted, freed, kept, unreported
        if batch:
            keep = set(referenced([blob.digest for blob in batch]))
            doomed = [blob for blob in batch if blob.digest not in keep]
            kept += len(batch) - len(doomed)
            if doomed and not dry_run:
                cas.delete([blob.digest for blob in doomed])
            deleted += len(doomed)
            freed += sum(blob.size for blob in doomed)
            batch.clear()
        if progress is not None and unreported:
            progress(unreported)
        unreported = 0

    for blob in cas.iter_blobs():
        scanned += 1
        unreported += 1
        if blob.modified > cutoff:
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
