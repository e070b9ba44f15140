"""Konifer's colour-space names from ICC profiles, and the `transformation` wire object (spec 06 §4)."""

from __future__ import annotations

import struct
import uuid

import pytest
import pyvips

from konifer_edge.domain.models import Attributes, Variant
from konifer_edge.http.wire import attributes_wire, transformation_wire
from konifer_edge.imaging.colour import colour_space_of_profile, detect_colour_space, profile_description
from tests.support.real_images import adobe_rgb_profile


def _profile(description_tag: bytes, colour_space: bytes = b"RGB ") -> bytes:
    """A header and a tag table holding one `desc` tag: all the detection reads."""
    offset = 128 + 4 + 12
    header = struct.pack(">I", offset + len(description_tag)) + b"\0" * 12 + colour_space + b"XYZ "
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I4sII", 1, b"desc", offset, len(description_tag)) + description_tag


def _v2(text: str) -> bytes:
    raw = text.encode("latin-1") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(raw)) + raw


def _v4(text: str, language: bytes = b"enUS") -> bytes:
    encoded = text.encode("utf-16-be")
    return b"mluc\0\0\0\0" + struct.pack(">II", 1, 12) + language + struct.pack(">II", len(encoded), 28) + encoded


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (_v2("Display P3"), "p3"),
        (_v4("Display P3"), "p3"),
        (_v2("Apple RGB"), "p3"),
        (_v2("sP3C"), "p3"),
        (_v2("Adobe RGB (1998)"), "adobe_rgb"),
        (_v4("sRGB IEC61966-2.1"), "srgb"),
        (_v2("  U.S. Web Coated (SWOP) v2 CMYK "), "cymk"),
        (_v2("1 enUS(Display P3)"), "p3"),
        (_v2("ProPhoto RGB"), "prophoto rgb"),
        (_v2("   "), "Unknown Embedded Profile"),
        (b"", "Unknown Embedded Profile"),
    ],
)
def test_profile_descriptions_name_the_colour_space(tag: bytes, expected: str) -> None:
    assert colour_space_of_profile(_profile(tag)) == expected


def test_a_grey_profile_is_grayscale_whatever_its_name() -> None:
    assert colour_space_of_profile(_profile(_v2("sRGB-ish grey"), b"GRAY")) == "grayscale"


def test_damaged_profiles_do_not_raise() -> None:
    assert profile_description(b"\0" * 10) == ""
    assert colour_space_of_profile(b"\xff" * 200) == "Unknown Embedded Profile"


def test_the_profile_decides_over_the_interpretation() -> None:
    rgb = pyvips.Image.black(4, 4, bands=3).cast("uchar").copy(interpretation="srgb")
    assert detect_colour_space(rgb) == "srgb"
    tagged = rgb.copy()
    tagged.set_type(pyvips.GValue.blob_type, "icc-profile-data", adobe_rgb_profile())
    assert tagged.interpretation == "srgb"
    assert detect_colour_space(tagged) == "adobe_rgb"
    assert detect_colour_space(rgb.colourspace("b-w")) == "grayscale"
    assert detect_colour_space(rgb.cast("ushort").copy(interpretation="rgb16")) == "srgb"
    assert detect_colour_space(pyvips.Image.black(4, 4, bands=4).copy(interpretation="cmyk")) == "cymk"
    assert detect_colour_space(rgb.colourspace("lab")) == "unknown"


def _variant(key: str, transformation: dict[str, object], colour_space: str | None = "srgb") -> Variant:
    return Variant(
        id=uuid.uuid4(),
        asset_id=uuid.uuid4(),
        transformation_key=key,
        bucket="assets",
        store_key="k",
        attributes=Attributes(width=10, height=10, format="png", color_space=colour_space),
        content_type="image/png",
        size=1,
        content_hash="h",
        transformation=transformation,
    )


# What rows stored before spec 06 hold: Konifer 0.2 spellings, no metadata, no colorSpace.
OLD_ROW = {
    "width": 10,
    "height": 10,
    "fit": "fit",
    "gravity": "center",
    "format": "png",
    "rotate": "90",
    "flip": "none",
    "filter": "greyscale",
    "blur": 1.5,
    "quality": None,
    "padding": {"amount": 0, "color": []},
}


def test_rows_written_before_the_current_spellings_are_answered_in_them() -> None:
    wire = transformation_wire(_variant("10x10;png;r=90;filter=greyscale;blur=1.5;strip=xmp,exif;cs=p3", OLD_ROW))
    assert (wire["rotate"], wire["flip"], wire["filter"]) == ("90", "", "grayscale")
    assert wire["blur"] == 2
    assert wire["quality"] == 100
    assert wire["metadata"] == {"strip": ["exif", "xmp"]}
    assert wire["colorSpace"] == "p3"
    assert list(wire) == [
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
    ]
    plain = transformation_wire(_variant("10x10;png", OLD_ROW, colour_space=None))
    assert plain["metadata"] == {"strip": []}
    assert plain["colorSpace"] == "unknown"


def test_konifer_0_2_spellings() -> None:
    current = OLD_ROW | {"flip": "", "filter": "", "rotate": "180"}
    wire = transformation_wire(_variant("10x10;png;r=180", current), "v0.2")
    assert (wire["rotate"], wire["flip"], wire["filter"]) == ("one_hundred_eighty", "none", "none")
    rotations = {
        rotate: transformation_wire(_variant("k", OLD_ROW | {"rotate": rotate}), "v0.2")["rotate"]
        for rotate in ("0", "90", "270", "auto")
    }
    assert rotations == {"0": "zero", "90": "ninety", "270": "two_hundred_seventy", "auto": "auto"}
    assert transformation_wire(_variant("k", OLD_ROW), "v0.2")["filter"] == "greyscale"


def test_attributes_always_name_a_colour_space() -> None:
    assert attributes_wire(Attributes(width=1, height=1, format="png")).color_space == "unknown"
    assert attributes_wire(Attributes(width=1, height=1, format="png", color_space="p3")).color_space == "p3"
