"""Konifer's transformation parameters, listed once.

Each `Parameter` names its query key, the field of `RequestedTransformation` it sets, what values it
takes and what it means. The query parser's reserved keys (`domain/query.py`), the keys a variant
profile may use (`config/`), the value parsers (`domain/transformation.py`) and the OpenAPI
description (`http/openapi.py`) are all read from `PARAMETERS`, so a new parameter is one new line.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from typing import Final

import msgspec

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.formats import ImageFormat

MAX_DIMENSION = 8192
MAX_PAD = 2048
MAX_BLUR = 150.0
MAX_DPR = 4.0


class Fit(enum.Enum):
    FIT = "fit"
    FILL = "fill"
    STRETCH = "stretch"
    CROP = "crop"


class Gravity(enum.Enum):
    CENTER = "center"
    ENTROPY = "entropy"
    ATTENTION = "attention"


class Rotation(enum.Enum):
    R0 = "0"
    R90 = "90"
    R180 = "180"
    R270 = "270"
    AUTO = "auto"

    @property
    def degrees(self) -> int:
        return 0 if self is Rotation.AUTO else int(self.value)


class Flip(enum.Enum):
    """Values are Konifer's current wire spellings: the empty string is no flip."""

    NONE = ""
    H = "h"
    V = "v"


class Filter(enum.Enum):
    NONE = ""
    BLACK_WHITE = "black_white"
    GREYSCALE = "grayscale"
    SEPIA = "sepia"


class ColorSpace(enum.Enum):
    ORIGIN = "origin"
    GRAYSCALE = "grayscale"
    SRGB = "srgb"
    P3 = "p3"


STRIPPABLE = ("exif", "icc", "iptc", "xmp")
Rgba = tuple[int, int, int, int]


def bad_parameter(key: str, message: str) -> BadRequest:
    return BadRequest(f"Parameter '{key}': {message}", reason="invalid_transformation")


# ---------------------------------------------------------------- kinds of value


class WholeNumber(msgspec.Struct, frozen=True):
    minimum: int
    maximum: int

    def read(self, key: str, raw: str) -> int:
        if not (raw.isascii() and raw.isdigit()):
            raise bad_parameter(key, f"'{raw}' is not a positive whole number")
        value = int(raw)
        if value < self.minimum or value > self.maximum:
            raise bad_parameter(key, f"{value} is out of range {self.minimum}..{self.maximum}")
        return value


