"""An upload's pixels as the vision model sees them (spec 06 section 2, image side), with libvips.

The result is 224 x 224 x 3 bytes of sRGB (row by row, RGB interleaved): what the decode process hands
back, small enough to cross the process boundary cheaply. ``rules.model`` scales it to [-1, 1] and
lays it out as the model's NCHW tensor.
"""

from __future__ import annotations

from typing import Final

from konifer_edge.domain.formats import sniff_format
from konifer_edge.imaging import codecs
from konifer_edge.imaging.vips import pyvips

IMAGE_SIZE: Final = 224
CHANNELS: Final = 3
PIXEL_BYTES: Final = IMAGE_SIZE * IMAGE_SIZE * CHANNELS
WHITE: Final = (255, 255, 255)


def model_pixels(content: bytes) -> bytes:
    """The first page, covered and centre-cropped to 224 x 224, in sRGB, alpha flattened onto white.

    EXIF orientation is deliberately not applied, as Konifer's tensor transform does not rotate. Images
    smaller than 224 pixels are enlarged, so every upload yields a full tensor.
    """
    image_format = sniff_format(content[:64])
    if image_format is not None and codecs.is_codec_format(image_format):
        image = codecs.decode(content, image_format).thumbnail_image(
            IMAGE_SIZE, height=IMAGE_SIZE, crop="centre", size="both", no_rotate=True
        )
    else:
        image = pyvips.Image.thumbnail_buffer(
            content, IMAGE_SIZE, height=IMAGE_SIZE, crop="centre", size="both", no_rotate=True
        )
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=list(WHITE))
    if image.bands > CHANNELS:
        image = image.extract_band(0, n=CHANNELS)
    image = image.cast("uchar")
    pixels = bytes(image.write_to_memory())
    if image.width != IMAGE_SIZE or image.height != IMAGE_SIZE or len(pixels) != PIXEL_BYTES:
        raise ValueError(f"the model's pixels came out as {image.width}x{image.height}x{image.bands}")
    return pixels
