"""Upkeep of variants off the request path: access times, and expiry (eager renders are in `variants`).

None of it runs on a request's path: access times are gathered in memory and written
in batches, and expired variants are purged by a periodic job.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, timedelta
from typing import Protocol

from konifer_edge.config import Config
from konifer_edge.services.background import AccessTracker, BackgroundTasks
from konifer_edge.services.ports import Invalidation, ReaperSignal, VariantAging

# Operators rarely need to change these; tests shorten them.
PURGE_INTERVAL_SECONDS = float(os.environ.get("KONIFER_EDGE_PURGE_INTERVAL", "30"))
ACCESS_FLUSH_SECONDS = float(os.environ.get("KONIFER_EDGE_ACCESS_FLUSH_INTERVAL", "10"))
_PURGE_BATCH = 500


class UpkeepParts(Protocol):
    @property
    def config(self) -> Config: ...
    @property
    def repository(self) -> VariantAging: ...
    @property
    def resolutions(self) -> Invalidation: ...
    @property
    def reaper(self) -> ReaperSignal: ...
    @property
    def access(self) -> AccessTracker: ...
    @property
    def upkeep(self) -> BackgroundTasks: ...


def start_upkeep(parts: UpkeepParts) -> None:
    parts.upkeep.every(ACCESS_FLUSH_SECONDS, lambda: flush_access(parts), name="access-flush")
    parts.upkeep.every(PURGE_INTERVAL_SECONDS, lambda: purge_expired(parts), name="expiry")


async def stop_upkeep(parts: UpkeepParts) -> None:
    """Stop every background task, then write the access times gathered since the last flush."""
    await parts.upkeep.stop()
    with contextlib.suppress(Exception):
        await flush_access(parts)


async def flush_access(parts: UpkeepParts) -> None:
    seen = parts.access.drain()
    if seen:
        await parts.repository.touch_variants(seen, datetime.now(UTC))


async def purge_expired(parts: UpkeepParts, now: datetime | None = None) -> int:
    """Delete variants past their path's `transform.expire`; they render again on next request."""
    now = now or datetime.now(UTC)
    await flush_access(parts)
    candidates = await parts.repository.aging_variants(now - _shortest_ttl(parts), _PURGE_BATCH)
    expired = []
    paths = set()
    for candidate in candidates:
        transform = parts.config.paths.resolve(candidate.path).transform
        if transform.expire_strategy == "never" or transform.expire_ttl is None:
            continue
        since = candidate.created_at if transform.expire_strategy == "ttl" else candidate.last_accessed_at
        if since + transform.expire_ttl <= now:
            expired.append(candidate.id)
            paths.add(candidate.path)
    if expired:
        await parts.repository.delete_variants(expired)
        await parts.resolutions.invalidate(paths)
        parts.reaper.wake()
    return len(expired)


def _shortest_ttl(parts: UpkeepParts) -> timedelta:
    paths = parts.config.paths
    ttls = [
        settings.transform.expire_ttl
        for settings in [paths.root, *(paths.for_pattern(p) for p in paths.patterns)]
        if settings is not None and settings.transform.expire_strategy != "never" and settings.transform.expire_ttl
    ]
    return min(ttls) if ttls else timedelta(days=36500)
