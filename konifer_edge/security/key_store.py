"""The ``api_key`` table (migration 0002): create, list, revoke, and look up by token digest.

Every statement is parameterised. The store works over a pool (the server's) or a single
connection (the ``keys`` commands).
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from konifer_edge.security.api_keys import ApiKey

Executor: TypeAlias = (
    "asyncpg.Pool[asyncpg.Record] | asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
)

_COLUMNS = "id, prefix, scopes, path_prefix, name, created_at, revoked_at"


def _key_from_row(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        prefix=row["prefix"],
        scopes=tuple(row["scopes"]),
        path_prefix=row["path_prefix"],
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class KeyStore:
    def __init__(self, executor: Executor) -> None:
        self._db = executor

    async def create(
        self,
        *,
        digest: bytes,
        prefix: str,
        scopes: tuple[str, ...],
        path_prefix: str | None,
        name: str | None,
    ) -> ApiKey:
        row = await self._db.fetchrow(
            f"INSERT INTO api_key (token_hash, prefix, scopes, path_prefix, name) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {_COLUMNS}",
            digest,
            prefix,
            list(scopes),
            path_prefix,
            name,
        )
        assert row is not None
        return _key_from_row(row)

    async def list_keys(self) -> list[ApiKey]:
        rows = await self._db.fetch(f"SELECT {_COLUMNS} FROM api_key ORDER BY id")
        return [_key_from_row(row) for row in rows]

    async def revoke(self, key_id: int) -> ApiKey | None:
        """Revoke the key (once: a second revoke keeps the first time); ``None`` when there is no such key."""
        row = await self._db.fetchrow(
            f"UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING {_COLUMNS}",
            key_id,
        )
        return _key_from_row(row) if row is not None else None

    async def find_by_digest(self, digest: bytes) -> ApiKey | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM api_key WHERE token_hash = $1", digest)
        return _key_from_row(row) if row is not None else None

    async def any_key_exists(self) -> bool:
        exists: bool = await self._db.fetchval("SELECT EXISTS (SELECT 1 FROM api_key)")
        return exists
