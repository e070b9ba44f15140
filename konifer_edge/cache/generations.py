"""Per-path generations: every write to a path bumps its number, and cached resolutions
carry the number they were made under, so a bump retires them everywhere at once.

On a node, a small table of counters in shared memory (a file under the data directory,
mapped by every worker), so a bump is seen by the next request of any worker with no
round trip. Between nodes, the counters are carried either by Redis (`RedisGenerations`)
or, without Redis, by PostgreSQL (`cache/postgres_generations.py` keeps this node's shared
memory in step with a table and its notifications). Paths hash into slots; two paths
sharing a slot only retire each other's entries early, never serve anything stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import secrets
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import redis.asyncio as redis

_SLOTS = 1 << 16
_SLOT = struct.Struct("<Q")
# One more counter after the slots: the epoch, which retires every slot at once.
_EPOCH_OFFSET = _SLOTS * _SLOT.size
_MAP_SIZE = _EPOCH_OFFSET + _SLOT.size


def slot_of(path: str) -> int:
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=4).digest(), "little") % _SLOTS


class GenerationsUnavailable(Exception):
    """Generations cannot be trusted right now; callers read through to the database.

    `last_known` is the generation as this node last knew it: what was cached under it may still
    answer when the database cannot (then nobody can write, so nothing newer exists).
    """

    def __init__(self, message: str, last_known: int | None = None) -> None:
        super().__init__(message)
        self.last_known = last_known


GenerationReader = Callable[[], int | None]
"""Reads one path's current generation at once; None when generations cannot be trusted right now."""


class Generations(Protocol):
    async def current(self, path: str) -> int: ...

    async def bump(self, paths: Iterable[str]) -> None: ...

    async def announce(self, paths: Iterable[str]) -> None:
        """Bump on this node at once; other nodes hear of it shortly, without the caller waiting for them."""
        ...

    def reader(self, path: str) -> GenerationReader | None:
        """A reader of ``path``'s generation that needs no waiting, or None when every read must wait."""
        ...


class SharedMemoryGenerations:
    """The counters of one node, shared by its workers.

    A generation is the slot's counter under the node's epoch. Alone (one node), a bump
    increments the slot. Fed by another node's bumps, `raise_to` and `resync` set slots to the
    values the shared table holds, and the epoch moves whenever those values may have been missed.
    """

    def __init__(self, file: Path) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size < _MAP_SIZE:
                os.ftruncate(descriptor, _MAP_SIZE)
            self._map = mmap.mmap(descriptor, _MAP_SIZE)
        finally:
            os.close(descriptor)
        self._lock_file = file.with_suffix(".lock")

    async def current(self, path: str) -> int:
        # Readers need no lock: aligned 8-byte reads of counters that only writers under the lock change.
        epoch: int = _SLOT.unpack_from(self._map, _EPOCH_OFFSET)[0]
        value: int = _SLOT.unpack_from(self._map, slot_of(path) * _SLOT.size)[0]
        return (epoch << 64) | value

    def reader(self, path: str) -> GenerationReader:
        # The slot found once: a reader that is kept (a recorded answer's) hashes nothing per read.
        offset = slot_of(path) * _SLOT.size
        unpack, mapped = _SLOT.unpack_from, self._map

        def read() -> int:
            epoch: int = unpack(mapped, _EPOCH_OFFSET)[0]
            value: int = unpack(mapped, offset)[0]
            return (epoch << 64) | value

        return read

    async def bump(self, paths: Iterable[str]) -> None:
        with self._locked():
            for slot in {slot_of(path) for path in paths}:
                offset = slot * _SLOT.size
                _SLOT.pack_into(self._map, offset, _SLOT.unpack_from(self._map, offset)[0] + 1)

    async def announce(self, paths: Iterable[str]) -> None:
        await self.bump(paths)  # every copy is this node's

    def raise_to(self, values: Iterable[tuple[int, int]]) -> None:
        """Move each (slot, value) slot up to value; a value already reached changes nothing."""
        with self._locked():
            for slot, value in values:
                offset = slot * _SLOT.size
                if value > _SLOT.unpack_from(self._map, offset)[0]:
                    _SLOT.pack_into(self._map, offset, value)

    def resync(self, values: Iterable[tuple[int, int]]) -> None:
        """Start a new epoch with exactly these slot values (every other slot at 0).

        The new epoch retires everything cached before, so it does not matter whether the
        values moved up, stayed, or went down (a database restored from a backup).
        """
        with self._locked():
            self._advance_epoch()
            self._map[:_EPOCH_OFFSET] = bytes(_EPOCH_OFFSET)
            for slot, value in values:
                _SLOT.pack_into(self._map, slot * _SLOT.size, value)

    def retire_all(self) -> None:
        with self._locked():
            self._advance_epoch()

    def _advance_epoch(self) -> None:
        _SLOT.pack_into(self._map, _EPOCH_OFFSET, _SLOT.unpack_from(self._map, _EPOCH_OFFSET)[0] + 1)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Workers of a node write under one file lock.
        with self._lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


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
        keys = (_EPOCH_KEY, f"konifer:gen:{slot_of(path)}")
        epoch, value = await self._client.mget(keys)
        if epoch is None:
            await self._client.set(_EPOCH_KEY, _new_epoch(), nx=True)
            epoch, value = await self._client.mget(keys)
        return (int(epoch or 0) << 64) | int(value or 0)

    def reader(self, path: str) -> None:
        return None  # every read asks Redis

    async def bump(self, paths: Iterable[str]) -> None:
        try:
            await self._retire_if_bump_lost()
            async with self._client.pipeline(transaction=False) as pipeline:
                for slot in {slot_of(path) for path in paths}:
                    pipeline.incr(f"konifer:gen:{slot}")
                await pipeline.execute()
        except BaseException:
            self._bump_lost = True
            raise

    async def announce(self, paths: Iterable[str]) -> None:
        await self.bump(paths)  # one round trip, and Redis is where every node reads

    async def _retire_if_bump_lost(self) -> None:
        if self._bump_lost:
            await self._client.set(_EPOCH_KEY, _new_epoch())
            self._bump_lost = False


_EPOCH_KEY = "konifer:gen:epoch"


def _new_epoch() -> str:
    return str(secrets.randbits(62))
