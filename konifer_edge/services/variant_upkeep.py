"""Background work around variants: eager renders after a store, access times, and expiry.

None of it runs on a request's path: access times are gathered in memory and written
in batches, and expired variants are purged by a periodic job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from konifer_edge.domain.models import Asset, Variant

if TYPE_CHECKING:
    from konifer_edge.services.runtime import Runtime

log = logging.getLogger(__name__)

# Operators rarely need to change these; tests shorten them.
PURGE_INTERVAL_SECONDS = float(os.environ.get("KONIFER_EDGE_PURGE_INTERVAL", "30"))
ACCESS_FLUSH_SECONDS = float(os.environ.get("KONIFER_EDGE_ACCESS_FLUSH_INTERVAL", "10"))
_PURGE_BATCH = 500


class AccessTracker:
    """Remembers which variants were served, for `idle` expiry, and writes them in batches."""

    def __init__(self) -> None:
        self._seen: set[uuid.UUID] = set()

    def touch(self, variant: Variant) -> None:
        if not variant.is_original:
            self._seen.add(variant.id)

    def drain(self) -> list[uuid.UUID]:
        seen, self._seen = list(self._seen), set()
        return seen


class VariantUpkeep:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    def start(self, runtime: Runtime) -> None:
        self._loops = [
            asyncio.create_task(_every(ACCESS_FLUSH_SECONDS, lambda: flush_access(runtime)), name="access-flush"),
            asyncio.create_task(_every(PURGE_INTERVAL_SECONDS, lambda: purge_expired(runtime)), name="expiry"),
        ]

    def spawn(self, work: asyncio.Future[None] | asyncio.Task[None] | object) -> None:
        assert asyncio.iscoroutine(work)
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, runtime: Runtime) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await flush_access(runtime)


async def _every(seconds: float, work: object) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()  # type: ignore[operator]
        except Exception:  # a dependency may be down; the next round tries again
            log.exception("background variant job failed")


async def flush_access(runtime: Runtime) -> None:
    seen = runtime.access.drain()
    if seen:
        await runtime.repository.touch_variants(seen, datetime.now(UTC))


async def purge_expired(runtime: Runtime, now: datetime | None = None) -> int:
    """Delete variants past their path's `transform.expire`; they render again on next request."""
    now = now or datetime.now(UTC)
    await flush_access(runtime)
    candidates = await runtime.repository.aging_variants(now - _shortest_ttl(runtime), _PURGE_BATCH)
    expired = []
    paths = set()
    for candidate in candidates:
        transform = runtime.config.paths.resolve(candidate.path).transform
        if transform.expire_strategy == "never" or transform.expire_ttl is None:
            continue
        since = candidate.created_at if transform.expire_strategy == "ttl" else candidate.last_accessed_at
        if since + transform.expire_ttl <= now:
            expired.append(candidate.id)
            paths.add(candidate.path)
    if expired:
        await runtime.repository.delete_variants(expired)
        await runtime.resolutions.invalidate(paths)
        runtime.reaper.wake()
    return len(expired)


def _shortest_ttl(runtime: Runtime) -> timedelta:
    paths = runtime.config.paths
    ttls = [
        settings.transform.expire_ttl
        for settings in [paths.root, *(paths.for_pattern(p) for p in paths.patterns)]
        if settings is not None and settings.transform.expire_strategy != "never" and settings.transform.expire_ttl
    ]
    return min(ttls) if ttls else timedelta(days=36500)


async def render_eager_variants(runtime: Runtime, asset: Asset) -> None:
    """Best effort: a failed eager render is simply rendered on demand later."""
    from konifer_edge.domain.transformation import parse_transformation
    from konifer_edge.imaging.pool import EAGER
    from konifer_edge.services.variants import resolve_variant

    settings = runtime.config.paths.resolve(asset.path)
    for profile in settings.transform.eager_variants:
        try:
            requested = parse_transformation({"profile": profile}, runtime.config.variant_profiles)
            await resolve_variant(runtime, settings, asset, requested, accept=None, lane=EAGER)
        except Exception:
            log.warning("eager variant %r of %s#%d failed", profile, asset.path, asset.entry_id, exc_info=True)
