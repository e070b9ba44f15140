"""Reading what an image is from its header alone, before any pixel is decoded."""

from __future__ import annotations

import msgspec

from konifer_edge.domain.errors import BadRequest, UnsupportedMediaType
from konifer_edge.domain.formats import ImageFormat, sniff_format
from konifer_edge.domain.models import Attributes
from konifer_edge.imaging import codecs
from konifer_edge.imaging.colour import detect_colour_space
from konifer_edge.imaging.vips import VIPS_ERRORS, pyvips

# The loader libvips must pick for each format: a file whose signature says one
# format but which a different loader claims is a polyglot and is refused. HEIC and
# JPEG XL never reach libvips' loaders: only their own codec reads them (imaging/codecs.py).
_LOADER_PREFIX = {
    ImageFormat.JPEG: "jpegload",
    ImageFormat.PNG: "pngload",
    ImageFormat.WEBP: "webpload",
    ImageFormat.AVIF: "heifload",
    ImageFormat.GIF: "gifload",
}


class ProbeLimits(msgspec.Struct, frozen=True):
    """The largest original accepted, judged from the header alone."""

    max_width: int = 16384
    max_height: int = 16384
    max_pixels: int = 100_000_000
    """Width x height x frames."""
    max_frames: int = 1000
    max_pixels_per_frame: int = 100_000_000


class ProbedImage(msgspec.Struct, frozen=True):
    format: ImageFormat
    attributes: Attributes


def sniff(data: bytes | memoryview) -> ImageFormat:
    image_format = sniff_format(bytes(data[:64]))
    if image_format is None:
        raise UnsupportedMediaType(
            "The content is not an image in a supported format"
            " (jpg, png, webp, avif, jxl, heic or gif, recognised from its bytes)",
            reason="unsupported_format",
        )
    return image_format


DEFAULT_LIMITS = ProbeLimits()


def probe(data: bytes | memoryview, limits: ProbeLimits = DEFAULT_LIMITS) -> ProbedImage:
    """Identify the format from the bytes and read the attributes from the header only."""
    image_format = sniff(data)
    if codecs.is_codec_format(image_format):
        return _probe_with_codec(data, image_format, limits)
    try:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
        loader = str(image.get("vips-loader"))
        width, page_height = int(image.width), int(image.height)
        fields = set(image.get_fields())
        pages = int(image.get("n-pages")) if "n-pages" in fields else 1
        vips_loop = int(image.get("loop")) if "loop" in fields else 0
        colour_space = detect_colour_space(image)
        orientation = orientation_of(image)
    except VIPS_ERRORS as error:
        raise BadRequest(
            f"The {image_format.short_name} image cannot be read: it is damaged or truncated",
            reason="undecodable_image",
        ) from error
    if not loader.startswith(_LOADER_PREFIX[image_format]):
        raise UnsupportedMediaType(
            f"The content starts like {image_format.short_name} but decodes as something else",
            reason="ambiguous_format",
        )
    _check_limits(width, page_height, pages, limits)
    return ProbedImage(
        format=image_format,
        attributes=Attributes(
            width=width,
            height=page_height,
            format=image_format.short_name,
            page_count=pages,
            loop=_konifer_loop(pages, vips_loop),
            color_space=colour_space,
            orientation=orientation,
        ),
    )


def _probe_with_codec(data: bytes | memoryview, image_format: ImageFormat, limits: ProbeLimits) -> ProbedImage:
    """HEIC and JPEG XL: the size from the header and the limits first. A HEIC header also names
    its profile (and its orientation is always upright); a JPEG XL's profile and EXIF orientation
    come only with a decode. The full decode that proves every byte follows in any case."""
    try:
        header = codecs.read_header(data, image_format)
        _check_limits(header.width, header.height, 1, limits)
        if header.colour_space is not None:
            return _codec_probed(image_format, header.width, header.height, header.colour_space, 1)
        image = codecs.decode(data, image_format)
    except VIPS_ERRORS as error:
        raise BadRequest(
            f"The {image_format.short_name} image cannot be read: it is damaged, truncated or uses"
            " features that are not supported (animation, depth or auxiliary images only)",
            reason="undecodable_image",
        ) from error
    return _codec_probed(
        image_format, int(image.width), int(image.height), detect_colour_space(image), orientation_of(image)
    )


def _codec_probed(
    image_format: ImageFormat, width: int, height: int, colour_space: str, orientation: int
) -> ProbedImage:
    attributes = Attributes(
        width=width,
        height=height,
        format=image_format.short_name,
        page_count=1,
        loop=0,
        color_space=colour_space,
        orientation=orientation,
    )
    return ProbedImage(format=image_format, attributes=attributes)


def orientation_of(image: pyvips.Image) -> int:
    """The EXIF orientation libvips read (1, upright, when there is none or it is out of range)."""
    if "orientation" not in image.get_fields():
        return 1
    orientation = int(image.get("orientation"))
    return orientation if 1 <= orientation <= 8 else 1


def _check_limits(width: int, height: int, pages: int, limits: ProbeLimits) -> None:
    if pages > limits.max_frames:
        raise BadRequest(
            f"The image has {pages} frames; at most {limits.max_frames} are accepted", reason="too_many_frames"
        )
    if width > limits.max_width or height > limits.max_height:
        raise BadRequest(
            f"The image is {width}x{height}; at most {limits.max_width}x{limits.max_height} is accepted",
            reason="image_too_large",
        )
    if width * height * pages > limits.max_pixels:
        raise BadRequest(
            f"The image has {width * height * pages} pixels (width x height x frames);"
            f" at most {limits.max_pixels} are accepted",
            reason="too_many_pixels",
        )
    if width * height > limits.max_pixels_per_frame:
        raise BadRequest(
            f"The image has {width * height} pixels per frame; at most {limits.max_pixels_per_frame} are accepted",
            reason="too_many_pixels",
        )


def _konifer_loop(pages: int, vips_loop: int) -> int:
    """Konifer counts repetitions with -1 for endless; libvips uses 0 for endless."""
    if pages <= 1:
        return 0
    return -1 if vips_loop == 0 else vips_loop
