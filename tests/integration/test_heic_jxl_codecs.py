"""HEIC and JPEG XL through HTTP: decoded and encoded by libheif and libjxl outside libvips.

Profiles, EXIF (with its orientation) and XMP cross between libvips and those codecs explicitly;
these tests store originals that carry them and read the answers back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pylibjxl
import pytest
import pyvips

from konifer_edge.imaging.codecs import exif_orientation
from tests.integration.test_imaging_api import decoded, fetch, generated, metadata, near, pixel, store, unique
from tests.support.assets import upload
from tests.support.deployment import Deployment
from tests.support.errors import assert_refused_untouched
from tests.support.images import load, save
from tests.support.real_images import EXIF_ARTIST, QUADRANTS, XMP_MARKER

RED, BLUE, GREEN, YELLOW = QUADRANTS
WIDTH, HEIGHT = 96, 64


def quadrants() -> pyvips.Image:
    image = pyvips.Image.black(WIDTH, HEIGHT, bands=3).new_from_image(list(RED)).cast("uchar")
    image = image.draw_rect(list(BLUE), WIDTH // 2, 0, WIDTH // 2, HEIGHT // 2, fill=True)
    image = image.draw_rect(list(GREEN), 0, HEIGHT // 2, WIDTH // 2, HEIGHT // 2, fill=True)
    image = image.draw_rect(list(YELLOW), WIDTH // 2, HEIGHT // 2, WIDTH // 2, HEIGHT // 2, fill=True)
    return image.copy(interpretation="srgb")


def tagged(orientation: int = 1) -> pyvips.Image:
    """The quadrants with an EXIF artist and orientation, an XMP marker and the P3 profile."""
    image = quadrants().copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", EXIF_ARTIST)
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc source="{XMP_MARKER}"/></x:xmpmeta>'
    image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp.encode())
    p3 = pyvips.Image.black(2, 2, bands=3).cast("uchar").copy(interpretation="srgb").icc_transform("p3")
    image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(p3.get("icc-profile-data")))
    # Through JPEG once: its saver turns the exif-* fields into the EXIF block the codecs carry.
    return pyvips.Image.new_from_buffer(image.jpegsave_buffer(Q=95), "")


def fields_of(image: pyvips.Image) -> set[str]:
    return set(image.get_fields())


@pytest.mark.parametrize("fmt", ["heic", "jxl"])
def test_an_original_keeps_its_profile_exif_and_xmp_into_every_format(fs_api: Deployment, fmt: str) -> None:
    path = unique()
    body = store(fs_api, path, save(tagged(), f".{fmt}"))
    attributes: dict[str, Any] = body["variants"][0]["attributes"]
    assert (attributes["width"], attributes["height"], attributes["format"]) == (WIDTH, HEIGHT, fmt)
    assert attributes["colorSpace"] == "p3"
    for output in ("jpg", "png", "webp", "heic", "jxl"):
        image = decoded(fetch(fs_api, path, {"w": "48", "format": output}))
        assert (image.width, image.height) == (48, 32), output
        fields = fields_of(image)
        assert "icc-profile-data" in fields, output
        assert XMP_MARKER.encode() in bytes(image.get("xmp-data")), output
        assert EXIF_ARTIST.encode() in bytes(image.get("exif-data")), output
        # the P3 values are kept with their profile: the red quadrant is not re-expressed as sRGB
        assert near(pixel(image, 4, 4), RED, 48), (output, pixel(image, 4, 4))
    variants = {variant["attributes"]["format"]: variant["attributes"] for variant in generated(metadata(fs_api, path))}
    assert {space["colorSpace"] for space in variants.values()} == {"p3"}


@pytest.mark.parametrize("fmt", ["heic", "jxl"])
def test_strip_exif_keeps_xmp_and_the_profile(fs_api: Deployment, fmt: str) -> None:
    path = unique()
    store(fs_api, path, save(tagged(), ".jpg"))
    answer = fetch(fs_api, path, {"format": fmt, "strip": "exif"})
    image = decoded(answer)
    assert "exif-data" not in fields_of(image)
    assert EXIF_ARTIST.encode() not in answer.content
    assert XMP_MARKER.encode() in bytes(image.get("xmp-data"))
    assert "icc-profile-data" in fields_of(image)


def test_a_jpeg_xl_orientation_is_read_and_applied_by_auto_rotation(fs_api: Deployment) -> None:
    path = unique()
    body = store(fs_api, path, save(tagged(orientation=6), ".jxl"))
    assert (body["variants"][0]["attributes"]["width"], body["variants"][0]["attributes"]["height"]) == (WIDTH, HEIGHT)
    # Without a turn, the answer keeps the stored pixels and the orientation that says how to show them.
    kept = decoded(fetch(fs_api, path, {"format": "jxl", "w": "48"}))
    assert (kept.width, kept.height) == (48, 32)
    assert exif_orientation(bytes(kept.get("exif-data"))) == 6
    upright = decoded(fetch(fs_api, path, {"r": "auto", "format": "png"}))
    assert (upright.width, upright.height) == (HEIGHT, WIDTH)
    # orientation 6 shows the stored pixels turned a quarter clockwise: green comes to the top left
    assert near(pixel(upright, 4, 4), GREEN, 48), pixel(upright, 4, 4)
    assert near(pixel(upright, HEIGHT - 5, 4), RED, 48), pixel(upright, HEIGHT - 5, 4)
    assert "orientation" not in fields_of(upright) or upright.get("orientation") == 1


def test_a_heic_is_shown_upright_as_its_container_says(fs_api: Deployment) -> None:
    """libheif writes EXIF orientation 6 as the container's rotation and applies it when decoding."""
    path = unique()
    body = store(fs_api, path, save(tagged(orientation=6), ".heic"))
    attributes = body["variants"][0]["attributes"]
    assert (attributes["width"], attributes["height"]) == (HEIGHT, WIDTH)
    image = decoded(fetch(fs_api, path, {"format": "png"}))
    assert (image.width, image.height) == (HEIGHT, WIDTH)
    assert near(pixel(image, 4, 4), GREEN, 48), pixel(image, 4, 4)
    assert "orientation" not in fields_of(image) or image.get("orientation") == 1


