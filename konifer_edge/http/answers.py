"""Fetch answers: a resolved `FetchOutcome` mapped to status, headers and body.

Headers CDNs rely on are decided here: cache lifetimes (a path's own `cache-control`
always wins), purge tags, `Vary: Accept` only where the format was negotiated, ETags with
304s that never touch the object store, and byte ranges. Nothing here resolves or renders:
`services/fetch.py` did that. The 304, HEAD and `Content-Length` rules are shared with the
replay of recorded answers (`http/replay.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.enums import HttpMethod
from litestar.response import Redirect, Stream
from litestar.types import Scope

from konifer_edge.config import Config
from konifer_edge.domain.models import Lqip
from konifer_edge.domain.selectors import ReturnFormat
from konifer_edge.http import headers as answer_headers
from konifer_edge.http.ranges import Unsatisfiable, requested_range
from konifer_edge.http.replay import content_length, not_modified
from konifer_edge.http.streaming import started_body
from konifer_edge.http.wire import (
    AssetEntriesWire,
    AssetLinkWire,
    attributes_wire,
    local_time,
    lqip_wire,
    metadata_wire,
)
from konifer_edge.observability.request_log import ROUTE_KIND
from konifer_edge.services import cdn
from konifer_edge.services.fetch import FetchOutcome, VariantBody
from konifer_edge.services.variants import ResolvedVariant

AnyRequest = Request[Any, Any, Any]

# The route kinds whose answers may stream a body from the object store.
STREAMED_ROUTES: tuple[str, ...] = ("fetch_content", "fetch_download", "fetch_redirect", "share_serve")

BeforeBody = Callable[[], Awaitable[None]]


class Conditions(msgspec.Struct, frozen=True, kw_only=True):
    """What of the request, besides the fetch itself, shapes the answer: method and conditional headers."""

    head: bool = False
    if_none_match: str | None = None
    range: str | None = None
    if_range: str | None = None


def conditions_of(request: AnyRequest) -> Conditions:
    headers = request.headers
    return Conditions(
        head=request.method == HttpMethod.HEAD,
        if_none_match=headers.get("if-none-match"),
        range=headers.get("range"),
        if_range=headers.get("if-range"),
    )


async def answer_fetch(
    outcome: FetchOutcome,
    conditions: Conditions,
    config: Config,
    scope: Scope,
    *,
    own_headers: dict[str, str] | None = None,
    before_body: BeforeBody | None = None,
) -> Response[Any]:
    """The answer to a resolved fetch, by its return format.

    ``own_headers`` replace the CDN headers (cache lifetime and purge tags) for answers that
    must not be cached the usual way. ``before_body`` runs only when bytes are about to be
    read for a `GET` (200 or 206; never for `HEAD`, 304 or 416), and may still refuse.
    """
    return_format = outcome.request.selector.return_format
    if return_format.is_metadata:
        return _metadata(outcome, config)
    if return_format is ReturnFormat.LINK:
        return _link(outcome, config)
    if return_format is ReturnFormat.REDIRECT and outcome.location is not None:
        return _redirect(outcome, config)
    return await _content(outcome, conditions, config, scope, own_headers=own_headers, before_body=before_body)


def _json(value: object, headers: dict[str, str]) -> Response[bytes]:
    return Response(content=msgspec.json.encode(value), status_code=200, media_type="application/json", headers=headers)


def _cdn_headers(config: Config, outcome: FetchOutcome, *, immutable_body: bool) -> dict[str, str]:
    """Purge tags, and the path's `Cache-Control`: as configured where `enabled` is written (an explicit
    `enabled = false` under a parent that enables it sends none at all), else our defaults."""
    fetch = outcome.request
    configured = fetch.settings.cache_control
    shared = fetch.settings.access.read == "public"
    cache_control = configured.header_value() if configured.explicit else None
    if cache_control is None and (not configured.explicit or not shared):
        # Without a header a shared cache may store heuristically: a path that needs a key keeps ours.
        entry_pinned = fetch.selector.entry_id is not None
        cache_control = cdn.default_cache_control(config.cache, entry_pinned, immutable_body, shared=shared)
    single = outcome.assets[0].entry_id if len(outcome.assets) == 1 and not fetch.selector.many else None
    headers = cdn.tag_headers(cdn.tags_for(fetch.path, single))
    if cache_control is not None:
        headers["Cache-Control"] = cache_control
    return headers


def _metadata(outcome: FetchOutcome, config: Config) -> Response[Any]:
    """`metadata`/`info` (one object, or an array with a limit) and `entries` (always `{"entries": [...]}`)."""
    selector = outcome.request.selector
    headers = _cdn_headers(config, outcome, immutable_body=False)
    spelling = config.compat.wire
    wire: object
    if selector.return_format is ReturnFormat.ENTRIES:
        wire = AssetEntriesWire(entries=[metadata_wire(asset, spelling) for asset in outcome.assets])
    elif selector.many:
        wire = [metadata_wire(asset, spelling) for asset in outcome.assets]
    else:
        wire = metadata_wire(outcome.assets[0], spelling)
        # Konifer marks a single asset's metadata as a hit: it is read, never generated.
        headers["K-Cache-Status"] = "hit"
    return _json(wire, headers)


def _link(outcome: FetchOutcome, config: Config) -> Response[Any]:
    links = [
        AssetLinkWire(
            url=target.url,
            lqip=lqip_wire(resolved.variant.lqip),
            attributes=attributes_wire(resolved.variant.attributes),
            alt=asset.alt,
            expires_at=None if target.expires_at is None else local_time(target.expires_at),
        )
        for asset, resolved, target in zip(outcome.assets, outcome.variants, outcome.links, strict=True)
    ]
    headers = _cdn_headers(config, outcome, immutable_body=False)
    if outcome.request.selector.many:
        return _json(links, headers)
    headers |= answer_headers.alt_headers(outcome.assets[0]) | {"K-Cache-Status": outcome.variants[0].cache_status}
    return _json(links[0], headers)


def _redirect(outcome: FetchOutcome, config: Config) -> Response[Any]:
    asset = outcome.assets[0]
    headers = _cdn_headers(config, outcome, immutable_body=True) | answer_headers.alt_headers(asset)
    assert outcome.location is not None
    if outcome.variants:
        resolved = outcome.variants[0]
        headers["K-Cache-Status"] = resolved.cache_status
        if resolved.negotiated:
            headers["Vary"] = "Accept"
        if outcome.request.settings.return_format.redirect.strategy == "presigned":
            # A presigned URL expires; a CDN must not keep sending clients to a dead one.
            headers["Cache-Control"] = "private, no-store"
    return Redirect(path=outcome.location, status_code=307, headers=headers)


async def _content(
    outcome: FetchOutcome,
    conditions: Conditions,
    config: Config,
    scope: Scope,
    *,
    own_headers: dict[str, str] | None,
    before_body: BeforeBody | None,
) -> Response[Any]:
    """The `content` answer for the fetch's one asset (`download` adds its disposition)."""
    asset = outcome.assets[0]
    resolved: ResolvedVariant = outcome.variants[0]
    body: VariantBody | None = outcome.body
    assert body is not None
    variant = resolved.variant
    etag = answer_headers.content_etag(asset, variant)
    headers = {
        "ETag": etag,
        "K-Cache-Status": resolved.cache_status,
        "Accept-Ranges": "bytes",
        **(own_headers if own_headers is not None else _cdn_headers(config, outcome, immutable_body=True)),
        **answer_headers.alt_headers(asset),
        **_lqip_headers(variant.lqip),
    }
    if resolved.negotiated:
        headers["Vary"] = "Accept"
    if outcome.request.selector.return_format is ReturnFormat.DOWNLOAD:
        headers["Content-Disposition"] = answer_headers.content_disposition(asset, variant)
    if not_modified(conditions.if_none_match, etag):
        return Response(content=b"", status_code=304, headers=headers)
    try:
        byte_range = requested_range(conditions.range, conditions.if_range, etag, variant.size)
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{variant.size}"
        return Response(content=b"", status_code=416, headers=headers)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{variant.size}"
    length = variant.size if byte_range is None else byte_range[1] - byte_range[0] + 1
    headers["Content-Length"] = content_length(length)
    if conditions.head:
        # The GET's headers, no body: the bytes are not even read.
        return Response(content=b"", status_code=status, media_type=variant.content_type, headers=headers)
    if before_body is not None:
        await before_body()
    if body.in_memory:
        whole = await body.read()
        part = whole if byte_range is None else whole[byte_range[0] : byte_range[1] + 1]
        return Response(content=part, status_code=status, media_type=variant.content_type, headers=headers)
    route = scope.get("state", {}).get(ROUTE_KIND, "fetch_content")
    streamed = await started_body(await body.stream(byte_range), scope, route)
    return Stream(streamed, status_code=status, media_type=variant.content_type, headers=headers)


def _lqip_headers(lqip: Lqip) -> dict[str, str]:
    found = {}
    if lqip.blurhash:
        found["K-LQIP-Blurhash"] = lqip.blurhash
    if lqip.thumbhash:
        found["K-LQIP-Thumbhash"] = lqip.thumbhash
    return found
