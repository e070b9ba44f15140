"""Share links over HTTP: `POST/GET /shares`, `GET/DELETE /shares/{id}`, and the token URL `/s/{token}`.

Managing shares takes an API key like any other write (or none while no key exists): creating
and revoking need `assets:write` on the share's path, reading records `assets:read`. The token
URL needs nothing else: the token is the credential, so neither a key (even on a key-only
path) nor a URL signature is asked for. It takes no query parameters, so whoever holds a link
can fetch exactly what was shared and cannot make the service render anything else.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from litestar import Request, Response, delete, get, post, route
from litestar.enums import HttpMethod
from litestar.params import FromPath

from konifer_edge.domain.errors import ApiError, BadRequest
from konifer_edge.domain.paths import normalise_asset_path
from konifer_edge.domain.query import transformation_from_json
from konifer_edge.domain.selectors import FetchSelector, ReturnFormat, parse_entry_id, split_asset_path
from konifer_edge.domain.shares import share_expiry
from konifer_edge.http import openapi
from konifer_edge.http.answers import answer_fetch, conditions_of
from konifer_edge.http.targets import public_base_url, query_pairs, runtime_of
from konifer_edge.http.uploads import decode_json, read_body, require_json_content_type
from konifer_edge.http.wire import ShareCreateWire, share_wire
from konifer_edge.observability import metrics
from konifer_edge.observability.request_log import CACHE_OUTCOME, ROUTE_KIND, mark
from konifer_edge.security.access import require_api_key
from konifer_edge.security.api_keys import READ, WRITE, authorize
from konifer_edge.services import shares
from konifer_edge.services.fetch import FetchRequest, resolve_variants

AnyRequest = Request[Any, Any, Any]

SHARE_LINK_PREFIX: Final = "/s/"
# Revocation, expiry and download limits must hold on the next request, so no cache may keep an
# answer; and the token in the page's own URL must not travel on in a Referer.
_SERVE_HEADERS: Final = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
# Records name paths, and a creation answer carries the token: nothing to keep in any cache.
_RECORD_HEADERS: Final = {"Cache-Control": "no-store"}
_GONE_OUTCOMES: Final = {"share_revoked": "revoked", "share_expired": "expired", "share_exhausted": "exhausted"}
SHARE_SERVE_OUTCOMES: Final = ("served", "not_counted", "not_found", "refused", *_GONE_OUTCOMES.values())


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(value),
        status_code=status,
        media_type="application/json",
        headers={**_RECORD_HEADERS, **(headers or {})},
    )


def _query(request: AnyRequest, allowed: frozenset[str]) -> dict[str, str]:
    """The query parameters, each at most once and each one of ``allowed``."""
    found: dict[str, str] = {}
    for key, value in query_pairs(request):
        if key not in allowed:
            expected = ", ".join(sorted(allowed)) or "none"
            raise BadRequest(f"Unknown query parameter '{key[:64]}' (expected: {expected})", reason="invalid_query")
        if key in found:
            raise BadRequest(f"Query parameter '{key}' is given more than once", reason="invalid_query")
        found[key] = value
    return found


def _share_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest(f"'{raw[:64]}' is not a share id (a UUID)", reason="invalid_share_id") from None


def share_link(base_url: str, token: str) -> str:
    return f"{base_url}{SHARE_LINK_PREFIX}{token}"


# --- managing shares ------------------------------------------------------------------------------


@post(
    "/shares",
    status_code=201,
    responses=openapi.SHARE_CREATE_RESPONSES,
    operation_class=openapi.ShareCreateOperation,
)
async def create_share(request: AnyRequest) -> Response[bytes]:
    """Create a share link to an asset, or to whatever is newest at a path. 201 with its token, shown once."""
    mark(request.scope, ROUTE_KIND, "share_create")
    runtime = runtime_of(request)
    # Key and scope before the body is read; its prefix once the body has named the path.
    key = await require_api_key(request, WRITE, None, open_until_first_key=True)
    _query(request, frozenset())
    require_json_content_type(request.headers.get("content-type", ""))
    body = decode_json(await read_body(request.stream()), ShareCreateWire, what="share request", reason="invalid_share")
    path = normalise_asset_path(body.path)
    if key is not None:
        authorize(key, scope=WRITE, path=path)
    now = datetime.now(UTC)
    created = await shares.create_share(
        runtime,
        shares.ShareRequest(
            path=path,
            entry_id=body.entry_id,
            transformation=transformation_from_json(body.transformation),
            expires_at=share_expiry(body.expires_at, body.expires_in, now),
            max_downloads=body.max_downloads,
        ),
        now,
    )
    base_url = public_base_url(request, runtime)
    record = share_wire(created.share, now, token=created.token, url=share_link(base_url, created.token))
    return _json(record, status=201, headers={"Location": f"{base_url}/shares/{created.share.id}"})


@get("/shares", responses=openapi.SHARE_LIST_RESPONSES, operation_class=openapi.ShareListOperation)
async def list_shares(request: AnyRequest) -> Response[bytes]:
    """The shares of one asset (`?asset=/path/-/entry/{id}`) or at one path (`?path=/path`), newest first."""
    mark(request.scope, ROUTE_KIND, "share_list")
    runtime = runtime_of(request)
    key = await require_api_key(request, READ, None, open_until_first_key=True)
    query = _query(request, frozenset({"asset", "path"}))
    if len(query) != 1:
        raise BadRequest("Give exactly one of ?asset=/path/-/entry/{id} or ?path=/path", reason="invalid_query")
    if "path" in query:
        path, entry_id = normalise_asset_path(query["path"]), None
    else:
        path, entry_id = _asset_reference(query["asset"])
    if key is not None:
        authorize(key, scope=READ, path=path)
    now = datetime.now(UTC)
    return _json([share_wire(share, now) for share in await shares.list_shares(runtime, path, entry_id)])


def _asset_reference(raw: str) -> tuple[str, int]:
    """`/users/123/-/entry/0` as a path and an entry id."""
    head, tokens = split_asset_path(raw.strip("/"))
    if len(tokens) != 2 or tokens[0].lower() != "entry":
        raise BadRequest("'asset' names one entry: /path/-/entry/{id}", reason="invalid_query")
    return normalise_asset_path(head), parse_entry_id(tokens[1])


@get("/shares/{share_id:str}", responses=openapi.SHARE_GET_RESPONSES)
async def get_share(request: AnyRequest, share_id: FromPath[str]) -> Response[bytes]:
    """One share record (never its token)."""
    mark(request.scope, ROUTE_KIND, "share_get")
    runtime = runtime_of(request)
    key = await require_api_key(request, READ, None, open_until_first_key=True)
    _query(request, frozenset())
    share = await shares.find_share(runtime, _share_id(share_id))
    if key is not None:
        authorize(key, scope=READ, path=share.path)
    return _json(share_wire(share, datetime.now(UTC)))


@delete("/shares/{share_id:str}", status_code=204, responses=openapi.SHARE_REVOKE_RESPONSES)
async def revoke_share(request: AnyRequest, share_id: FromPath[str]) -> None:
    """Revoke a share: its link answers 410 from the next request on. Revoking again is 204 too."""
    mark(request.scope, ROUTE_KIND, "share_revoke")
    runtime = runtime_of(request)
    key = await require_api_key(request, WRITE, None, open_until_first_key=True)
    _query(request, frozenset())
    share = await shares.find_share(runtime, _share_id(share_id))
    if key is not None:
        authorize(key, scope=WRITE, path=share.path)
    await shares.revoke_share(runtime, share, datetime.now(UTC))


# --- the token URL --------------------------------------------------------------------------------


@route(
    "/s/{token:str}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    responses=openapi.SHARE_SERVE_RESPONSES,
    operation_class=openapi.ShareServeOperation,
)
async def serve_share(request: AnyRequest, token: FromPath[str]) -> Response[Any]:
    """The shared image: the asset, or the newest at the shared path. No API key, no signature."""
    return await _serve(request, token, None)


@route(
    "/s/{token:str}/-/entry/{entry_id:str}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    responses=openapi.SHARE_SERVE_RESPONSES,
    operation_class=openapi.ShareServeOperation,
)
async def serve_share_entry(request: AnyRequest, token: FromPath[str], entry_id: FromPath[str]) -> Response[Any]:
    """One entry at the path a path share shares."""
    return await _serve(request, token, entry_id)


async def _serve(request: AnyRequest, token: str, entry: str | None) -> Response[Any]:
    mark(request.scope, ROUTE_KIND, "share_serve")
    counted = False
    try:
        if request.scope.get("query_string"):
            raise BadRequest(
                "A share link takes no query parameters; its transformation is fixed when it is created",
                reason="invalid_query",
            )
        runtime = runtime_of(request)
        opened = await shares.open_share(
            runtime, token, None if entry is None else parse_entry_id(entry), datetime.now(UTC)
        )

        async def count_download() -> None:
            nonlocal counted
            await shares.claim_download(runtime, opened.share, datetime.now(UTC))
            counted = True

        fetch = FetchRequest(
            path=opened.share.path,
            selector=FetchSelector(return_format=ReturnFormat.CONTENT, entry_id=opened.asset.entry_id),
            settings=opened.settings,
            raw_transformation=opened.share.transformation,
            requested=opened.requested,
            accept=request.headers.get("accept"),
            base_url=public_base_url(request, runtime),
        )
        # The generation is left out: share answers are never recorded for the fast path (each serve counts).
        outcome = await resolve_variants(runtime, fetch, [opened.asset], opened.asset_outcome)
        mark(request.scope, CACHE_OUTCOME, outcome.cache_outcome)
        response = await answer_fetch(
            outcome,
            conditions_of(request),
            runtime.config,
            request.scope,
            own_headers=dict(_SERVE_HEADERS),
            before_body=count_download,
        )
    except ApiError as error:
        metrics.SHARE_SERVES.labels(_refusal_outcome(error)).inc()
        raise
    metrics.SHARE_SERVES.labels("served" if counted else "not_counted").inc()
    return response


def _refusal_outcome(error: ApiError) -> str:
    if error.status == 404:
        return "not_found"
    return _GONE_OUTCOMES.get(error.reason, "refused")


SHARE_ROUTES = [create_share, list_shares, get_share, revoke_share, serve_share, serve_share_entry]
