"""The sweep's view of the database: one bucket's listing loaded into a temporary table and anti-joined
with ``variant`` and ``pending_object_deletion`` (one pass over each table, no index on
``variant (bucket, store_key)`` needed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from konifer_edge.storage.object_store import ListedObject
from konifer_edge.storage.repository import Connection

_SCHEMA_PRESENT = "SELECT to_regclass('variant') IS NOT NULL AND to_regclass('pending_object_deletion') IS NOT NULL"
_CREATE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS sweep_listing"
    " (store_key text NOT NULL, size_bytes bigint, last_modified timestamptz)"
)
# NOT EXISTS plans as a hash anti-join: one pass over each table however large the bucket.
_UNREFERENCED = (
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


async def schema_present(pool: asyncpg.Pool) -> bool:
    """Whether the database has konifer-edge's tables at all (a wrong DATABASE_URL has not)."""
    return bool(await pool.fetchval(_SCHEMA_PRESENT))


class SweepListing:
    """One bucket's listing at a time, on one connection (the table is temporary: it lives with it)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def start(self, bucket: str) -> None:
        self._bucket = bucket
        await self._connection.execute("TRUNCATE sweep_listing")

    async def add(self, chunk: Sequence[ListedObject]) -> None:
        await self._connection.copy_records_to_table(
            "sweep_listing",
            records=[(item.key, item.size, item.last_modified) for item in chunk],
            columns=["store_key", "size_bytes", "last_modified"],
        )

    async def analyze(self) -> None:
        """Once the listing is in: a temporary table is never analysed automatically, and without
        statistics the planner guesses."""
        await self._connection.execute("ANALYZE sweep_listing")

    async def referenced(self) -> int:
        """How many listed objects a variant row names."""
        return int(await self._connection.fetchval(_REFERENCED, self._bucket) or 0)

    async def unreferenced(self) -> list[ListedObject]:
        """The listed objects no variant row names and no queued removal owns, by key."""
        return [
            ListedObject(key=row["store_key"], size=row["size_bytes"], last_modified=row["last_modified"])
            for row in await self._connection.fetch(_UNREFERENCED, self._bucket)
        ]

    async def still_unreferenced(self, keys: Sequence[str]) -> set[str]:
        """Of `keys`, those no variant row names now (a row may have been written since the listing)."""
        return {row["k"] for row in await self._connection.fetch(_STILL_UNREFERENCED, self._bucket, list(keys))}


@asynccontextmanager
async def sweep_listing(connection: Connection) -> AsyncIterator[SweepListing]:
    await connection.execute(_CREATE)
    try:
        yield SweepListing(connection)
    finally:
        await connection.execute("DROP TABLE IF EXISTS sweep_listing")
