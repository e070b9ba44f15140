"""The asset routes. Each handler parses the request into typed values, calls one service, and answers."""

from __future__ import annotations

from typing import Any

from litestar import Response, delete, post, put, route
from litestar.enums import HttpMethod
from litestar.params import FromPath

from konifer_edge.domain.errors import BadRequest, PayloadTooLarge
from konifer_edge.domain.metadata_rules import validate_metadata
from konifer_edge.domain.models import AssetMetadataInput, AssetSource
from konifer_edge.domain.selectors import parse_delete_selector, parse_update_selector
from konifer_edge.http import collections, openapi
from konifer_edge.http.answers import answer_fetch, conditions_of
from konifer_edge.http.replay import replay_of
from konifer_edge.http.targets import (
    AnyRequest,
    fetch_request,
    json_answer,
    parse_target,
    public_base_url,
    runtime_of,
)
from konifer_edge.http.uploads import (
    MAX_METADATA_BYTES,
    MULTIPART_FRAMING_BYTES,
    read_json_body,
    read_multipart,
    require_store_content_type,
)
from konifer_edge.http.url_errors import url_source_api_error
from konifer_edge.http.wire import metadata_wire
from konifer_edge.observability.request_log import CACHE_OUTCOME, mark
from konifer_edge.security.access import enforce_access
from konifer_edge.services import delivery
from konifer_edge.services.delete import delete_assets
from konifer_edge.services.fetch import resolve_fetch
from konifer_edge.services.sources import SourceParts, download_source
from konifer_edge.services.store import StoreRequest, store_asset
from konifer_edge.services.update import update_asset
from konifer_edge.sources.requested import UrlSource, choose_source
from konifer_edge.sources.s3_object import S3ObjectSource
from konifer_edge.sources.url import UrlSourceError

# Room for the metadata part and multipart framing on top of the asset's own limit.
MULTIPART_OVERHEAD_BYTES = MAX_METADATA_BYTES + MULTIPART_FRAMING_BYTES


@route(
    "/assets/{asset_path:path}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    responses=openapi.FETCH_RESPONSES,
    operation_class=openapi.FetchOperation,
)
async def fetch_asset(request: AnyRequest, asset_path: FromPath[str]) -> Response[Any]:
    """Fetch the asset(s) a selector names as link, content, download, redirect or metadata."""
    runtime = runtime_of(request)
    target = parse_target(request)
    if target.tokens and target.tokens[0].lower() in collections.VIEWS:
        return await collections.answer_collection_view(request, runtime, target)
    await enforce_access(request, target.path)  # signature and keys: security/access.py says why here
    fetch = fetch_request(request, runtime, target)
    outcome = await resolve_fetch(runtime, fetch, lambda tier: mark(request.scope, CACHE_OUTCOME, tier))
    mark(request.scope, CACHE_OUTCOME, outcome.cache_outcome)
    response = await answer_fetch(outcome, conditions_of(request), runtime.config, request.scope)
    replay_of(request).record(request, outcome, response)
    return response


@post("/assets/{asset_path:path}", status_code=201, responses=openapi.STORE_RESPONSES)
async def store(request: AnyRequest, asset_path: FromPath[str]) -> Response[bytes]:
    """Store an image: multipart `metadata` + image part, or JSON naming a source. 201 with its metadata."""
    runtime = runtime_of(request)
    target = parse_target(request)
    await enforce_access(request, target.path)
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
        metadata = AssetMetadataInput(alt=body.alt, labels=body.labels, tags=body.tags)
        source = choose_source(body.source, body.url)
        store_request = await _download_source(runtime, target.path, metadata, source)
    asset = await store_asset(runtime, store_request)
    location = delivery.entry_url(public_base_url(request, runtime), asset)
    return json_answer(metadata_wire(asset, runtime.config.compat.wire), status=201, headers={"Location": location})


async def _download_source(
    parts: SourceParts, path: str, metadata: AssetMetadataInput, source: UrlSource | S3ObjectSource
) -> StoreRequest:
    validate_metadata(metadata)  # a bad body is refused before anything is fetched
    try:
        content = await download_source(parts, source)
    except UrlSourceError as error:
        raise url_source_api_error(error) from error
    if isinstance(source, S3ObjectSource):
        return StoreRequest(
            path=path, metadata=metadata, content=content, source=AssetSource.ARN, source_url=source.arn
        )
    return StoreRequest(path=path, metadata=metadata, content=content, source=AssetSource.URL, source_url=source.url)


def _refuse_declared_length(request: AnyRequest, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes", reason="body_too_large")


@put("/assets/{asset_path:path}", responses=openapi.UPDATE_RESPONSES)
async def update(request: AnyRequest, asset_path: FromPath[str]) -> Response[bytes]:
    """Replace an entry's alt, labels and tags; a field left out is erased."""
    runtime = runtime_of(request)
    target = parse_target(request)
    await enforce_access(request, target.path)
    entry_id = parse_update_selector(target.tokens, target.query.limit)
    body = await read_json_body(request.stream())
    if body.names_a_source:
        raise BadRequest(
            "Content cannot be changed; 'url' and 'source' are not allowed on update", reason="invalid_metadata"
        )
    metadata = AssetMetadataInput(alt=body.alt, labels=body.labels, tags=body.tags)
    asset = await update_asset(runtime, target.path, entry_id, metadata)
    return json_answer(metadata_wire(asset, runtime.config.compat.wire))


@delete(
    "/assets/{asset_path:path}",
    status_code=204,
    responses=openapi.DELETE_RESPONSES,
    operation_class=openapi.DeleteOperation,
)
async def remove(request: AnyRequest, asset_path: FromPath[str]) -> None:
    """Delete what the selector names (entry, newest N, all, recursive), narrowed by labels. Always 204."""
    runtime = runtime_of(request)
    target = parse_target(request)
    await enforce_access(request, target.path)
    if target.query.transformation:
        keys = ", ".join(sorted(target.query.transformation))
        raise BadRequest(f"Transformation parameters ({keys}) have no meaning on delete", reason="invalid_query")
    selector = parse_delete_selector(target.tokens, target.query.limit)
    await delete_assets(runtime, target.path, selector, target.query.labels)


ASSET_ROUTES = [fetch_asset, store, update, remove]
