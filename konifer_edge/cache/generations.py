"""Per-path generations: every write to a path bumps its number, and cached resolutions
carry the number they were made under, so a bump retires them everywhere at once.

One node: a small table of counters in shared memory (a file under the data directory,
mapped by every worker), so a bump is seen by the next request of any worker with no
round trip. Several nodes: the counters live in Redis. Paths hash into slots; two paths
sharing a slot only retire each other's entries early, never serve anything stale.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import secrets
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import redis.asyncio as redis

_SLOTS = 1 << 16
_SLOT = struct.Struct("<Q")


def _slot(path: str) -> int:
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=4).digest(), "little") % _SLOTS


class Generations(Protocol):
    async def current(self, path: str) -> int: ...

    async def bump(self, paths: Iterable[str]) -> None: ...


class SharedMemoryGenerations:
    def __init__(self, file: Path) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size < _SLOTS * _SLOT.size:
                os.ftruncate(descriptor, _SLOTS * _SLOT.size)
            self._map = mmap.mmap(descriptor, _SLOTS * _SLOT.size)
        finally:
            os.close(descriptor)
        self._lock_file = file.with_suffix(".lock")

    async def current(self, path: str) -> int:
        value: int = _SLOT.unpack_from(self._map, _slot(path) * _SLOT.size)[0]
        return value

    async def bump(self, paths: Iterable[str]) -> None:
        # Workers increment under a file lock; readers need none (an aligned 8-byte read).
        with self._lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for slot in {_slot(path) for path in paths}:
                offset = slot * _SLOT.size
                _SLOT.pack_into(self._map, offset, _SLOT.unpack_from(self._map, offset)[0] + 1)


class RedisGenerations:
    """Counters in Redis, under an epoch. If Redis is unreachable, reads fail and callers skip the cache.

    A generation must never come back to a value some node already cached under. Two things would
    bring it back: Redis restarting empty (every counter starts again from 0), and bumps lost while
    Redis was unreachable (entries cached before the write stay reachable once Redis answers). So
    every generation carries an epoch kept in Redis: when the epoch is missing (Redis lost its data)
    the first worker to notice sets a new random one, and a worker whose bump failed replaces it as
    soon as Redis answers again. Either retires every entry cached before, on every node.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._bump_lost = False

    async def current(self, path: str) -> int:
        await self._retire_if_bump_lost()
        keys = (_EPOCH_KEY, f"konifer:gen:{_slot(path)}")
        epoch, value = await self._client.mget(keys)
        if epoch is None:
            await self._client.set(_EPOCH_KEY, _new_epoch(), nx=True)
            epoch, value = await self._client.mget(keys)
        return (int(epoch or 0) << 64) | int(value or 0)

    async def bump(self, paths: Iterable[str]) -> None:
        try:
            await self._retire_if_bump_lost()
            async with self._client.pipeline(transaction=False) as pipeline:
                for slot in {_slot(path) for path in paths}:
                    pipeline.incr(f"konifer:gen:{slot}")
                await pipeline.execute()
        except BaseException:
            self._bump_lost = True
            raise

    async def _retire_if_bump_lost(self) -> None:
        if self._bump_lost:
            await self._client.set(_EPOCH_KEY, _new_epoch())
            self._bump_lost = False


_EPOCH_KEY = "konifer:gen:epoch"


def _new_epoch() -> str:
    return str(secrets.randbits(62))
