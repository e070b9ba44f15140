"""Konifer's transformation vocabulary: query parameters in, one canonical plan out.

Parsing happens before any pixel is touched. Normalisation then folds every spelling
that must give the same pixels into one plan, whose `key` names the stored variant:
order-independent, defaults filled, `dpr` folded in, no-ops dropped, and equivalent
geometry (`f=h&r=180` is `f=v`; `w=400` on 800x600 is `h=300`) made equal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from konifer_edge.domain.formats import ImageFormat
from konifer_edge.domain.models import Attributes
from konifer_edge.domain.parameters import (
    BY_KEY,
    MAX_DIMENSION,
    MAX_PAD,
    ColorSpace,
    Filter,
    Fit,
    Flip,
    Gravity,
    Rgba,
    Rotation,
    bad_parameter,
)

# The enumerations are the parameters' own (domain/parameters.py); they are named here too, with
# the plan they make up.
__all__ = [
    "ANIMATED_FORMATS",
    "DEFAULT_QUALITY",
    "FORMATS_WITH_ALPHA",
    "LOSSLESS_QUALITY",
    "NOTHING_REQUESTED",
    "UPRIGHT",
    "ColorSpace",
    "Filter",
    "Fit",
    "Flip",
    "Gravity",
    "Plan",
    "RequestedTransformation",
    "Rotation",
    "hex_colour",
    "is_identity",
    "keeps_placeholders",
    "parse_transformation",
    "plan_transformation",
    "query_parameters",
]

UPRIGHT = 1  # EXIF orientation 1: the stored pixels are the way up they are shown

# PNG and GIF are lossless here: no quality is asked of their encoders, and the metadata says 100.
LOSSLESS_QUALITY = 100
DEFAULT_QUALITY = {
    ImageFormat.JPEG: 80,
    ImageFormat.WEBP: 80,
    ImageFormat.AVIF: 50,
    ImageFormat.JPEG_XL: 90,
    ImageFormat.HEIC: 50,
}
FORMATS_WITH_ALPHA = frozenset(
    {ImageFormat.PNG, ImageFormat.WEBP, ImageFormat.AVIF, ImageFormat.JPEG_XL, ImageFormat.HEIC}
)
ANIMATED_FORMATS = frozenset({ImageFormat.GIF, ImageFormat.WEBP})


class RequestedTransformation(msgspec.Struct, frozen=True):
    """What a request asked for, validated but not yet resolved against an image."""

    width: int | None = None
    height: int | None = None
    fit: Fit = Fit.FIT
    gravity: Gravity = Gravity.CENTER
    format: ImageFormat | None = None
    rotate: Rotation = Rotation.R0
    flip: Flip = Flip.NONE
    filter: Filter = Filter.NONE
    blur: float = 0.0
    quality: int | None = None
    pad: int = 0
    pad_color: Rgba | None = None
    strip: frozenset[str] = frozenset()
    color_space: ColorSpace = ColorSpace.ORIGIN
    dpr: float = 1.0
    profile: str | None = None

    @property
    def is_empty(self) -> bool:
        return self == NOTHING_REQUESTED


NOTHING_REQUESTED = RequestedTransformation()


def hex_colour(colour: Rgba) -> str:
    return "".join(f"{channel:02x}" for channel in colour)


class Plan(msgspec.Struct, frozen=True):
    """A resolved transformation of one original: exact output size and every option decided."""

    width: int
    height: int
    fit: Fit
    gravity: Gravity
    format: ImageFormat
    rotate: Rotation
    flip: Flip
    filter: Filter
    blur: int
    quality: int | None
    """None for the lossless formats (png, gif), whose encoders take no quality."""
    pad: int
    pad_color: Rgba | None
    strip: frozenset[str]
    color_space: ColorSpace
    resize: bool

    @property
    def key(self) -> str:
        """The variant's name: equal for every request that must give the same pixels."""
        parts = [f"{self.width}x{self.height}", self.format.short_name]
        if self.resize:
            parts.append(f"fit={self.fit.value}")
            if self.fit is Fit.CROP:
                parts.append(f"g={self.gravity.value}")
        if self.rotate is not Rotation.R0:
            parts.append(f"r={self.rotate.value}")
        if self.flip is not Flip.NONE:
            parts.append(f"f={self.flip.value}")
        if self.filter is not Filter.NONE:
            parts.append(f"filter={self.filter.value}")
        if self.blur:
            parts.append(f"blur={self.blur}")
        if self.quality is not None:
            parts.append(f"q={self.quality}")
        if self.pad:
            parts.append(f"pad={self.pad}:{hex_colour(self.pad_color) if self.pad_color else ''}")
        if self.strip:
            parts.append("strip=" + ",".join(sorted(self.strip)))
        if self.color_space is not ColorSpace.ORIGIN:
            parts.append(f"cs={self.color_space.value}")
        return ";".join(parts)

    def spelled_out(self, source_colour_space: str) -> dict[str, object]:
        """Konifer's `transformation` object in metadata, in its current spellings.

        `colorSpace` is the output's: the one asked for, else the source's own.
        """
        return {
            "width": self.width,
            "height": self.height,
            "fit": self.fit.value,
            "gravity": self.gravity.value,
            "format": self.format.short_name,
            "rotate": self.rotate.value,
            "flip": self.flip.value,
            "filter": self.filter.value,
            "blur": self.blur,
            "quality": LOSSLESS_QUALITY if self.quality is None else self.quality,
            "padding": {"amount": self.pad, "color": list(self.pad_color) if self.pad_color else []},
            "metadata": {"strip": sorted(self.strip)},
            "colorSpace": source_colour_space if self.color_space is ColorSpace.ORIGIN else self.color_space.value,
        }


