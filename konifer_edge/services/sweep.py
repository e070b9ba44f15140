"""The sweep (`konifer-edge sweep`, see cli/sweep.py): remove objects no variant row names, and retry queued
removals now.

An object with no row is an orphan: a store or a render puts its object before it records the
row, so a crash (or a lost connection) between the two leaves one behind. Such an object is
unreachable through the API and only costs storage. The sweep lists each bucket, loads the
listing into a temporary table and anti-joins it with `variant` (one pass over each table, no
index on `variant (bucket, store_key)` needed), then removes what no row names.

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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import asyncpg
import obstore as obs
from obstore.exceptions import BaseError as ObstoreError

from konifer_edge.config import Config
from konifer_edge.storage.object_store import (
    FilesystemObjectStore,
    MemoryObjectStore,
    ObjectStore,
    ObjectStoreError,
    S3ObjectStore,
)
from konifer_edge.storage.repository import AssetRepository, Connection, create_pool

if TYPE_CHECKING:
    from obstore import ObjectMeta

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

_LIST_CHUNK = 1000
_PENDING_BATCH = 500
_REMOVE_BATCH = 200
_CONCURRENT_REMOVALS = 16
# The same backoff as the server's reaper, so a sweep does not make a failing removal retry sooner.
_MAX_BACKOFF = timedelta(minutes=30)


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


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    size: int | None
    last_modified: datetime | None


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


# -- listing ---------------------------------------------------------------------------------------


async def _listing(objects: ObjectStore, bucket: str) -> AsyncIterator[list[ListedObject]]:
    """The bucket's objects in chunks, with the size and last-modified time the store reports.

    The three stores konifer-edge has are obstore-backed, and obstore's listing carries both. A
    store without that metadata yields them as None: its objects then count as of unknown age.
    """
    if not isinstance(objects, FilesystemObjectStore | S3ObjectStore | MemoryObjectStore):
        chunk: list[ListedObject] = []
        async for key in objects.list_keys(bucket):
            chunk.append(ListedObject(key=key, size=None, last_modified=None))
            if len(chunk) >= _LIST_CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
        return
    # The stores keep their per-bucket obstore handles private; the sweep is their one other user.
    backend = objects._store(bucket)
    try:
        async for metas in obs.list(backend, chunk_size=_LIST_CHUNK):
            yield [_listed(meta) for meta in metas]
    except (ObstoreError, OSError) as exc:
        raise ObjectStoreError(f"cannot list bucket {bucket!r}: {type(exc).__name__}: {exc}") from exc


def _listed(meta: ObjectMeta) -> ListedObject:
    return ListedObject(key=meta["path"], size=meta["size"], last_modified=meta["last_modified"])


# -- database --------------------------------------------------------------------------------------

_SCHEMA_PRESENT = "SELECT to_regclass('variant') IS NOT NULL AND to_regclass('pending_object_deletion') IS NOT NULL"
_CREATE_LISTING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS sweep_listing"
    " (store_key text NOT NULL, size_bytes bigint, last_modified timestamptz)"
)
# NOT EXISTS plans as a hash anti-join: one pass over each table however large the bucket.
_ORPHANS = (
    "SELECT l.store_key, l.size_bytes, l.last_modified FROM sweep_listing l"
    " WHERE NOT EXISTS (SELECT 1 FROM variant v WHERE v.bucket = $1 AND v.store_key = l.store_key)"
    " AND NOT EXISTS (SELECT 1 FROM pending_object_deletion p WHERE p.bucket = $1 AND p.store_key = l.store_key)"
    " ORDER BY l.store_key"
)
_REFERENCED = (
    "SELECT count(*) FROM sweep_listing l"
    " WHERE EXISTS (SELECT 1 FROM variant v WHERE v.bucket = $1 AND v.store_key = l.store_key)"
)
_STILL_UNREFERENCED = (
    "SELECT k FROM unnest($2::text[]) AS k"
    " WHERE NOT EXISTS (SELECT 1 FROM variant v WHERE v.bucket = $1 AND v.store_key = k)"
)
_PENDING_COUNT = "SELECT count(*) FROM pending_object_deletion WHERE bucket = ANY($1::text[])"
_PENDING_PAGE = (
    "SELECT id, bucket, store_key, attempts FROM pending_object_deletion"
    " WHERE bucket = ANY($1::text[]) AND id > $2 ORDER BY id LIMIT $3"
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
    pool: asyncpg.Pool,
    repository: AssetRepository,
    objects: ObjectStore,
    buckets: Sequence[str],
    *,
    dry_run: bool,
    progress: Progress,
) -> PendingReport:
    report = PendingReport(queued=int(await pool.fetchval(_PENDING_COUNT, list(buckets)) or 0))
    if dry_run or report.queued == 0:
        return report
    progress.start("retrying queued removals", report.queued)
    last_id = 0
    while True:
        rows = await pool.fetch(_PENDING_PAGE, list(buckets), last_id, _PENDING_BATCH)
        if not rows:
            break
        last_id = rows[-1]["id"]
        by_bucket: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            by_bucket.setdefault(row["bucket"], []).append(row)
        for bucket, bucket_rows in by_bucket.items():
            errors = await _remove_all(objects, bucket, [row["store_key"] for row in bucket_rows], progress)
            done = [row["id"] for row in bucket_rows if errors[row["store_key"]] is None]
            if done:
                await repository.finish_deletions(done)
                report.removed += len(done)
            for row in bucket_rows:
                error = errors[row["store_key"]]
                if error is not None:
                    delay = min(timedelta(seconds=2 ** min(row["attempts"], 20)), _MAX_BACKOFF)
                    await repository.postpone_deletion(row["id"], delay, error)
                    report.failures.append((bucket, row["store_key"], error))
    progress.finish()
    return report


async def _sweep_bucket(
    connection: Connection,
    objects: ObjectStore,
    bucket: str,
    *,
    cutoff: datetime,
    min_age: timedelta,
    dry_run: bool,
    progress: Progress,
) -> BucketReport:
    report = BucketReport(bucket=bucket)
    await connection.execute("TRUNCATE sweep_listing")
    progress.start(f"listing {bucket}", None)
    try:
        async for chunk in _listing(objects, bucket):
            await connection.copy_records_to_table(
                "sweep_listing",
                records=[(item.key, item.size, item.last_modified) for item in chunk],
                columns=["store_key", "size_bytes", "last_modified"],
            )
            report.listed += len(chunk)
            progress.advance(len(chunk))
    except ObjectStoreError as error:
        progress.finish()
        report.error = str(error)
        return report
    progress.finish()
    # A temporary table is never analysed automatically; without statistics the planner guesses.
    await connection.execute("ANALYZE sweep_listing")
    report.referenced = int(await connection.fetchval(_REFERENCED, bucket) or 0)
    unreferenced = [
        ListedObject(key=row["store_key"], size=row["size_bytes"], last_modified=row["last_modified"])
        for row in await connection.fetch(_ORPHANS, bucket)
    ]
    report.queued = report.listed - report.referenced - len(unreferenced)
    for item in unreferenced:
        # Of unknown age, an object is old enough only when the operator asked for no minimum age.
        old_enough = item.last_modified <= cutoff if item.last_modified is not None else min_age <= timedelta(0)
        (report.orphans if old_enough else report.young).append(item)
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
        still = {row["k"] for row in await connection.fetch(_STILL_UNREFERENCED, bucket, [item.key for item in batch])}
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
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        if not await pool.fetchval(_SCHEMA_PRESENT):
            raise SweepError("the database has no konifer-edge schema; is DATABASE_URL right? (`migrate` creates it)")
        repository = AssetRepository(pool)
        pending = await _retry_pending(pool, repository, objects, buckets, dry_run=dry_run, progress=progress)
        reports = []
        async with pool.acquire() as connection:
            await connection.execute(_CREATE_LISTING)
            try:
                for bucket in buckets:
                    reports.append(
                        await _sweep_bucket(
                            connection,
                            objects,
                            bucket,
                            cutoff=cutoff,
                            min_age=min_age,
                            dry_run=dry_run,
                            progress=progress,
                        )
                    )
            finally:
                await connection.execute("DROP TABLE IF EXISTS sweep_listing")
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
