"""Recorded answers: what the fetch route sent, recorded once and replayed without the framework.

The hottest request an image origin sees is the same URL again: one entry of one path,
usually transformed, small enough to be in the body cache; and the metadata of what is at
a path. The first time, the full route answers and `record` keeps what it sent, keyed by
the exact request target (and the `Accept` header when the answer was negotiated, and where the
request came in when a link answer is built from it). The
next time, `serve_recorded_answers`, an ASGI layer in front of the framework, checks that
the path's generation has not moved (every store, update and delete bumps it, on every
node; a render moves only the variants generation, which metadata answers also check) and
sends the recorded headers and body: no routing, parsing, resolving or header building.

What may be recorded is decided in one place, `_recordable`: only answers that no request
detail but the target can change: `GET`s of a public path with a known generation; an
image pinned to an entry, whole (200, no `Range`), with its body in memory; metadata; or
links that do not expire.
Signed URLs qualify because the signature is part of the target. Anything else, any miss
and any doubt goes to the full route, which stays the only place that decides what an
answer is. The 304 and `Content-Length` rules below are the full route's too
(`http/answers.py`), and a HEAD is the GET's headers without the body in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.enums import ScopeType
from litestar.response import Stream
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from konifer_edge.cache.generations import GenerationReader
from konifer_edge.cache.resolution import LruCache
from konifer_edge.domain.models import Variant
from konifer_edge.domain.selectors import ReturnFormat
from konifer_edge.http.headers import etag_matches
from konifer_edge.observability import metrics
from konifer_edge.observability.request_log import CACHE_OUTCOME, ROUTE_KIND
from konifer_edge.services.fetch import FetchOutcome
from konifer_edge.services.runtime import Runtime

MAX_RECORDED_ANSWERS: Final = 20_000
# Recorded answers are checked against the path's generation on every use; the TTL only bounds memory.
_RECORD_TTL_SECONDS: Final = 3600.0


class _Varies(msgspec.Struct, frozen=True):
    """Stands at a target whose answers differ by `Accept`, by where the request came in, or both."""

    accept: bool
    origin: bool

    def key(self, target: str, accept: str, origin: str) -> str:
        return f"{target}\n{accept if self.accept else ''}\n{origin if self.origin else ''}"


AnyRequest = Request[Any, Any, Any]


def not_modified(if_none_match: str | None, etag: str | None) -> bool:
    """The client's copy is current: a 304 with the answer's headers and no body."""
    return etag is not None and etag_matches(if_none_match, etag)


def content_length(size: int) -> str:
    return str(size)


class RecordedAnswer(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    generation: int
    route_kind: str
    headers: list[tuple[bytes, bytes]]
    """Every header of the 304 answer: the 200's but Content-Type and Content-Length."""
    length_and_type: list[tuple[bytes, bytes]]
    """All of the 200's headers: ``headers`` with Content-Length and Content-Type, built once."""
    etag: str | None = None
    body: bytes | None = None
    """The body itself (metadata JSON), or None when it is read from the body cache."""
    body_key: str | None = None
    variant: Variant | None = None
    """The variant an image answer sends, so that its use still counts for idle expiry."""
    counts_as_variant_lookup: bool = False
    generation_now: GenerationReader | None = None
    """Reads the path's generation without waiting (its slot found once, when recorded), if possible."""
    with_variants: bool = False
    """The answer lists variants (metadata): a render at the path retires it too."""


