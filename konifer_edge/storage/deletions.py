"""The queue of objects to remove (``pending_object_deletion``).

A delete writes its objects here in the same transaction that removes their rows (see
``AssetRepository.delete`` and ``delete_variants``), so a crash between commit and removal only
delays the removal. The object reaper empties the queue as removals fall due; ``sweep`` retries
it at once. A failed removal is postponed with an exponential backoff.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

import asyncpg
import msgspec

MAX_BACKOFF = timedelta(minutes=30)
_COLUMNS = "id, bucket, store_key, attempts"


class PendingDeletion(msgspec.Struct, frozen=True):
    id: int
    bucket: str
    store_key: str
    attempts: int


def backoff(attempts: int) -> timedelta:
    """How long a removal that failed `attempts` times before waits: doubling, up to MAX_BACKOFF."""
    return min(timedelta(seconds=2 ** min(attempts, 20)), MAX_BACKOFF)


class DeletionQueue:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def due(self, batch: int) -> list[PendingDeletion]:
        """The removals whose time has come, soonest first."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM pending_object_deletion"
            " WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1",
            batch,
        )
        return [PendingDeletion(**dict(row)) for row in rows]

    async def count(self, buckets: Sequence[str]) -> int:
        """Every queued removal in these buckets, due or not."""
        return int(
            await self._pool.fetchval(
                "SELECT count(*) FROM pending_object_deletion WHERE bucket = ANY($1::text[])", list(buckets)
            )
            or 0
        )

    async def page(self, buckets: Sequence[str], after_id: int, limit: int) -> list[PendingDeletion]:
        """Queued removals in these buckets after `after_id`, in id order, due or not."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM pending_object_deletion"
            " WHERE bucket = ANY($1::text[]) AND id > $2 ORDER BY id LIMIT $3",
            list(buckets),
            after_id,
            limit,
        )
        return [PendingDeletion(**dict(row)) for row in rows]

    async def finish(self, ids: Iterable[int]) -> None:
        await self._pool.execute("DELETE FROM pending_object_deletion WHERE id = ANY($1::bigint[])", list(ids))

    async def postpone(self, deletion: PendingDeletion, error: str) -> timedelta:
        """Count a failed attempt and schedule the next one after the backoff; the backoff."""
        delay = backoff(deletion.attempts)
        await self._pool.execute(
            "UPDATE pending_object_deletion SET attempts = attempts + 1,"
            " next_attempt_at = now() + $2, last_error = $3 WHERE id = $1",
            deletion.id,
            delay,
            error[:500],
        )
        return delay
