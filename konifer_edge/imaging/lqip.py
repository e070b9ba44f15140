"""Low-quality placeholders, computed from a tiny thumbnail, never from full-size pixels."""

from __future__ import annotations

import base64

import blurhash
import thumbhash
from PIL import Image as PillowImage

from konifer_edge.domain.formats import sniff_format
from konifer_edge.domain.models import Lqip
from konifer_edge.imaging import codecs
from konifer_edge.imaging.frames import page_height
from konifer_edge.imaging.vips import pyvips

BLURHASH_SIZE = 32
# ThumbHash allows up to 100 px, but the package is pure Python (cost grows with the
# pixel count) and its alpha branch is broken, so it gets a small, opaque thumbnail.
THUMBHASH_SIZE = 32


def _first_frame(image: pyvips.Image) -> pyvips.Image:
    height = page_height(image)
    return image.crop(0, 0, image.width, height) if height < image.height else image


def _srgb(image: pyvips.Image, bands: int) -> pyvips.Image:
    if image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands in (1, 2):
        image = image[0].bandjoin([image[0], image[0]] + ([image[1]] if image.bands == 2 else []))
    if bands == 3:
        return image.flatten(background=[255, 255, 255]) if image.bands == 4 else image[0:3]
    return image if image.bands == 4 else image.bandjoin(255)


def compute_lqips(image: pyvips.Image, kinds: tuple[str, ...]) -> Lqip:
    if not kinds:
        return Lqip()
    frame = _first_frame(image)
    found: dict[str, str] = {}
    if "blurhash" in kinds:
        small = _srgb(frame.thumbnail_image(BLURHASH_SIZE, height=BLURHASH_SIZE), 3)
        picture = PillowImage.frombytes("RGB", (small.width, small.height), bytes(small.write_to_memory()))
        x_components = 4 if small.width >= small.height else 3
        found["blurhash"] = blurhash.encode(picture, x_components, 7 - x_components)
    if "thumbhash" in kinds:
        small = _srgb(_srgb(frame.thumbnail_image(THUMBHASH_SIZE, height=THUMBHASH_SIZE), 3), 4)
        hashed = thumbhash.rgba_to_thumb_hash(small.width, small.height, list(bytes(small.write_to_memory())))
        found["thumbhash"] = base64.b64encode(bytes(hashed)).decode()
    return Lqip(**found)


def decode_thumbnail(data: bytes, pages: int) -> pyvips.Image:
    """Decode every byte of an image at placeholder size (shrink-on-load keeps it cheap).

    A store does this once: a file damaged or cut short anywhere, in any frame, fails here,
    and the tiny result feeds the placeholders.
    """
    image_format = sniff_format(data[:64])
    if image_format is not None and codecs.is_codec_format(image_format):
        # Decoded whole by its own codec (which fails on any damage), then made small.
        return codecs.decode(data, image_format).thumbnail_image(THUMBHASH_SIZE, height=THUMBHASH_SIZE).copy_memory()
    options = "fail_on=truncated" + (",n=-1" if pages > 1 else "")
    thumbnail = pyvips.Image.thumbnail_buffer(
        data, THUMBHASH_SIZE, height=THUMBHASH_SIZE, option_string=options
    ).copy_memory()
    return thumbnail
