"""Rendering a variant: a fixed pipeline of small steps over one decode of the original.

Konifer's order: resize (w, h, fit, g), then rotate and flip, then filter, then blur,
then pad; colour space, alpha and metadata are settled last, for the output format.
Resizing uses libvips' thumbnail (shrink-on-load), so no more pixels are decoded than
the output needs.
"""

from __future__ import annotations

import msgspec

from konifer_edge.domain.formats import ImageFormat
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
from konifer_edge.imaging.frames import map_frames, page_count, page_height
from konifer_edge.imaging.lqip import compute_lqips
from konifer_edge.imaging.vips import VIPS_ERRORS, pyvips

_CROP = {Gravity.CENTER: "centre", Gravity.ENTROPY: "entropy", Gravity.ATTENTION: "attention"}
_SEPIA = [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]
_METADATA_FIELDS = {"exif": "exif-data", "iptc": "iptc-data", "xmp": "xmp-data"}


class Rendered(msgspec.Struct, frozen=True):
    data: bytes
    attributes: Attributes
    lqip: Lqip


def render(source: bytes, source_pages: int, plan: Plan, lqip_kinds: tuple[str, ...]) -> Rendered:
    """Decode once, run the steps, encode. Runs in the imaging pool, never on the event loop."""
    # The original's frame count is known from its probe; no second header read is needed.
    animated = plan.format in ANIMATED_FORMATS and source_pages > 1
    image = _load(source, plan, animated)
    image = map_frames(image, lambda frame: _frame_steps(frame, plan))
    image = _settle_colour(image, plan)
    image = _settle_alpha(image, plan)
    image = _strip_metadata(image, plan.strip)
    if lqip_kinds:
        # The source is read sequentially, once; placeholders need the output pixels a second time.
        image = image.copy_memory()
    data = _encode(image, plan)
    frames = page_count(image) if animated else 1
    attributes = Attributes(
        width=int(image.width),
        height=page_height(image),
        format=plan.format.short_name,
        page_count=frames,
        loop=_loop(image, frames),
    )
    return Rendered(data=data, attributes=attributes, lqip=compute_lqips(image, lqip_kinds))


def _load(source: bytes, plan: Plan, animated: bool) -> pyvips.Image:
    """Decode, shrinking on load to the planned size. Orientation waits: sizes come first."""
    options = "n=-1" if animated else ""
    if not plan.resize:
        return pyvips.Image.new_from_buffer(source, options, access="sequential")
    keywords: dict[str, object] = {"height": plan.height, "no_rotate": True, "option_string": options}
    if plan.fit in (Fit.FILL, Fit.CROP):
        keywords["crop"] = _CROP[plan.gravity]
    else:
        # The plan already kept the aspect for `fit`; force its exact size, no refitting.
        keywords["size"] = "force"
    return pyvips.Image.thumbnail_buffer(source, plan.width, **keywords)


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


def _with_alpha(colour: pyvips.Image, alpha: pyvips.Image | None) -> pyvips.Image:
    return colour if alpha is None else colour.bandjoin(alpha)


def _apply_filter(frame: pyvips.Image, kind: Filter) -> pyvips.Image:
    if kind is Filter.NONE:
        return frame
    colour, alpha = _split_alpha(_to_srgb(frame))
    grey = colour.colourspace("b-w")
    if kind is Filter.BLACK_WHITE:
        grey = (grey > 128).ifthenelse(255, 0)
    if kind is Filter.SEPIA:
        result = colour.recomb(_SEPIA).cast("uchar")
    else:
        # greyscale keeps three bands, so every output format takes it unchanged
        result = grey.bandjoin([grey, grey]).cast("uchar").copy(interpretation="srgb")
    return _with_alpha(result, alpha)


def _to_srgb(image: pyvips.Image) -> pyvips.Image:
    if image.interpretation in ("srgb", "rgb"):
        return image
    if image.interpretation == "cmyk" or "icc-profile-data" in image.get_fields():
        try:
            return image.icc_transform("srgb", embedded=True)
        except VIPS_ERRORS:
            pass
    return image.colourspace("srgb")


def _pad(frame: pyvips.Image, plan: Plan) -> pyvips.Image:
    assert plan.pad_color is not None
    red, green, blue, alpha = plan.pad_color
    frame = _to_srgb(frame) if frame.bands < 3 else frame
    if alpha < 255 and not frame.hasalpha() and plan.format in FORMATS_WITH_ALPHA | {ImageFormat.GIF}:
        frame = frame.bandjoin(255)
    background = [red, green, blue, alpha] if frame.hasalpha() else [red, green, blue]
    return frame.embed(
        plan.pad,
        plan.pad,
        frame.width + 2 * plan.pad,
        frame.height + 2 * plan.pad,
        extend="background",
        background=background,
    )


def _settle_colour(image: pyvips.Image, plan: Plan) -> pyvips.Image:
    if plan.color_space is ColorSpace.GRAYSCALE:
        colour, alpha = _split_alpha(image)
        return _with_alpha(colour.colourspace("b-w"), alpha)
    if plan.color_space is ColorSpace.SRGB:
        return _to_srgb(image)
    if plan.color_space is ColorSpace.P3:
        return _to_srgb(image).icc_transform("p3", embedded=True)
    # origin: keep the original's colour, but only encoders' own spaces can be written
    if image.interpretation in ("cmyk", "lab", "labs", "lch", "xyz", "scrgb", "hsv"):
        return _to_srgb(image)
    return image


def _settle_alpha(image: pyvips.Image, plan: Plan) -> pyvips.Image:
    if not image.hasalpha() or plan.format in FORMATS_WITH_ALPHA or plan.format is ImageFormat.GIF:
        return image
    red, green, blue, _ = plan.pad_color or (255, 255, 255, 255)
    background = [red, green, blue] if image.bands == 4 else [red]
    return image.flatten(background=background)


def _strip_metadata(image: pyvips.Image, strip: frozenset[str]) -> pyvips.Image:
    if not strip:
        return image
    image = image.copy()
    for field in image.get_fields():
        # libvips rebuilds EXIF on save from the parsed `exif-*` fields, so those go too.
        exif_field = field.startswith("exif-") or field == "orientation"
        if ("exif" in strip and exif_field) or any(field == _METADATA_FIELDS[name] for name in strip):
            image.remove(field)
    return image


def _encode(image: pyvips.Image, plan: Plan) -> bytes:
    if plan.rotate is Rotation.AUTO and "orientation" in image.get_fields():
        # the pixels are upright now; a stale tag would turn them again in viewers
        image = image.copy()
        image.remove("orientation")
    quality = plan.quality
    match plan.format:
        case ImageFormat.JPEG:
            data = image.jpegsave_buffer(Q=quality, optimize_coding=True)
        case ImageFormat.PNG:
            data = image.pngsave_buffer(compression=6)
        case ImageFormat.WEBP:
            data = image.webpsave_buffer(Q=quality, effort=4)
        case ImageFormat.AVIF:
            data = image.heifsave_buffer(Q=quality, compression="av1", effort=4)
        case ImageFormat.HEIC:
            data = image.heifsave_buffer(Q=quality, compression="hevc", effort=4)
        case ImageFormat.JPEG_XL:
            data = image.jxlsave_buffer(Q=quality, effort=4)
        case ImageFormat.GIF:
            data = image.gifsave_buffer()
    return bytes(data)


def _loop(image: pyvips.Image, frames: int) -> int:
    if frames <= 1:
        return 0
    vips_loop = int(image.get("loop")) if "loop" in image.get_fields() else 0
    return -1 if vips_loop == 0 else vips_loop
