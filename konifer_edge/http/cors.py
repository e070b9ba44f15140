"""CORS: which web origins a browser lets read an answer, configured per path (``paths."...".cors``).

This layer wraps every other one, the fast path included, and adds its headers as the answer
starts, so a replayed answer, an error and a streamed image get them alike, computed for the
`Origin` of the request at hand (a recorded answer never carries another request's origin). It
also answers preflight requests (`OPTIONS` with `Access-Control-Request-Method`) itself.

An `/assets/...` or `/paths/...` URL follows the settings of the asset path it names; every other
URL (share links, `/shares`, `/bundles`...) those of the root pattern ``/**``.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Message, Receive, Scope, Send

from konifer_edge.config.model import CorsSettings, PathSettings
from konifer_edge.config.paths import PathConfiguration
from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.paths import normalise_asset_path
from konifer_edge.domain.selectors import split_asset_path
from konifer_edge.http.replay import header
from konifer_edge.http.wire import ErrorWire
from konifer_edge.observability.request_log import REJECT_REASON, ROUTE_KIND, mark

Headers = list[tuple[bytes, bytes]]

_PATH_PREFIXES: Final = ("/assets/", "/paths/")
_VARY: Final = b"vary"
# A preflight answer depends on these request headers as well as on the Origin.
_PREFLIGHT_VARY: Final = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def cors_for_paths(app: ASGIApp, paths: PathConfiguration[PathSettings]) -> ASGIApp:
    """Wrap ``app`` with the CORS rules of ``paths``; ``app`` itself when no path has any."""
    every = [paths.root, *(paths.for_pattern(pattern) for pattern in paths.patterns)]
    if not any(settings is not None and settings.cors.enabled for settings in every):
        return app

    async def cors(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        settings = _settings_for(paths, scope)
        if not settings.enabled:
            await app(scope, receive, send)
            return
        origin = header(scope, b"origin")
        if scope["method"] == "OPTIONS" and origin and header(scope, b"access-control-request-method"):
            await _preflight(scope, send, settings, origin)
            return
        added = answer_headers(settings, origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = merge_headers(list(message.get("headers", [])), added)
            await send(message)

        await app(scope, receive, send_with_cors)

    return cors


def _settings_for(paths: PathConfiguration[PathSettings], scope: Scope) -> CorsSettings:
    path: str = scope["path"]
    prefix = next((prefix for prefix in _PATH_PREFIXES if path.startswith(prefix)), None)
    if prefix is None:
        return paths.root.cors
    raw_path: bytes = scope.get("raw_path") or path.encode()
    after_prefix = raw_path.decode("latin-1").split("?", 1)[0][len(prefix) :]
    try:
        asset_path = normalise_asset_path(unquote(split_asset_path(after_prefix)[0], errors="strict"))
    except (BadRequest, UnicodeDecodeError):
        # The route refuses such a path with a 400; the browser may read that refusal under the root's rules.
        return paths.root.cors
    return paths.resolve(asset_path).cors


def allowed_origin(settings: CorsSettings, origin: str) -> str | None:
    """The `Access-Control-Allow-Origin` value for this request's origin, or None when it may not read."""
    if settings.any_origin:
        return "*"
    if origin and origin.lower() in settings.allowed_origins:
        return origin
    return None


def answer_headers(settings: CorsSettings, origin: str) -> Headers:
    """CORS headers of an ordinary (not preflight) answer."""
    value = allowed_origin(settings, origin)
    # Named origins make the answer depend on the Origin: caches must keep one copy per origin, also
    # for requests that send none (else a copy without the header would be served to a browser).
    headers: Headers = [] if settings.any_origin else [(_VARY, b"Origin")]
    if value is None:
        return headers
    headers.append((b"access-control-allow-origin", value.encode("latin-1")))
    if settings.allow_credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    if settings.exposed_headers:
        headers.append((b"access-control-expose-headers", ", ".join(settings.exposed_headers).encode()))
    return headers


def merge_headers(headers: Headers, added: Headers) -> Headers:
    """``headers`` with ``added``; a `Vary` joins the answer's own `Vary` instead of repeating the header."""
    for name, value in added:
        if name == _VARY:
            for index, (existing, existing_value) in enumerate(headers):
                if existing.lower() == _VARY:
                    if value.lower() not in existing_value.lower():
                        headers[index] = (existing, existing_value + b", " + value)
                    break
            else:
                headers.append((name, value))
        else:
            headers.append((name, value))
    return headers


async def _preflight(scope: Scope, send: Send, settings: CorsSettings, origin: str) -> None:
    mark(scope, ROUTE_KIND, "cors_preflight")
    method = header(scope, b"access-control-request-method").strip().upper()
    requested = [name.strip() for name in header(scope, b"access-control-request-headers").split(",") if name.strip()]
    allowed_headers = {name.lower() for name in settings.allowed_headers}
    value = allowed_origin(settings, origin)
    refusal = None
    if value is None:
        refusal = f"The origin {origin[:200]!r} may not read this path"
    elif method not in settings.allowed_methods:
        refusal = f"{method[:20]} is not an allowed method here; allowed: {', '.join(settings.allowed_methods)}"
    elif refused := [name for name in requested if name.lower() not in allowed_headers]:
        refusal = f"Header {refused[0][:64]!r} is not allowed here; allowed: {', '.join(settings.allowed_headers)}"
    if refusal is not None:
        mark(scope, REJECT_REASON, "cors_refused")
        body = msgspec.json.encode(ErrorWire(message=refusal, error="cors_refused"))
        headers: Headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (_VARY, _PREFLIGHT_VARY),
        ]
        await _send(send, 403, headers, body)
        return
    assert value is not None
    headers = [
        (b"access-control-allow-origin", value.encode("latin-1")),
        (b"access-control-allow-methods", ", ".join(settings.allowed_methods).encode()),
        (b"access-control-max-age", str(settings.max_age).encode()),
        (_VARY, _PREFLIGHT_VARY),
        (b"content-length", b"0"),
    ]
    if settings.allowed_headers:
        headers.append((b"access-control-allow-headers", ", ".join(settings.allowed_headers).encode()))
    if settings.allow_credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    await _send(send, 204, headers, b"")


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    content: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(content)
