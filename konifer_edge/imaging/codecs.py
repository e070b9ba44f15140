"""HEIC and JPEG XL, which the bundled libvips cannot decode or encode (docs/imaging.md).

libheif (through pillow-heif: libde265 decodes, x265 encodes) and libjxl (through pylibjxl) do the
coding; pixels cross to and from libvips as raw memory, never through an intermediate image format,
and the ICC profile, EXIF and XMP are carried across explicitly. Every failure of either package on
client bytes surfaces as ``pyvips.Error``, so callers handle one kind of decode error.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import msgspec
import numpy as np
import pillow_heif
import pylibjxl

from konifer_edge.domain.formats import ImageFormat
from konifer_edge.imaging.colour import GRAYSCALE, SRGB, colour_space_of_profile
from konifer_edge.imaging.vips import pyvips

CODEC_FORMATS = frozenset({ImageFormat.HEIC, ImageFormat.JPEG_XL})
"""Formats decoded and encoded here rather than by libvips."""

# What either package raises on bytes it cannot read (pillow-heif documents these for open_heif).
_PACKAGE_ERRORS: tuple[type[Exception], ...] = (ValueError, EOFError, SyntaxError, RuntimeError, OSError, TypeError)
_EXIF_PREFIX = b"Exif\0\0"
_ORIENTATION_TAG = 0x0112
# The name the loader field gets, so a caller can tell which decoder read an image.
_LOADERS = {ImageFormat.HEIC: "heifload_libheif", ImageFormat.JPEG_XL: "jxlload_libjxl"}
_HEIC_BANDS_MODE = {1: "L", 3: "RGB", 4: "RGBA"}
_INTERPRETATION = {1: "b-w", 2: "b-w", 3: "srgb", 4: "srgb"}


class CodecHeader(msgspec.Struct, frozen=True):
    """What the container says before any pixel is decoded."""

    width: int
    height: int
    colour_space: str | None = None
    """Konifer's name for it when the header tells (HEIC); None when only a decode does (JPEG XL)."""


def is_codec_format(image_format: ImageFormat) -> bool:
    return image_format in CODEC_FORMATS


def read_header(data: bytes | memoryview, image_format: ImageFormat) -> CodecHeader:
    """The displayed size, from the header alone: limits are checked on it before any decode."""
    try:
        if image_format is ImageFormat.HEIC:
            heif = pillow_heif.open_heif(bytes(data), convert_hdr_to_8bit=True)
            width, height = heif.size
            profile = heif.info.get("icc_profile")
            grey = str(heif.mode).startswith(("L", "I"))
            space = colour_space_of_profile(bytes(profile)) if profile else (GRAYSCALE if grey else SRGB)
            return CodecHeader(width=int(width), height=int(height), colour_space=space)
        info = pylibjxl.probe(bytes(data))
        if info.get("have_animation"):
            raise pyvips.Error("animated JPEG XL is not supported", "only one frame is read")
        return CodecHeader(width=int(info["width"]), height=int(info["height"]))
    except _PACKAGE_ERRORS as error:
        raise _error(image_format, error) from error


