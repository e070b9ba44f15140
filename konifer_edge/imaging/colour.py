"""Which colour space an image is in, named as Konifer names it in `attributes.colorSpace`.

An embedded ICC profile decides when there is one: libvips reports an 8-bit RGB image as
sRGB whatever its profile says, so the interpretation is only the fallback.
"""

from __future__ import annotations

import re
import struct

from konifer_edge.imaging.vips import pyvips

SRGB = "srgb"
P3 = "p3"
ADOBE_RGB = "adobe_rgb"
GRAYSCALE = "grayscale"
CMYK = "cymk"  # Konifer's own spelling, kept for its clients
UNKNOWN = "unknown"
UNNAMED_PROFILE = "Unknown Embedded Profile"

_BY_INTERPRETATION = {
    "srgb": SRGB,
    "rgb": SRGB,
    "rgb16": SRGB,
    "b-w": GRAYSCALE,
    "grey16": GRAYSCALE,
    "cmyk": CMYK,
}
_ICC_HEADER = 128
# Some tools write the v4 form as text, e.g. "1 enUS(Display P3)"; the name is inside.
_WRAPPED = re.compile(r"^\s*\d+\s+[a-z]{4}\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)


def detect_colour_space(image: pyvips.Image) -> str:
    """Konifer's name for the image's colour space: from its ICC profile, else its interpretation."""
    if "icc-profile-data" in image.get_fields():
        return colour_space_of_profile(bytes(image.get("icc-profile-data")))
    return _BY_INTERPRETATION.get(str(image.interpretation), UNKNOWN)


def colour_space_of_profile(profile: bytes) -> str:
    if profile[16:20] == b"GRAY":
        return GRAYSCALE
    description = _unwrapped(profile_description(profile)).strip().lower()
    if not description:
        return UNNAMED_PROFILE
    if any(name in description for name in ("display p3", "apple rgb", "sp3c")):
        return P3
    if "adobe rgb" in description:
        return ADOBE_RGB
    if "srgb" in description:
        return SRGB
    if "cmyk" in description:
        return CMYK
    return description


def _unwrapped(description: str) -> str:
    match = _WRAPPED.match(description)
    return match.group(1) if match else description


def profile_description(profile: bytes) -> str:
    """The profile's `desc` tag as text ("" when absent or malformed): ICC v2 text or v4 Unicode."""
    try:
        (count,) = struct.unpack_from(">I", profile, _ICC_HEADER)
        for index in range(min(count, 1000)):
            signature, offset, size = struct.unpack_from(">4sII", profile, _ICC_HEADER + 4 + 12 * index)
            if signature == b"desc":
                return _tag_text(profile[offset : offset + size])
    except struct.error:
        return ""
    return ""


def _tag_text(tag: bytes) -> str:
    kind = tag[:4]
    if kind == b"desc":  # textDescriptionType: an ASCII count, then the text with its NUL
        (length,) = struct.unpack_from(">I", tag, 8)
        return tag[12 : 12 + length].split(b"\0", 1)[0].decode("latin-1")
    if kind == b"mluc":  # multiLocalizedUnicodeType: records of UTF-16BE, English preferred
        records, record_size = struct.unpack_from(">II", tag, 8)
        texts: list[tuple[bytes, str]] = []
        for index in range(min(records, 100)):
            language, length, offset = struct.unpack_from(">4sII", tag, 16 + record_size * index)
            texts.append((language, tag[offset : offset + length].decode("utf-16-be", "replace")))
        for language, text in texts:
            if language == b"enUS":
                return text
        return texts[0][1] if texts else ""
    if kind == b"text":
        return tag[8:].split(b"\0", 1)[0].decode("latin-1")
    return ""
