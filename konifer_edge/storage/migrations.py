"""Schema migrations: numbered SQL files applied in order, once, under an advisory lock.

Several nodes may start at once; the lock makes one of them migrate while the others
wait and then find nothing left to do.
"""

from __future__ import annotations

import importlib.resources

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# An arbitrary constant shared by every node of this service.
_MIGRATION_LOCK_ID = 0x6B6F6E69666572


def _migration_files() -> list[tuple[int, str, str]]:
    folder = importlib.resources.files("konifer_edge.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(connection: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record]) -> list[str]:
    """Apply every migration not yet applied; return the names of those applied now."""
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migration ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await connection.fetch("SELECT version FROM schema_migration")}
        for version, name, sql in _migration_files():
            if version in done:
                continue
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute("INSERT INTO schema_migration (version, name) VALUES ($1, $2)", version, name)
            applied_now.append(name)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied_now
