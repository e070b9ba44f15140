"""Rendering a variant: a fixed pipeline of small steps over one decode of the original.

Konifer's order: resize (w, h, fit, g), then rotate and flip, then filter, then blur,
then pad; colour space, alpha and metadata are settled last, for the output format.
Resizing uses libvips' thumbnail (shrink-on-load), so no more pixels are decoded than
the output needs. HEIC and JPEG XL are decoded and encoded outside libvips (imaging/codecs.py):
those are decoded whole, then thumbnailed.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from konifer_edge.domain.formats import ImageFormat, sniff_format
from konifer_edge.domain.models import Attributes, Lqip
from konifer_edge.domain.transformation import (
    ANIMATED_FORMATS,
    FORMATS_WITH_ALPHA,
    ColorSpace,
    Filter,
    Fit,
    Flip,
    Gravity,
    Plan,
    Rotation,
)
from konifer_edge.imaging import codecs, colour
from konifer_edge.imaging.frames import map_frames, page_count, page_height
from konifer_edge.imaging.lqip import compute_lqips
from konifer_edge.imaging.metadata import strip_exif_from_container
from konifer_edge.imaging.probe import orientation_of
from konifer_edge.imaging.vips import VIPS_ERRORS, pyvips

_CROP = {Gravity.CENTER: "centre", Gravity.ENTROPY: "entropy", Gravity.ATTENTION: "attention"}
_SEPIA = [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]
_METADATA_FIELDS = {"exif": "exif-data", "icc": "icc-profile-data", "iptc": "iptc-data", "xmp": "xmp-data"}
# Interpretations no encoder writes as they are: turned into sRGB before any step.
_FOREIGN_SPACES = frozenset({"cmyk", "lab", "labs", "lch", "cmc", "xyz", "yxy", "scrgb", "hsv", "fourier", "histogram"})
_ICC_OPTIONS: dict[str, object] = {"intent": "relative", "black_point_compensation": True}
# libvips' HEIF saver writes an EXIF block whenever it writes metadata at all, and its
# container cannot be edited afterwards: stripping EXIF from AVIF means stripping everything.
_HEIF = frozenset({ImageFormat.AVIF})
_HEIF_CONTAINERS = frozenset({ImageFormat.AVIF, ImageFormat.HEIC})


class Rendered(msgspec.Struct, frozen=True):
    data: bytes
    attributes: Attributes
    lqip: Lqip
    source_color_space: str
    """The colour space of the source as decoded, by Konifer's rules."""


def render(source: bytes, source_pages: int, plan: Plan, lqip_kinds: tuple[str, ...]) -> Rendered:
    """Decode once, run the steps, encode. Runs in the imaging pool, never on the event loop."""
    # The original's frame count is known from its probe; no second header read is needed.
    animated = plan.format in ANIMATED_FORMATS and source_pages > 1
    image = _load(source, plan, animated)
    source_colour = colour.detect_colour_space(image)
    if image.interpretation in _FOREIGN_SPACES:
        image = _to_srgb(image)
    image = map_frames(image, lambda frame: _frame_steps(frame, plan))
    image = _settle_colour(image, plan, source_colour)
    image = _settle_alpha(image, plan)
    image = _strip_metadata(image, plan)
    if lqip_kinds:
        # The source is read sequentially, once; placeholders need the output pixels a second time.
        image = image.copy_memory()
    data = _encode(image, plan)
    written = _as_written(image, data, plan)
    frames = page_count(image) if animated else 1
    attributes = Attributes(
        width=int(image.width),
        height=page_height(image),
        format=plan.format.short_name,
        page_count=frames,
        loop=_loop(image, frames),
        color_space=colour.detect_colour_space(written),
        orientation=orientation_of(written),
    )
    return Rendered(
        data=data, attributes=attributes, lqip=compute_lqips(image, lqip_kinds), source_color_space=source_colour
    )


