"""The ``share`` table (migration 0003): create, look up by token digest, list, revoke, count downloads.

Every statement is parameterised. Nothing here is cached: a revocation, an expiry or the last
allowed download must take effect on the very next request, on every node.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from konifer_edge.domain.shares import Share

_COLUMNS = "id, path, asset_id, entry_id, transformation, expires_at, max_downloads, downloads, created_at, revoked_at"
# More than any page would show; keeps one path with countless shares from answering megabytes.
MAX_LISTED = 1000


class NewShare(msgspec.Struct, frozen=True):
    token_hash: bytes
    path: str
    asset_id: uuid.UUID | None
    entry_id: int | None
    transformation: dict[str, str]
    expires_at: datetime | None
    max_downloads: int | None
    created_at: datetime


def _share_from_row(row: asyncpg.Record) -> Share:
    return Share(
        id=row["id"],
        path=row["path"],
        asset_id=row["asset_id"],
        entry_id=row["entry_id"],
        # jsonb keeps keys in its own order; records show them sorted, as they were given to it.
        transformation=dict(sorted(row["transformation"].items())),
        expires_at=row["expires_at"],
        max_downloads=row["max_downloads"],
        downloads=row["downloads"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class ShareRepository:
    """Reads and writes shares. One instance per process, over the server's connection pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, share: NewShare) -> Share | None:
        """Insert a share; ``None`` when its asset was deleted in the meantime."""
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO share (id, token_hash, path, asset_id, entry_id, transformation, expires_at,"
                " max_downloads, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                f" RETURNING {_COLUMNS}",
                uuid.uuid4(),
                share.token_hash,
                share.path,
                share.asset_id,
                share.entry_id,
                share.transformation,
                share.expires_at,
                share.max_downloads,
                share.created_at,
            )
        except asyncpg.ForeignKeyViolationError:
            return None
        assert row is not None
        return _share_from_row(row)

    async def find_by_token(self, digest: bytes) -> Share | None:
        # An index lookup of the digest: no comparison of secrets whose timing could leak them.
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM share WHERE token_hash = $1", digest)
        return None if row is None else _share_from_row(row)

    async def find(self, share_id: uuid.UUID) -> Share | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM share WHERE id = $1", share_id)
        return None if row is None else _share_from_row(row)

    async def for_asset(self, asset_id: uuid.UUID) -> list[Share]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM share WHERE asset_id = $1 ORDER BY created_at DESC, id LIMIT $2",
            asset_id,
            MAX_LISTED,
        )
        return [_share_from_row(row) for row in rows]

    async def at_path(self, path: str) -> list[Share]:
        """Every share at exactly ``path``: path shares and the shares of its assets."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM share WHERE path = $1 ORDER BY created_at DESC, id LIMIT $2", path, MAX_LISTED
        )
        return [_share_from_row(row) for row in rows]

    async def revoke(self, share_id: uuid.UUID, now: datetime) -> Share | None:
        """Revoke (once: revoking again keeps the first time); ``None`` when there is no such share."""
        row = await self._pool.fetchrow(
            f"UPDATE share SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING {_COLUMNS}",
            share_id,
            now,
        )
        return None if row is None else _share_from_row(row)

    async def claim_download(self, share_id: uuid.UUID, now: datetime) -> Share | None:
        """Count one download if the share still allows it; ``None`` if it does not (or is gone).

        One conditional UPDATE: the row lock serialises concurrent claims, and each re-checks
        the count after the one before it committed, so no number of them can pass the limit.
        """
        row = await self._pool.fetchrow(
            "UPDATE share SET downloads = downloads + 1"
            " WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
            " AND (max_downloads IS NULL OR downloads < max_downloads)"
            f" RETURNING {_COLUMNS}",
            share_id,
            now,
        )
        return None if row is None else _share_from_row(row)
