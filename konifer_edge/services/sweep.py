"""The sweep (`konifer-edge sweep`, see cli/sweep.py): remove objects no variant row names, and retry queued
removals now.

An object with no row is an orphan: a store or a render puts its object before it records the
row, so a crash (or a lost connection) between the two leaves one behind. Such an object is
unreachable through the API and only costs storage. The sweep lists each bucket, loads the
listing into a temporary table and anti-joins it with `variant` (storage/sweep_listing.py), then
removes what no row names.

Objects younger than `min_age` are left alone: they may belong to a store still in flight, whose
row is about to be written. The age is the last-modified time the object store reports in its
listing (S3's LastModified, the file's mtime for the filesystem store). Objects whose removal is
already queued in `pending_object_deletion` are not orphans: that queue owns them, and the sweep
retries it first, without waiting for each row's backoff.

The sweep is safe to run while servers are serving: it never touches a row, only the queue and
objects no row names. It removes nothing from a bucket none of whose objects the database
references, which is what pointing it at the wrong database or the wrong store looks like.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from konifer_edge.config import Config
from konifer_edge.storage.deletions import DeletionQueue, PendingDeletion
from konifer_edge.storage.object_store import ListedObject, ObjectStore, ObjectStoreError
from konifer_edge.storage.repository import create_pool
from konifer_edge.storage.sweep_listing import SweepListing, schema_present, sweep_listing

__all__ = [
    "DEFAULT_MIN_AGE",
    "BucketReport",
    "ListedObject",
    "PendingReport",
    "Progress",
    "SweepError",
    "SweepReport",
    "refusal",
    "sweep",
]

DEFAULT_MIN_AGE = timedelta(hours=1)

_PENDING_BATCH = 500
_REMOVE_BATCH = 200
_CONCURRENT_REMOVALS = 16


# -- progress --------------------------------------------------------------------------------------


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def finish(self) -> None: ...


class _NoProgress:
    def start(self, label: str, total: int | None) -> None:
        return None

    def advance(self, count: int = 1) -> None:
        return None

    def finish(self) -> None:
        return None


# -- reports ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class PendingReport:
    """The `pending_object_deletion` rows of the swept buckets, retried regardless of their backoff."""

    queued: int = 0
    removed: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # bucket, key, error


@dataclass(slots=True)
class BucketReport:
    bucket: str
    listed: int = 0
    referenced: int = 0
    queued: int = 0
    young: list[ListedObject] = field(default_factory=list)
    orphans: list[ListedObject] = field(default_factory=list)
    removed: int = 0
    failures: list[tuple[ListedObject, str]] = field(default_factory=list)
    error: str | None = None
    refused: str | None = None


@dataclass(slots=True)
class SweepReport:
    dry_run: bool
    min_age: timedelta
    pending: PendingReport
    buckets: list[BucketReport]

    @property
    def ok(self) -> bool:
        return not self.pending.failures and all(
            not b.failures and b.error is None and b.refused is None for b in self.buckets
        )


class SweepError(Exception):
    """The sweep cannot start: the reason is for the operator."""


# -- the sweep -------------------------------------------------------------------------------------


async def _remove_all(
    objects: ObjectStore, bucket: str, keys: Sequence[str], progress: Progress
) -> dict[str, str | None]:
    """Remove each key, a few at a time; the error text per key, or None once it is gone."""
    limit = asyncio.Semaphore(_CONCURRENT_REMOVALS)

    async def remove(key: str) -> tuple[str, str | None]:
        async with limit:
            try:
                await objects.delete(bucket, key)
            except Exception as error:  # reported per object; the sweep goes on with the others
                return key, f"{type(error).__name__}: {error}"
            finally:
                progress.advance()
            return key, None

    return dict(await asyncio.gather(*(remove(key) for key in keys)))


async def _retry_pending(
    queue: DeletionQueue, objects: ObjectStore, buckets: Sequence[str], *, dry_run: bool, progress: Progress
) -> PendingReport:
    report = PendingReport(queued=await queue.count(buckets))
    if dry_run or report.queued == 0:
        return report
    progress.start("retrying queued removals", report.queued)
    last_id = 0
    while True:
        page = await queue.page(buckets, last_id, _PENDING_BATCH)
        if not page:
            break
        last_id = page[-1].id
        by_bucket: dict[str, list[PendingDeletion]] = {}
        for deletion in page:
            by_bucket.setdefault(deletion.bucket, []).append(deletion)
        for bucket, deletions in by_bucket.items():
            errors = await _remove_all(objects, bucket, [deletion.store_key for deletion in deletions], progress)
            done = [deletion.id for deletion in deletions if errors[deletion.store_key] is None]
            if done:
                await queue.finish(done)
                report.removed += len(done)
            for deletion in deletions:
                error = errors[deletion.store_key]
                if error is not None:
                    # The same backoff as the reaper's, so a sweep does not make a failing removal retry sooner.
                    await queue.postpone(deletion, error)
                    report.failures.append((bucket, deletion.store_key, error))
    progress.finish()
    return report


async def _sweep_bucket(
    listing: SweepListing,
    objects: ObjectStore,
    bucket: str,
    *,
    cutoff: datetime,
    dry_run: bool,
    progress: Progress,
) -> BucketReport:
    report = BucketReport(bucket=bucket)
    await listing.start(bucket)
    progress.start(f"listing {bucket}", None)
    try:
        async for chunk in objects.list_objects(bucket):
            await listing.add(chunk)
            report.listed += len(chunk)
            progress.advance(len(chunk))
    except ObjectStoreError as error:
        progress.finish()
        report.error = str(error)
        return report
    progress.finish()
    await listing.analyze()
    report.referenced = await listing.referenced()
    unreferenced = await listing.unreferenced()
    report.queued = report.listed - report.referenced - len(unreferenced)
    for item in unreferenced:
        (report.orphans if item.last_modified <= cutoff else report.young).append(item)
    if report.orphans and report.referenced == 0:
        # Not one object the database knows: the wrong database or the wrong store, far likelier
        # than a bucket of nothing but orphans. Removing would empty it.
        report.refused = (
            f"no object in bucket {bucket!r} is referenced by the database; are this the database and the"
            " object store the servers use? nothing removed"
        )
        return report
    if dry_run or not report.orphans:
        return report
    progress.start(f"removing orphans from {bucket}", len(report.orphans))
    orphans, report.orphans = report.orphans, []
    for start in range(0, len(orphans), _REMOVE_BATCH):
        batch = orphans[start : start + _REMOVE_BATCH]
        # A row written since the anti-join (a store slower than min_age) keeps its object.
        still = await listing.still_unreferenced([item.key for item in batch])
        doomed = [item for item in batch if item.key in still]
        report.referenced += len(batch) - len(doomed)
        progress.advance(len(batch) - len(doomed))
        problems = await _remove_all(objects, bucket, [item.key for item in doomed], progress)
        for item in doomed:
            report.orphans.append(item)
            problem = problems[item.key]
            if problem is None:
                report.removed += 1
            else:
                report.failures.append((item, problem))
    progress.finish()
    return report


async def sweep(
    dsn: str,
    objects: ObjectStore,
    buckets: Sequence[str],
    *,
    min_age: timedelta = DEFAULT_MIN_AGE,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> SweepReport:
    """Retry the queued removals of `buckets`, then find (and unless `dry_run`, remove) their orphans."""
    progress = progress or _NoProgress()
    cutoff = (now or datetime.now(UTC)) - min_age
    pool = await create_pool(dsn, min_size=1, max_size=2, purpose="sweep", holds_session_state=True)
    try:
        if not await schema_present(pool):
            raise SweepError("the database has no konifer-edge schema; is DATABASE_URL right? (`migrate` creates it)")
        pending = await _retry_pending(DeletionQueue(pool), objects, buckets, dry_run=dry_run, progress=progress)
        reports = []
        async with pool.acquire() as connection, sweep_listing(connection) as listing:
            for bucket in buckets:
                reports.append(
                    await _sweep_bucket(listing, objects, bucket, cutoff=cutoff, dry_run=dry_run, progress=progress)
                )
        return SweepReport(dry_run=dry_run, min_age=min_age, pending=pending, buckets=reports)
    finally:
        await pool.close()


# -- what it may run against ----------------------------------------------------------------------


def refusal(config: Config) -> str | None:
    """Why `sweep` cannot run against this configuration, or None."""
    if config.data_store.provider == "in-memory":
        return "sweep needs the servers' database; the in-memory data store lives and dies with each server"
    if config.object_store.provider.strip().lower() in ("memory", "in-memory", "inmemory"):
        return "sweep needs a shared object store; the in-memory object store lives and dies with each server"
    return None
