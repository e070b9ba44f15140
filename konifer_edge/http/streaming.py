"""Streaming a stored object as an answer's body, so that a failing store fails the answer cleanly.

The status line goes out with the first body bytes; after that, no other status can be sent. So
the first chunk is read before the answer starts: a store that fails or stalls until then (its
read timeout) makes the answer the documented `503 dependency_unavailable`. Once the body has
started, a failure can only cut the connection: it is logged with the status that was sent and
counted in `konifer_http_responses_cut_total`, and the connection is closed without a final
chunk, so the client sees a body shorter than its `Content-Length`, never a complete-looking one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from litestar.types import Scope

from konifer_edge.observability import metrics
from konifer_edge.observability.request_log import RESPONSE_CUT, mark
from konifer_edge.storage.object_store import ObjectStoreError

log = logging.getLogger(__name__)


class ResponseCut(Exception):
    """The body of an answer already under way could not be finished."""


async def started_body(chunks: AsyncIterator[bytes], scope: Scope, route: str) -> AsyncIterator[bytes]:
    """`chunks` with its first chunk already read: raises the store's failure before any byte is sent."""
    first = await anext(chunks, b"")
    return _rest(first, chunks, scope, route)


async def _rest(first: bytes, chunks: AsyncIterator[bytes], scope: Scope, route: str) -> AsyncIterator[bytes]:
    sent = len(first)
    yield first
    try:
        async for chunk in chunks:
            sent += len(chunk)
            yield chunk
    except ObjectStoreError as error:
        metrics.RESPONSES_CUT.labels(route).inc()
        mark(scope, RESPONSE_CUT, f"object store failed after {sent} bytes")
        log.warning("cut an answer after %d body bytes: the object store failed: %r", sent, error)
        raise ResponseCut(f"the object store failed after {sent} bytes") from error
