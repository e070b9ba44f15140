"""Image transformations over HTTP (spec 05 §2-4, spec 02 formats), checked by decoding the answers.

Every answer that carries pixels is decoded with pyvips: its size, loader, frame count and,
where the transformation is about colour or orientation, a pixel. Variants are checked in
the database too: equivalent spellings share one row, concurrent first requests render once,
and expiry removes rows that the next request renders again.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import blurhash
import httpx
import pytest
import pyvips
import thumbhash

from tests.integration.conftest import start_deployment
from tests.support.deployment import Deployment
from tests.support.images import FORMATS, MIME_TYPES, describe, heif_compression, load, loader_name, make_image
from tests.support.polling import wait_for
from tests.support.services import PostgresService

HEIF_CODEC = {"avif": "av1", "heic": "hevc"}
CHROMIUM_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
TRANSFORMATION_FIELDS = {
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

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)
WHITE = (255, 255, 255)

Query = Mapping[str, str] | list[tuple[str, str]]


# --------------------------------------------------------------------------------------------------
# Test images (small, built with pyvips; cached because several tests share them)
# --------------------------------------------------------------------------------------------------


def _rgb_canvas(width: int, height: int, colour: tuple[int, int, int]) -> pyvips.Image:
    canvas = pyvips.Image.black(width, height, bands=3).new_from_image(list(colour)).cast("uchar")
    return canvas.copy(interpretation="srgb")


@functools.cache
def quadrants_png() -> bytes:
    """400x300: red top-left, blue top-right, green bottom-left, yellow bottom-right."""
    image = _rgb_canvas(400, 300, RED)
    image = image.draw_rect(list(BLUE), 200, 0, 200, 150, fill=True)
    image = image.draw_rect(list(GREEN), 0, 150, 200, 150, fill=True)
    image = image.draw_rect(list(YELLOW), 200, 150, 200, 150, fill=True)
    return bytes(image.pngsave_buffer())


@functools.cache
def halves_png() -> bytes:
    """200x100: left half red, right half blue."""
    image = _rgb_canvas(200, 100, RED).draw_rect(list(BLUE), 100, 0, 100, 100, fill=True)
    return bytes(image.pngsave_buffer())


@functools.cache
def subject_off_centre_png() -> bytes:
    """400x300 flat grey with one small saturated red square near the left edge."""
    image = _rgb_canvas(400, 300, (128, 128, 128)).draw_rect(list(RED), 20, 120, 50, 50, fill=True)
    return bytes(image.pngsave_buffer())


@functools.cache
def grey_png() -> bytes:
    return bytes(_rgb_canvas(120, 90, (128, 128, 128)).pngsave_buffer())


@functools.cache
def half_transparent_png() -> bytes:
    """200x150 RGBA: the left half fully transparent (black beneath), the right half opaque blue."""
    colour = _rgb_canvas(200, 150, (0, 0, 0)).draw_rect(list(BLUE), 100, 0, 100, 150, fill=True)
    alpha = pyvips.Image.black(200, 150).cast("uchar").draw_rect(255, 100, 0, 100, 150, fill=True)
    return bytes(colour.bandjoin(alpha).copy(interpretation="srgb").pngsave_buffer())


@functools.cache
def oriented_jpeg() -> bytes:
    """The quadrants stored sideways: 400x300 pixels with EXIF orientation 6 (display turned 90° clockwise)."""
    image = load(quadrants_png()).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    return bytes(image.jpegsave_buffer(Q=95))


@functools.cache
def exif_tagged_jpeg() -> bytes:
    image = load(quadrants_png()).copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "konifer-test-artist")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-ImageDescription", "konifer-test-description")
    return bytes(image.jpegsave_buffer(Q=90))


@functools.cache
def cmyk_jpeg() -> bytes:
    image = _rgb_canvas(120, 90, (200, 80, 40)).colourspace("cmyk")
    assert image.interpretation == "cmyk"
    return bytes(image.jpegsave_buffer(Q=95))


@functools.cache
def noisy_jpeg() -> bytes:
    noise = pyvips.Image.gaussnoise(300, 200, mean=128, sigma=40)
    image = noise.bandjoin([noise.rot180(), noise.fliphor()]).cast("uchar").copy(interpretation="srgb")
    return bytes(image.jpegsave_buffer(Q=90))


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def unique(prefix: str = "t") -> str:
    return f"/{prefix}/{uuid.uuid4().hex[:12]}/image"


def store(api: Deployment, path: str, content: bytes) -> dict[str, Any]:
    response = api.client.post(
        f"/assets{path}",
        files={"metadata": (None, "{}", "application/json"), "file": ("image", content, "application/octet-stream")},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def fetch(
    api: Deployment,
    path: str,
    params: Query | None = None,
    *,
    selector: str = "content",
    accept: str | None = None,
    status: int = 200,
) -> httpx.Response:
    headers = {"Accept": accept} if accept is not None else {}
    pairs = params.items() if isinstance(params, Mapping) else params or []
    query: tuple[tuple[str, str | int | float | bool | None], ...] = tuple(pairs)
    response = api.client.get(f"/assets{path}/-/{selector}", params=query, headers=headers)
    assert response.status_code == status, f"{path} {selector} {params}: {response.status_code} {response.text[:300]}"
    return response


def metadata(api: Deployment, path: str) -> dict[str, Any]:
    body: dict[str, Any] = fetch(api, path, selector="metadata").json()
    return body


def generated(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [variant for variant in body["variants"] if not variant["isOriginalVariant"]]


def variant_rows(api: Deployment, path: str) -> int:
    rows = api.query(
        "SELECT count(*) FROM variant v JOIN asset a ON a.id = v.asset_id"
        " WHERE a.path = $1 AND v.transformation_key <> ''",
        path,
    )
    count: int = rows[0][0]
    return count


def decoded(response: httpx.Response) -> pyvips.Image:
    return load(response.content)


def pixel(image: pyvips.Image, x: int, y: int) -> list[float]:
    values: list[float] = list(image(x, y))
    return values


def near(actual: Sequence[float], expected: Sequence[float], tolerance: float = 40) -> bool:
    return len(actual) >= len(expected) and all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def cache_status(response: httpx.Response) -> str:
    status: str = response.headers.get("K-Cache-Status", "<missing>")
    return status


def _rows_at(api: Deployment, path: str) -> list[tuple[Any, ...]]:
    """The assets at `path` and their variants, without the access times a background job keeps moving."""
    return api.query(
        "SELECT a.id, a.entry_id, a.modified_at, v.id, v.transformation_key, v.store_key, v.created_at"
        " FROM asset a LEFT JOIN variant v ON v.asset_id = a.id WHERE a.path = $1 ORDER BY a.id, v.id",
        path,
    )


@contextlib.contextmanager
def nothing_stored(api: Deployment, path: str) -> Iterator[None]:
    """No row at `path` changes and no object appears anywhere while the block runs.

    Scoped to the path (and to new objects) because the shared servers purge, touch and reap other
    tests' variants in the background meanwhile.
    """
    rows, objects = _rows_at(api, path), set(api.stored_objects())
    yield
    assert _rows_at(api, path) == rows
    assert set(api.stored_objects()) - objects == set()


def names_parameter(message: str, key: str) -> bool:
    return any(quoted in message for quoted in (f"'{key}'", f'"{key}"', f"`{key}`"))


# --------------------------------------------------------------------------------------------------
# Fit and gravity
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"w": "200", "h": "200"}, (200, 150)),
        ({"w": "200", "h": "200", "fit": "fit"}, (200, 150)),
        ({"h": "60"}, (80, 60)),
        ({"w": "200", "h": "200", "fit": "fill"}, (200, 200)),
        ({"w": "100", "h": "200", "fit": "stretch"}, (100, 200)),
        ({"w": "200", "h": "200", "fit": "crop"}, (200, 200)),
        ({"w": "120", "h": "40", "fit": "crop", "g": "entropy"}, (120, 40)),
    ],
    ids=lambda value: "&".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value),
)
def test_fit_modes_give_their_sizes(fs_api: Deployment, params: dict[str, str], size: tuple[int, int]) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    image = decoded(fetch(fs_api, path, params))
    assert (image.width, image.height) == size
    assert image.get("vips-loader").startswith("png")


@pytest.mark.parametrize(("side", "value"), [("w", 30), ("w", 54), ("w", 100), ("h", 22), ("h", 100)])
def test_a_single_side_is_exact(fs_api: Deployment, side: str, value: int) -> None:
    """`w` alone is the output width (and `h` the height); the other side keeps the 4:3 aspect."""
    path = unique()
    store(fs_api, path, quadrants_png())
    image = decoded(fetch(fs_api, path, {side: str(value)}))
    if side == "w":
        assert image.width == value
        assert abs(image.height - value * 3 / 4) <= 1
    else:
        assert image.height == value
        assert abs(image.width - value * 4 / 3) <= 1


def test_stretch_ignores_the_aspect_and_keeps_the_layout(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    image = decoded(fetch(fs_api, path, {"w": "100", "h": "200", "fit": "stretch"}))
    assert (image.width, image.height) == (100, 200)
    assert near(pixel(image, 10, 10), RED)
    assert near(pixel(image, 90, 10), BLUE)
    assert near(pixel(image, 10, 190), GREEN)
    assert near(pixel(image, 90, 190), YELLOW)


def _has_red_subject(image: pyvips.Image) -> bool:
    # the square is (255, 0, 0) on (128, 128, 128): only the subject has a red band near 255 and a low green
    return bool(image[0].max() > 220 and image[1].min() < 40)


@pytest.mark.parametrize(
    ("params", "keeps_subject"),
    [
        ({"fit": "fill"}, False),
        ({"fit": "crop"}, False),
        ({"fit": "crop", "g": "center"}, False),
        ({"fit": "crop", "g": "entropy"}, True),
        ({"fit": "crop", "g": "attention"}, True),
    ],
    ids=["fill", "crop", "crop-center", "crop-entropy", "crop-attention"],
)
def test_gravity_decides_what_the_crop_keeps(fs_api: Deployment, params: dict[str, str], keeps_subject: bool) -> None:
    path = unique()
    store(fs_api, path, subject_off_centre_png())
    image = decoded(fetch(fs_api, path, {"w": "150", "h": "300", **params}))
    assert (image.width, image.height) == (150, 300)
    assert _has_red_subject(image) is keeps_subject
    if not keeps_subject:
        # a centred crop is the flat background only
        assert near(pixel(image, 75, 150), (128, 128, 128), 3)


# --------------------------------------------------------------------------------------------------
# Rotation and flips (quadrants: red TL, blue TR, green BL, yellow BR)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "size", "top_left", "top_right"),
    [
        ({"r": "90"}, (300, 400), GREEN, RED),
        ({"r": "180"}, (400, 300), YELLOW, GREEN),
        ({"r": "270"}, (300, 400), BLUE, YELLOW),
        ({"r": "90", "w": "300"}, (225, 300), GREEN, RED),
        ({"r": "270", "h": "150"}, (150, 200), BLUE, YELLOW),
        ({"f": "h"}, (400, 300), BLUE, RED),
        ({"f": "v"}, (400, 300), GREEN, YELLOW),
        ({"f": "h", "r": "180"}, (400, 300), GREEN, YELLOW),
        ({"r": "90", "f": "h"}, (300, 400), RED, GREEN),
    ],
    ids=["r90", "r180", "r270", "r90-w300", "r270-h150", "fh", "fv", "fh-r180", "r90-fh"],
)
def test_rotation_and_flip_move_the_quadrants(
    fs_api: Deployment,
    params: dict[str, str],
    size: tuple[int, int],
    top_left: tuple[int, int, int],
    top_right: tuple[int, int, int],
) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    image = decoded(fetch(fs_api, path, params))
    assert (image.width, image.height) == size
    assert near(pixel(image, 5, 5), top_left), pixel(image, 5, 5)
    assert near(pixel(image, image.width - 6, 5), top_right), pixel(image, image.width - 6, 5)


def test_folded_orientations_share_one_variant(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    first = fetch(fs_api, path, {"f": "v"})
    assert cache_status(first) == "miss"
    again = fetch(fs_api, path, {"r": "180", "f": "h"})
    assert cache_status(again) == "hit"
    assert again.content == first.content
    assert variant_rows(fs_api, path) == 1


def test_auto_rotation_follows_exif_and_removes_the_orientation(fs_api: Deployment) -> None:
    path = unique()
    stored = store(fs_api, path, oriented_jpeg())
    assert stored["variants"][0]["attributes"]["format"] == "jpg"
    image = decoded(fetch(fs_api, path, {"r": "auto"}))
    assert image.get("vips-loader").startswith("jpeg")
    assert (image.width, image.height) == (300, 400)
    # upright: the display of orientation 6 turns the stored pixels a quarter clockwise
    assert near(pixel(image, 5, 5), GREEN), pixel(image, 5, 5)
    assert near(pixel(image, 294, 5), RED), pixel(image, 294, 5)
    # No rotation is left for a viewer to apply. libvips 8.14 writes a minimal EXIF block into every JPEG
    # and so may record the identity orientation (1); any other value would turn the pixels again.
    fields = image.get_fields()
    assert "orientation" not in fields or image.get("orientation") == 1
    [variant] = generated(metadata(fs_api, path))
    assert (variant["attributes"]["width"], variant["attributes"]["height"]) == (300, 400)
    assert variant["transformation"]["rotate"] == "auto"


def test_auto_rotation_sizes_before_turning_like_every_rotation(fs_api: Deployment) -> None:
    """Spec 05 §3: resize, then rotate; `r=auto` is a rotation, so `w` sizes the stored 400x300 pixels."""
    path = unique()
    store(fs_api, path, oriented_jpeg())
    image = decoded(fetch(fs_api, path, {"r": "auto", "w": "150"}))
    # 400x300 -> 150x113, then turned upright -> 113x150
    assert (image.width, image.height) == (113, 150)
    assert near(pixel(image, 5, 5), GREEN), pixel(image, 5, 5)
    [variant] = generated(metadata(fs_api, path))
    assert (variant["attributes"]["width"], variant["attributes"]["height"]) == (113, 150)


# --------------------------------------------------------------------------------------------------
# Filters, blur, padding, quality, metadata, colour space, alpha
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["greyscale", "grayscale"])
def test_greyscale_filter_keeps_three_equal_bands(fs_api: Deployment, spelling: str) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 200, 150))
    image = decoded(fetch(fs_api, path, {"filter": spelling}))
    assert image.bands == 3
    # away from make_image's complementary block in the top-left corner
    red, green, blue = pixel(image, 150, 100)[:3]
    assert red == green == blue
    assert 60 < red < 160  # the lightness of (200, 80, 40), neither black nor white
    assert pixel(image, 5, 5)[0] > red  # the lighter block stays lighter


def test_black_white_filter_is_a_threshold(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 200, 150))
    image = decoded(fetch(fs_api, path, {"filter": "black_white"}))
    binary = (image == 0) | (image == 255)
    assert binary.min() == 255, "every pixel is pure black or pure white"
    assert image.min() == 0
    assert image.max() == 255


def test_sepia_filter_tints_grey_warm(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, grey_png())
    image = decoded(fetch(fs_api, path, {"filter": "sepia"}))
    red, green, blue = pixel(image, 60, 45)[:3]
    assert red > green > blue
    assert red - blue > 30


def test_blur_mixes_colours_across_an_edge(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, halves_png())
    sharp = decoded(fetch(fs_api, path))
    assert near(pixel(sharp, 98, 50), RED, 2)
    blurred = decoded(fetch(fs_api, path, {"blur": "6"}))
    assert (blurred.width, blurred.height) == (200, 100)
    red, _, blue = pixel(blurred, 98, 50)[:3]
    assert red < 245
    assert blue > 20
    # far from the edge the colour is untouched
    assert near(pixel(blurred, 10, 50), RED, 10)


def test_pad_adds_the_given_colour_on_every_side(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    image = decoded(fetch(fs_api, path, {"w": "100", "pad": "10", "pad-c": "#00ff00"}))
    assert (image.width, image.height) == (120, 95)
    for x, y in ((0, 0), (119, 94), (60, 2), (2, 47)):
        assert near(pixel(image, x, y), GREEN, 2), (x, y, pixel(image, x, y))
    assert near(pixel(image, 15, 15), RED)


def test_pad_colour_with_alpha(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    image = decoded(fetch(fs_api, path, {"pad": "5", "pad-c": "#ff000080"}))
    assert (image.width, image.height) == (410, 310)
    assert image.bands == 4
    assert near(pixel(image, 0, 0), (255, 0, 0, 128), 2)


def test_default_pad_is_transparent_for_png_and_white_for_jpg(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    png = decoded(fetch(fs_api, path, {"pad": "8"}))
    assert (png.width, png.height) == (416, 316)
    assert png.hasalpha()
    assert pixel(png, 0, 0)[3] == 0
    assert pixel(png, 20, 20)[3] == 255
    jpg = fetch(fs_api, path, {"pad": "8", "format": "jpg"})
    assert jpg.headers["content-type"] == "image/jpeg"
    image = decoded(jpg)
    assert (image.width, image.height) == (416, 316)
    assert near(pixel(image, 1, 1), WHITE, 8)


def test_quality_changes_the_encoded_size(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, noisy_jpeg())
    low = fetch(fs_api, path, {"q": "10"})
    high = fetch(fs_api, path, {"q": "95"})
    for response in (low, high):
        image = decoded(response)
        assert image.get("vips-loader").startswith("jpeg")
        assert (image.width, image.height) == (300, 200)
    assert len(low.content) < 0.6 * len(high.content)
    webp_low = fetch(fs_api, path, {"format": "webp", "q": "10"})
    webp_high = fetch(fs_api, path, {"format": "webp", "q": "95"})
    assert len(webp_low.content) < 0.6 * len(webp_high.content)


def _exif_tags(image: pyvips.Image) -> set[str]:
    return {name for name in image.get_fields() if name.startswith("exif-ifd")}


def test_strip_exif_removes_the_originals_exif(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, exif_tagged_jpeg())
    kept = decoded(fetch(fs_api, path, {"w": "100"}))
    assert {"exif-ifd0-Artist", "exif-ifd0-ImageDescription"} <= _exif_tags(kept)
    stripped = decoded(fetch(fs_api, path, {"w": "100", "strip": "exif"}))
    assert (stripped.width, stripped.height) == (100, 75)
    assert not {"exif-ifd0-Artist", "exif-ifd0-ImageDescription"} & _exif_tags(stripped)
    assert b"konifer-test" not in fetch(fs_api, path, {"w": "100", "strip": "exif,xmp"}).content


def test_grayscale_colour_space_gives_one_band(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    png = decoded(fetch(fs_api, path, {"cs": "grayscale"}))
    assert png.bands == 1
    assert png.interpretation == "b-w"
    jpg = decoded(fetch(fs_api, path, {"cs": "grayscale", "format": "jpg"}))
    assert jpg.bands == 1
    assert (jpg.width, jpg.height) == (400, 300)


def test_srgb_colour_space_from_cmyk(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, cmyk_jpeg())
    image = decoded(fetch(fs_api, path, {"cs": "srgb", "format": "png"}))
    assert image.bands == 3
    assert near(pixel(image, 60, 45), (200, 80, 40), 40), pixel(image, 60, 45)


def test_alpha_is_flattened_onto_white_for_jpg(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, half_transparent_png())
    response = fetch(fs_api, path, {"format": "jpg"})
    assert response.headers["content-type"] == "image/jpeg"
    image = decoded(response)
    assert image.bands == 3
    assert near(pixel(image, 10, 75), WHITE, 8), pixel(image, 10, 75)
    assert near(pixel(image, 190, 75), BLUE, 30)


def test_alpha_is_flattened_onto_the_pad_colour_when_given(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, half_transparent_png())
    image = decoded(fetch(fs_api, path, {"format": "jpg", "pad": "10", "pad-c": "#00ff00"}))
    assert (image.width, image.height) == (220, 170)
    assert near(pixel(image, 1, 1), GREEN, 30), pixel(image, 1, 1)
    assert near(pixel(image, 30, 85), GREEN, 30), pixel(image, 30, 85)  # transparent inside
    assert near(pixel(image, 200, 85), BLUE, 30)


def test_order_of_operations_resize_then_rotate_then_pad(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    image = decoded(fetch(fs_api, path, {"w": "300", "r": "90", "pad": "10", "pad-c": "#ffffff"}))
    # resize 400x300 -> 300x225, turn -> 225x300, pad -> 245x320
    assert (image.width, image.height) == (245, 320)
    assert near(pixel(image, 15, 15), GREEN)


def test_dpr_multiplies_sizes_and_padding(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    image = decoded(fetch(fs_api, path, {"w": "50", "pad": "2", "dpr": "2", "pad-c": "#000000"}))
    assert (image.width, image.height) == (108, 83)


# --------------------------------------------------------------------------------------------------
# Formats in and out (spec 02)
# --------------------------------------------------------------------------------------------------


def _assert_format(response: httpx.Response, fmt: str) -> pyvips.Image:
    assert response.headers["content-type"] == MIME_TYPES[fmt]
    info = describe(response.content)
    assert info.fmt == loader_name(fmt), info
    if fmt in HEIF_CODEC:
        assert heif_compression(response.content) == HEIF_CODEC[fmt]
    return decoded(response)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_stored_and_transformed(fs_api: Deployment, fmt: str) -> None:
    path = unique()
    stored = store(fs_api, path, make_image(fmt, 80, 60))
    assert stored["variants"][0]["attributes"]["format"] == fmt
    original = fetch(fs_api, path)
    assert cache_status(original) == "hit"
    image = _assert_format(original, fmt)
    assert (image.width, describe(original.content).height) == (80, 60)
    resized = fetch(fs_api, path, {"w": "40", "format": "png"})
    image = _assert_format(resized, "png")
    assert (image.width, image.height) == (40, 30)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_produced(fs_api: Deployment, fmt: str) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 80, 60))
    response = fetch(fs_api, path, {"w": "40", "format": fmt})
    assert cache_status(response) == "miss"
    image = _assert_format(response, fmt)
    assert (image.width, describe(response.content).height) == (40, 30)
    [variant] = generated(metadata(fs_api, path))
    assert variant["attributes"]["format"] == fmt
    assert (variant["attributes"]["width"], variant["attributes"]["height"]) == (40, 30)
    assert variant["transformation"]["format"] == fmt


@pytest.mark.parametrize(("source", "target"), [("gif", "webp"), ("webp", "gif")])
@pytest.mark.parametrize("width", [None, 30])
def test_animations_keep_their_frames(fs_api: Deployment, source: str, target: str, width: int | None) -> None:
    path = unique()
    stored = store(fs_api, path, make_image(source, 60, 40, frames=4, delay_ms=80))
    assert stored["variants"][0]["attributes"]["pageCount"] == 4
    params = {"format": target} | ({"w": str(width)} if width else {})
    response = fetch(fs_api, path, params)
    _assert_format(response, target)
    info = describe(response.content)
    assert info.pages == 4
    assert (info.width, info.height) == ((30, 20) if width else (60, 40))
    [variant] = generated(metadata(fs_api, path))
    assert variant["attributes"]["pageCount"] == 4
    assert variant["attributes"]["loop"] == stored["variants"][0]["attributes"]["loop"]
    assert (variant["attributes"]["width"], variant["attributes"]["height"]) == (info.width, info.height)


def test_animated_to_still_format_keeps_one_frame(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, make_image("gif", 60, 40, frames=3))
    response = fetch(fs_api, path, {"format": "png"})
    info = describe(response.content)
    assert (info.fmt, info.pages, info.width, info.height) == ("png", 1, 60, 40)
    [variant] = generated(metadata(fs_api, path))
    assert variant["attributes"]["pageCount"] == 1


def test_cmyk_jpeg_renders_to_srgb_png(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, cmyk_jpeg())
    response = fetch(fs_api, path, {"format": "png"})
    image = _assert_format(response, "png")
    assert image.bands == 3
    assert image.interpretation == "srgb"
    assert near(pixel(image, 60, 45), (200, 80, 40), 40), pixel(image, 60, 45)


# --------------------------------------------------------------------------------------------------
# Variants: one per distinct result, rendered once
# --------------------------------------------------------------------------------------------------


def test_equivalent_spellings_share_one_variant(api: Deployment) -> None:
    path = unique()
    store(api, path, quadrants_png())
    spellings: list[Query] = [
        [("w", "200"), ("format", "webp")],
        [("format", "webp"), ("w", "200")],
        [("h", "150"), ("format", "webp")],
        [("dpr", "2"), ("w", "100"), ("format", "webp")],
        [("w", "200"), ("format", "webp"), ("fit", "fit"), ("r", "0"), ("f", "none"), ("q", "80"), ("blur", "0")],
    ]
    responses = [fetch(api, path, spelling) for spelling in spellings]
    assert [cache_status(r) for r in responses] == ["miss", "hit", "hit", "hit", "hit"]
    assert len({r.content for r in responses}) == 1
    image = _assert_format(responses[0], "webp")
    assert (image.width, image.height) == (200, 150)
    [variant] = generated(metadata(api, path))
    transformation = variant["transformation"]
    assert set(transformation) >= TRANSFORMATION_FIELDS
    assert transformation["width"] == 200
    assert transformation["height"] == 150
    assert transformation["fit"] == "fit"
    assert transformation["gravity"] == "center"
    assert transformation["format"] == "webp"
    assert str(transformation["rotate"]) == "0"
    assert transformation["flip"] == ""
    assert transformation["filter"] == ""
    assert transformation["blur"] == 0
    assert transformation["quality"] == 80
    assert transformation["padding"]["amount"] == 0
    assert isinstance(transformation["padding"]["color"], list)
    assert variant["attributes"] == {
        "width": 200,
        "height": 150,
        "format": "webp",
        "colorSpace": "srgb",
        "pageCount": 1,
        "loop": 0,
    }
    assert variant["storeBucket"] == "assets"
    assert variant["storeKey"] != metadata(api, path)["variants"][0]["storeKey"]
    if api.store != "in-memory":
        assert api.read_object("assets", variant["storeKey"]) == responses[0].content
    assert variant_rows(api, path) == 1


def test_padded_variant_spells_out_its_padding(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    fetch(fs_api, path, {"w": "100", "pad": "4", "pad-c": "#00ff00", "r": "270", "filter": "sepia", "blur": "1.5"})
    [variant] = generated(metadata(fs_api, path))
    transformation = variant["transformation"]
    assert transformation["padding"] == {"amount": 4, "color": [0, 255, 0, 255]}
    assert str(transformation["rotate"]) == "270"
    assert transformation["filter"] == "sepia"
    assert transformation["blur"] == 2  # a fractional blur is rounded before normalisation
    assert (variant["attributes"]["width"], variant["attributes"]["height"]) == (83, 108)


def test_concurrent_first_requests_render_once(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    clients = 32
    barrier = threading.Barrier(clients)
    url = f"{fs_api.base_url}/assets{path}/-/content"

    def one(_: int) -> tuple[int, str, bytes]:
        with httpx.Client(timeout=60.0) as client:
            barrier.wait(timeout=30)
            response = client.get(url, params={"w": "300", "format": "avif"})
        return response.status_code, cache_status(response), response.content

    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, range(clients)))
    assert [status for status, _, _ in results] == [200] * clients
    statuses = sorted(status for _, status, _ in results)
    assert statuses == ["hit"] * (clients - 1) + ["miss"]
    assert len({content for _, _, content in results}) == 1
    assert describe(results[0][2]).width == 300
    assert variant_rows(fs_api, path) == 1
    assert len(generated(metadata(fs_api, path))) == 1


@pytest.mark.parametrize("width", [100, 30])
def test_link_carries_normalised_parameters_that_serve_the_variant(fs_api: Deployment, width: int) -> None:
    path = unique()
    entry_id = store(fs_api, path, quadrants_png())["entryId"]
    link = fetch(fs_api, path, {"w": str(width)}, selector="link").json()
    parts = urlsplit(link["url"])
    assert parts.path in (
        f"/assets{path}/-/entry/{entry_id}/content",
        f"/assets{path}/-/content/entry/{entry_id}",
    )
    query = parse_qs(parts.query)
    assert query["w"] == [str(width)]
    direct = decoded(fetch(fs_api, path, {"w": str(width)}))
    followed = fs_api.client.get(link["url"])
    assert followed.status_code == 200, followed.text
    image = decoded(followed)
    assert (image.width, image.height) == (direct.width, direct.height)
    # the link resolved (and rendered) the variant it points at
    assert cache_status(followed) == "hit"
    assert variant_rows(fs_api, path) == 1


# --------------------------------------------------------------------------------------------------
# Negotiation over HTTP
# --------------------------------------------------------------------------------------------------


def test_chromium_accept_gets_avif_with_vary(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 80, 60))
    response = fetch(fs_api, path, accept=CHROMIUM_ACCEPT)
    assert response.headers["content-type"] == "image/avif"
    assert "accept" in response.headers.get("vary", "").lower()
    image = _assert_format(response, "avif")
    assert (image.width, image.height) == (80, 60)


def test_explicit_format_ignores_accept_and_does_not_vary(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 80, 60))
    response = fetch(fs_api, path, {"format": "webp"}, accept=CHROMIUM_ACCEPT)
    _assert_format(response, "webp")
    assert "accept" not in response.headers.get("vary", "").lower()
    also = fetch(fs_api, path, {"format": "webp"}, accept="text/html")
    _assert_format(also, "webp")


def test_accept_without_images_keeps_the_original(fs_api: Deployment) -> None:
    # Spec 06 section 5 replaced the old 400: non-image Accept types are skipped, never refused.
    path = unique()
    original = make_image("png", 80, 60)
    store(fs_api, path, original)
    for accept in ("text/html", "application/json", "application/json, text/plain;q=0.5", "image/bmp"):
        response = fetch(fs_api, path, accept=accept)
        assert response.headers["content-type"] == "image/png"
        assert response.content == original
        assert response.headers["vary"] == "Accept"
    assert variant_rows(fs_api, path) == 0


def test_wildcard_accept_keeps_the_original(fs_api: Deployment) -> None:
    path = unique()
    original = make_image("png", 80, 60)
    store(fs_api, path, original)
    for accept in ("image/*", "*/*"):
        response = fetch(fs_api, path, accept=accept)
        assert response.headers["content-type"] == "image/png"
        assert response.content == original
    assert variant_rows(fs_api, path) == 0


# --------------------------------------------------------------------------------------------------
# LQIPs
# --------------------------------------------------------------------------------------------------


def _check_lqip(lqip: dict[str, Any], aspect: float) -> None:
    assert set(lqip) == {"blurhash", "thumbhash"}
    assert lqip["blurhash"]
    assert lqip["thumbhash"]
    decoded_aspect = thumbhash.thumb_hash_to_approximate_aspect_ratio(list(base64.b64decode(lqip["thumbhash"])))
    assert abs(decoded_aspect / aspect - 1) < 0.25, (decoded_aspect, aspect)
    # make_image's default colour (200, 80, 40) with a small complementary block
    average = blurhash.decode(lqip["blurhash"], 8, 8).resize((1, 1)).getpixel((0, 0))
    assert near(average, (190, 86, 51), 30), average


def test_lqips_where_enabled(fs_api: Deployment) -> None:
    path = f"/lqip/{uuid.uuid4().hex[:12]}/image"
    stored = store(fs_api, path, make_image("png", 400, 200))
    _check_lqip(stored["variants"][0]["lqip"], 2.0)
    _check_lqip(metadata(fs_api, path)["variants"][0]["lqip"], 2.0)
    link = fetch(fs_api, path, selector="link").json()
    _check_lqip(link["lqip"], 2.0)
    content = fetch(fs_api, path)
    assert content.headers["K-LQIP-Blurhash"] == stored["variants"][0]["lqip"]["blurhash"]
    assert content.headers["K-LQIP-Thumbhash"] == stored["variants"][0]["lqip"]["thumbhash"]
    # a generated variant gets its own placeholders, from its own pixels
    rotated = fetch(fs_api, path, {"r": "90", "w": "200"})
    assert (decoded(rotated).width, decoded(rotated).height) == (100, 200)
    _check_lqip({"blurhash": rotated.headers["K-LQIP-Blurhash"], "thumbhash": rotated.headers["K-LQIP-Thumbhash"]}, 0.5)
    [variant] = generated(metadata(fs_api, path))
    assert variant["lqip"]["thumbhash"] == rotated.headers["K-LQIP-Thumbhash"]
    linked = fetch(fs_api, path, {"r": "90", "w": "200"}, selector="link").json()
    assert linked["lqip"] == variant["lqip"]


def test_a_pure_resize_takes_the_originals_lqips(fs_api: Deployment) -> None:
    path = f"/lqip/{uuid.uuid4().hex[:12]}/image"
    original = store(fs_api, path, make_image("png", 400, 200))["variants"][0]["lqip"]
    _check_lqip(original, 2.0)
    resized = fetch(fs_api, path, {"w": "100", "format": "webp"})
    assert decoded(resized).width == 100
    # As Konifer does: only scaled, the variant's placeholders are the original's.
    assert resized.headers["K-LQIP-Blurhash"] == original["blurhash"]
    assert resized.headers["K-LQIP-Thumbhash"] == original["thumbhash"]
    # A crop changes what the placeholder shows: it gets its own.
    square = fetch(fs_api, path, {"w": "100", "h": "100", "fit": "crop"})
    _check_lqip({"blurhash": square.headers["K-LQIP-Blurhash"], "thumbhash": square.headers["K-LQIP-Thumbhash"]}, 1.0)
    assert square.headers["K-LQIP-Thumbhash"] != original["thumbhash"]
    by_size = {variant["attributes"]["height"]: variant["lqip"] for variant in generated(metadata(fs_api, path))}
    assert by_size == {
        50: original,
        100: {"blurhash": square.headers["K-LQIP-Blurhash"], "thumbhash": square.headers["K-LQIP-Thumbhash"]},
    }


def test_no_lqips_elsewhere(fs_api: Deployment) -> None:
    path = unique()
    stored = store(fs_api, path, make_image("png", 400, 200))
    assert stored["variants"][0]["lqip"] == {}
    assert metadata(fs_api, path)["variants"][0]["lqip"] == {}
    assert fetch(fs_api, path, selector="link").json()["lqip"] == {}
    for response in (fetch(fs_api, path), fetch(fs_api, path, {"w": "100"})):
        assert "K-LQIP-Blurhash" not in response.headers
        assert "K-LQIP-Thumbhash" not in response.headers


# --------------------------------------------------------------------------------------------------
# Refused parameters
# --------------------------------------------------------------------------------------------------

BAD_PARAMETERS: list[tuple[str, str]] = [
    ("w", "0"),
    ("w", "abc"),
    ("h", "99999"),
    ("fit", "cover"),
    ("g", "north"),
    ("format", "bmp"),
    ("r", "45"),
    ("f", "x"),
    ("filter", "blur"),
    ("blur", "151"),
    ("blur", "-1"),
    ("q", "0"),
    ("q", "101"),
    ("pad", "-1"),
    ("pad-c", "red"),
    ("pad-c", "#12345"),
    ("strip", "gps"),
    ("cs", "adobe"),
    ("dpr", "5"),
    ("dpr", "0.5"),
    ("profile", "unknown"),
]


def test_bad_parameters_are_400_naming_the_key_and_store_nothing(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, quadrants_png())
    with nothing_stored(fs_api, path):
        for key, raw in BAD_PARAMETERS:
            for selector in ("content", "link", "download"):
                response = fetch(fs_api, path, {key: raw}, selector=selector, status=400)
                body = response.json()
                assert names_parameter(body["message"], key), (key, raw, body)
        for params in ({"fit": "fill", "w": "100"}, {"fit": "crop", "h": "100"}, {"fit": "stretch"}):
            response = fetch(fs_api, path, params, status=400)
            assert names_parameter(response.json()["message"], "fit"), response.json()
        response = fetch(fs_api, path, {"w": "100"}, selector="metadata", status=400)
        assert "w" in response.json()["message"]


# --------------------------------------------------------------------------------------------------
# Profiles, on-demand modes, eager variants, preprocessing, expiry (own configuration)
# --------------------------------------------------------------------------------------------------

CUSTOM_CONFIG = """
[variant-profiles.thumb]
w = 80
h = 80
fit = "fill"
format = "webp"

