"""Real encoded test images, made with pyvips in every format the service reads and writes."""

from __future__ import annotations

from typing import Any

import pyvips

from konifer_edge.domain.formats import ImageFormat, sniff_format
from konifer_edge.imaging import codecs

__all__ = ["FORMATS", "ImageInfo", "describe", "load", "make_image", "save"]

# fmt -> (save suffix, save options). AVIF and HEIC share heifsave; only the codec differs.
_SAVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "jpg": (".jpg", {"Q": 85}),
    "png": (".png", {}),
    "webp": (".webp", {"Q": 80}),
    "avif": (".avif", {"Q": 60, "compression": "av1", "effort": 0}),
    "jxl": (".jxl", {"Q": 80, "effort": 3}),
    "heic": (".heic", {"Q": 60, "compression": "hevc", "effort": 0}),
    "gif": (".gif", {}),
}
FORMATS: tuple[str, ...] = tuple(_SAVERS)

_ANIMATABLE = frozenset({"gif", "webp"})
_NO_ALPHA = frozenset({"jpg"})
_ALIASES = {"jpeg": "jpg", "heif": "heic"}

# What libvips' loader calls each format (the `vips-loader` field, minus "load"/"load_buffer").
_LOADER_PREFIX = {
    "jpg": "jpeg",
    "png": "png",
    "webp": "webp",
    "avif": "heif",
    "jxl": "jxl",
    "heic": "heif",
    "gif": "gif",
}


# The content type each format is served with (spec 03), written out independently of the service.
MIME_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "jxl": "image/jxl",
    "heic": "image/heic",
    "gif": "image/gif",
}