def _as_written(image: pyvips.Image, data: bytes, plan: Plan) -> pyvips.Image:
    """What the bytes say about themselves (profile, orientation): what the encoder kept.

    Read back from their header, except where libvips writes that header from exactly the image's
    own fields: a JPEG of 8-bit sRGB or grey pixels, with no profile or one for that many bands.
    Reading a JPEG's header back parses its EXIF again: about 1% of a first request's render.
    """
    if plan.format is ImageFormat.JPEG and _jpeg_keeps_its_fields(image):
        return image
    if codecs.is_codec_format(plan.format):
        return codecs.decode(data, plan.format)
    return pyvips.Image.new_from_buffer(data, "")


def _jpeg_keeps_its_fields(image: pyvips.Image) -> bool:
    bands = _JPEG_BANDS.get(str(image.interpretation))
    if image.format != "uchar" or bands is None or image.bands != bands:
        return False
    if "icc-profile-data" not in image.get_fields():
        return True
    # The saver may leave out a profile made for another number of bands: such bytes are read back.
    profile = bytes(image.get("icc-profile-data"))
    return profile[16:20] == (b"RGB " if bands == 3 else b"GRAY")


_JPEG_BANDS: Final = {"srgb": 3, "b-w": 1}


def _load(source: bytes, plan: Plan, animated: bool) -> pyvips.Image:
    """Decode, shrinking on load to the planned size. Orientation waits: sizes come first."""
    source_format = sniff_format(source[:64])
    if source_format is not None and codecs.is_codec_format(source_format):
        return _load_decoded(codecs.decode(source, source_format), plan)
    options = "n=-1" if animated else ""
    if not plan.resize:
        # Turning and mirroring top to bottom read rows out of order; a sequential decode
        # (PNG's above all) then fails halfway, so only the row-order-keeping steps stream.
        in_order = plan.rotate is Rotation.R0 and plan.flip is not Flip.V
        return pyvips.Image.new_from_buffer(source, options, access="sequential" if in_order else "random")
    keywords: dict[str, object] = {"height": plan.height, "no_rotate": True, "option_string": options}
    if plan.fit in (Fit.FILL, Fit.CROP) and animated:
        return _cover_frames(source, plan, options)
    if plan.fit in (Fit.FILL, Fit.CROP):
        keywords["crop"] = _CROP[plan.gravity]
    else:
        # The plan already kept the aspect for `fit`; force its exact size, no refitting.
        keywords["size"] = "force"
    return pyvips.Image.thumbnail_buffer(source, plan.width, **keywords)


def _load_decoded(image: pyvips.Image, plan: Plan) -> pyvips.Image:
    """The same sizing as _load, on pixels a codec outside libvips decoded (never animated)."""
    if not plan.resize:
        return image
    keywords: dict[str, object] = {"height": plan.height, "no_rotate": True}
    if plan.fit in (Fit.FILL, Fit.CROP):
        keywords["crop"] = _CROP[plan.gravity]
    else:
        keywords["size"] = "force"
    return image.thumbnail_image(plan.width, **keywords)


def _cover_frames(source: bytes, plan: Plan, options: str) -> pyvips.Image:
    """Fill or crop an animation: libvips' thumbnail crops only the first frame, so scale all
    frames to cover the box, then cut every frame at the place chosen on the first."""
    header = pyvips.Image.new_from_buffer(source, options)
    width, height = int(header.width), page_height(header)
    scale = max(plan.width / width, plan.height / height)
    cover_w = max(plan.width, math.floor(width * scale + 0.5))
    cover_h = max(plan.height, math.floor(height * scale + 0.5))
    covered = pyvips.Image.thumbnail_buffer(
        source, cover_w, height=cover_h, size="force", no_rotate=True, option_string=options
    )
    left, top = (cover_w - plan.width) // 2, (cover_h - plan.height) // 2
    if plan.fit is Fit.CROP and plan.gravity is not Gravity.CENTER:
        first = covered.crop(0, 0, cover_w, page_height(covered))
        chosen = first.smartcrop(plan.width, plan.height, interesting=_CROP[plan.gravity])
        # libvips records the cut as a negative offset of the result
        left, top = -int(chosen.xoffset), -int(chosen.yoffset)
    return map_frames(covered, lambda frame: frame.crop(left, top, plan.width, plan.height))