# ---------------------------------------------------------------- parsing


def parse_transformation(
    params: Mapping[str, str], profiles: Mapping[str, Mapping[str, str]]
) -> RequestedTransformation:
    """Validate query parameters (a profile's first, then the request's own, which win)."""
    merged: dict[str, str] = {}
    profile = params.get("profile")
    if profile is not None:
        if profile not in profiles:
            raise bad_parameter("profile", f"no variant profile named '{profile}'")
        merged.update(profiles[profile])
    merged.update({key: value for key, value in params.items() if key != "profile"})
    fields: dict[str, object] = {"profile": profile}
    for key, raw in merged.items():
        parameter = BY_KEY[key]
        fields[parameter.field] = parameter.read(raw)
    requested = RequestedTransformation(**fields)  # type: ignore[arg-type]
    if requested.fit in (Fit.FILL, Fit.STRETCH, Fit.CROP) and (requested.width is None or requested.height is None):
        if "fit" in params:
            raise bad_parameter("fit", f"'{requested.fit.value}' needs both w and h")
        # A profile's box open on one side (Konifer's own `w = 128, fit = fill` example) is
        # covered exactly by scaling to the side it gives: that is `fit`.
        requested = msgspec.structs.replace(requested, fit=Fit.FIT, gravity=Gravity.CENTER)
    return requested


# ---------------------------------------------------------------- normalisation


def _fold_orientation(rotate: Rotation, flip: Flip) -> tuple[Rotation, Flip]:
    """Rotate-then-flip pairs that give the same pixels become one pair.

    A vertical flip equals a horizontal flip after a half turn, so every mirrored
    orientation has two spellings; the one with the smaller rotation is canonical.
    """
    if rotate is Rotation.AUTO or flip is Flip.NONE:
        return rotate, flip
    degrees = rotate.degrees if flip is Flip.H else (rotate.degrees + 180) % 360
    alternative = (degrees + 180) % 360
    if alternative < degrees:
        return Rotation(str(alternative)), Flip.V
    return Rotation(str(degrees)), Flip.H


def _scaled(value: int | None, dpr: float) -> int | None:
    return None if value is None else min(MAX_DIMENSION, _round(value * dpr))


def _fit_box(source_w: int, source_h: int, width: int | None, height: int | None) -> tuple[int, int]:
    """The exact size `fit` gives: inside the box, aspect kept, one side possibly open.

    The side not given is derived from the given one. With both given, of the two sizes
    that fit the box the larger wins, so a plan's own sizes, sent back as a request
    (as link URLs do), give the same plan.
    """
    if width is None and height is None:
        return _clamped(source_w, source_h)
    by_width = (width, _round(source_h * width / source_w)) if width is not None else None
    by_height = (_round(source_w * height / source_h), height) if height is not None else None
    fitting = [
        size
        for size in (by_width, by_height)
        if size is not None and (width is None or size[0] <= width) and (height is None or size[1] <= height)
    ]
    chosen = max(fitting, key=lambda size: size[0] * size[1]) if fitting else (width or 1, height or 1)
    return _clamped(*chosen)


def _round(value: float) -> int:
    """Half up, as libvips rounds sizes (Python's round() would send 112.5 to 112)."""
    return max(1, math.floor(value + 0.5))


def _clamped(width: int, height: int) -> tuple[int, int]:
    """A derived side may outgrow the limit: shrink both, aspect kept."""
    largest = max(width, height)
    if largest <= MAX_DIMENSION:
        return width, height
    scale = MAX_DIMENSION / largest
    return _round(width * scale), _round(height * scale)


