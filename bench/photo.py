"""A photo-like test JPEG made with pyvips: 3000x2000, colour gradients, soft blobs, texture and grain, ~1 MB at q=90.

Deterministic (seeded noise), so every run renders the same pixels. Usage: photo.py OUT.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyvips

WIDTH, HEIGHT = 3000, 2000


def make_photo(out: Path, width: int = WIDTH, height: int = HEIGHT, quality: int = 90) -> Path:
    xy = pyvips.Image.xyz(width, height)
    x = xy[0] / width
    y = xy[1] / height
    # A sky-like gradient, cooler at the top, warmer to the right.
    red = 60 + 150 * x + 30 * y
    green = 90 + 90 * (1 - y) + 40 * x
    blue = 180 * (1 - y) + 40
    # Large soft shapes, mid-scale texture and fine sensor grain, as a photo has at each scale.
    blobs = pyvips.Image.gaussnoise(width // 100 + 1, height // 100 + 1, sigma=50, mean=0, seed=1)
    blobs = blobs.resize(100, kernel="cubic").crop(0, 0, width, height)
    texture = pyvips.Image.gaussnoise(width // 16 + 1, height // 16 + 1, sigma=20, mean=0, seed=2)
    texture = texture.resize(16, kernel="cubic").crop(0, 0, width, height)
    grain = pyvips.Image.gaussnoise(width, height, sigma=2, mean=0, seed=3)
    image = (red + blobs + texture + grain).bandjoin(
        [green + blobs * 0.8 + texture + grain, blue + blobs * 0.5 + texture * 0.7 + grain]
    )
    image = image.cast("uchar").copy(interpretation="srgb")
    out.parent.mkdir(parents=True, exist_ok=True)
    image.jpegsave(str(out), Q=quality)
    return out


if __name__ == "__main__":
    path = make_photo(Path(sys.argv[1]))
    print(f"{path}: {path.stat().st_size} bytes")
