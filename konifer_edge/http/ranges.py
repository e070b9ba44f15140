"""HTTP Range on content: one byte range, as browsers and CDNs ask for media."""

from __future__ import annotations

import re

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    pass


def requested_range(header: str | None, if_range: str | None, etag: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range to send, or None for the whole body.

    Several ranges, or a malformed header, get the whole body (RFC 9110 lets a server
    ignore Range); a range wholly past the end is `Unsatisfiable` (416).
    """
    if not header or (if_range is not None and if_range.strip() != etag):
        return None
    match = _SINGLE_RANGE.fullmatch(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise Unsatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise Unsatisfiable
    if end < start:
        return None
    return start, end