def _frame_steps(frame: pyvips.Image, plan: Plan) -> pyvips.Image:
    if plan.rotate is Rotation.AUTO:
        frame = frame.autorot()
    if plan.rotate in (Rotation.R90, Rotation.R180, Rotation.R270):
        frame = frame.rot(f"d{plan.rotate.value}")
    if plan.flip is Flip.H:
        frame = frame.flip("horizontal")
    elif plan.flip is Flip.V:
        frame = frame.flip("vertical")
    frame = _apply_filter(frame, plan.filter)
    if plan.blur > 0:
        frame = frame.gaussblur(plan.blur)
    if plan.pad:
        frame = _pad(frame, plan)
    return frame


def _split_alpha(image: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image | None]:
    if image.hasalpha():
        return image.extract_band(0, n=image.bands - 1), image.extract_band(image.bands - 1)
    return image, None


def _with_alpha(colour_bands: pyvips.Image, alpha: pyvips.Image | None) -> pyvips.Image:
    return colour_bands if alpha is None else colour_bands.bandjoin(alpha)


def _apply_filter(frame: pyvips.Image, kind: Filter) -> pyvips.Image:
    if kind is Filter.NONE:
        return frame
    rgb, alpha = _split_alpha(_rgb(frame))
    grey = rgb.colourspace("b-w")
    if kind is Filter.BLACK_WHITE:
        grey = (grey > 128).ifthenelse(255, 0)
    if kind is Filter.SEPIA:
        result = rgb.recomb(_SEPIA).cast("uchar")
    else:
        # greyscale keeps three bands, so every output format takes it unchanged
        result = grey.bandjoin([grey, grey]).cast("uchar").copy(interpretation="srgb")
    return _with_alpha(result, _uchar(alpha))


def _uchar(alpha: pyvips.Image | None) -> pyvips.Image | None:
    """The filters write 8-bit colour; a 16-bit alpha must follow to be joined to it."""
    if alpha is None or alpha.format == "uchar":
        return alpha
    return (alpha / 257).cast("uchar")


def _rgb(image: pyvips.Image) -> pyvips.Image:
    """8-bit RGB in whatever RGB space the image has: a filter works on the values, not the space."""
    if image.interpretation == "srgb" and image.format == "uchar":
        return image
    if image.interpretation in _FOREIGN_SPACES:
        return _to_srgb(image)
    return image.colourspace("srgb")


def _to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Exactly sRGB, by the embedded profile where there is one; sRGB is written without a profile."""
    if "icc-profile-data" in image.get_fields() or image.interpretation == "cmyk":
        try:
            converted = image.icc_transform(
                "srgb", embedded=True, input_profile=_fallback_profile(image), **_ICC_OPTIONS
            )
            return _without(converted, "icc-profile-data")
        except VIPS_ERRORS:
            pass  # a profile lcms cannot use: the interpretation is all there is to go by
    return _without(image.colourspace("srgb"), "icc-profile-data")


def _fallback_profile(image: pyvips.Image) -> str:
    """The profile assumed for an image whose own profile is missing or unusable."""
    return "cmyk" if image.interpretation == "cmyk" else "srgb"


def _without(image: pyvips.Image, field: str) -> pyvips.Image:
    if field not in image.get_fields():
        return image
    image = image.copy()
    image.remove(field)
    return image


def _pad(frame: pyvips.Image, plan: Plan) -> pyvips.Image:
    assert plan.pad_color is not None
    red, green, blue, alpha = plan.pad_color
    frame = frame.colourspace("srgb") if frame.bands < 3 else frame
    if alpha < 255 and not frame.hasalpha() and plan.format in FORMATS_WITH_ALPHA | {ImageFormat.GIF}:
        frame = frame.bandjoin(255 if frame.format == "uchar" else 65535)
    background = [red, green, blue, alpha] if frame.hasalpha() else [red, green, blue]
    if frame.format == "ushort":
        background = [value * 257 for value in background]
    return frame.embed(
        plan.pad,
        plan.pad,
        frame.width + 2 * plan.pad,
        frame.height + 2 * plan.pad,
        extend="background",
        background=background,
    )


def _settle_colour(image: pyvips.Image, plan: Plan, source_colour: str) -> pyvips.Image:
    """Konifer's `cs`: nothing when the image is already there, else an ICC conversion."""
    target = plan.color_space
    if target is ColorSpace.ORIGIN or target.value == source_colour:
        if plan.format is ImageFormat.GIF and "icc-profile-data" in image.get_fields():
            # GIF cannot carry a profile: its values must be sRGB to look the same
            return _to_srgb(image)
        return image
    if target is ColorSpace.GRAYSCALE:
        rgb, alpha = _split_alpha(_to_srgb(image) if image.bands >= 3 else image)
        grey = rgb if rgb.bands == 1 else rgb.colourspace("b-w")
        return _without(_with_alpha(grey, alpha), "icc-profile-data")
    if target is ColorSpace.SRGB:
        return _to_srgb(image)
    # p3: from the image's own profile, or from sRGB when it has none (that is what it means then)
    if image.bands < 3 or image.interpretation in ("b-w", "grey16"):
        image = _to_srgb(image)
    return image.icc_transform("p3", embedded=True, input_profile="srgb", **_ICC_OPTIONS)


