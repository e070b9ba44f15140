"""Answers the fetch route sent for targets worth answering again, per worker (see http/fast_path.py)."""

from __future__ import annotations

from typing import Final

import msgspec

from konifer_edge.cache.resolution import LruCache
from konifer_edge.domain.models import Variant

MAX_RECORDED_ANSWERS: Final = 20_000
# Recorded answers are checked against the path's generation on every use; the TTL only bounds memory.
_RECORD_TTL_SECONDS: Final = 3600.0
_VARIES: Final = "varies by Accept"


class RecordedAnswer(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    generation: int
    route_kind: str
    headers: list[tuple[bytes, bytes]]
    """Every header of the 200 answer except Content-Type and Content-Length."""
    content_type: bytes
    etag: str | None = None
    body: bytes | None = None
    """The body itself (metadata JSON), or None when it is read from the body cache."""
    body_key: str | None = None
    variant: Variant | None = None
    """The variant an image answer sends, so that its use still counts for idle expiry."""
    counts_as_variant_lookup: bool = False


class RecordedAnswers:
    """Keyed by the request target as sent, and by `Accept` where the answer was negotiated."""

    def __init__(self, max_entries: int = MAX_RECORDED_ANSWERS) -> None:
        self._answers = LruCache(max_entries)

    def record(self, target: str, accept: str, answer: RecordedAnswer, *, varies_by_accept: bool) -> None:
        if varies_by_accept:
            self._answers.put(target, _VARIES, _RECORD_TTL_SECONDS)
            target = f"{target}\n{accept}"
        self._answers.put(target, answer, _RECORD_TTL_SECONDS)

    def find(self, target: str, accept: str) -> RecordedAnswer | None:
        found = self._answers.get(target)
        if found == _VARIES:
            found = self._answers.get(f"{target}\n{accept}")
        return found if isinstance(found, RecordedAnswer) else None
