"""Metadata the encoders write on their own, taken out of the encoded bytes.

libvips' JPEG, WebP and (since 8.15) PNG savers build a fresh EXIF block (resolution,
orientation) for every image, whether or not it had EXIF; `strip=exif` must leave none.
The three containers are simple segment or chunk lists, so the block is cut out of the bytes.
"""

from __future__ import annotations

import struct

from konifer_edge.domain.formats import ImageFormat

_EXIF_APP1 = b"Exif\0\0"
_WEBP_EXIF_FLAG = 0x08
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def strip_exif_from_container(data: bytes, image_format: ImageFormat) -> bytes:
    if image_format is ImageFormat.JPEG:
        return _jpeg_without_exif(data)
    if image_format is ImageFormat.WEBP:
        return _webp_without_exif(data)
    if image_format is ImageFormat.PNG:
        return _png_without_exif(data)
    return data


def _png_without_exif(data: bytes) -> bytes:
    """Drop the eXIf chunk; every other chunk is kept byte for byte (each carries its own CRC)."""
    if not data.startswith(_PNG_SIGNATURE):
        return data
    kept = [_PNG_SIGNATURE]
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        end = position + 12 + length
        if data[position + 4 : position + 8] != b"eXIf":
            kept.append(data[position:end])
        position = end
    kept.append(data[position:])
    return b"".join(kept)


def _jpeg_without_exif(data: bytes) -> bytes:
    """Drop every APP1 segment holding EXIF; everything from the first scan on is kept as it is."""
    if not data.startswith(b"\xff\xd8"):
        return data
    kept = [data[:2]]
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: entropy-coded data follows, no more segments to read
            break
        (length,) = struct.unpack_from(">H", data, position + 2)
        end = position + 2 + length
        segment = data[position:end]
        if not (marker == 0xE1 and segment[4:10] == _EXIF_APP1):
            kept.append(segment)
        position = end
    kept.append(data[position:])
    return b"".join(kept)


def _webp_without_exif(data: bytes) -> bytes:
    """Drop the EXIF chunk of an extended WebP and clear its flag in the VP8X header."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return data
    chunks = []
    position = 12
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        end = position + 8 + size + (size & 1)
        chunk = data[position:end]
        if kind == b"VP8X":
            chunk = chunk[:8] + bytes([chunk[8] & ~_WEBP_EXIF_FLAG & 0xFF]) + chunk[9:]
        if kind != b"EXIF":
            chunks.append(chunk)
        position = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body
