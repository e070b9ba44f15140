"""Upkeep of variants off the request path: access times, and expiry (eager renders are in `variants`).

None of it runs on a request's path: access times are gathered in memory and written
in batches, and expired variants are purged by a periodic job.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from konifer_edge.services.runtime import Runtime

# Operators rarely need to change these; tests shorten them.
PURGE_INTERVAL_SECONDS = float(os.environ.get("KONIFER_EDGE_PURGE_INTERVAL", "30"))
ACCESS_FLUSH_SECONDS = float(os.environ.get("KONIFER_EDGE_ACCESS_FLUSH_INTERVAL", "10"))
_PURGE_BATCH = 500


def start_upkeep(runtime: Runtime) -> None:
    runtime.upkeep.every(ACCESS_FLUSH_SECONDS, lambda: flush_access(runtime), name="access-flush")
    runtime.upkeep.every(PURGE_INTERVAL_SECONDS, lambda: purge_expired(runtime), name="expiry")


async def stop_upkeep(runtime: Runtime) -> None:
    """Stop every background task, then write the access times gathered since the last flush."""
    await runtime.upkeep.stop()
    with contextlib.suppress(Exception):
        await flush_access(runtime)


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