[variant-profiles.small]
w = 50
format = "png"

[paths."/**"]
object-store.bucket = "assets"

[paths."/profileonly/**".transform.on-demand-variant]
mode = "profile_only"

[paths."/disabled/**".transform]
eager-variants = ["small"]
on-demand-variant.mode = "disabled"

[paths."/eager/**".transform]
eager-variants = ["thumb", "small"]

[paths."/presize/**".transform.preprocessing]
enabled = true
image.max-width = 200

[paths."/preformat/**".transform.preprocessing]
enabled = true
image.format = "webp"

[paths."/ttl/**".transform.expire]
strategy = "ttl"
ttl = "2s"

[paths."/idle/**".transform.expire]
strategy = "idle"
ttl = "2s"
"""


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    root: Path = tmp_path_factory.mktemp("imaging-custom")
    deployment = start_deployment(
        root,
        CUSTOM_CONFIG,
        store="filesystem",
        postgres=postgres,
        s3=None,
        env={"KONIFER_EDGE_PURGE_INTERVAL": "0.5", "KONIFER_EDGE_ACCESS_FLUSH_INTERVAL": "0.2"},
    )
    try:
        yield deployment
    finally:
        deployment.stop()


def test_profile_and_its_overrides(custom: Deployment) -> None:
    path = unique()
    store(custom, path, quadrants_png())
    thumb = fetch(custom, path, {"profile": "thumb"})
    assert cache_status(thumb) == "miss"
    image = _assert_format(thumb, "webp")
    assert (image.width, image.height) == (80, 80)
    spelled = fetch(custom, path, {"w": "80", "h": "80", "fit": "fill", "format": "webp"})
    assert cache_status(spelled) == "hit"
    overridden = fetch(custom, path, {"profile": "thumb", "w": "64"})
    image = _assert_format(overridden, "webp")
    assert (image.width, image.height) == (64, 80)
    as_png = fetch(custom, path, {"profile": "thumb", "format": "png"})
    image = _assert_format(as_png, "png")
    assert (image.width, image.height) == (80, 80)
    assert variant_rows(custom, path) == 3


def test_unknown_profile_is_400(custom: Deployment) -> None:
    path = unique()
    store(custom, path, quadrants_png())
    with nothing_stored(custom, path):
        response = fetch(custom, path, {"profile": "nope"}, status=400)
        assert names_parameter(response.json()["message"], "profile")


def test_profile_only_mode(custom: Deployment) -> None:
    path = unique("profileonly")
    original = quadrants_png()
    store(custom, path, original)
    assert fetch(custom, path).content == original
    with nothing_stored(custom, path):
        for params in ({"w": "64"}, {"profile": "thumb", "w": "64"}, {"format": "webp"}, {"r": "90"}):
            assert fetch(custom, path, params, status=400).json()["message"]
    image = _assert_format(fetch(custom, path, {"profile": "thumb"}), "webp")
    assert (image.width, image.height) == (80, 80)
    assert variant_rows(custom, path) == 1


def test_disabled_mode_serves_only_the_original_and_eager_profiles(custom: Deployment) -> None:
    path = unique("disabled")
    original = quadrants_png()
    store(custom, path, original)
    assert fetch(custom, path).content == original
    wait_for(lambda: variant_rows(custom, path) == 1, "the eager 'small' variant")
    # an eager variant that is missing (its render failed) is still rendered on request; the row
    # goes before anything asked for the variant, so no cache of the service has seen it
    custom.query(
        "DELETE FROM variant WHERE transformation_key <> '' AND asset_id IN (SELECT id FROM asset WHERE path = $1)",
        path,
    )
    again = fetch(custom, path, {"profile": "small"})
    assert cache_status(again) == "miss"
    assert _assert_format(again, "png").width == 50
    assert variant_rows(custom, path) == 1
    small = fetch(custom, path, {"profile": "small"})
    assert cache_status(small) == "hit"
    with nothing_stored(custom, path):
        for params in ({"profile": "thumb"}, {"w": "50", "format": "png"}, {"profile": "small", "w": "10"}):
            assert fetch(custom, path, params, status=400).json()["message"]


def test_eager_variants_are_rendered_after_a_store(custom: Deployment) -> None:
    path = unique("eager")
    store(custom, path, quadrants_png())
    wait_for(lambda: len(generated(metadata(custom, path))) == 2, "both eager variants in the metadata")
    by_format = {v["transformation"]["format"]: v for v in generated(metadata(custom, path))}
    assert set(by_format) == {"webp", "png"}
    assert by_format["webp"]["transformation"]["fit"] == "fill"
    assert (by_format["webp"]["attributes"]["width"], by_format["webp"]["attributes"]["height"]) == (80, 80)
    assert by_format["png"]["attributes"]["width"] == 50
    thumb = fetch(custom, path, {"profile": "thumb"})
    assert cache_status(thumb) == "hit"
    image = _assert_format(thumb, "webp")
    assert (image.width, image.height) == (80, 80)
    small = fetch(custom, path, {"profile": "small"})
    assert cache_status(small) == "hit"
    assert variant_rows(custom, path) == 2


def test_preprocessing_downsizes_the_stored_original(custom: Deployment) -> None:
    path = unique("presize")
    stored = store(custom, path, quadrants_png())
    attributes = stored["variants"][0]["attributes"]
    assert (attributes["width"], attributes["height"], attributes["format"]) == (200, 150, "png")
    assert metadata(custom, path)["variants"][0]["attributes"] == attributes
    content = fetch(custom, path)
    image = _assert_format(content, "png")
    assert (image.width, image.height) == (200, 150)
    assert near(pixel(image, 5, 5), RED)
    assert custom.read_object("assets", stored["variants"][0]["storeKey"]) == content.content
    assert variant_rows(custom, path) == 0
    # an original within the maxima is stored as sent
    small_path = unique("presize")
    small = make_image("png", 150, 100)
    small_attributes = store(custom, small_path, small)["variants"][0]["attributes"]
    assert (small_attributes["width"], small_attributes["height"]) == (150, 100)
    assert fetch(custom, small_path).content == small


def test_preprocessing_converts_the_stored_format(custom: Deployment) -> None:
    path = unique("preformat")
    stored = store(custom, path, quadrants_png())
    attributes = stored["variants"][0]["attributes"]
    assert (attributes["width"], attributes["height"], attributes["format"]) == (400, 300, "webp")
    content = fetch(custom, path)
    image = _assert_format(content, "webp")
    assert (image.width, image.height) == (400, 300)
    disposition = fetch(custom, path, selector="download").headers["content-disposition"]
    assert ".webp" in disposition


def test_ttl_expiry_purges_and_renders_again(custom: Deployment) -> None:
    path = unique("ttl")
    store(custom, path, quadrants_png())
    first = fetch(custom, path, {"w": "50"})
    assert cache_status(first) == "miss"
    wait_for(lambda: variant_rows(custom, path) == 0, "the ttl purge of the variant")
    again = fetch(custom, path, {"w": "50"})
    assert cache_status(again) == "miss"
    assert decoded(again).width == 50
    # the original is never purged
    assert metadata(custom, path)["variants"][0]["isOriginalVariant"] is True
    assert custom.query("SELECT count(*) FROM asset WHERE path = $1", path) == [(1,)]


def test_idle_expiry_spares_variants_in_use(custom: Deployment) -> None:
    path = unique("idle")
    store(custom, path, quadrants_png())
    assert cache_status(fetch(custom, path, {"w": "50"})) == "miss"
    ttl = 2.0
    started = time.monotonic()
    while time.monotonic() - started < 2 * ttl:
        response = fetch(custom, path, {"w": "50"})
        assert cache_status(response) == "hit", "a variant in use must not expire"
        time.sleep(0.25)
    assert variant_rows(custom, path) == 1
    [(age,)] = custom.query(
        "SELECT extract(epoch FROM now() - v.created_at) FROM variant v JOIN asset a ON a.id = v.asset_id"
        " WHERE a.path = $1 AND v.transformation_key <> ''",
        path,
    )
    assert float(age) > ttl, "the variant outlived its ttl while it was used"
    wait_for(lambda: variant_rows(custom, path) == 0, "the idle purge of the variant")
    again = fetch(custom, path, {"w": "50"})
    assert cache_status(again) == "miss"
    assert decoded(again).width == 50