def plan_transformation(requested: RequestedTransformation, original: Attributes, output_format: ImageFormat) -> Plan:
    """Resolve a request against the original it will be applied to."""
    width = _scaled(requested.width, requested.dpr)
    height = _scaled(requested.height, requested.dpr)
    pad = 0 if requested.pad == 0 else min(MAX_PAD, _round(requested.pad * requested.dpr))
    fit, gravity = requested.fit, requested.gravity
    if fit is not Fit.FIT and width is not None and height is not None:
        if _fit_box(original.width, original.height, width, height) == (width, height):
            # A covering box of the original's own aspect crops nothing and stretches nothing.
            fit, gravity = Fit.FIT, Gravity.CENTER
        elif fit is Fit.CROP and gravity is Gravity.CENTER:
            fit = Fit.FILL  # a centred crop is exactly what fill does
    if fit is Fit.FIT:
        width, height = _fit_box(original.width, original.height, width, height)
    assert width is not None and height is not None
    resize = (width, height) != (original.width, original.height)
    rotate = requested.rotate
    if rotate is Rotation.AUTO and original.orientation == UPRIGHT:
        rotate = Rotation.R0  # an upright original has nothing to turn
    rotate, flip = _fold_orientation(rotate, requested.flip)
    color_space = requested.color_space
    if original.color_space is not None and color_space.value == original.color_space:
        color_space = ColorSpace.ORIGIN  # already there: Konifer converts nothing
    if color_space is ColorSpace.P3 and output_format is ImageFormat.GIF:
        raise bad_parameter("cs", "'p3' needs a format that carries a colour profile; gif cannot")
    quality = None
    if output_format in DEFAULT_QUALITY:
        quality = requested.quality or DEFAULT_QUALITY[output_format]
    pad_color = None
    if pad:
        default_colour = (0, 0, 0, 0) if output_format in FORMATS_WITH_ALPHA else (255, 255, 255, 255)
        pad_color = requested.pad_color or default_colour
    return Plan(
        width=width,
        height=height,
        fit=fit if resize else Fit.FIT,
        gravity=gravity if resize and fit is Fit.CROP else Gravity.CENTER,
        format=output_format,
        rotate=rotate,
        flip=flip,
        filter=requested.filter,
        # A fractional blur is rounded first, so that the key, the metadata and the pixels agree.
        blur=math.floor(requested.blur + 0.5),
        quality=quality,
        pad=pad,
        pad_color=pad_color,
        strip=requested.strip,
        color_space=color_space,
        resize=resize,
    )


def is_identity(plan: Plan, original: Attributes, requested: RequestedTransformation) -> bool:
    """A plan that would reproduce the original exactly: serve the original itself."""
    return (
        not plan.resize
        and plan.format.short_name == original.format
        and plan.rotate is Rotation.R0
        and plan.flip is Flip.NONE
        and plan.filter is Filter.NONE
        and not plan.blur
        and not plan.pad
        and not plan.strip
        and plan.color_space is ColorSpace.ORIGIN
        # quality means nothing to the lossless encoders (plan.quality is None for them)
        and (plan.quality is None or requested.quality is None)
    )


def keeps_placeholders(plan: Plan, original: Attributes) -> bool:
    """The plan only scales the original, so the original's LQIPs describe its output as well.

    Konifer copies the original's placeholders onto such variants instead of computing them. Anything
    that changes what a 32-pixel thumbnail looks like rules it out: cropping or stretching (the
    aspect ratio must stay within a pixel), turning, mirroring, filters, blur, padding, a colour-space
    change or a dropped ICC profile, an orientation tag the placeholder may have applied and the
    variant not, and flattening transparency into a JPEG.
    """
    # Fill, crop and stretch only scale when the box has the original's shape.
    reshaped = abs(plan.width * original.height - plan.height * original.width) > max(original.width, original.height)
    if plan.resize and plan.fit is not Fit.FIT and reshaped:
        return False
    return (
        plan.rotate in (Rotation.R0, Rotation.AUTO)
        and original.orientation in (None, 1)
        and plan.flip is Flip.NONE
        and plan.filter is Filter.NONE
        and not plan.blur
        and not plan.pad
        and "icc" not in plan.strip
        and plan.color_space is ColorSpace.ORIGIN
        and (plan.format is not ImageFormat.JPEG or original.format == ImageFormat.JPEG.short_name)
    )


def query_parameters(plan: Plan) -> dict[str, str]:
    """The canonical plan as Konifer query parameters, for link URLs."""
    params = {"w": str(plan.width), "h": str(plan.height), "format": plan.format.short_name}
    if plan.resize and plan.fit is not Fit.FIT:
        params["fit"] = plan.fit.value
        if plan.fit is Fit.CROP:
            params["g"] = plan.gravity.value
    if plan.rotate is not Rotation.R0:
        params["r"] = plan.rotate.value
    if plan.flip is not Flip.NONE:
        params["f"] = plan.flip.value
    if plan.filter is not Filter.NONE:
        params["filter"] = plan.filter.value
    if plan.blur:
        params["blur"] = str(plan.blur)
    if plan.quality is not None:
        params["q"] = str(plan.quality)
    if plan.pad:
        params["pad"] = str(plan.pad)
        if plan.pad_color:
            params["pad-c"] = "#" + hex_colour(plan.pad_color)
    if plan.strip:
        params["strip"] = ",".join(sorted(plan.strip))
    if plan.color_space is not ColorSpace.ORIGIN:
        params["cs"] = plan.color_space.value
    return params
