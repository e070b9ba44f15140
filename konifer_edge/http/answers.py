"""Fetch answers: the body and every header of link, content, download, redirect and metadata.

Headers CDNs rely on are decided here: cache lifetimes (a path's own `cache-control`
always wins), purge tags, `Vary: Accept` only where the format was negotiated, ETags with
304s that never touch the object store, and byte ranges.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.enums import HttpMethod
from litestar.response import Redirect, Stream

from konifer_edge.cache.recorded_answers import RecordedAnswer
from konifer_edge.config import PathSettings
from konifer_edge.domain.models import Asset, Lqip
from konifer_edge.domain.selectors import FetchSelector, ReturnFormat
from konifer_edge.domain.transformation import RequestedTransformation, query_parameters
from konifer_edge.http import headers as answer_headers
from konifer_edge.http.fast_path import request_target
from konifer_edge.http.ranges import Unsatisfiable, requested_range
from konifer_edge.http.streaming import started_body
from konifer_edge.http.wire import (
    AssetEntriesWire,
    AssetLinkWire,
    attributes_wire,
    local_time,
    lqip_wire,
    metadata_wire,
)
from konifer_edge.observability.request_log import CACHE_OUTCOME, ROUTE_KIND, mark
from konifer_edge.services import cdn, delivery
from konifer_edge.services.fetch import raise_if_deleted
from konifer_edge.services.runtime import Runtime
from konifer_edge.services.variants import ResolvedVariant, resolve_variant
from konifer_edge.storage.object_store import ObjectNotFound

AnyRequest = Request[Any, Any, Any]

# The route kinds whose answers may stream a body from the object store.
STREAMED_ROUTES: tuple[str, ...] = ("fetch_content", "fetch_download", "fetch_redirect", "share_serve")


class FetchRequest(msgspec.Struct, frozen=True):
    """A fetch parsed, validated and resolved to its assets."""

    path: str
    raw_transformation: dict[str, str]
    selector: FetchSelector
    settings: PathSettings
    requested: RequestedTransformation
    base_url: str
    assets: list[Asset]
    asset_outcome: str
    generation: int | None = None
    """The path's generation the assets were resolved at; None when it is unknown."""


def _json(value: object, headers: dict[str, str]) -> Response[bytes]:
    return Response(content=msgspec.json.encode(value), media_type="application/json", headers=headers)


def _cdn_headers(runtime: Runtime, fetch: FetchRequest, *, immutable_body: bool) -> dict[str, str]:
    """Purge tags, and the path's `Cache-Control`: as configured where `enabled` is written (an explicit
    `enabled = false` under a parent that enables it sends none at all), else our defaults."""
    configured = fetch.settings.cache_control
    shared = fetch.settings.access.read == "public"
    cache_control = configured.header_value() if configured.explicit else None
    if cache_control is None and (not configured.explicit or not shared):
        # Without a header a shared cache may store heuristically: a path that needs a key keeps ours.
        entry_pinned = fetch.selector.entry_id is not None
        cache_control = cdn.default_cache_control(runtime.config.cache, entry_pinned, immutable_body, shared=shared)
    single = fetch.assets[0].entry_id if len(fetch.assets) == 1 and not fetch.selector.many else None
    headers = cdn.tag_headers(cdn.tags_for(fetch.path, single))
    if cache_control is not None:
        headers["Cache-Control"] = cache_control
    return headers


async def answer_fetch(request: AnyRequest, runtime: Runtime, fetch: FetchRequest) -> Response[Any]:
    try:
        return await _ANSWERS[fetch.selector.return_format](request, runtime, fetch)
    except ObjectNotFound:
        # The entry was resolved, then deleted before its bytes were read (its objects go right
        # after the delete commits): the 404 it now is, not a storage failure.
        await raise_if_deleted(runtime, fetch.assets)
        raise


async def _metadata(request: AnyRequest, runtime: Runtime, fetch: FetchRequest) -> Response[Any]:
    """`metadata`/`info` (one object, or an array with a limit) and `entries` (always `{"entries": [...]}`)."""
    headers = _cdn_headers(runtime, fetch, immutable_body=False)
    spelling = runtime.config.compat.wire
    wire: object
    if fetch.selector.return_format is ReturnFormat.ENTRIES:
        wire = AssetEntriesWire(entries=[metadata_wire(asset, spelling) for asset in fetch.assets])
    elif fetch.selector.many:
        wire = [metadata_wire(asset, spelling) for asset in fetch.assets]
    else:
        wire = metadata_wire(fetch.assets[0], spelling)
        # Konifer marks a single asset's metadata as a hit: it is read, never generated.
        headers["K-Cache-Status"] = "hit"
    body = msgspec.json.encode(wire)
    generation = _replay_generation(request, fetch)
    if generation is not None:
        # Metadata is a function of the rows alone, and any write to the path moves its generation.
        answer = RecordedAnswer(
            path=fetch.path,
            generation=generation,
            route_kind=f"fetch_{fetch.selector.return_format.value}",
            headers=_header_list(headers),
            content_type=b"application/json",
            body=body,
        )
        runtime.recorded_answers.record(request_target(request.scope), "", answer, varies_by_accept=False)
    return Response(content=body, media_type="application/json", headers=headers)


