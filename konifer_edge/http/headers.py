"""Header values of fetch answers: alt, download names, ETags, cache control."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

from konifer_edge.domain.formats import ImageFormat
from konifer_edge.domain.models import Asset, Variant

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_UNSAFE_IN_QUOTED_FILENAME = re.compile(r'["\\\x00-\x1f\x7f]')


def alt_header_value(alt: str) -> str:
    """Header-safe alt: kept as is when printable ASCII, else percent-encoded UTF-8."""
    if _PRINTABLE_ASCII.fullmatch(alt):
        return alt
    return quote(alt, safe=" !#$&'()*+,/:;=?@[]~")


def alt_headers(asset: Asset) -> dict[str, str]:
    if asset.alt is None:
        return {}
    value = alt_header_value(asset.alt)
    return {"Konifer-Alt": value, "K-Alt": value}


def content_disposition(asset: Asset, variant: Variant) -> str:
    """`attachment` named after the alt, else the last path segment, plus the format's extension."""
    image_format = ImageFormat.from_short_name(variant.attributes.format)
    extension = f".{image_format.extension}" if image_format else ""
    stem = asset.alt or asset.path.rsplit("/", 1)[-1]
    filename = stem + extension
    if _PRINTABLE_ASCII.fullmatch(filename):
        return f'attachment; filename="{_UNSAFE_IN_QUOTED_FILENAME.sub("_", filename)}"'
    fallback = _UNSAFE_IN_QUOTED_FILENAME.sub("_", filename.encode("ascii", "replace").decode())
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def content_etag(asset: Asset, variant: Variant) -> str:
    """Strong ETag over the bytes and the metadata that travels with them (alt changes it)."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(variant.content_hash.encode())
    digest.update(asset.modified_at.isoformat().encode())
    return f'"{digest.hexdigest()}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [candidate.strip() for candidate in if_none_match.split(",")]
    return "*" in candidates or etag in candidates or f"W/{etag}" in candidates
