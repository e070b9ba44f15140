"""Asset paths: what a client may name, and the one spelling we store it under."""

from __future__ import annotations

import re

from konifer_edge.domain.errors import BadRequest

MAX_PATH_LENGTH = 1024
MAX_PATH_DEPTH = 64
# Konifer's own path alphabet; '.' is absent, so no segment can climb with '..'.
_SEGMENT = re.compile(r"[A-Za-z0-9_~!$'()*+=@-]+")


def normalise_asset_path(raw: str) -> str:
    """Validate a decoded asset path and give its canonical form `/a/b` (case kept, no trailing slash)."""
    trimmed = raw.strip("/")
    if len(trimmed) > MAX_PATH_LENGTH:
        raise BadRequest(f"The asset path is longer than {MAX_PATH_LENGTH} characters", reason="invalid_path")
    if not trimmed:
        raise BadRequest("An asset path is required after /assets/", reason="invalid_path")
    segments = trimmed.split("/")
    if len(segments) > MAX_PATH_DEPTH:
        raise BadRequest(f"The asset path is deeper than {MAX_PATH_DEPTH} segments", reason="invalid_path")
    for segment in segments:
        if not segment:
            raise BadRequest("The asset path has an empty segment ('//')", reason="invalid_path")
        if segment == "-":
            raise BadRequest("'-' is the selector separator and cannot be a path segment", reason="invalid_path")
        if not _SEGMENT.fullmatch(segment):
            raise BadRequest(
                f"Path segment {segment!r} has characters outside A-Z a-z 0-9 and _~!$'()*+=@-",
                reason="invalid_path",
            )
    return "/" + trimmed
