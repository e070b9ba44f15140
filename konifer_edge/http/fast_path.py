"""Answers to repeated fetches, sent without going through the framework.

The hottest request an image origin sees is the same URL again: one entry of one path,
usually transformed, small enough to be in the body cache; and the metadata of what is at
a path. The first time, the full route answers and records what it sent here, keyed by
the exact request target (and the `Accept` header when the answer was negotiated). The
next time, this ASGI layer checks that the path's generation has not moved (every store,
update, delete and render bumps it, on every node) and sends the recorded headers and
body: no routing, parsing, resolving or header building.

Only answers that no request detail but the target can change are recorded: `GET`s of a
public path; an image pinned to an entry, whole (no `Range`), with its body in memory; or
metadata. Signed URLs qualify because the signature is part of the target. Anything else,
any miss and any doubt goes to the full route, which stays the only place that decides
what an answer is.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Scope,
    Send,
)

from konifer_edge.http.headers import etag_matches
from konifer_edge.observability import metrics
from konifer_edge.observability.request_log import CACHE_OUTCOME, ROUTE_KIND, mark
from konifer_edge.services.runtime import Runtime


def request_target(scope: Scope) -> str:
    """The path and query exactly as sent: the key of a recorded answer."""
    raw_path: bytes = scope.get("raw_path") or str(scope["path"]).encode()
    query: bytes = scope.get("query_string", b"")
    return (raw_path + b"?" + query).decode("latin-1")


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def serve_recorded_answers(app: ASGIApp, runtime_of: Callable[[], Runtime | None]) -> ASGIApp:
    """Wrap ``app`` so that recorded answers are sent directly; everything else reaches ``app``."""

    async def fast_path(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["path"].startswith("/assets/"):
            runtime = runtime_of()
            fetching = scope["method"] in ("GET", "HEAD")
            if fetching and runtime is not None and await _answer_recorded(runtime, scope, send):
                return
        await app(scope, receive, send)

    return fast_path


async def _answer_recorded(runtime: Runtime, scope: HTTPScope, send: Send) -> bool:
    if header(scope, b"range"):
        return False
    answer = runtime.recorded_answers.find(request_target(scope), header(scope, b"accept"))
    if answer is None:
        return False
    body = answer.body if answer.body_key is None else runtime.bodies.get(answer.body_key)
    if body is None or await runtime.resolutions.generation(answer.path) != answer.generation:
        return False
    mark(scope, ROUTE_KIND, answer.route_kind)
    mark(scope, CACHE_OUTCOME, "memory")
    if answer.counts_as_variant_lookup:
        metrics.VARIANT_LOOKUPS.labels("hit").inc()
    if answer.variant is not None:
        runtime.access.touch(answer.variant)
    if answer.etag is not None and etag_matches(header(scope, b"if-none-match"), answer.etag):
        await _send(send, 304, answer.headers, b"")
        return True
    headers = [*answer.headers, (b"content-length", str(len(body)).encode()), (b"content-type", answer.content_type)]
    await _send(send, 200, headers, b"" if scope["method"] == "HEAD" else body)
    return True


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    content: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(content)
