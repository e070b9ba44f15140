"""Reading a request's target: the asset path, its `/-/` modifiers and its query, as sent."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

import msgspec
from litestar import Request, Response

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.paths import normalise_asset_path
from konifer_edge.domain.query import QueryParts, split_query
from konifer_edge.domain.selectors import parse_fetch_selector, split_asset_path
from konifer_edge.domain.transformation import parse_transformation
from konifer_edge.observability.request_log import ROUTE_KIND, mark
from konifer_edge.services.fetch import FetchRequest
from konifer_edge.services.runtime import Runtime
from konifer_edge.services.variants import check_on_demand_mode

ASSETS_PREFIX = "/assets/"
MAX_QUERY_BYTES = 4096

AnyRequest = Request[Any, Any, Any]


class ParsedTarget(msgspec.Struct, frozen=True):
    path: str
    tokens: list[str]
    pairs: list[tuple[str, str]]
    """The query as sent, for routes with parameters of their own (listing, bundles)."""
    query: QueryParts
    """The same query split as fetch and delete read it: labels, transformation, limit."""


def runtime_of(request: AnyRequest) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def query_pairs(request: AnyRequest) -> list[tuple[str, str]]:
    """The query string as sent, as (key, value) pairs in order; 400 when too long or not UTF-8."""
    raw_query: bytes = request.scope.get("query_string", b"")
    if len(raw_query) > MAX_QUERY_BYTES:
        raise BadRequest(f"The query string is longer than {MAX_QUERY_BYTES} bytes", reason="query_too_long")
    try:
        return parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise BadRequest("The query string is not valid UTF-8", reason="invalid_query") from error


def parse_target(request: AnyRequest, prefix: str = ASSETS_PREFIX) -> ParsedTarget:
    """The normalised path after ``prefix``, its `/-/` modifier tokens and its query pairs."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    after_prefix = raw_path.decode("latin-1").split("?", 1)[0][len(prefix) :]
    path_part, tokens = split_asset_path(after_prefix)
    try:
        decoded = unquote(path_part, errors="strict")
    except UnicodeDecodeError as error:
        raise BadRequest("The asset path is not valid UTF-8 once percent-decoded", reason="invalid_path") from error
    pairs = query_pairs(request)
    return ParsedTarget(path=normalise_asset_path(decoded), tokens=tokens, pairs=pairs, query=split_query(pairs))


def fetch_request(request: AnyRequest, runtime: Runtime, target: ParsedTarget) -> FetchRequest:
    """The typed fetch a parsed target asks for: selector, transformation, labels and `Accept`.

    Bad selectors, and transformations on metadata or not allowed at the path, are 400 here,
    before anything is resolved (and counted under the fetch's route kind once it is known).
    """
    selector = parse_fetch_selector(target.tokens, target.query.limit)
    mark(request.scope, ROUTE_KIND, f"fetch_{selector.return_format.value}")
    raw_transformation = target.query.transformation
    if selector.return_format.is_metadata and raw_transformation:
        keys = ", ".join(sorted(raw_transformation))
        raise BadRequest(
            f"Transformation parameters ({keys}) are not allowed on {selector.return_format.value}",
            reason="invalid_query",
        )
    settings = runtime.config.paths.resolve(target.path)
    check_on_demand_mode(settings, raw_transformation)
    return FetchRequest(
        path=target.path,
        selector=selector,
        settings=settings,
        raw_transformation=raw_transformation,
        requested=parse_transformation(raw_transformation, runtime.config.variant_profiles),
        labels=target.query.labels,
        accept=request.headers.get("accept"),
        base_url=public_base_url(request, runtime),
    )


def public_base_url(request: AnyRequest, runtime: Runtime) -> str:
    """The base of every absolute URL we hand out: `http.public-url`, else where the request came in."""
    configured = runtime.config.http.public_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")


def json_answer(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(value), status_code=status, media_type="application/json", headers=headers
    )
