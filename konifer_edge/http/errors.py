"""Every failure becomes a JSON answer `{"message", "error"}`; stack traces go to the log only."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from konifer_edge.domain.errors import ApiError
from konifer_edge.http.wire import ErrorWire
from konifer_edge.observability.request_log import REJECT_REASON, mark
from konifer_edge.storage.object_store import ObjectStoreError

log = logging.getLogger("konifer_edge.errors")

AnyRequest = Request[Any, Any, Any]

_HTTP_REASONS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def error_response(
    status: int,
    reason: str,
    message: str,
    headers: dict[str, str] | None = None,
    request: AnyRequest | None = None,
) -> Response[bytes]:
    # A CDN must not keep an error: the next request may well succeed.
    common = {"Cache-Control": "no-store"}
    if request is not None and _sent_a_body(request):
        # A refusal may come before the body was read to its end (a part over its limit, the wrong
        # type). The server then closes the connection rather than read the rest; saying so keeps
        # a client from sending its next request down a connection that is about to close.
        common["Connection"] = "close"
    return Response(
        content=msgspec.json.encode(ErrorWire(message=message, error=reason)),
        status_code=status,
        media_type="application/json",
        headers={**common, **(headers or {})},
    )


def _sent_a_body(request: AnyRequest) -> bool:
    length = request.headers.get("content-length", "")
    return (length.strip() not in ("", "0")) or "chunked" in request.headers.get("transfer-encoding", "").lower()


def handle_api_error(request: AnyRequest, error: ApiError) -> Response[bytes]:
    mark(request.scope, REJECT_REASON, error.reason)
    headers = {"Retry-After": "1"} if error.status == 503 else None
    if error.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="konifer-edge"'}
    return error_response(error.status, error.reason, error.message, headers, request)


def handle_http_exception(request: AnyRequest, error: HTTPException) -> Response[bytes]:
    status = error.status_code
    message = error.detail if status < 500 else "Internal server error"
    return error_response(status, _HTTP_REASONS.get(status, "http_error"), message, None, request)


def handle_unavailable(request: AnyRequest, error: Exception) -> Response[bytes]:
    log.warning("dependency unavailable during %s: %r", request.method, error)
    return error_response(
        503,
        "dependency_unavailable",
        "A storage dependency is unavailable; retry shortly",
        {"Retry-After": "1"},
        request,
    )


def handle_unexpected(request: AnyRequest, error: Exception) -> Response[bytes]:
    log.exception("unhandled error during %s", request.method, exc_info=error)
    return error_response(500, "internal_error", "Internal server error", None, request)


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    ObjectStoreError: handle_unavailable,
    asyncpg.PostgresConnectionError: handle_unavailable,
    # 57xxx: the server is shutting down, starting up, or cancelled the statement.
    asyncpg.exceptions.OperatorInterventionError: handle_unavailable,
    asyncpg.InterfaceError: handle_unavailable,
    # asyncpg's protocol losing track when the server ends a connection mid-statement (seen while
    # PostgreSQL shuts down): the connection is gone, not the request.
    asyncpg.exceptions.InternalClientError: handle_unavailable,
    # A refused or missing socket: over a Unix socket (PostgreSQL stopped) a connect raises
    # FileNotFoundError, over TCP ConnectionRefusedError; both are OSError, as are timeouts.
    OSError: handle_unavailable,
    Exception: handle_unexpected,
}