def decode(data: bytes | memoryview, image_format: ImageFormat) -> pyvips.Image:
    """Every pixel as an 8-bit libvips image in memory, with its profile, EXIF, XMP and orientation.

    HEIC comes out displayed upright (libheif applies the container's rotation and mirroring), so its
    orientation is 1 whatever its EXIF says; JPEG XL's pixels are as stored and its EXIF orientation
    stays in force, as JPEG's does.
    """
    try:
        if image_format is ImageFormat.HEIC:
            heif = pillow_heif.open_heif(bytes(data), convert_hdr_to_8bit=True)
            pixels = np.asarray(heif)
            metadata = {
                "icc": heif.info.get("icc_profile"),
                "exif": heif.info.get("exif"),
                "xmp": heif.info.get("xmp"),
            }
        else:
            pixels, found = pylibjxl.decode(bytes(data), metadata=True)
            metadata = {"icc": found.get("icc") or found.get("icc_profile"), "exif": found.get("exif")}
            metadata["xmp"] = found.get("xmp")
    except _PACKAGE_ERRORS as error:
        raise _error(image_format, error) from error
    if pixels.dtype != np.uint8:
        # pillow-heif keeps 16-bit for monochrome; everything downstream of a codec is 8-bit.
        pixels = (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels.astype(np.uint8)
    image = _from_array(pixels)
    orientation = 1 if image_format is ImageFormat.HEIC else None
    return _with_metadata(image, metadata, image_format, orientation)


def encode(image: pyvips.Image, image_format: ImageFormat, quality: int, keep_exif: bool) -> bytes:
    """Encode libvips pixels as HEIC or JPEG XL, with the profile, EXIF and XMP the image still holds."""
    image = _eight_bit(image)
    pixels = _to_array(image)
    fields = set(image.get_fields())
    icc = bytes(image.get("icc-profile-data")) if "icc-profile-data" in fields else None
    xmp = bytes(image.get("xmp-data")) if "xmp-data" in fields else None
    exif = _exif_of(image, fields) if keep_exif else None
    try:
        if image_format is ImageFormat.HEIC:
            return _encode_heic(image, pixels, quality, icc, exif, xmp)
        return bytes(
            pylibjxl.encode(
                pixels,
                effort=4,
                distance=_jxl_distance(quality),
                exif=exif.removeprefix(_EXIF_PREFIX) if exif else None,
                xmp=xmp,
                icc=icc,
            )
        )
    except _PACKAGE_ERRORS as error:
        raise pyvips.Error(f"{image_format.short_name} encode failed", str(error)) from error


def _encode_heic(
    image: pyvips.Image,
    pixels: np.ndarray[Any, Any],
    quality: int,
    icc: bytes | None,
    exif: bytes | None,
    xmp: bytes | None,
) -> bytes:
    mode = _HEIC_BANDS_MODE[int(image.bands)]
    heif = pillow_heif.from_bytes(mode, (int(image.width), int(image.height)), pixels.tobytes())
    options: dict[str, Any] = {"quality": quality}
    if icc is not None:
        options["icc_profile"] = icc
    if exif is not None:
        options["exif"] = exif
    if xmp is not None:
        options["xmp"] = xmp
    buffer = io.BytesIO()
    heif.save(buffer, **options)
    return buffer.getvalue()


def _jxl_distance(quality: int) -> float:
    """libvips' own mapping of Q to a butteraugli distance (jxlsave), so `q` means what it did."""
    if quality >= 30:
        return 0.1 + (100 - quality) * 0.09
    return 53.0 / 3000.0 * quality * quality - 23.0 / 20.0 * quality + 25.0


def _eight_bit(image: pyvips.Image) -> pyvips.Image:
    """Both encoders take 8-bit grey, RGB or RGBA here; grey with alpha becomes RGBA."""
    if image.format != "uchar":
        image = (image / 257).cast("uchar") if image.format == "ushort" else image.cast("uchar")
    if image.bands == 2:
        image = image[0].bandjoin([image[0], image[0], image[1]]).copy(interpretation="srgb")
    elif image.bands > 4:
        image = image.extract_band(0, n=4 if image.hasalpha() else 3)
    return image


def _from_array(pixels: np.ndarray[Any, Any]) -> pyvips.Image:
    pixels = np.ascontiguousarray(pixels)
    bands = 1 if pixels.ndim == 2 else int(pixels.shape[2])
    image = pyvips.Image.new_from_memory(pixels.data, int(pixels.shape[1]), int(pixels.shape[0]), bands, "uchar")
    # new_from_memory borrows the array; a copy in libvips' memory outlives it.
    return image.copy(interpretation=_INTERPRETATION[bands]).copy_memory()


def _to_array(image: pyvips.Image) -> np.ndarray[Any, Any]:
    memory = image.write_to_memory()
    shape = (
        (int(image.height), int(image.width))
        if image.bands == 1
        else (int(image.height), int(image.width), int(image.bands))
    )
    return np.ndarray(buffer=memory, dtype=np.uint8, shape=shape)


def _with_metadata(
    image: pyvips.Image, metadata: dict[str, Any], image_format: ImageFormat, orientation: int | None
) -> pyvips.Image:
    image = image.copy()
    if metadata.get("icc"):
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(metadata["icc"]))
    exif = metadata.get("exif")
    if exif:
        exif = bytes(exif)
        exif = exif if exif.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + exif
        if orientation is None:
            orientation = exif_orientation(exif)
        else:
            # the pixels are upright already: a stale tag would turn them again
            exif = _exif_with_orientation(exif, orientation)
        image.set_type(pyvips.GValue.blob_type, "exif-data", exif)
    if metadata.get("xmp"):
        xmp = metadata["xmp"]
        image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp.encode() if isinstance(xmp, str) else bytes(xmp))
    if orientation is not None and orientation != 1:
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    image.set_type(pyvips.GValue.gstr_type, "vips-loader", _LOADERS[image_format])
    return image


def _exif_of(image: pyvips.Image, fields: set[str]) -> bytes | None:
    if "exif-data" not in fields:
        return None
    exif = bytes(image.get("exif-data"))
    orientation = int(image.get("orientation")) if "orientation" in fields else 1
    return _exif_with_orientation(exif, orientation)


def exif_orientation(exif: bytes) -> int:
    """The orientation tag of IFD0 (1 when absent, malformed or out of range)."""
    found = _orientation_entry(exif)
    if found is None:
        return 1
    offset, big_endian = found
    (value,) = struct.unpack_from(">H" if big_endian else "<H", exif, offset)
    return int(value) if 1 <= value <= 8 else 1


def _exif_with_orientation(exif: bytes, orientation: int) -> bytes:
    """The EXIF block with IFD0's orientation set to the image's own (libvips keeps it in a field)."""
    found = _orientation_entry(exif)
    if found is None:
        return exif
    offset, big_endian = found
    patched = bytearray(exif)
    struct.pack_into(">H" if big_endian else "<H", patched, offset, orientation if 1 <= orientation <= 8 else 1)
    return bytes(patched)


def _orientation_entry(exif: bytes) -> tuple[int, bool] | None:
    """Where IFD0's orientation value sits in the block, and the block's byte order."""
    base = len(_EXIF_PREFIX) if exif.startswith(_EXIF_PREFIX) else 0
    try:
        order = exif[base : base + 2]
        if order not in (b"MM", b"II"):
            return None
        big = order == b"MM"
        prefix = ">" if big else "<"
        (ifd,) = struct.unpack_from(prefix + "I", exif, base + 4)
        (count,) = struct.unpack_from(prefix + "H", exif, base + ifd)
        for index in range(min(count, 1000)):
            entry = base + ifd + 2 + 12 * index
            tag, kind = struct.unpack_from(prefix + "HH", exif, entry)
            if tag == _ORIENTATION_TAG and kind == 3:
                return entry + 8, big
    except struct.error:
        return None
    return None


def _error(image_format: ImageFormat, error: Exception) -> pyvips.Error:
    return pyvips.Error(f"{image_format.short_name} cannot be decoded", str(error))
