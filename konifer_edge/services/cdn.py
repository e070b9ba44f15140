"""What a CDN needs from an origin: cache lifetimes, purge tags, and a purge call on change.

Tags name the entry, its path, and every ancestor of the path, so one purge by tag can
retire an entry, a path, or a whole subtree after a recursive delete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import httpx
import msgspec

from konifer_edge.config import CacheSettings

log = logging.getLogger(__name__)

_RETRIES = 3


def entry_tag(path: str, entry_id: int) -> str:
    return f"entry:{path}/{entry_id}"


def path_tags(path: str) -> list[str]:
    """`path:` for the path itself and `tree:` for it and each ancestor."""
    segments = path.strip("/").split("/")
    ancestors = ["/" + "/".join(segments[:depth]) for depth in range(1, len(segments) + 1)]
    return [f"path:{path}", *(f"tree:{ancestor}" for ancestor in ancestors)]


def tags_for(path: str, entry_id: int | None) -> list[str]:
    return ([entry_tag(path, entry_id)] if entry_id is not None else []) + path_tags(path)


def tag_headers(tags: list[str]) -> dict[str, str]:
    """Cloudflare reads comma-separated `Cache-Tag`; Fastly and Akamai read space-separated `Surrogate-Key`."""
    return {"Cache-Tag": ",".join(tags), "Surrogate-Key": " ".join(tags)}


def default_cache_control(
    settings: CacheSettings, entry_pinned: bool, immutable_body: bool, *, shared: bool = True
) -> str:
    """Used only where a path configures no cache-control of its own.

    A path whose reads need an API key must never sit in a shared cache: `private` there.
    """
    visibility = "public" if shared else "private"
    if entry_pinned and immutable_body:
        return f"{visibility}, max-age=31536000, immutable"
    return (
        f"{visibility}, max-age={settings.newest_max_age},"
        f" stale-while-revalidate={settings.newest_stale_while_revalidate}"
    )


class PurgeRequest(msgspec.Struct):
    tags: list[str]
    reason: str


class PurgeHook:
    """POSTs `{"tags": [...], "reason": ...}` to the configured webhook, in the background, with retries."""

    def __init__(self, url: str | None) -> None:
        self._url = url
        self._client = httpx.AsyncClient(timeout=5.0) if url else None
        self._tasks: set[asyncio.Task[None]] = set()

    def purge(self, tags: Iterable[str], reason: str) -> None:
        if self._client is None:
            return
        task = asyncio.create_task(self._send(PurgeRequest(tags=sorted(set(tags)), reason=reason)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, request: PurgeRequest) -> None:
        assert self._client is not None and self._url is not None
        body = msgspec.json.encode(request)
        for attempt in range(_RETRIES):
            try:
                answer = await self._client.post(self._url, content=body, headers={"Content-Type": "application/json"})
                if answer.status_code < 500:
                    return
            except httpx.HTTPError as error:
                log.warning("purge webhook attempt %d failed: %r", attempt + 1, error)
            await asyncio.sleep(0.5 * 2**attempt)
        log.error("purge webhook gave up on %d tags", len(request.tags))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
