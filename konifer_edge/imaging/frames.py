"""Animated images are one tall strip of frames in libvips; geometry works frame by frame."""

from __future__ import annotations

from collections.abc import Callable

from konifer_edge.imaging.vips import pyvips


def page_count(image: pyvips.Image) -> int:
    return int(image.get("n-pages")) if "n-pages" in image.get_fields() else 1


def page_height(image: pyvips.Image) -> int:
    if "page-height" in image.get_fields():
        height = int(image.get("page-height"))
        if 0 < height <= image.height and image.height % height == 0:
            return height
    return int(image.height)


def map_frames(image: pyvips.Image, step: Callable[[pyvips.Image], pyvips.Image]) -> pyvips.Image:
    """Apply a step to every frame and stack the results again, keeping the animation's timing."""
    height = page_height(image)
    count = image.height // height
    if count <= 1:
        return step(image)
    frames = [step(image.crop(0, index * height, image.width, height)) for index in range(count)]
    joined = pyvips.Image.arrayjoin(frames, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    for field in ("delay", "loop", "gif-delay"):
        if field in image.get_fields():
            joined.set_type(image.get_typeof(field), field, image.get(field))
    return joined
