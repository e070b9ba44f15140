"""The asset routes. Each handler parses the request into typed values, calls one service, and answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

import msgspec
from litestar import Request, Response, delete, post, put, route
from litestar.enums import HttpMethod
from litestar.response import Redirect, Stream

from konifer_edge.config import PathSettings
from konifer_edge.domain.errors import BadRequest, PayloadTooLarge
from konifer_edge.domain.models import Asset, AssetMetadataInput, AssetSource, Lqip
from konifer_edge.domain.paths import normalise_asset_path
from konifer_edge.domain.query import QueryParts, split_query
from konifer_edge.domain.selectors import (
    FetchSelector,
    ReturnFormat,
    parse_delete_selector,
    parse_fetch_selector,
    parse_update_selector,
    split_asset_path,
)
from konifer_edge.domain.transformation import RequestedTransformation, parse_transformation, query_parameters
from konifer_edge.http import headers as answer_headers
from konifer_edge.http import openapi
from konifer_edge.http.uploads import (
    MAX_JSON_BODY_BYTES,
    read_json_body,
    read_multipart,
    require_store_content_type,
)
from konifer_edge.http.url_errors import url_source_api_error
from konifer_edge.http.wire import AssetLinkWire, lqip_wire, metadata_wire
from konifer_edge.observability import metrics
from konifer_edge.observability.request_log import CACHE_OUTCOME, ROUTE_KIND, mark
from konifer_edge.services import delivery
from konifer_edge.services.delete import delete_assets
from konifer_edge.services.fetch import resolve_assets
from konifer_edge.services.runtime import Runtime
from konifer_edge.services.store import StoreRequest, store_asset
from konifer_edge.services.update import update_asset
from konifer_edge.services.variants import ResolvedVariant, check_on_demand_mode, resolve_variant
from konifer_edge.sources.url import UrlSourceError

ASSETS_PREFIX = "/assets/"
# Room for the metadata part and multipart framing on top of the asset's own limit.
MULTIPART_OVERHEAD_BYTES = MAX_JSON_BODY_BYTES + 16 * 1024

AnyRequest = Request[Any, Any, Any]


class ParsedTarget(msgspec.Struct, frozen=True):
    path: str
    tokens: list[str]
    query: QueryParts


def _runtime(request: AnyRequest) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _parse_target(request: AnyRequest) -> ParsedTarget:
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    after_prefix = raw_path.decode("latin-1").split("?", 1)[0][len(ASSETS_PREFIX) :]
    path_part, tokens = split_asset_path(after_prefix)
    path = normalise_asset_path(unquote(path_part, errors="strict"))
    query_string = request.scope.get("query_string", b"").decode("latin-1")
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise BadRequest("The query string is not valid UTF-8", reason="invalid_query") from error
    query = split_query(pairs)
    return ParsedTarget(path=path, tokens=tokens, query=query)


def _base_url(request: AnyRequest, runtime: Runtime) -> str:
    configured = runtime.config.http.public_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(value), status_code=status, media_type="application/json", headers=headers
    )


class FetchRequest(msgspec.Struct, frozen=True):
    """Everything a fetch answer needs, parsed and validated before any lookup."""

    target: ParsedTarget
    selector: FetchSelector
    settings: PathSettings
    requested: RequestedTransformation
    base_url: str


@route(
    "/assets/{asset_path:path}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    responses=openapi.FETCH_RESPONSES,
    operation_class=openapi.FetchOperation,
)
async def fetch_asset(request: AnyRequest, asset_path: str) -> Response[Any]:
    """Fetch the asset(s) a selector names as link, content, download, redirect or metadata."""
    runtime = _runtime(request)
    target = _parse_target(request)
    selector = parse_fetch_selector(target.tokens, target.query.limit)
    mark(request.scope, ROUTE_KIND, f"fetch_{selector.return_format.value}")
    raw_transformation = target.query.transformation
    if selector.return_format is ReturnFormat.METADATA and raw_transformation:
        keys = ", ".join(sorted(raw_transformation))
        raise BadRequest(f"Transformation parameters ({keys}) are not allowed on metadata", reason="invalid_query")
    settings = runtime.config.paths.resolve(target.path)
    check_on_demand_mode(settings, raw_transformation)
    fetch = FetchRequest(
        target=target,
        selector=selector,
        settings=settings,
        requested=parse_transformation(raw_transformation, runtime.config.variant_profiles),
        base_url=_base_url(request, runtime),
    )
    assets = await resolve_assets(runtime, target.path, selector, target.query.labels)
    answer = _ANSWERS[selector.return_format]
    return await answer(request, runtime, fetch, assets)


async def _metadata_answer(
    request: AnyRequest, runtime: Runtime, fetch: FetchRequest, assets: list[Asset]
) -> Response[Any]:
    headers = _cache_headers(fetch.settings)
    if fetch.selector.many:
        return _json([metadata_wire(asset) for asset in assets], headers=headers)
    return _json(metadata_wire(assets[0]), headers=headers)


def _link_parameters(fetch: FetchRequest, resolved: ResolvedVariant) -> dict[str, str] | None:
    """The canonical parameters a link carries; the format only when the request fixed it."""
    if not fetch.target.query.transformation or resolved.plan is None:
        return None
    params = query_parameters(resolved.plan)
    if fetch.requested.format is None:
        del params["format"]
    return params


async def _link_answer(
    request: AnyRequest, runtime: Runtime, fetch: FetchRequest, assets: list[Asset]
) -> Response[Any]:
    links = []
    statuses = []
    for asset in assets:
        resolved = await resolve_variant(runtime, fetch.settings, asset, fetch.requested, accept=None)
        url = await delivery.link_url(
            runtime, fetch.settings, fetch.base_url, asset, resolved.variant, _link_parameters(fetch, resolved)
        )
        links.append(AssetLinkWire(url=url, lqip=lqip_wire(resolved.variant.lqip), alt=asset.alt))
        statuses.append(resolved.cache_status)
    headers = _cache_headers(fetch.settings)
    if fetch.selector.many:
        return _json(links, headers=headers)
    headers |= answer_headers.alt_headers(assets[0]) | {"K-Cache-Status": statuses[0]}
    return _json(links[0], headers=headers)


async def _content_answer(
    request: AnyRequest, runtime: Runtime, fetch: FetchRequest, assets: list[Asset]
) -> Response[Any]:
    asset = assets[0]
    resolved = await resolve_variant(
        runtime, fetch.settings, asset, fetch.requested, accept=request.headers.get("accept")
    )
    return await _serve_variant(request, runtime, fetch, asset, resolved)


async def _serve_variant(
    request: AnyRequest, runtime: Runtime, fetch: FetchRequest, asset: Asset, resolved: ResolvedVariant
) -> Response[Any]:
    variant = resolved.variant
    mark(request.scope, CACHE_OUTCOME, _cache_outcome(resolved))
    etag = answer_headers.content_etag(asset, variant)
    headers = {
        "ETag": etag,
        "K-Cache-Status": resolved.cache_status,
        **_cache_headers(fetch.settings),
        **answer_headers.alt_headers(asset),
        **_lqip_headers(variant.lqip),
    }
    if resolved.negotiated:
        headers["Vary"] = "Accept"
    if fetch.selector.return_format is ReturnFormat.DOWNLOAD:
        headers["Content-Disposition"] = answer_headers.content_disposition(asset, variant)
    if answer_headers.etag_matches(request.headers.get("if-none-match"), etag):
        return Response(content=b"", status_code=304, headers=headers)
    stored, chunks = await runtime.objects.stream(variant.bucket, variant.store_key)
    headers["Content-Length"] = str(stored.size)
    if request.method == HttpMethod.HEAD:
        return Response(content=b"", media_type=variant.content_type, headers=headers)
    return Stream(chunks, media_type=variant.content_type, headers=headers)


async def _redirect_answer(
    request: AnyRequest, runtime: Runtime, fetch: FetchRequest, assets: list[Asset]
) -> Response[Any]:
    asset = assets[0]
    strategy = fetch.settings.return_format.redirect.strategy
    headers = _cache_headers(fetch.settings) | answer_headers.alt_headers(asset)
    if strategy is None:
        # Our own content URL negotiates and renders by itself; nothing to resolve here.
        location = delivery.content_url(fetch.base_url, asset, fetch.target.query.transformation)
        return Redirect(path=location, status_code=307, headers=headers)
    resolved = await resolve_variant(
        runtime, fetch.settings, asset, fetch.requested, accept=request.headers.get("accept")
    )
    target = await delivery.object_store_target(runtime, fetch.settings, resolved.variant)
    if target is None:
        return await _serve_variant(request, runtime, fetch, asset, resolved)
    headers["K-Cache-Status"] = resolved.cache_status
    if resolved.negotiated:
        headers["Vary"] = "Accept"
    return Redirect(path=target, status_code=307, headers=headers)


_ANSWERS = {
    ReturnFormat.METADATA: _metadata_answer,
    ReturnFormat.LINK: _link_answer,
    ReturnFormat.CONTENT: _content_answer,
    ReturnFormat.DOWNLOAD: _content_answer,
    ReturnFormat.REDIRECT: _redirect_answer,
}


def _cache_outcome(resolved: ResolvedVariant) -> str:
    return "rendered" if resolved.cache_status == "miss" else "database"


def _cache_headers(settings: PathSettings) -> dict[str, str]:
    value = settings.cache_control.header_value()
    return {"Cache-Control": value} if value else {}


def _lqip_headers(lqip: Lqip) -> dict[str, str]:
    found = {}
    if lqip.blurhash:
        found["K-LQIP-Blurhash"] = lqip.blurhash
    if lqip.thumbhash:
        found["K-LQIP-Thumbhash"] = lqip.thumbhash
    return found


@post("/assets/{asset_path:path}", status_code=201, responses=openapi.STORE_RESPONSES)
async def store(request: AnyRequest, asset_path: str) -> Response[bytes]:
    """Store an image: multipart `metadata` + image part, or JSON with a `url`. 201 with its metadata."""
    runtime = _runtime(request)
    target = _parse_target(request)
    if target.tokens:
        raise BadRequest("Query modifiers after /-/ are not allowed when storing", reason="invalid_selector")
    media_type = require_store_content_type(request.headers.get("content-type", ""))
    sources = runtime.config.source
    if media_type == "multipart/form-data":
        _refuse_declared_length(request, sources.multipart.max_bytes + MULTIPART_OVERHEAD_BYTES)
        upload = await read_multipart(request.headers["content-type"], request.stream(), sources.multipart.max_bytes)
        store_request = StoreRequest(
            path=target.path, metadata=upload.metadata, content=upload.content, source=AssetSource.UPLOAD
        )
    else:
        body = await read_json_body(request.stream())
        if not body.url:
            raise BadRequest(
                "A JSON store request needs a 'url' (or send multipart with an asset)", reason="missing_asset"
            )
        metadata = AssetMetadataInput(alt=body.alt, labels=body.labels, tags=body.tags)
        try:
            content = await runtime.url_downloader.download(body.url)
        except UrlSourceError as error:
            metrics.URL_DOWNLOADS.labels(error.reason).inc()
            raise url_source_api_error(error) from error
        metrics.URL_DOWNLOADS.labels("ok").inc()
        store_request = StoreRequest(
            path=target.path, metadata=metadata, content=content, source=AssetSource.URL, source_url=body.url
        )
    asset = await store_asset(runtime, store_request)
    location = delivery.entry_url(_base_url(request, runtime), asset)
    return _json(metadata_wire(asset), status=201, headers={"Location": location})


def _refuse_declared_length(request: AnyRequest, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes", reason="body_too_large")


@put("/assets/{asset_path:path}", responses=openapi.UPDATE_RESPONSES)
async def update(request: AnyRequest, asset_path: str) -> Response[bytes]:
    """Replace an entry's alt, labels and tags; a field left out is erased."""
    runtime = _runtime(request)
    target = _parse_target(request)
    entry_id = parse_update_selector(target.tokens)
    body = await read_json_body(request.stream())
    if body.url is not None:
        raise BadRequest("Content cannot be changed; 'url' is not allowed on update", reason="invalid_metadata")
    metadata = AssetMetadataInput(alt=body.alt, labels=body.labels, tags=body.tags)
    asset = await update_asset(runtime, target.path, entry_id, metadata)
    return _json(metadata_wire(asset))


@delete(
    "/assets/{asset_path:path}",
    status_code=204,
    responses=openapi.DELETE_RESPONSES,
    operation_class=openapi.DeleteOperation,
)
async def remove(request: AnyRequest, asset_path: str) -> None:
    """Delete what the selector names (entry, newest N, all, recursive), narrowed by labels. Always 204."""
    runtime = _runtime(request)
    target = _parse_target(request)
    if target.query.transformation:
        keys = ", ".join(sorted(target.query.transformation))
        raise BadRequest(f"Transformation parameters ({keys}) have no meaning on delete", reason="invalid_query")
    selector = parse_delete_selector(target.tokens, target.query.limit)
    await delete_assets(runtime, target.path, selector, target.query.labels)


ASSET_ROUTES = [fetch_asset, store, update, remove]