def _replay_generation(request: AnyRequest, fetch: FetchRequest) -> int | None:
    """The generation a recorded answer is valid for, or None when the fast path may not send it
    again: only the target (and Accept) may decide a replayed answer."""
    if request.method != HttpMethod.GET or fetch.settings.access.read != "public":
        return None
    return fetch.generation


def _header_list(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def _link_parameters(fetch: FetchRequest, resolved: ResolvedVariant) -> dict[str, str] | None:
    """The canonical parameters a link carries; the format only when the request fixed it."""
    if not fetch.raw_transformation or resolved.plan is None:
        return None
    params = query_parameters(resolved.plan)
    if fetch.requested.format is None:
        del params["format"]
    return params


async def _link(request: AnyRequest, runtime: Runtime, fetch: FetchRequest) -> Response[Any]:
    links = []
    resolutions = []
    for asset in fetch.assets:
        resolved = await resolve_variant(runtime, fetch.settings, asset, fetch.requested, accept=None)
        target = await delivery.link_target(
            runtime, fetch.settings, fetch.base_url, asset, resolved.variant, _link_parameters(fetch, resolved)
        )
        links.append(
            AssetLinkWire(
                url=target.url,
                lqip=lqip_wire(resolved.variant.lqip),
                attributes=attributes_wire(resolved.variant.attributes),
                alt=asset.alt,
                expires_at=None if target.expires_at is None else local_time(target.expires_at),
            )
        )
        resolutions.append(resolved)
    headers = _cdn_headers(runtime, fetch, immutable_body=False)
    if fetch.selector.many:
        return _json(links, headers)
    _mark_outcome(request, fetch, resolutions[0])
    headers |= answer_headers.alt_headers(fetch.assets[0]) | {"K-Cache-Status": resolutions[0].cache_status}
    return _json(links[0], headers)


BeforeBody = Callable[[], Awaitable[None]]


async def answer_content(
    request: AnyRequest,
    runtime: Runtime,
    fetch: FetchRequest,
    *,
    own_headers: dict[str, str] | None = None,
    before_body: BeforeBody | None = None,
) -> Response[Any]:
    """The `content` answer for the fetch's one asset (`download` adds its disposition).

    ``own_headers`` replace the CDN headers (cache lifetime and purge tags) for answers that
    must not be cached the usual way. ``before_body`` runs only when bytes are about to be
    read for a `GET` (200 or 206; never for `HEAD`, 304 or 416), and may still refuse.
    """
    asset = fetch.assets[0]
    try:
        resolved = await resolve_variant(
            runtime, fetch.settings, asset, fetch.requested, accept=request.headers.get("accept")
        )
        return await _serve_variant(
            request, runtime, fetch, asset, resolved, own_headers=own_headers, before_body=before_body
        )
    except ObjectNotFound:
        # As in answer_fetch, for callers that come here directly (share links).
        await raise_if_deleted(runtime, fetch.assets)
        raise


def _mark_outcome(request: AnyRequest, fetch: FetchRequest, resolved: ResolvedVariant) -> None:
    mark(request.scope, CACHE_OUTCOME, resolved.source or fetch.asset_outcome)


async def _serve_variant(
    request: AnyRequest,
    runtime: Runtime,
    fetch: FetchRequest,
    asset: Asset,
    resolved: ResolvedVariant,
    *,
    own_headers: dict[str, str] | None = None,
    before_body: BeforeBody | None = None,
) -> Response[Any]:
    variant = resolved.variant
    _mark_outcome(request, fetch, resolved)
    etag = answer_headers.content_etag(asset, variant)
    headers = {
        "ETag": etag,
        "K-Cache-Status": resolved.cache_status,
        "Accept-Ranges": "bytes",
        **(own_headers if own_headers is not None else _cdn_headers(runtime, fetch, immutable_body=True)),
        **answer_headers.alt_headers(asset),
        **_lqip_headers(variant.lqip),
    }
    if resolved.negotiated:
        headers["Vary"] = "Accept"
    if fetch.selector.return_format is ReturnFormat.DOWNLOAD:
        headers["Content-Disposition"] = answer_headers.content_disposition(asset, variant)
    if answer_headers.etag_matches(request.headers.get("if-none-match"), etag):
        return Response(content=b"", status_code=304, headers=headers)
    try:
        byte_range = requested_range(request.headers.get("range"), request.headers.get("if-range"), etag, variant.size)
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{variant.size}"
        return Response(content=b"", status_code=416, headers=headers)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{variant.size}"
    length = variant.size if byte_range is None else byte_range[1] - byte_range[0] + 1
    headers["Content-Length"] = str(length)
    if request.method == HttpMethod.HEAD:
        return Response(content=b"", status_code=status, media_type=variant.content_type, headers=headers)
    if before_body is not None:
        await before_body()
    if variant.size <= runtime.bodies.max_body_bytes:
        body = await _small_body(runtime, variant.bucket, variant.store_key)
        if byte_range is None:
            _record(request, runtime, fetch, asset, resolved, headers, etag)
        part = body if byte_range is None else body[byte_range[0] : byte_range[1] + 1]
        return Response(content=part, status_code=status, media_type=variant.content_type, headers=headers)
    _, chunks = await runtime.objects.stream(variant.bucket, variant.store_key, byte_range)
    route = request.scope.get("state", {}).get(ROUTE_KIND, "fetch_content")
    streamed = await started_body(chunks, request.scope, route)
    return Stream(streamed, status_code=status, media_type=variant.content_type, headers=headers)


def _record(
    request: AnyRequest,
    runtime: Runtime,
    fetch: FetchRequest,
    asset: Asset,
    resolved: ResolvedVariant,
    headers: dict[str, str],
    etag: str,
) -> None:
    """Keep an entry's image answer for the fast path (a newest-at-path image is resolved afresh)."""
    generation = _replay_generation(request, fetch)
    if generation is None or fetch.selector.entry_id is None:
        return
    variant = resolved.variant
    sent = {**headers, "K-Cache-Status": "hit"}
    del sent["Content-Length"]
    answer = RecordedAnswer(
        path=fetch.path,
        generation=generation,
        etag=etag,
        body_key=_body_key(variant.bucket, variant.store_key),
        variant=variant,
        counts_as_variant_lookup=resolved.source is not None,
        route_kind=f"fetch_{fetch.selector.return_format.value}",
        headers=_header_list(sent),
        content_type=variant.content_type.encode("latin-1"),
    )
    runtime.recorded_answers.record(
        request_target(request.scope), request.headers.get("accept", ""), answer, varies_by_accept=resolved.negotiated
    )


def _body_key(bucket: str, key: str) -> str:
    return f"{bucket}/{key}"


async def _small_body(runtime: Runtime, bucket: str, key: str) -> bytes:
    cache_key = _body_key(bucket, key)
    body = runtime.bodies.get(cache_key)
    if body is None:
        body = await runtime.objects.read(bucket, key)
        runtime.bodies.put(cache_key, body)
    return body


async def _redirect(request: AnyRequest, runtime: Runtime, fetch: FetchRequest) -> Response[Any]:
    asset = fetch.assets[0]
    strategy = fetch.settings.return_format.redirect.strategy
    headers = _cdn_headers(runtime, fetch, immutable_body=True) | answer_headers.alt_headers(asset)
    if strategy is None:
        # Our own content URL negotiates and renders by itself; nothing to resolve here.
        location = delivery.own_content_url(runtime, fetch.settings, fetch.base_url, asset, fetch.raw_transformation)
        return Redirect(path=location, status_code=307, headers=headers)
    resolved = await resolve_variant(
        runtime, fetch.settings, asset, fetch.requested, accept=request.headers.get("accept")
    )
    target = await delivery.object_store_target(runtime, fetch.settings, resolved.variant)
    if target is None:
        return await _serve_variant(request, runtime, fetch, asset, resolved)
    _mark_outcome(request, fetch, resolved)
    headers["K-Cache-Status"] = resolved.cache_status
    if resolved.negotiated:
        headers["Vary"] = "Accept"
    if strategy == "presigned":
        # A presigned URL expires; a CDN must not keep sending clients to a dead one.
        headers["Cache-Control"] = "private, no-store"
    return Redirect(path=target, status_code=307, headers=headers)


def _lqip_headers(lqip: Lqip) -> dict[str, str]:
    found = {}
    if lqip.blurhash:
        found["K-LQIP-Blurhash"] = lqip.blurhash
    if lqip.thumbhash:
        found["K-LQIP-Thumbhash"] = lqip.thumbhash
    return found


_ANSWERS: dict[ReturnFormat, Callable[[AnyRequest, Runtime, FetchRequest], Awaitable[Response[Any]]]] = {
    ReturnFormat.METADATA: _metadata,
    ReturnFormat.ENTRIES: _metadata,
    ReturnFormat.LINK: _link,
    ReturnFormat.CONTENT: answer_content,
    ReturnFormat.DOWNLOAD: answer_content,
    ReturnFormat.REDIRECT: _redirect,
}