def _settle_alpha(image: pyvips.Image, plan: Plan) -> pyvips.Image:
    if not image.hasalpha() or plan.format in FORMATS_WITH_ALPHA or plan.format is ImageFormat.GIF:
        return image
    red, green, blue, _ = plan.pad_color or (255, 255, 255, 255)
    background = [red, green, blue] if image.bands == 4 else [red]
    if image.format == "ushort":
        background = [value * 257 for value in background]
    return image.flatten(background=background)


def _strip_metadata(image: pyvips.Image, plan: Plan) -> pyvips.Image:
    strip = plan.strip
    drop_orientation = plan.rotate is not Rotation.R0 or plan.flip is not Flip.NONE
    if not strip and not drop_orientation:
        return image
    heif_loses_profile = "exif" in strip and plan.format in _HEIF and "icc-profile-data" in image.get_fields()
    if heif_loses_profile and colour.detect_colour_space(image) != colour.SRGB:
        # The profile goes with the EXIF here (see _HEIF): keep the colours right without it.
        image = _to_srgb(image)
    image = image.copy()
    for field in image.get_fields():
        # libvips rebuilds EXIF on save from the parsed `exif-*` fields, so those go too;
        # the IFD1 thumbnail is a field of its own.
        exif_field = field.startswith("exif-") or field in ("orientation", "jpeg-thumbnail-data")
        if ("exif" in strip and exif_field) or any(field == _METADATA_FIELDS[name] for name in strip):
            image.remove(field)
        elif drop_orientation and field == "orientation":
            # turned or mirrored pixels are upright as they are; a stale tag would turn them again
            image.remove(field)
    return image


def _encode(image: pyvips.Image, plan: Plan) -> bytes:
    quality = plan.quality
    strip_all = "exif" in plan.strip and plan.format in _HEIF
    if plan.format in _HEIF_CONTAINERS:
        # libheif would turn an orientation into the container's rotation and mirror, which every
        # decoder applies: the answer keeps the stored pixels, as every other format's does.
        image = _without(image, "orientation")
    match plan.format:
        case ImageFormat.JPEG:
            data = image.jpegsave_buffer(Q=quality, optimize_coding=True)
        case ImageFormat.PNG:
            data = image.pngsave_buffer(compression=6)
        case ImageFormat.WEBP:
            data = image.webpsave_buffer(Q=quality, effort=4)
        case ImageFormat.AVIF:
            data = image.heifsave_buffer(Q=quality, compression="av1", effort=4, strip=strip_all)
        case ImageFormat.HEIC | ImageFormat.JPEG_XL:
            assert quality is not None, "lossy formats always have a quality"
            data = codecs.encode(image, plan.format, quality, keep_exif="exif" not in plan.strip)
        case ImageFormat.GIF:
            data = image.gifsave_buffer()
    if "exif" in plan.strip:
        # The JPEG and WebP savers write a fresh EXIF block even when the image has none.
        return strip_exif_from_container(bytes(data), plan.format)
    return bytes(data)


def _loop(image: pyvips.Image, frames: int) -> int:
    if frames <= 1:
        return 0
    vips_loop = int(image.get("loop")) if "loop" in image.get_fields() else 0
    return -1 if vips_loop == 0 else vips_loop
