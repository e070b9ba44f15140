"""Resolution cache: selector -> assets and (asset, plan) -> variant, in three tiers.

An in-process LRU answers most lookups; Redis, where configured, shares entries between
nodes; PostgreSQL is the truth behind both. Every key carries its path's generation, so
a write that bumps the generation makes every older entry unreachable on every node.
Entries also age out, which bounds staleness if a bump was lost while Redis was down.

A path has two generations. The path's own moves with every store, update and delete (and
variant expiry); the "variants" one moves when a render adds a variant. A new variant changes
no selector's answer and no stored variant, only the variant lists that metadata shows: so
content resolutions (and recorded content answers) depend on the first alone and survive
renders, while metadata resolutions depend on both. The variants generation is kept as one
more path (`variants_key`) in the same counters, so every carrier (shared memory, Redis,
PostgreSQL notifications) takes it to every worker and node as it takes the path's own.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import asyncpg
import msgspec
import redis.asyncio as redis
from redis.exceptions import RedisError

from konifer_edge.cache.generations import GenerationReader, Generations, GenerationsUnavailable
from konifer_edge.domain.models import Asset, Variant

log = logging.getLogger(__name__)

T = TypeVar("T")
ENTRY_TTL_SECONDS = 300.0
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)
# A database that cannot answer (down, restarting, unreachable), as opposed to one that refused a statement.
DATABASE_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
    TimeoutError,
)


class _Assets(msgspec.Struct):
    assets: list[Asset]


def variants_key(path: str) -> str:
    """The name the path's variants generation is counted under (no path contains a NUL)."""
    return f"{path}\0variants"


def _combined(generation: int, listed: int) -> int:
    # Both are below 2**128 (epoch << 64 | counter), so the pair maps to one int without collisions.
    return (generation << 128) | listed