def _frame(width: int, height: int, color: tuple[int, int, int], index: int, alpha: bool) -> pyvips.Image:
    base = pyvips.Image.black(width, height, bands=3).new_from_image(list(color)).cast("uchar")
    # A moving block in the complementary colour: encoders see real edges, and every frame of an
    # animation differs, so a loader that drops frames is caught.
    block_w = max(1, width // 4)
    block_h = max(1, height // 4)
    left = (index * max(1, width // 8)) % max(1, width - block_w + 1)
    top = (index * max(1, height // 8)) % max(1, height - block_h + 1)
    inverse = [255 - c for c in color]
    image = base.draw_rect(inverse, left, top, block_w, block_h, fill=True)
    if alpha:
        # Half transparent, half opaque: an all-opaque alpha can be optimised away by encoders.
        opacity = pyvips.Image.black(width, height).new_from_image(255).cast("uchar")
        opacity = opacity.draw_rect(96, width // 2, 0, width - width // 2, height, fill=True)
        image = image.bandjoin(opacity)
    return image.copy(interpretation="srgb")


def make_image(
    fmt: str,
    width: int = 64,
    height: int = 48,
    *,
    frames: int = 1,
    alpha: bool = False,
    color: tuple[int, int, int] = (200, 80, 40),
    delay_ms: int = 100,
    loop: int = 0,
) -> bytes:
    """Encode a `width` x `height` image (per frame) as `fmt`: jpg, png, webp, avif, jxl, heic or gif.

    `frames` > 1 makes an animation (gif and webp only), stored as pyvips does: one tall image with
    `page-height`, `delay` (ms per frame) and `loop` (0 = forever).
    """
    fmt = _ALIASES.get(fmt.lower(), fmt.lower())
    if fmt not in _SAVERS:
        raise ValueError(f"unknown image format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if frames < 1:
        raise ValueError("frames must be at least 1")
    if frames > 1 and fmt not in _ANIMATABLE:
        raise ValueError(f"{fmt} cannot be animated here (only gif and webp)")
    if alpha and fmt in _NO_ALPHA:
        raise ValueError(f"{fmt} has no alpha channel")

    pages = [_frame(width, height, color, i, alpha) for i in range(frames)]
    image = pages[0] if frames == 1 else pyvips.Image.arrayjoin(pages, across=1)
    if frames > 1:
        image = image.copy()
        image.set_type(pyvips.GValue.gint_type, "page-height", height)
        image.set_type(pyvips.GValue.gint_type, "n-pages", frames)
        image.set_type(pyvips.GValue.array_int_type, "delay", [delay_ms] * frames)
        image.set_type(pyvips.GValue.gint_type, "loop", loop)
    suffix, options = _SAVERS[fmt]
    return save(image, suffix, **options)


# The two formats the bundled libvips neither decodes nor encodes: their own codecs, the ones the
# service uses (libheif through pillow-heif, libjxl through pylibjxl), make and read them here.
_CODEC_SUFFIXES = {".heic": ImageFormat.HEIC, ".heif": ImageFormat.HEIC, ".jxl": ImageFormat.JPEG_XL}


def save(image: pyvips.Image, suffix: str, **options: Any) -> bytes:
    """`image.write_to_buffer(suffix, **options)`, with HEIC and JPEG XL written by their codecs."""
    codec = _CODEC_SUFFIXES.get(suffix)
    if codec is not None:
        return codecs.encode(image, codec, int(options.get("Q", 80)), keep_exif=True)
    data: bytes = image.write_to_buffer(suffix, **options)
    return data


def load(data: bytes, **options: Any) -> pyvips.Image:
    """`pyvips.Image.new_from_buffer(data, "")`, with HEIC and JPEG XL read by their codecs.

    Those come back with `vips-loader` "heifload_libheif" or "jxlload_libjxl": the family names
    libvips' own loaders had ("heif", "jxl") are kept as the prefix.
    """
    fmt = sniff_format(data[:64])
    if fmt is not None and codecs.is_codec_format(fmt):
        return codecs.decode(data, fmt)
    return pyvips.Image.new_from_buffer(data, "", **options)


class ImageInfo:
    """What libvips reads back from encoded bytes."""

    __slots__ = ("alpha", "fmt", "height", "pages", "width")

    def __init__(self, fmt: str, width: int, height: int, pages: int, alpha: bool) -> None:
        self.fmt = fmt
        self.width = width
        self.height = height
        self.pages = pages
        self.alpha = alpha

    def __repr__(self) -> str:
        return (
            f"ImageInfo(fmt={self.fmt!r}, width={self.width}, height={self.height}, "
            f"pages={self.pages}, alpha={self.alpha})"
        )


def describe(data: bytes) -> ImageInfo:
    """Decode `data` with pyvips: loader family, per-frame size, frame count, alpha.

    AVIF and HEIC both come back as "heif" (libvips has one loader for the two); use
    `heif_compression` to tell them apart. libvips' GIF loader always returns RGBA, so `alpha` is
    True for every GIF.
    """
    image = load(data, access="sequential")
    loader = str(image.get("vips-loader"))
    fmt = loader.split("load", 1)[0]
    fields = image.get_fields()
    pages = int(image.get("n-pages")) if "n-pages" in fields else 1
    height = int(image.get("page-height")) if "page-height" in fields else image.height
    return ImageInfo(fmt=fmt, width=image.width, height=height, pages=pages, alpha=bool(image.hasalpha()))


def heif_compression(data: bytes) -> str | None:
    """The HEIF codec: "av1" for AVIF, "hevc" for HEIC, None if libvips does not load it as HEIF."""
    fmt = sniff_format(data[:64])
    if fmt is ImageFormat.HEIC:
        # libheif (pillow-heif) decodes only HEVC: a file it reads is HEVC-coded
        codecs.decode(data, ImageFormat.HEIC)
        return "hevc"
    if fmt is not ImageFormat.AVIF:
        return None
    image = pyvips.Image.new_from_buffer(data, "")
    if "heif-compression" not in image.get_fields():
        return None
    return str(image.get("heif-compression"))


def loader_name(fmt: str) -> str:
    """The loader family `describe` reports for a format name accepted by `make_image`."""
    return _LOADER_PREFIX[_ALIASES.get(fmt.lower(), fmt.lower())]
