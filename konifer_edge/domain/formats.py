"""The seven image formats Konifer stores, and how to recognise them from their bytes.

Content types declared by clients are never trusted: a format is decided from the
file's own signature, then confirmed by the decoder's header probe.
"""

from __future__ import annotations

import enum
import uuid


class ImageFormat(enum.Enum):
    """A supported format: its Konifer name, MIME type and file extension."""

    JPEG = ("jpg", "image/jpeg", "jpeg")
    PNG = ("png", "image/png", "png")
    WEBP = ("webp", "image/webp", "webp")
    AVIF = ("avif", "image/avif", "avif")
    JPEG_XL = ("jxl", "image/jxl", "jxl")
    HEIC = ("heic", "image/heic", "heic")
    GIF = ("gif", "image/gif", "gif")

    def __init__(self, short_name: str, mime_type: str, extension: str) -> None:
        self.short_name = short_name
        self.mime_type = mime_type
        self.extension = extension

    @classmethod
    def from_short_name(cls, name: str) -> ImageFormat | None:
        return _BY_SHORT_NAME.get(name.lower())

    @classmethod
    def from_mime_type(cls, mime_type: str) -> ImageFormat | None:
        return _BY_MIME_TYPE.get(mime_type.lower())


def new_store_key(image_format: ImageFormat) -> str:
    """A fresh object key, `<uuid>.<extension>` as Konifer names its objects (`.jpeg` for jpg).

    Keys are opaque once stored: objects written under bare UUIDs keep being read by their key.
    """
    return f"{uuid.uuid4()}.{image_format.extension}"


_BY_SHORT_NAME = {f.short_name: f for f in ImageFormat} | {"jpeg": ImageFormat.JPEG}
_BY_MIME_TYPE = {f.mime_type: f for f in ImageFormat}

ALL_MIME_TYPES: tuple[str, ...] = tuple(f.mime_type for f in ImageFormat)

# ISO-BMFF brands: AVIF and HEIC share the container, so the brand decides.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


def sniff_format(head: bytes) -> ImageFormat | None:
    """Recognise a format from the first bytes of a file (32 are enough)."""
    if head.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ImageFormat.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if head.startswith(b"\xff\x0a") or head.startswith(_JXL_CONTAINER):
        return ImageFormat.JPEG_XL
    if head[4:8] == b"ftyp":
        return _sniff_heif_brand(head)
    return None


def _sniff_heif_brand(head: bytes) -> ImageFormat | None:
    major = head[8:12]
    if major in _AVIF_BRANDS:
        return ImageFormat.AVIF
    if major in _HEIC_BRANDS:
        return ImageFormat.HEIC
    # A generic major brand (mif1, msf1) defers to the compatible brands that follow it.
    box_size = int.from_bytes(head[0:4], "big")
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if compatible & _AVIF_BRANDS:
        return ImageFormat.AVIF
    if compatible & _HEIC_BRANDS:
        return ImageFormat.HEIC
    return None