class LruCache:
    """A bounded map from key to (value, expiry); the least recently used goes first."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[str, tuple[object, float]] = OrderedDict()
        self._max_entries = max_entries

    def get(self, key: str) -> object | None:
        found = self._entries.get(key)
        if found is None:
            return None
        value, expires = found
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: object, ttl: float) -> None:
        self._entries[key] = (value, time.monotonic() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class ResolutionCache:
    def __init__(self, generations: Generations, shared: redis.Redis | None, max_entries: int = 50_000) -> None:
        self._generations = generations
        self._shared = shared
        self._local = LruCache(max_entries)

    async def assets(
        self,
        path: str,
        selector_key: str,
        load: Callable[[], Awaitable[list[Asset]]],
        *,
        with_variants: bool = False,
    ) -> tuple[list[Asset], str, int | None]:
        """The assets a selector names at a path, where the answer came from, and the path's
        generation it is valid for (None when generations are unavailable).

        ``with_variants``: the answer shows the assets' variant lists (metadata), so it is kept
        under both of the path's generations, and the one returned is their combination.
        """
        kind = "m" if with_variants else "a"
        generation, last_known = await self._generation_or_last_known(path, with_variants=with_variants)
        if generation is None:
            try:
                return await load(), "database", None
            except DATABASE_UNAVAILABLE:
                kept = self._local.get(f"{kind}:{last_known}:{path}:{selector_key}") if last_known is not None else None
                if not isinstance(kept, _Assets):
                    raise
                return kept.assets, "memory", None
        key = f"{kind}:{generation}:{path}:{selector_key}"
        local = self._local.get(key)
        if isinstance(local, _Assets):
            return local.assets, "memory", generation
        shared = await self._shared_get(key, _Assets)
        if shared is not None:
            self._local.put(key, shared, ENTRY_TTL_SECONDS)
            return shared.assets, "redis", generation
        found = _Assets(await load())
        self._local.put(key, found, ENTRY_TTL_SECONDS)
        await self._shared_put(key, found)
        return found.assets, "database", generation

    async def variant(
        self, path: str, asset: Asset, plan_key: str, load: Callable[[], Awaitable[Variant | None]]
    ) -> tuple[Variant | None, str]:
        generation, last_known = await self._generation_or_last_known(path)
        if generation is None:
            try:
                return await load(), "database"
            except DATABASE_UNAVAILABLE:
                kept = self._local.get(f"v:{last_known}:{asset.id}:{plan_key}") if last_known is not None else None
                if not isinstance(kept, Variant):
                    raise
                return kept, "memory"
        key = f"v:{generation}:{asset.id}:{plan_key}"
        local = self._local.get(key)
        if isinstance(local, Variant):
            return local, "memory"
        shared = await self._shared_get(key, Variant)
        if shared is not None:
            self._local.put(key, shared, ENTRY_TTL_SECONDS)
            return shared, "redis"
        variant = await load()
        if variant is not None:  # absence is not cached: a render is about to fill it
            await self._store(key, variant)
        return variant, "database"

    async def invalidate(self, paths: Iterable[str]) -> None:
        """Every node forgets what it resolved at these paths (both generations move, in effect)."""
        await self._bump(list(paths))

    async def variant_added(self, path: str, asset_id: uuid.UUID, plan_key: str) -> None:
        """A variant was added at this path: only what lists variants (metadata) is retired.

        Announced rather than bumped: this node lists the variant at once, other nodes a moment later,
        and the render's answer does not wait for them (its row is already in the database). What this
        worker knew of the asset's variant keys moves on to the new generation with the new key, so
        the next first request of another variant of the asset need not ask the database. Another
        render's bump landing between the two reads would be missed by that knowledge: its variant
        would then be rendered once more, and the row insert settles that as any tie.
        """
        before = await self.generation(path, with_variants=True)
        try:
            await self._generations.announce([variants_key(path)])
        except _REDIS_ERRORS as error:
            log.warning("could not bump generations (entries age out within %ss): %r", ENTRY_TTL_SECONDS, error)
            return
        known = self.known_variant_keys(before, asset_id) if before is not None else None
        if known is None:
            return
        after = await self.generation(path, with_variants=True)
        if after is not None and after != before:
            self.know_variant_keys(after, asset_id, known | {plan_key})

    def known_variant_keys(self, generation: int, asset_id: uuid.UUID) -> frozenset[str] | None:
        """Every stored variant key of the asset as of the path's combined ``generation``, if known here."""
        known = self._local.get(f"k:{generation}:{asset_id}")
        return known if isinstance(known, frozenset) else None

    def know_variant_keys(self, generation: int, asset_id: uuid.UUID, keys: frozenset[str]) -> None:
        """``keys`` are all the asset's stored variant keys as of ``generation`` (read from the database after it)."""
        self._local.put(f"k:{generation}:{asset_id}", keys, ENTRY_TTL_SECONDS)

    async def _bump(self, keys: list[str]) -> None:
        if keys:
            try:
                await self._generations.bump(keys)
            except _REDIS_ERRORS as error:
                log.warning("could not bump generations (entries age out within %ss): %r", ENTRY_TTL_SECONDS, error)

    async def generation(self, path: str, *, with_variants: bool = False) -> int | None:
        """The path's generation (combined with its variants generation ``with_variants``); None if unknown."""
        return (await self._generation_or_last_known(path, with_variants=with_variants))[0]

    def generation_reader(self, path: str, *, with_variants: bool = False) -> GenerationReader | None:
        """Reads what `generation` would answer without waiting (None: unknown now), if the generations allow."""
        own = self._generations.reader(path)
        if not with_variants or own is None:
            return own
        listed = self._generations.reader(variants_key(path))
        if listed is None:
            return None

        def read_both() -> int | None:
            generation, variants = own(), listed()
            return None if generation is None or variants is None else _combined(generation, variants)

        return read_both

    async def _generation_or_last_known(
        self, path: str, *, with_variants: bool = False
    ) -> tuple[int | None, int | None]:
        """The path's generation, or None and the generation this node last knew (if any)."""
        generation, last_known = await self._current(path)
        if not with_variants or (generation is None and last_known is None):
            return generation, last_known
        listed, listed_last_known = await self._current(variants_key(path))
        if generation is not None and listed is not None:
            return _combined(generation, listed), None
        mine = generation if generation is not None else last_known
        theirs = listed if listed is not None else listed_last_known
        return None, _combined(mine, theirs) if mine is not None and theirs is not None else None

    async def _current(self, key: str) -> tuple[int | None, int | None]:
        try:
            return await self._generations.current(key), None
        except GenerationsUnavailable as unavailable:
            return None, unavailable.last_known  # said once where it became unavailable, not on every read
        except _REDIS_ERRORS as error:
            log.warning("generations unavailable, reading through: %r", error)
            return None, None

    async def _store(self, key: str, value: Variant) -> None:
        self._local.put(key, value, ENTRY_TTL_SECONDS)
        await self._shared_put(key, value)

    async def _shared_get(self, key: str, kind: type[T]) -> T | None:
        if self._shared is None:
            return None
        try:
            raw = await self._shared.get(f"konifer:res:{key}")
        except _REDIS_ERRORS:
            return None
        if raw is None:
            return None
        return msgspec.msgpack.decode(raw.encode() if isinstance(raw, str) else raw, type=kind)

    async def _shared_put(self, key: str, value: object) -> None:
        if self._shared is None:
            return
        try:
            await self._shared.set(f"konifer:res:{key}", msgspec.msgpack.encode(value), ex=int(ENTRY_TTL_SECONDS))
        except _REDIS_ERRORS:
            return