@pytest.mark.parametrize("fmt", ["heic", "jxl"])
@pytest.mark.parametrize("source", ["png-16bit", "png-grey-alpha", "png-rgba", "gif-animated"])
def test_every_kind_of_pixels_encodes(fs_api: Deployment, fmt: str, source: str) -> None:
    base = quadrants()
    if source == "png-16bit":
        content = save((base.cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16"), ".png")
    elif source == "png-grey-alpha":
        grey = base.colourspace("b-w")[0]
        content = save(grey.bandjoin(grey.new_from_image(128)).copy(interpretation="b-w"), ".png")
    elif source == "png-rgba":
        content = save(base.bandjoin(base[0].new_from_image(128)).copy(interpretation="srgb"), ".png")
    else:
        frames = pyvips.Image.arrayjoin([base, base.invert()], across=1).copy()
        frames.set_type(pyvips.GValue.gint_type, "page-height", HEIGHT)
        content = save(frames, ".gif")
    path = unique()
    store(fs_api, path, content)
    answer = fetch(fs_api, path, {"format": fmt, "w": "48"})
    image = load(answer.content)
    assert (image.width, image.height) == (48, 32)
    assert image.get("vips-loader").startswith("heif" if fmt == "heic" else "jxl")
    if source in ("png-grey-alpha", "png-rgba"):
        assert image.hasalpha()
    [variant] = generated(metadata(fs_api, path))
    assert variant["attributes"]["format"] == fmt


@pytest.mark.parametrize("fmt", ["heic", "jxl"])
def test_damaged_files_are_refused(fs_api: Deployment, fmt: str) -> None:
    whole = save(quadrants(), f".{fmt}")
    for damaged in (whole[: len(whole) // 2], whole[:64] + bytes(len(whole) - 64)):
        body = assert_refused_untouched(fs_api, lambda d=damaged: upload(fs_api.client, unique(), d), 400)  # type: ignore[misc]
        assert body["error"] == "undecodable_image", body


def test_a_jpeg_xl_too_large_is_refused_from_its_header(fs_api: Deployment) -> None:
    wide = pylibjxl.encode(np.zeros((4, 20000, 3), dtype=np.uint8), effort=1, distance=1.0)
    body = assert_refused_untouched(fs_api, lambda: upload(fs_api.client, unique(), wide), 400)
    assert body["error"] == "image_too_large", body