class Replay:
    """This worker's recorded answers, keyed by the request target as sent, and by `Accept` where
    the answer was negotiated; replayed against ``runtime``'s generations and body cache."""

    def __init__(self, runtime: Runtime, max_entries: int = MAX_RECORDED_ANSWERS) -> None:
        self.runtime = runtime
        self._records = max_entries > 0
        self._answers = LruCache(max_entries)

    def record(self, request: AnyRequest, outcome: FetchOutcome, response: Response[Any]) -> None:
        """Keep ``response`` for the fast path when `_recordable` allows it."""
        if not self._records or not _recordable(request.method, outcome, response):
            return
        scope = request.scope
        assert outcome.generation is not None
        content = response.content
        assert isinstance(content, bytes)
        kept = {name: value for name, value in response.headers.items() if name != "Content-Length"}
        selector = outcome.request.selector
        route_kind = f"fetch_{selector.return_format.value}"
        listing = selector.return_format.is_metadata
        generation_now = self.runtime.resolutions.generation_reader(outcome.request.path, with_variants=listing)
        if listing or selector.return_format is ReturnFormat.LINK:
            # JSON made of the rows alone: any write to the path moves its generation, and a render its
            # variants generation, which metadata lists (``outcome.generation`` then combines both). A link
            # adds the URL it hands out, whose base may be where the request came in (without
            # `http.public-url`); its variant exists once answered, as a replayed image's does.
            stored = [resolved for resolved in outcome.variants if resolved.source is not None]
            if "K-Cache-Status" in kept and not listing:
                kept["K-Cache-Status"] = "hit"
            answer = _answer(
                outcome.request.path,
                outcome.generation,
                route_kind,
                kept,
                "application/json",
                content,
                variant=stored[0].variant if stored and not listing else None,
                counts_as_variant_lookup=bool(stored) and not listing,
                generation_now=generation_now,
                with_variants=listing,
            )
            by_accept = not listing and any(resolved.negotiated for resolved in outcome.variants)
            self._put(scope, answer, by_accept=by_accept, by_origin=not listing)
            return
        resolved = outcome.variants[0]
        assert outcome.body is not None
        kept["K-Cache-Status"] = "hit"
        answer = _answer(
            outcome.request.path,
            outcome.generation,
            route_kind,
            kept,
            resolved.variant.content_type,
            None,
            size=len(content),
            etag=kept["ETag"],
            body_key=outcome.body.key,
            variant=resolved.variant,
            counts_as_variant_lookup=resolved.source is not None,
            generation_now=generation_now,
        )
        self._put(scope, answer, by_accept=resolved.negotiated, by_origin=False)

    def _put(self, scope: Scope, answer: RecordedAnswer, *, by_accept: bool, by_origin: bool) -> None:
        target = request_target(scope)
        if by_accept or by_origin:
            varies = _Varies(accept=by_accept, origin=by_origin)
            self._answers.put(target, varies, _RECORD_TTL_SECONDS)
            target = varies.key(target, header(scope, b"accept"), request_origin(scope))
        self._answers.put(target, answer, _RECORD_TTL_SECONDS)

    def find(self, target: str, accept: str, origin: str = "") -> RecordedAnswer | None:
        found = self._answers.get(target)
        if isinstance(found, _Varies):
            found = self._answers.get(found.key(target, accept, origin))
        return found if isinstance(found, RecordedAnswer) else None

    def find_for(self, scope: Scope) -> tuple[RecordedAnswer, bytes, str] | None:
        """The recorded answer to this request, its body and the request's `If-None-Match`, if one
        was recorded and its body is still in memory; whether it is still current is the caller's check."""
        accept = if_none_match = host = ""
        # One pass over the request's headers for the four that matter here.
        for name, value in scope["headers"]:
            if name == b"range":
                return None
            if name == b"accept":
                accept = bytes(value).decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = bytes(value).decode("latin-1")
            elif name == b"host":
                host = bytes(value).decode("latin-1")
        answer = self.find(request_target(scope), accept, _origin(scope, host))
        if answer is None:
            return None
        body = answer.body if answer.body_key is None else self.runtime.bodies.get(answer.body_key)
        return None if body is None else (answer, body, if_none_match)

    def served(self, scope: Scope, answer: RecordedAnswer) -> None:
        """Account for ``answer`` being sent to this request."""
        state = scope.setdefault("state", {})
        state[ROUTE_KIND] = answer.route_kind
        state[CACHE_OUTCOME] = "memory"
        if answer.counts_as_variant_lookup:
            metrics.LOOKUPS.add(_HIT)
        if answer.variant is not None:
            self.runtime.access.touch(answer.variant)


_HIT: Final = ("hit",)


