"""Choosing the output format, in Konifer's order.

1. an explicit `format` (a profile's `format` arrives here already merged, below the
   request's own);
2. the first concrete image type of `Accept` we can produce, by q-value, ties in header order;
3. the original's format.

`Accept` never refuses a request: Konifer's own client sends `Accept: application/json` on
image fetches, so types that are not ours (`application/json`, `text/html`, `image/bmp`) are
skipped, as are wildcards (`image/*`, `*/*`), which say nothing about which format to make.
A q-value of 0 is a refusal (RFC 9110), so such a type is never chosen.
"""

from __future__ import annotations

import msgspec

from konifer_edge.domain.formats import ImageFormat


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
    ranked: list[tuple[float, int, ImageFormat]] = []
    for position, item in enumerate(accept.split(",")):
        media_range, *parameters = item.strip().split(";")
        image_format = ImageFormat.from_mime_type(media_range.strip())
        if image_format is None or (candidates is not None and image_format not in candidates):
            continue
        q = _q_value(parameters)
        if q > 0:
            ranked.append((q, position, image_format))
    if not ranked:
        return Negotiated(format=original, by_accept=False)
    ranked.sort(key=lambda entry: (-entry[0], entry[1]))
    return Negotiated(format=ranked[0][2], by_accept=True)
