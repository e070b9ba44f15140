"""Choosing the output format: an explicit `format` wins, else the client's `Accept` header.

`image/*`, `*/*` or no header keep the original's format; among our formats the
highest q-value wins, ties going to the one listed first.
"""

from __future__ import annotations

import msgspec

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.formats import ImageFormat

_KEEP_ORIGINAL = object()


class Negotiated(msgspec.Struct, frozen=True):
    format: ImageFormat
    by_accept: bool


def _q_value(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def choose_format(
    explicit: ImageFormat | None,
    accept: str | None,
    original: ImageFormat,
    *,
    candidates: frozenset[ImageFormat] | None = None,
) -> Negotiated:
    """`candidates` narrows what Accept may pick (an animation only goes to formats that animate)."""
    if explicit is not None:
        return Negotiated(format=explicit, by_accept=False)
    if not accept or not accept.strip():
        return Negotiated(format=original, by_accept=False)
    ranked: list[tuple[float, int, ImageFormat | object]] = []
    for position, item in enumerate(accept.split(",")):
        media_range, *parameters = item.strip().split(";")
        media_range = media_range.strip().lower()
        q = _q_value(parameters)
        if q <= 0:
            continue
        if media_range in ("image/*", "*/*"):
            ranked.append((q, position, _KEEP_ORIGINAL))
        else:
            image_format = ImageFormat.from_mime_type(media_range)
            if image_format is not None and (candidates is None or image_format in candidates):
                ranked.append((q, position, image_format))
    if not ranked:
        raise BadRequest(
            f"None of the formats in Accept ({accept[:200]}) can be produced; ask for image/* or a format",
            reason="not_acceptable",
        )
    ranked.sort(key=lambda entry: (-entry[0], entry[1]))
    choice = ranked[0][2]
    chosen = original if choice is _KEEP_ORIGINAL else choice
    assert isinstance(chosen, ImageFormat)
    return Negotiated(format=chosen, by_accept=True)
