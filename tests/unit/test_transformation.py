"""Transformation parameters and Accept negotiation without a server (spec 05 §3, §7 `dpr`).

Parsing must accept every key and value of the table and refuse everything else with a
400 that names the key; normalisation must give one canonical variant key to every
spelling that produces the same pixels; negotiation must follow the q-values of Accept.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.formats import ImageFormat
from konifer_edge.domain.models import Attributes
from konifer_edge.domain.negotiation import choose_format
from konifer_edge.domain.transformation import (
    ColorSpace,
    Filter,
    Fit,
    Flip,
    Gravity,
    Plan,
    RequestedTransformation,
    Rotation,
    is_identity,
    keeps_placeholders,
    parse_transformation,
    plan_transformation,
    query_parameters,
)

PROFILES: dict[str, dict[str, str]] = {
    "thumb": {"w": "128", "h": "128", "fit": "fill", "r": "auto", "format": "webp"},
    "grey": {"filter": "grayscale", "q": "40"},
}
CHROMIUM_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FORMAT_NAMES = ("jpg", "png", "webp", "avif", "jxl", "heic", "gif")


def parse(params: Mapping[str, str], profiles: Mapping[str, Mapping[str, str]] = PROFILES) -> RequestedTransformation:
    return parse_transformation(dict(params), profiles)


def plan_for(params: Mapping[str, str], width: int = 800, height: int = 600, fmt: str = "jpg") -> Plan:
    """Parse and resolve `params` against a `width` x `height` original in `fmt`, as a request would."""
    requested = parse(params)
    original_format = ImageFormat.from_short_name(fmt)
    assert original_format is not None
    output = requested.format or original_format
    return plan_transformation(requested, Attributes(width=width, height=height, format=fmt), output)


def key_of(params: Mapping[str, str], width: int = 800, height: int = 600, fmt: str = "jpg") -> str:
    return plan_for(params, width, height, fmt).key


def names_key(message: str, key: str) -> bool:
    return any(quoted in message for quoted in (f"'{key}'", f'"{key}"', f"`{key}`"))


# --------------------------------------------------------------------------------------------------
# Parsing: everything in the table is accepted
# --------------------------------------------------------------------------------------------------

ACCEPTED: list[tuple[dict[str, str], str, object]] = [
    ({"w": "1"}, "width", 1),
    ({"w": "400"}, "width", 400),
    ({"h": "300"}, "height", 300),
    ({"w": "10", "h": "10", "fit": "fit"}, "fit", Fit.FIT),
    ({"w": "10", "h": "10", "fit": "fill"}, "fit", Fit.FILL),
    ({"w": "10", "h": "10", "fit": "stretch"}, "fit", Fit.STRETCH),
    ({"w": "10", "h": "10", "fit": "crop"}, "fit", Fit.CROP),
    ({"w": "10", "h": "10", "fit": "crop", "g": "center"}, "gravity", Gravity.CENTER),
    ({"w": "10", "h": "10", "fit": "crop", "g": "entropy"}, "gravity", Gravity.ENTROPY),
    ({"w": "10", "h": "10", "fit": "crop", "g": "attention"}, "gravity", Gravity.ATTENTION),
    ({"format": "jpg"}, "format", ImageFormat.JPEG),
    ({"format": "png"}, "format", ImageFormat.PNG),
    ({"format": "webp"}, "format", ImageFormat.WEBP),
    ({"format": "avif"}, "format", ImageFormat.AVIF),
    ({"format": "jxl"}, "format", ImageFormat.JPEG_XL),
    ({"format": "heic"}, "format", ImageFormat.HEIC),
    ({"format": "gif"}, "format", ImageFormat.GIF),
    ({"r": "0"}, "rotate", Rotation.R0),
    ({"r": "90"}, "rotate", Rotation.R90),
    ({"r": "180"}, "rotate", Rotation.R180),
    ({"r": "270"}, "rotate", Rotation.R270),
    ({"r": "auto"}, "rotate", Rotation.AUTO),
    ({"f": "h"}, "flip", Flip.H),
    ({"f": "v"}, "flip", Flip.V),
    ({"f": "none"}, "flip", Flip.NONE),
    ({"f": ""}, "flip", Flip.NONE),
    ({"filter": "none"}, "filter", Filter.NONE),
    ({"filter": ""}, "filter", Filter.NONE),
    ({"filter": "black_white"}, "filter", Filter.BLACK_WHITE),
    ({"filter": "greyscale"}, "filter", Filter.GREYSCALE),
    ({"filter": "grayscale"}, "filter", Filter.GREYSCALE),
    ({"filter": "sepia"}, "filter", Filter.SEPIA),
    ({"blur": "0"}, "blur", 0.0),
    ({"blur": "2.5"}, "blur", 2.5),
    ({"blur": "150"}, "blur", 150.0),
    ({"q": "1"}, "quality", 1),
    ({"q": "100"}, "quality", 100),
    ({"pad": "0"}, "pad", 0),
    ({"pad": "1"}, "pad", 1),
    ({"pad": "25"}, "pad", 25),
    ({"pad-c": "#FF0000"}, "pad_color", (255, 0, 0, 255)),
    ({"pad-c": "#ff000080"}, "pad_color", (255, 0, 0, 128)),
    ({"strip": "exif"}, "strip", frozenset({"exif"})),
    ({"strip": "iptc"}, "strip", frozenset({"iptc"})),
    ({"strip": "xmp"}, "strip", frozenset({"xmp"})),
    ({"strip": "exif,iptc,xmp"}, "strip", frozenset({"exif", "iptc", "xmp"})),
    ({"strip": "icc"}, "strip", frozenset({"icc"})),
    ({"cs": "origin"}, "color_space", ColorSpace.ORIGIN),
    ({"cs": "grayscale"}, "color_space", ColorSpace.GRAYSCALE),
    ({"cs": "srgb"}, "color_space", ColorSpace.SRGB),
    ({"cs": "p3"}, "color_space", ColorSpace.P3),
    ({"dpr": "1"}, "dpr", 1.0),
    ({"dpr": "2.5"}, "dpr", 2.5),
    ({"dpr": "4"}, "dpr", 4.0),
    ({"profile": "thumb"}, "profile", "thumb"),
]


@pytest.mark.parametrize(
    ("params", "field", "expected"), ACCEPTED, ids=["&".join(f"{k}={v}" for k, v in p.items()) for p, _, _ in ACCEPTED]
)
def test_every_documented_value_is_accepted(params: dict[str, str], field: str, expected: object) -> None:
    requested = parse(params)
    assert getattr(requested, field) == expected
    # and it resolves to a plan against a real original
    plan_for(params)


# --------------------------------------------------------------------------------------------------
# Parsing: everything else is a 400 naming the key
# --------------------------------------------------------------------------------------------------

REFUSED: list[tuple[str, str]] = [
    ("w", "0"),
    ("w", "abc"),
    ("w", "-5"),
    ("w", "1.5"),
    ("w", ""),
    ("h", "99999"),
    ("h", "0"),
    ("fit", "cover"),
    ("g", "north"),
    ("format", "bmp"),
    ("format", "tiff"),
    ("r", "45"),
    ("r", "-90"),
    ("f", "x"),
    ("filter", "blur"),
    ("blur", "151"),
    ("blur", "-1"),
    ("blur", "soft"),
    ("q", "0"),
    ("q", "101"),
    ("q", "high"),
    ("pad", "-3"),
    ("pad-c", "red"),
    ("pad-c", "#12345"),
    ("pad-c", "#1234567"),
    ("pad-c", "#GGGGGG"),
    ("strip", "gps"),
    ("strip", "exif,gps"),
    ("cs", "adobe"),
    ("dpr", "5"),
    ("dpr", "0.5"),
    ("dpr", "0"),
    ("dpr", "nan"),
    ("profile", "unknown"),
]


@pytest.mark.parametrize(("key", "raw"), REFUSED, ids=[f"{k}={v}" for k, v in REFUSED])
def test_out_of_range_or_unknown_values_are_refused_naming_the_key(key: str, raw: str) -> None:
    params = {key: raw}
    if key == "g":
        params |= {"w": "10", "h": "10", "fit": "crop"}
    with pytest.raises(BadRequest) as caught:
        parse(params)
    assert caught.value.status == 400
    assert names_key(caught.value.message, key), caught.value.message


@pytest.mark.parametrize("fit", ["fill", "stretch", "crop"])
@pytest.mark.parametrize("sizes", [{}, {"w": "100"}, {"h": "100"}], ids=["none", "w-only", "h-only"])
def test_covering_fits_need_both_sizes(fit: str, sizes: dict[str, str]) -> None:
    with pytest.raises(BadRequest) as caught:
        parse({"fit": fit, **sizes})
    assert caught.value.status == 400
    assert names_key(caught.value.message, "fit"), caught.value.message


@pytest.mark.parametrize("fit", ["fit", "fill", "stretch", "crop"])
def test_every_fit_is_accepted_with_both_sizes(fit: str) -> None:
    assert parse({"fit": fit, "w": "100", "h": "50"}).fit is Fit(fit)


# --------------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------------


def test_profile_applies_its_parameters() -> None:
    requested = parse({"profile": "thumb"})
    assert (requested.width, requested.height) == (128, 128)
    assert requested.fit is Fit.FILL
    assert requested.rotate is Rotation.AUTO
    assert requested.format is ImageFormat.WEBP


def test_explicit_parameters_override_the_profile() -> None:
    requested = parse({"profile": "thumb", "w": "64", "format": "png"})
    assert requested.width == 64
    assert requested.height == 128  # kept from the profile
    assert requested.fit is Fit.FILL
    assert requested.rotate is Rotation.AUTO
    assert requested.format is ImageFormat.PNG


def test_profile_override_gives_the_same_variant_as_spelling_it_out() -> None:
    assert key_of({"profile": "thumb", "w": "64"}) == key_of(
        {"w": "64", "h": "128", "fit": "fill", "r": "auto", "format": "webp"}
    )
    assert key_of({"profile": "grey"}) == key_of({"filter": "greyscale", "q": "40"})


def test_profile_parameters_are_validated_with_the_request() -> None:
    # a profile that leaves a covering fit without its second size is completed by the request
    profiles = {"wide": {"fit": "crop", "h": "50"}}
    assert parse_transformation({"profile": "wide", "w": "80"}, profiles).fit is Fit.CROP
    # left open on one side, the profile's box is covered by scaling to the side it gives
    assert parse_transformation({"profile": "wide"}, profiles).fit is Fit.FIT


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(BadRequest) as caught:
        parse({"profile": "nope"})
    assert names_key(caught.value.message, "profile")


# --------------------------------------------------------------------------------------------------
# Canonical keys
# --------------------------------------------------------------------------------------------------


def test_parameter_order_is_irrelevant() -> None:
    forward = {"w": "200", "h": "100", "fit": "crop", "g": "entropy", "r": "90", "filter": "sepia", "format": "webp"}
    backward = dict(reversed(list(forward.items())))
    assert list(forward) != list(backward)
    assert key_of(forward) == key_of(backward)


@pytest.mark.parametrize(
    "explicit",
    [
        {"fit": "fit"},
        {"g": "center"},
        {"g": "entropy"},  # gravity means nothing when nothing is cropped
        {"r": "0"},
        {"f": "none"},
        {"f": ""},
        {"filter": "none"},
        {"filter": ""},
        {"blur": "0"},
        {"blur": "0.4"},
        {"pad": "0"},
        {"cs": "origin"},
        {"q": "80"},
        {"dpr": "1"},
        {"strip": ""},
        {"fit": "fit", "g": "center", "r": "0", "f": "none", "filter": "none", "blur": "0", "cs": "origin", "q": "80"},
    ],
    ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()),
)
def test_explicit_defaults_equal_omitted_ones(explicit: dict[str, str]) -> None:
    base = {"w": "200"}
    assert key_of({**base, **explicit}) == key_of(base)


@pytest.mark.parametrize(("fmt", "quality"), [("jpg", 80), ("webp", 80), ("avif", 50), ("jxl", 90), ("heic", 50)])
def test_default_quality_per_format_equals_the_explicit_one(fmt: str, quality: int) -> None:
    assert key_of({"format": fmt, "w": "100"}) == key_of({"format": fmt, "w": "100", "q": str(quality)})
    assert key_of({"format": fmt, "w": "100"}) != key_of({"format": fmt, "w": "100", "q": str(quality - 1)})


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_quality_is_ignored_for_lossless_formats(fmt: str) -> None:
    assert key_of({"format": fmt, "w": "100", "q": "10"}) == key_of({"format": fmt, "w": "100"})


def test_default_pad_colour_depends_on_the_format() -> None:
    assert key_of({"pad": "10", "format": "png"}) == key_of({"pad": "10", "format": "png", "pad-c": "#00000000"})
    assert key_of({"pad": "10", "format": "jpg"}) == key_of({"pad": "10", "format": "jpg", "pad-c": "#FFFFFF"})
    assert key_of({"pad": "10", "format": "jpg"}) == key_of({"pad": "10", "format": "jpg", "pad-c": "#ffffffff"})
    assert key_of({"pad": "10", "format": "png"}) != key_of({"pad": "10", "format": "png", "pad-c": "#FFFFFF"})


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"f": "h", "r": "180"}, {"f": "v"}),
        ({"f": "v", "r": "180"}, {"f": "h"}),
        ({"r": "90", "f": "v"}, {"r": "270", "f": "h"}),
        ({"r": "270", "f": "v"}, {"r": "90", "f": "h"}),
    ],
    ids=["h180=v", "v180=h", "90v=270h", "270v=90h"],
)
def test_equivalent_orientations_fold_together(one: dict[str, str], other: dict[str, str]) -> None:
    assert key_of(one) == key_of(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [({"f": "h"}, {"f": "v"}), ({"r": "90"}, {"r": "270"}), ({"r": "90", "f": "h"}, {"r": "90", "f": "v"})],
)
def test_different_orientations_stay_apart(one: dict[str, str], other: dict[str, str]) -> None:
    assert key_of(one) != key_of(other)


def test_one_side_and_both_sides_of_the_same_box_are_one_variant() -> None:
    assert key_of({"w": "400"}) == key_of({"h": "300"}) == key_of({"w": "400", "h": "300"})
    # a box wider than the aspect is limited by the height
    assert key_of({"w": "700", "h": "300"}) == key_of({"h": "300"})


def test_dpr_multiplies_sizes_and_padding() -> None:
    assert key_of({"dpr": "2", "w": "100"}) == key_of({"w": "200"})
    assert key_of({"dpr": "2", "h": "50", "w": "100", "fit": "crop"}) == key_of({"w": "200", "h": "100", "fit": "crop"})
    assert key_of({"dpr": "2", "w": "100", "pad": "5"}) == key_of({"w": "200", "pad": "10"})
    assert key_of({"dpr": "1.5", "w": "100"}) == key_of({"w": "150"})


def test_grayscale_and_greyscale_are_one_filter() -> None:
    assert key_of({"filter": "grayscale"}) == key_of({"filter": "greyscale"})


def test_different_requests_stay_apart() -> None:
    keys = {
        key_of(params)
        for params in (
            {"w": "200"},
            {"w": "201"},
            {"w": "200", "format": "png"},
            {"w": "200", "h": "200", "fit": "fill"},
            {"w": "200", "h": "200", "fit": "stretch"},
            {"w": "200", "h": "200", "fit": "crop", "g": "entropy"},
            {"w": "200", "h": "200", "fit": "crop", "g": "attention"},
            {"w": "200", "filter": "sepia"},
            {"w": "200", "blur": "3"},
            {"w": "200", "q": "50"},
            {"w": "200", "pad": "4"},
            {"w": "200", "pad": "4", "pad-c": "#000000"},
            {"w": "200", "strip": "exif"},
            {"w": "200", "cs": "srgb"},
            {"w": "200", "r": "auto"},
        )
    }
    assert len(keys) == 15


def test_fill_is_crop_with_centre_gravity() -> None:
    """`fill` is documented as a centred crop, so it must share the variant of `crop&g=center`."""
    assert key_of({"w": "200", "h": "200", "fit": "fill"}) == key_of({"w": "200", "h": "200", "fit": "crop"})
    assert key_of({"w": "200", "h": "200", "fit": "fill"}) == key_of(
        {"w": "200", "h": "200", "fit": "crop", "g": "center"}
    )


@pytest.mark.parametrize("fit", ["fill", "crop", "stretch"])
def test_a_box_of_the_originals_aspect_needs_no_crop(fit: str) -> None:
    """On 800x600 a 400x300 box is covered exactly: every fit gives the pixels of `fit`."""
    assert key_of({"w": "400", "h": "300", "fit": fit}) == key_of({"w": "400"})


def test_a_no_op_resize_is_the_original_size() -> None:
    plan = plan_for({"w": "800", "h": "600", "fit": "fill"})
    assert not plan.resize
    assert plan.key == plan_for({}).key


# --------------------------------------------------------------------------------------------------
# Plans: sizes decided as spec 05 §3 says
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"w": "200"}, (200, 150)),
        ({"h": "150"}, (200, 150)),
        ({"w": "200", "h": "200"}, (200, 150)),
        ({"w": "200", "h": "200", "fit": "fill"}, (200, 200)),
        ({"w": "200", "h": "200", "fit": "crop"}, (200, 200)),
        ({"w": "100", "h": "300", "fit": "stretch"}, (100, 300)),
        ({"w": "100", "dpr": "3"}, (300, 225)),
    ],
)
def test_plan_sizes(params: dict[str, str], size: tuple[int, int]) -> None:
    plan = plan_for(params, 400, 300, "png")
    assert (plan.width, plan.height) == size


def test_spelled_out_transformation_has_every_field() -> None:
    spelled = plan_for({"w": "200", "format": "webp", "pad": "3", "pad-c": "#00ff00"}, 400, 300, "png").spelled_out(
        "srgb"
    )
    assert set(spelled) >= {
        "width",
        "height",
        "fit",
        "gravity",
        "format",
        "rotate",
        "flip",
        "filter",
        "blur",
        "quality",
        "padding",
        "metadata",
        "colorSpace",
    }
    assert spelled["width"] == 200
    assert spelled["height"] == 150
    assert spelled["format"] == "webp"
    assert spelled["quality"] == 80
    assert spelled["padding"] == {"amount": 3, "color": [0, 255, 0, 255]}
    assert spelled["metadata"] == {"strip": []}
    assert spelled["colorSpace"] == "srgb"
    assert (spelled["rotate"], spelled["flip"], spelled["filter"]) == ("0", "", "")


def test_spelled_out_uses_konifers_current_spellings() -> None:
    spelled = plan_for(
        {"r": "90", "filter": "greyscale", "strip": "xmp,exif,icc", "cs": "p3", "blur": "2.5"}
    ).spelled_out("srgb")
    assert (spelled["rotate"], spelled["flip"], spelled["filter"]) == ("90", "", "grayscale")
    assert spelled["metadata"] == {"strip": ["exif", "icc", "xmp"]}  # a set, sorted by name
    assert spelled["colorSpace"] == "p3"
    assert spelled["blur"] == 3
    assert plan_for({"format": "png", "w": "10"}).spelled_out("srgb")["quality"] == 100
    assert plan_for({"format": "gif", "w": "10", "q": "30"}).spelled_out("srgb")["quality"] == 100


def test_fractional_blur_is_rounded_before_the_key() -> None:
    assert key_of({"blur": "1.5"}) == key_of({"blur": "2"})
    assert key_of({"blur": "2.49"}) == key_of({"blur": "2"})
    assert key_of({"blur": "2.5"}) == key_of({"blur": "3"})
    assert plan_for({"blur": "1.5"}).blur == 2


def _original(**attributes: object) -> Attributes:
    fields: dict[str, object] = {"width": 800, "height": 600, "format": "png"} | attributes
    return Attributes(**fields)  # type: ignore[arg-type]


def test_auto_rotation_of_an_upright_original_is_the_original() -> None:
    for orientation in (1,):
        original = _original(orientation=orientation)
        requested = parse({"r": "auto"})
        plan = plan_transformation(requested, original, ImageFormat.PNG)
        assert plan.rotate is Rotation.R0
        assert is_identity(plan, original, requested)
    # with a flip, only the flip is left
    plan = plan_transformation(parse({"r": "auto", "f": "h"}), _original(orientation=1), ImageFormat.PNG)
    assert (plan.rotate, plan.flip) == (Rotation.R0, Flip.H)


@pytest.mark.parametrize("orientation", [None, 2, 3, 4, 5, 6, 7, 8])
def test_auto_rotation_of_a_turned_or_unknown_original_renders(orientation: int | None) -> None:
    original = _original(orientation=orientation)
    requested = parse({"r": "auto"})
    plan = plan_transformation(requested, original, ImageFormat.PNG)
    assert plan.rotate is Rotation.AUTO
    assert not is_identity(plan, original, requested)


def test_colour_space_already_there_is_the_original() -> None:
    for space in ("srgb", "p3", "grayscale"):
        original = _original(color_space=space)
        requested = parse({"cs": space})
        plan = plan_transformation(requested, original, ImageFormat.PNG)
        assert plan.color_space is ColorSpace.ORIGIN
        assert is_identity(plan, original, requested)
    plan = plan_transformation(parse({"cs": "srgb"}), _original(color_space="p3"), ImageFormat.PNG)
    assert plan.color_space is ColorSpace.SRGB
    plan = plan_transformation(parse({"cs": "srgb"}), _original(), ImageFormat.PNG)
    assert plan.color_space is ColorSpace.SRGB  # not recorded: converted, as before


def test_p3_into_gif_is_refused() -> None:
    for params, fmt in (({"cs": "p3", "format": "gif"}, "png"), ({"cs": "p3"}, "gif")):
        with pytest.raises(BadRequest) as caught:
            plan_for(params, fmt=fmt)
        assert names_key(caught.value.message, "cs")


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_quality_on_a_lossless_original_is_the_original(fmt: str) -> None:
    original = _original(format=fmt)
    for params in ({"q": "40"}, {"q": "40", "format": fmt}):
        requested = parse(params)
        plan = plan_transformation(requested, original, ImageFormat.from_short_name(fmt) or ImageFormat.PNG)
        assert is_identity(plan, original, requested)
    requested = parse({"q": "40", "format": "jpg"})
    assert not is_identity(
        plan_transformation(requested, _original(format="jpg"), ImageFormat.JPEG), _original(format="jpg"), requested
    )


# --------------------------------------------------------------------------------------------------
# Negotiation
# --------------------------------------------------------------------------------------------------


def test_explicit_format_wins_over_accept() -> None:
    chosen = choose_format(ImageFormat.WEBP, CHROMIUM_ACCEPT, ImageFormat.JPEG)
    assert chosen.format is ImageFormat.WEBP
    assert not chosen.by_accept
    assert choose_format(ImageFormat.PNG, "text/html", ImageFormat.JPEG).format is ImageFormat.PNG


def test_chromium_accept_gives_avif() -> None:
    chosen = choose_format(None, CHROMIUM_ACCEPT, ImageFormat.JPEG)
    assert chosen.format is ImageFormat.AVIF
    assert chosen.by_accept


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("image/webp;q=0.5, image/avif;q=0.9", ImageFormat.AVIF),
        ("image/avif;q=0.4, image/webp;q=0.6, image/png;q=0.5", ImageFormat.WEBP),
        ("image/webp, image/avif", ImageFormat.WEBP),
        ("image/avif, image/webp", ImageFormat.AVIF),
        ("image/png;q=0.7, image/jxl;q=0.7", ImageFormat.PNG),
        ("image/webp;q=0, image/png;q=0.5", ImageFormat.PNG),
        ("image/webp;q=0.9, image/*", ImageFormat.WEBP),
        ("image/*, image/webp;q=0.1", ImageFormat.WEBP),
        ("application/json", ImageFormat.JPEG),
        ("application/json, image/png;q=0.2", ImageFormat.PNG),
        ("image/gif;q=0.9, */*;q=0.1", ImageFormat.GIF),
        ("text/html, image/heic;q=0.2", ImageFormat.HEIC),
    ],
)
def test_q_values_then_header_order(accept: str, expected: ImageFormat) -> None:
    assert choose_format(None, accept, ImageFormat.JPEG).format is expected


@pytest.mark.parametrize("accept", [None, "", "image/*", "*/*", "image/*;q=0.8", "*/*;q=0.1"])
def test_wildcards_and_no_header_keep_the_original(accept: str | None) -> None:
    for original in (ImageFormat.PNG, ImageFormat.GIF, ImageFormat.HEIC):
        assert choose_format(None, accept, original).format is original


@pytest.mark.parametrize(
    "accept", ["text/html", "application/json", "application/json, text/plain", "image/webp;q=0", "image/bmp"]
)
def test_accept_without_a_producible_image_type_keeps_the_original(accept: str) -> None:
    # Spec 06 section 5: Accept never refuses; Konifer's client sends application/json on image fetches.
    for original in (ImageFormat.JPEG, ImageFormat.PNG):
        chosen = choose_format(None, accept, original)
        assert chosen.format is original
        assert not chosen.by_accept


def test_zero_q_excludes_a_format_even_when_listed_first() -> None:
    assert choose_format(None, "image/webp;q=0, image/avif;q=0.1", ImageFormat.JPEG).format is ImageFormat.AVIF
    assert choose_format(None, "image/webp;q=0, image/*;q=0.5", ImageFormat.PNG).format is ImageFormat.PNG


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

_VALUES: dict[str, st.SearchStrategy[str]] = {
    "w": st.integers(1, 2000).map(str),
    "h": st.integers(1, 2000).map(str),
    "g": st.sampled_from(["center", "entropy", "attention"]),
    "format": st.sampled_from(FORMAT_NAMES),
    "r": st.sampled_from(["0", "90", "180", "270", "auto"]),
    "f": st.sampled_from(["h", "v", "none"]),
    "filter": st.sampled_from(["none", "black_white", "greyscale", "grayscale", "sepia"]),
    "blur": st.one_of(st.integers(0, 150).map(str), st.sampled_from(["0.5", "1.25", "7.5"])),
    "q": st.integers(1, 100).map(str),
    "pad": st.integers(1, 200).map(str),
    "pad-c": st.sampled_from(["#ff0000", "#00FF0080", "#123456", "#abcdefff"]),
    "strip": st.sampled_from(["exif", "iptc", "xmp", "exif,xmp", "xmp,iptc,exif"]),
    "cs": st.sampled_from(["origin", "grayscale", "srgb", "p3"]),
    "dpr": st.sampled_from(["1", "1.5", "2", "3", "4"]),
}


@st.composite
def valid_parameters(draw: st.DrawFn) -> dict[str, str]:
    keys = draw(st.sets(st.sampled_from(sorted(_VALUES))))
    params = {key: draw(_VALUES[key]) for key in keys}
    fit = draw(st.sampled_from(["fit", "fill", "stretch", "crop", None]))
    if fit is not None:
        params["fit"] = fit
        if fit != "fit":
            params.setdefault("w", draw(_VALUES["w"]))
            params.setdefault("h", draw(_VALUES["h"]))
    if params.get("cs") == "p3" and params.get("format", "gif") == "gif":
        # P3 needs a profile, which GIF cannot carry: that one combination is refused
        params["format"] = draw(st.sampled_from([name for name in FORMAT_NAMES if name != "gif"]))
    return params


originals = st.tuples(st.integers(1, 1200), st.integers(1, 1200), st.sampled_from(FORMAT_NAMES))


@pytest.mark.parametrize(
    ("params", "original"),
    [
        ({"w": "30"}, (400, 300)),  # 22.5 rounds down: the box 30x22 is limited by its height
        ({"h": "268"}, (424, 952)),
        ({"w": "2500"}, (100, 400)),  # the derived height exceeds what a request may ask for
    ],
)
def test_canonical_parameters_of_examples_parse_back(params: dict[str, str], original: tuple[int, int]) -> None:
    plan = plan_for(params, *original, "png")
    again = plan_for(query_parameters(plan), *original, "png")
    assert (again.width, again.height) == (plan.width, plan.height)
    assert again.key == plan.key


@settings(max_examples=300, deadline=None)
@given(params=valid_parameters(), order=st.randoms(use_true_random=False), original=originals)
def test_key_does_not_depend_on_parameter_order(
    params: dict[str, str], order: random.Random, original: tuple[int, int, str]
) -> None:
    items = list(params.items())
    order.shuffle(items)
    assert key_of(dict(items), *original) == key_of(params, *original)


@settings(max_examples=400, deadline=None)
@given(params=valid_parameters(), original=originals)
def test_canonical_parameters_parse_back_to_the_same_variant(
    params: dict[str, str], original: tuple[int, int, str]
) -> None:
    plan = plan_for(params, *original)
    again = plan_for(query_parameters(plan), *original)
    assert again.key == plan.key


def test_a_profile_box_open_on_one_side_covers_by_scaling() -> None:
    # Konifer's own example profile: `w = 128, fit = "fill"`; a request saying so is refused.
    profiles = {"thumbnail": {"w": "128", "fit": "fill", "r": "auto"}}
    requested = parse_transformation({"profile": "thumbnail"}, profiles)
    assert requested.fit is Fit.FIT
    assert requested.width == 128
    with pytest.raises(BadRequest):
        parse_transformation({"w": "128", "fit": "fill"}, {})
    with pytest.raises(BadRequest):
        parse_transformation({"profile": "thumbnail", "fit": "fill"}, profiles)


@pytest.mark.parametrize(
    ("params", "fmt", "kept"),
    [
        ({"w": "400"}, "jpg", True),
        ({"w": "400", "format": "webp", "q": "50"}, "jpg", True),
        ({"w": "400", "h": "300", "fit": "fill"}, "png", True),  # the original's own shape: a pure scale
        ({"h": "100", "strip": "exif"}, "png", True),
        ({"w": "400", "h": "400", "fit": "crop"}, "jpg", False),
        ({"w": "400", "h": "400", "fit": "fill"}, "jpg", False),
        ({"w": "400", "h": "100", "fit": "stretch"}, "jpg", False),
        ({"w": "400", "r": "90"}, "jpg", False),
        ({"w": "400", "f": "h"}, "jpg", False),
        ({"w": "400", "filter": "grayscale"}, "jpg", False),
        ({"w": "400", "blur": "5"}, "jpg", False),
        ({"w": "400", "pad": "4"}, "jpg", False),
        ({"w": "400", "cs": "p3"}, "jpg", False),
        ({"w": "400", "strip": "icc"}, "jpg", False),
        ({"w": "400", "format": "jpg"}, "png", False),  # transparency flattened
    ],
)
def test_only_pure_scales_keep_the_originals_placeholders(params: Mapping[str, str], fmt: str, kept: bool) -> None:
    assert keeps_placeholders(plan_for(params, fmt=fmt), Attributes(width=800, height=600, format=fmt)) is kept


def test_an_oriented_original_keeps_no_placeholders() -> None:
    plan = plan_for({"w": "400"})
    assert not keeps_placeholders(plan, Attributes(width=800, height=600, format="jpg", orientation=6))