class Number(msgspec.Struct, frozen=True):
    minimum: float
    maximum: float

    def read(self, key: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise bad_parameter(key, f"'{raw}' is not a number") from None
        if not math.isfinite(value) or value < self.minimum or value > self.maximum:
            raise bad_parameter(key, f"{raw} is out of range {self.minimum:g}..{self.maximum:g}")
        return value


class Choice(msgspec.Struct, frozen=True):
    """One member of an enumeration, by its value or by an older spelling in `aliases`."""

    kind: type[enum.Enum]
    aliases: Mapping[str, enum.Enum] = {}

    @property
    def choices(self) -> tuple[str, ...]:
        return (*(member.value for member in self.kind), *self.aliases)

    def read(self, key: str, raw: str) -> enum.Enum:
        lowered = raw.lower()
        if lowered in self.aliases:
            return self.aliases[lowered]
        for member in self.kind:
            if member.value == lowered:
                return member
        allowed = ", ".join([m.value or "'' (none)" for m in self.kind] + list(self.aliases))
        raise bad_parameter(key, f"'{raw}' is not one of {allowed}")


class FormatName(msgspec.Struct, frozen=True):
    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(image_format.short_name for image_format in ImageFormat)

    def read(self, key: str, raw: str) -> ImageFormat:
        image_format = ImageFormat.from_short_name(raw)
        if image_format is None:
            raise bad_parameter(key, f"'{raw}' is not one of {', '.join(self.choices)}")
        return image_format


_HEX_COLOUR: Final = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


class Colour(msgspec.Struct, frozen=True):
    def read(self, key: str, raw: str) -> Rgba:
        match = _HEX_COLOUR.fullmatch(raw)
        if not match:
            raise bad_parameter(key, f"'{raw}' is not a colour #RRGGBB or #RRGGBBAA")
        digits = match.group(1) + ("ff" if len(match.group(1)) == 6 else "")
        r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
        return (r, g, b, a)


class StripList(msgspec.Struct, frozen=True):
    def read(self, key: str, raw: str) -> frozenset[str]:
        items = {item.strip().lower() for item in raw.split(",") if item.strip()}
        unknown = items - set(STRIPPABLE)
        if unknown:
            raise bad_parameter(key, f"'{', '.join(sorted(unknown))}' cannot be stripped; use {', '.join(STRIPPABLE)}")
        return frozenset(items)


class Name(msgspec.Struct, frozen=True):
    """Free text, looked up elsewhere (a profile's name)."""

    def read(self, key: str, raw: str) -> str:
        return raw


Kind = WholeNumber | Number | Choice | FormatName | Colour | StripList | Name


class Parameter(msgspec.Struct, frozen=True):
    key: str
    """The query key, also the key in a profile and in a JSON `transformation` object."""
    field: str
    """The field of `RequestedTransformation` it sets."""
    kind: Kind
    description: str
    in_profiles: bool = True
    """Whether a variant profile may set it (a profile cannot name a profile, nor a pixel ratio)."""

    def read(self, raw: str) -> object:
        return self.kind.read(self.key, raw)


# Konifer 0.2's spellings are still read; "" is what Konifer's current client sends for none.
_FILTER_ALIASES: Final[Mapping[str, enum.Enum]] = {"none": Filter.NONE, "greyscale": Filter.GREYSCALE}

PARAMETERS: Final = (
    Parameter("w", "width", WholeNumber(1, MAX_DIMENSION), f"Width, 1..{MAX_DIMENSION}"),
    Parameter("h", "height", WholeNumber(1, MAX_DIMENSION), f"Height, 1..{MAX_DIMENSION}"),
    Parameter("fit", "fit", Choice(Fit), "How the box is filled"),
    Parameter("g", "gravity", Choice(Gravity, {"centre": Gravity.CENTER}), "Where crop cuts"),
    Parameter("format", "format", FormatName(), "Output format; otherwise negotiated from Accept"),
    Parameter("r", "rotate", Choice(Rotation), "Clockwise rotation"),
    Parameter("f", "flip", Choice(Flip, {"none": Flip.NONE}), "Flip; empty or none for no flip"),
    Parameter("filter", "filter", Choice(Filter, _FILTER_ALIASES), "Colour filter; empty or none for no filter"),
    Parameter("blur", "blur", Number(0, MAX_BLUR), "Gaussian blur sigma"),
    Parameter("q", "quality", WholeNumber(1, 100), "Quality of lossy formats"),
    # pad=0 is the default written out, and explicit defaults equal omitted ones
    Parameter("pad", "pad", WholeNumber(0, MAX_PAD), "Padding in pixels on every side"),
    Parameter("pad-c", "pad_color", Colour(), "Padding colour #RRGGBB or #RRGGBBAA"),
    Parameter("strip", "strip", StripList(), f"Comma list of {', '.join(STRIPPABLE)} to remove"),
    Parameter("cs", "color_space", Choice(ColorSpace), "Colour space"),
    Parameter("profile", "profile", Name(), "A variant profile name", in_profiles=False),
    Parameter("dpr", "dpr", Number(1, MAX_DPR), "Device pixel ratio, multiplies w, h, pad", in_profiles=False),
)
BY_KEY: Final = {parameter.key: parameter for parameter in PARAMETERS}
TRANSFORMATION_KEYS: Final = frozenset(BY_KEY)
PROFILE_KEYS: Final = frozenset(parameter.key for parameter in PARAMETERS if parameter.in_profiles)