def _recordable(method: str, outcome: FetchOutcome, response: Response[Any]) -> bool:
    """The one rule for what may be replayed: only the target (and Accept) may decide the answer."""
    fetch = outcome.request
    if method != "GET" or fetch.settings.access.read != "public" or outcome.generation is None:
        return False
    if response.status_code != 200 or isinstance(response, Stream) or not isinstance(response.content, bytes):
        return False
    if fetch.selector.return_format.is_metadata:
        return True
    if fetch.selector.return_format is ReturnFormat.LINK:
        # A replay touches at most one variant for idle expiry, so links to several stored variants are not kept.
        stored = sum(resolved.source is not None for resolved in outcome.variants)
        return stored <= 1 and all(target.expires_at is None for target in outcome.links)
    # An entry's image sent here (content, download, or a redirect we serve ourselves), whole and in
    # memory; a newest-at-path image is resolved afresh.
    return (
        fetch.selector.entry_id is not None
        and outcome.body is not None
        and outcome.body.in_memory
        and len(outcome.variants) == 1
    )


def _answer(
    path: str,
    generation: int,
    route_kind: str,
    headers: dict[str, str],
    content_type: str,
    body: bytes | None,
    *,
    size: int | None = None,
    etag: str | None = None,
    body_key: str | None = None,
    variant: Variant | None = None,
    counts_as_variant_lookup: bool = False,
    generation_now: GenerationReader | None = None,
    with_variants: bool = False,
) -> RecordedAnswer:
    listed = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    length = len(body) if body is not None else size
    assert length is not None
    return RecordedAnswer(
        path=path,
        generation=generation,
        route_kind=route_kind,
        headers=listed,
        length_and_type=[
            *listed,
            (b"content-length", content_length(length).encode()),
            (b"content-type", content_type.encode("latin-1")),
        ],
        etag=etag,
        body=body,
        body_key=body_key,
        variant=variant,
        counts_as_variant_lookup=counts_as_variant_lookup,
        generation_now=generation_now,
        with_variants=with_variants,
    )


def replay_of(request: AnyRequest) -> Replay:
    """The worker's replay, made at start-up next to its `Runtime`."""
    replay: Replay = request.app.state.replay
    return replay


def request_target(scope: Scope) -> str:
    """The path and query exactly as sent: the key of a recorded answer."""
    raw_path: bytes = scope.get("raw_path") or str(scope["path"]).encode()
    query: bytes = scope.get("query_string", b"")
    return (raw_path + b"?" + query).decode("latin-1")


def request_origin(scope: Scope) -> str:
    """Scheme and `Host` as sent: what a link's URL is built from when no public URL is configured."""
    return _origin(scope, header(scope, b"host"))


def _origin(scope: Scope, host: str) -> str:
    return f"{scope.get('scheme', 'http')}://{host}"


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def serve_recorded_answers(app: ASGIApp, replay_of: Callable[[], Replay | None]) -> ASGIApp:
    """Wrap ``app`` so that recorded answers are sent directly; everything else reaches ``app``."""

    async def fast_path(scope: Scope, receive: Receive, send: Send) -> None:
        # The whole replay in this one coroutine: an await layer costs as much as a check here.
        found = _recorded(scope, replay_of)
        if found is not None:
            replay, answer, body, if_none_match, head = found
            read = answer.generation_now
            current = (
                read()
                if read is not None
                else await replay.runtime.resolutions.generation(answer.path, with_variants=answer.with_variants)
            )
            if current == answer.generation:
                replay.served(scope, answer)
                headers = answer.length_and_type
                status = 200
                if answer.etag is not None and not_modified(if_none_match, answer.etag):
                    status, headers, body = 304, answer.headers, b""
                elif head:
                    body = b""
                start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
                await send(start)
                content: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
                await send(content)
                return
        await app(scope, receive, send)

    return fast_path


def _recorded(
    scope: Scope, replay_of: Callable[[], Replay | None]
) -> tuple[Replay, RecordedAnswer, bytes, str, bool] | None:
    """The replay, the answer, its body, the request's `If-None-Match` and whether it is a HEAD."""
    if scope["type"] != ScopeType.HTTP or scope["method"] not in _FETCHING or not scope["path"].startswith("/assets/"):
        return None
    replay = replay_of()
    found = replay.find_for(scope) if replay is not None else None
    return None if replay is None or found is None else (replay, *found, scope["method"] == "HEAD")


_FETCHING: Final = frozenset({"GET", "HEAD"})
