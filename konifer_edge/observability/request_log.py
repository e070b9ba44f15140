"""Per-request accounting: one JSON log line and the request metrics, with a request id.

Handlers say what they did (route kind, cache outcome) in the ASGI scope's state; this
middleware reads it once the answer is sent. User input reaches the log only as
JSON-escaped strings.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any, Final

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from konifer_edge.observability import metrics
from konifer_edge.observability.logs import ACCESS_LINES, ACCESS_LOGGER, fields, utc_time, writes_lines_directly

log = logging.getLogger(ACCESS_LOGGER)

# Every answer: no browser may guess a type other than the one declared.
_ALWAYS = ((b"x-content-type-options", b"nosniff"),)

ROUTE_KIND = "konifer_route"
CACHE_OUTCOME = "konifer_cache"
REJECT_REASON = "konifer_reject_reason"
# Why an answer whose status was already sent could not be finished (its connection was cut).
RESPONSE_CUT = "konifer_response_cut"
_REQUEST_ID_HEADER = b"x-request-id"
_MAX_REQUEST_ID = 128


class AccessLine(msgspec.Struct, omit_defaults=True):
    """A request's access line: the fields every line starts with (observability/logs.py), then its own."""

    time: str
    level: str
    logger: str
    message: str
    method: str
    path: str
    route: str
    status: int
    duration_ms: float
    cache: str
    bytes: int
    request_id: str
    failed: str | None = None
    """Set when the answer was cut after its status was sent: `status` is what the client got."""


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_HEADER and 0 < len(value) <= _MAX_REQUEST_ID and value.isascii():
            text: str = value.decode("ascii")
            if text.isprintable():
                return text
    return f"{_id_prefix}{next(_id_counter):016x}"


def _new_id_series() -> None:
    """Request ids are this process's random prefix and a counter: unique without a syscall each."""
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count()


_id_prefix = ""
_id_counter = itertools.count()
_new_id_series()
# A forked worker must not repeat its parent's (or a sibling's) ids.
os.register_at_fork(after_in_child=_new_id_series)


_ASSET_ROUTES = {"GET": "fetch", "HEAD": "fetch", "POST": "store", "PUT": "update", "DELETE": "delete"}
_OTHER_ROUTES = {"/health": "health", "/ready": "ready", "/metrics": "metrics"}


def _route_of(scope: Scope) -> str:
    """The route kind when no handler said (refused before it ran, or no handler at all)."""
    path = str(scope.get("path", ""))
    if path.startswith("/assets/"):
        return _ASSET_ROUTES.get(str(scope.get("method", "")), "other")
    if path.startswith(_SHARE_LINK_PREFIX):
        return "share_serve"
    if path == "/shares" or path.startswith("/shares/"):
        return "shares"
    return _OTHER_ROUTES.get(path, "other")


_SHARE_LINK_PREFIX = "/s/"


def logged_path(path: str) -> str:
    """The path as logged: a share link's token is a credential, and logs are read by more people."""
    if not path.startswith(_SHARE_LINK_PREFIX):
        return path[:512]
    _, _, after_token = path[len(_SHARE_LINK_PREFIX) :].partition("/")
    return (_SHARE_LINK_PREFIX + "[token]" + ("/" + after_token if after_token else ""))[:512]


def mark(scope: Scope, key: str, value: str) -> None:
    """Say something about this request for its log line and metrics."""
    scope.setdefault("state", {})[key] = value


def request_accounting(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *_ALWAYS, (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = state.get(ROUTE_KIND) or _route_of(scope)
            cache = state.get(CACHE_OUTCOME, "none")
            metrics.HTTP_REQUESTS.add((route, _STATUS_CLASSES.get(status) or f"{status // 100}xx", cache))
            metrics.HTTP_DURATION.observe((route,), duration)
            metrics.HTTP_BYTES.add((route,), sent)
            if 400 <= status < 500:
                metrics.REFUSALS.add((state.get(REJECT_REASON, "other"),))
            if route not in _UNLOGGED_ROUTES and log.isEnabledFor(logging.INFO):
                _log_access(scope, state, route, status, duration, cache, sent, request_id)

    return middleware


_STATUS_CLASSES = {status: f"{status // 100}xx" for status in range(100, 600)}
_UNLOGGED_ROUTES = frozenset({"health", "metrics"})


def _log_access(
    scope: Scope,
    state: dict[str, Any],
    route: str,
    status: int,
    duration: float,
    cache: str,
    sent: int,
    request_id: str,
) -> None:
    method = str(scope.get("method", ""))
    path = logged_path(str(scope.get("path", "")))
    line = AccessLine(
        time=utc_time(time.time()),
        level="info",
        logger=ACCESS_LOGGER,
        message=f"{method} {path} {status}",
        method=method,
        path=path,
        route=route,
        status=status,
        duration_ms=round(duration * 1000, 3),
        cache=cache,
        bytes=sent,
        request_id=request_id,
        failed=state.get(RESPONSE_CUT),
    )
    if writes_lines_directly():
        ACCESS_LINES.add(line)
    else:
        log.info("%s", line.message, extra=fields(record_fields(line)))


def record_fields(line: AccessLine) -> dict[str, Any]:
    """The line's own fields as a log record carries them (unset ones left out, as the Struct omits them):
    the formatter writes the common ones itself."""
    return {
        name: value
        for name, value in msgspec.structs.asdict(line).items()
        if name not in _COMMON_FIELDS and value is not None
    }


_COMMON_FIELDS: Final = frozenset({"time", "level", "logger", "message"})
