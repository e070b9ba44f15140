"""State shared by every node: short-lived locks today, resolution entries as they come.

With a Redis URL the nodes share Valkey/Redis; without one, several nodes on one database
share PostgreSQL advisory locks, and a single node (its own embedded database) needs only
file locks among its workers. A Redis outage degrades to per-node behaviour instead of
failing requests.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Protocol

import asyncpg
import asyncpg.pool
import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Compare-and-delete: a lock is released only by the holder whose token it carries.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class SharedState(Protocol):
    async def try_lock(self, name: str, ttl_seconds: float) -> str | None:
        """A token when this node now holds the lock, None when another holder has it."""
        ...

    async def unlock(self, name: str, token: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class InProcessState:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[str, float]] = {}

    async def try_lock(self, name: str, ttl_seconds: float) -> str | None:
        now = time.monotonic()
        held = self._locks.get(name)
        if held is not None and held[1] > now:
            return None
        token = secrets.token_hex(8)
        self._locks[name] = (token, now + ttl_seconds)
        return token

    async def unlock(self, name: str, token: str) -> None:
        if self._locks.get(name, ("", 0.0))[0] == token:
            del self._locks[name]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class NodeLocks:
    """Locks among the worker processes of one node: a file lock per name, with no round trip.

    For a node that is alone on its database (the embedded one), where nothing outside the node
    can render. The kernel releases a dead holder's lock with its process, so no expiry is needed.
    A lock file is removed on release; a worker that opened it just before may still take the old
    file's lock while another takes the new one's, which costs at most a duplicate render (the
    row insert keeps one).
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._held: dict[str, tuple[int, Path]] = {}

    async def try_lock(self, name: str, ttl_seconds: float) -> str | None:
        file = self._directory / hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
        descriptor = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        token = secrets.token_hex(8)
        self._held[token] = (descriptor, file)
        return token

    async def unlock(self, name: str, token: str) -> None:
        held = self._held.pop(token, None)
        if held is None:
            return
        descriptor, file = held
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
        os.close(descriptor)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for descriptor, _ in self._held.values():
            os.close(descriptor)
        self._held.clear()


class RedisState:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._fallback = InProcessState()

    async def try_lock(self, name: str, ttl_seconds: float) -> str | None:
        token = secrets.token_hex(8)
        try:
            acquired = await self._client.set(f"konifer:lock:{name}", token, nx=True, px=int(ttl_seconds * 1000))
        except (TimeoutError, RedisError, OSError) as error:
            log.warning("shared lock unavailable, using a local one: %r", error)
            return await self._fallback.try_lock(name, ttl_seconds)
        return token if acquired else None

    async def unlock(self, name: str, token: str) -> None:
        try:
            await self._client.eval(_RELEASE, 1, f"konifer:lock:{name}", token)
        except (TimeoutError, RedisError, OSError):
            await self._fallback.unlock(name, token)

    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        return None


class PostgresLocks:
    """Advisory locks in the shared database: every worker of a node, and every node, sees them.

    Used when no Redis is configured. A held lock keeps its connection, so the locks have a
    pool of their own: taken from the requests' pool, enough held locks would leave their own
    holders no connection to finish with.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._held: dict[str, asyncpg.pool.PoolConnectionProxy[asyncpg.Record]] = {}

    async def try_lock(self, name: str, ttl_seconds: float) -> str | None:
        connection = await self._pool.acquire(timeout=ttl_seconds)
        try:
            acquired = await connection.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name)
        except BaseException:
            await self._pool.release(connection)
            raise
        if not acquired:
            await self._pool.release(connection)
            return None
        token = secrets.token_hex(8)
        self._held[token] = connection
        return token

    async def unlock(self, name: str, token: str) -> None:
        connection = self._held.pop(token, None)
        if connection is None:
            return
        try:
            await connection.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", name)
        finally:
            await self._pool.release(connection)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for connection in self._held.values():
            await self._pool.release(connection)
        self._held.clear()
        await self._pool.close()
