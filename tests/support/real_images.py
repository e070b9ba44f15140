"""Images of the kinds real uploads are, made once with pyvips: the inputs of the transformation matrix.

Every picture is the same layout, four flat quadrants, so that where each colour ends up after a
rotation, a mirror or a crop can be predicted from geometry alone:

    red   | blue
    ------+-------
    green | yellow

Around that, each input carries what real photos carry: an EXIF orientation, a CMYK or wide-gamut
colour space with its ICC profile, 16 bits per sample, grey samples, alpha, frames, a progressive
scan, EXIF/IPTC/XMP blocks, or a size above the server's small-body cache.
"""

from __future__ import annotations

import functools
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyvips

from tests.support.images import save

RED = (220, 30, 30)
BLUE = (30, 40, 220)
GREEN = (30, 200, 50)
YELLOW = (240, 220, 30)
QUADRANTS = (RED, BLUE, GREEN, YELLOW)  # top-left, top-right, bottom-left, bottom-right
# A saturated red as a Display-P3 camera writes it; converted to sRGB it is about (251, 8, 4).
P3_RED = (230, 52, 35)
ADOBE_GREEN = (60, 170, 70)

EXIF_ARTIST = "konifer-matrix-artist"
XMP_MARKER = "konifer-matrix-xmp"
IPTC_MARKER = b"konifer-matrix-iptc"

# Stored pixels -> upright: rotate clockwise by `degrees`, then mirror left-right if `mirrored`.
# Written out from the EXIF 2.3 definitions of the eight orientations.
ORIENTATION_TO_UPRIGHT: dict[int, tuple[int, bool]] = {
    1: (0, False),
    2: (0, True),
    3: (180, False),
    4: (180, True),
    5: (90, True),
    6: (90, False),
    7: (270, True),
    8: (270, False),
}


@dataclass(frozen=True)
class Input:
    """One original of the matrix and what is true about it."""

    name: str
    data: bytes
    fmt: str
    width: int
    height: int  # of one frame
    colour_space: str  # Konifer's name, as `attributes.colorSpace` must say
    pages: int = 1
    orientation: int = 1
    alpha: bool = False
    grey: bool = False
    quadrant_colours: tuple[tuple[int, int, int], ...] = QUADRANTS
    """The colours of the four quadrants as sRGB, as the original displays them."""
    metadata: frozenset[str] = frozenset()
    """Which of exif, iptc, xmp and icc the original carries."""
    tags: frozenset[str] = field(default_factory=frozenset)


def _canvas(width: int, height: int, colours: tuple[tuple[int, int, int], ...] = QUADRANTS) -> pyvips.Image:
    image = pyvips.Image.black(width, height, bands=3).new_from_image(list(colours[0])).cast("uchar")
    half_w, half_h = width // 2, height // 2
    image = image.draw_rect(list(colours[1]), half_w, 0, width - half_w, half_h, fill=True)
    image = image.draw_rect(list(colours[2]), 0, half_h, half_w, height - half_h, fill=True)
    image = image.draw_rect(list(colours[3]), half_w, half_h, width - half_w, height - half_h, fill=True)
    return image.copy(interpretation="srgb")


def _with_alpha(image: pyvips.Image) -> pyvips.Image:
    """Opaque except a half-transparent band along the bottom edge (the quadrants stay readable)."""
    alpha = pyvips.Image.black(image.width, image.height).new_from_image(255).cast("uchar")
    alpha = alpha.draw_rect(128, 0, image.height - max(1, image.height // 10), image.width, image.height, fill=True)
    return image.bandjoin(alpha).copy(interpretation=image.interpretation)


def _save(image: pyvips.Image, fmt: str, **options: Any) -> bytes:
    savers: dict[str, Callable[..., Any]] = {
        "jpg": image.jpegsave_buffer,
        "png": image.pngsave_buffer,
        "webp": image.webpsave_buffer,
        "avif": lambda **o: image.heifsave_buffer(compression="av1", **o),
        "heic": lambda **o: save(image, ".heic", **o),
        "jxl": lambda **o: save(image, ".jxl", **o),
        "gif": image.gifsave_buffer,
    }
    defaults: dict[str, dict[str, Any]] = {
        "jpg": {"Q": 92},
        "webp": {"Q": 90},
        "avif": {"Q": 80, "effort": 0},
        "heic": {"Q": 80, "effort": 0},
        "jxl": {"Q": 90, "effort": 3},
    }
    return bytes(savers[fmt](**(defaults.get(fmt, {}) | options)))


def _tagged(image: pyvips.Image) -> pyvips.Image:
    """EXIF, XMP and IPTC blocks with markers a test can look for in the decoded answer."""
    image = image.copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", EXIF_ARTIST)
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:source="{XMP_MARKER}"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
    image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp.encode())
    # An IPTC-IIM record 2 caption (2:120) inside a Photoshop 8BIM resource, as JPEG APP13 holds it.
    record = b"\x1c\x02\x78" + struct.pack(">H", len(IPTC_MARKER)) + IPTC_MARKER
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(record)) + record + b"\0" * (len(record) % 2)
    image.set_type(pyvips.GValue.blob_type, "iptc-data", b"Photoshop 3.0\0" + resource)
    # Through JPEG once: its saver turns the exif-* fields into the EXIF block other savers copy.
    return pyvips.Image.new_from_buffer(_save(image, "jpg"), "")


# ---------------------------------------------------------------------------------------- ICC profiles


def _s15fixed16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15fixed16(x) + _s15fixed16(y) + _s15fixed16(z)


def _text_description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    # textDescriptionType: ASCII, then empty Unicode and ScriptCode parts (67 bytes of zeros for ScriptCode)
    unicode_and_scriptcode = b"\0" * (4 + 4 + 3 + 67)
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + unicode_and_scriptcode


@functools.cache
def adobe_rgb_profile() -> bytes:
    """A minimal ICC v2 display profile with Adobe RGB (1998) primaries (D50-adapted) and gamma 563/256."""
    gamma = b"curv\0\0\0\0" + struct.pack(">I", 1) + struct.pack(">H", 0x0233) + b"\0\0"
    tags = [
        (b"desc", _text_description("Adobe RGB (1998) compatible")),
        (b"cprt", b"text\0\0\0\0" + b"No copyright, test profile\0"),
        (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz_tag(0.60974, 0.31111, 0.01947)),
        (b"gXYZ", _xyz_tag(0.20528, 0.62567, 0.06087)),
        (b"bXYZ", _xyz_tag(0.14919, 0.06322, 0.74457)),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table = struct.pack(">I", len(tags))
    body = b""
    for signature, data in tags:
        padded = data + b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += padded
    size = 128 + table_size + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"APPL"
        + b"\0" * 4  # flags
        + b"\0" * 8  # manufacturer, model
        + b"\0" * 8  # attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15fixed16(0.9642)
        + _s15fixed16(1.0)
        + _s15fixed16(0.8249)
        + b"lcms"
    )
    header += b"\0" * (128 - len(header))
    return header + table + body


@functools.cache
def adobe_rgb_profile_path() -> str:
    """libvips' icc_transform reads profiles from files."""
    path = Path(tempfile.mkdtemp(prefix="konifer-icc-")) / "adobe-rgb.icc"
    path.write_bytes(adobe_rgb_profile())
    return str(path)


def srgb_of(values: tuple[int, int, int], profile: str) -> tuple[int, int, int]:
    """What `values` in the given profile (libvips' "p3", or a file) are in sRGB: relative, with BPC."""
    patch = pyvips.Image.black(4, 4, bands=3).new_from_image(list(values)).cast("uchar").copy(interpretation="srgb")
    converted = patch.icc_transform("srgb", input_profile=profile, intent="relative", black_point_compensation=True)
    red, green, blue = (round(v) for v in converted(1, 1)[:3])
    return red, green, blue


# ---------------------------------------------------------------------------------------- the inputs

SMALL = (96, 64)


@functools.cache
def inputs() -> tuple[Input, ...]:
    """Every original of the matrix, made once per test session."""
    width, height = SMALL
    base = _canvas(width, height)
    made: list[Input] = []
    for fmt in ("jpg", "png", "webp", "avif", "jxl", "heic", "gif"):
        made.append(Input(f"plain-{fmt}", _save(base, fmt), fmt, width, height, "srgb"))
    for orientation in range(1, 9):
        oriented = base.copy()
        oriented.set_type(pyvips.GValue.gint_type, "orientation", orientation)
        made.append(
            Input(
                f"jpg-orientation-{orientation}",
                _save(oriented, "jpg"),
                "jpg",
                width,
                height,
                "srgb",
                orientation=orientation,
            )
        )
    # CMYK as prepress software writes it without a profile: Konifer spells it "cymk". Saturated
    # blue is outside what CMYK inks reach, so the colours to expect are the round trip's.
    cmyk = base.icc_transform("cmyk", input_profile="srgb").copy()
    cmyk.remove("icc-profile-data")
    made.append(
        Input(
            "jpg-cmyk",
            _save(cmyk, "jpg"),
            "jpg",
            width,
            height,
            "cymk",
            quadrant_colours=tuple(_through_cmyk(colour) for colour in QUADRANTS),
        )
    )
    p3 = _canvas(width, height, (P3_RED, BLUE, GREEN, YELLOW)).copy()
    p3.set_type(pyvips.GValue.blob_type, "icc-profile-data", _builtin_profile("p3"))
    made.append(
        Input(
            "png-display-p3",
            _save(p3, "png"),
            "png",
            width,
            height,
            "p3",
            quadrant_colours=tuple(srgb_of(c, "p3") for c in (P3_RED, BLUE, GREEN, YELLOW)),
            metadata=frozenset({"icc"}),
        )
    )
    adobe = _canvas(width, height, (ADOBE_GREEN, BLUE, GREEN, YELLOW)).copy()
    adobe.set_type(pyvips.GValue.blob_type, "icc-profile-data", adobe_rgb_profile())
    made.append(
        Input(
            "jpg-adobe-rgb",
            _save(adobe, "jpg"),
            "jpg",
            width,
            height,
            "adobe_rgb",
            quadrant_colours=tuple(srgb_of(c, adobe_rgb_profile_path()) for c in (ADOBE_GREEN, BLUE, GREEN, YELLOW)),
            metadata=frozenset({"icc"}),
        )
    )
    made.append(
        Input(
            "png-16bit",
            _save((base.cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16"), "png"),
            "png",
            width,
            height,
            "srgb",
        )
    )
    grey_values = tuple((g, g, g) for g in (40, 110, 170, 230))
    grey = _canvas(width, height, grey_values).colourspace("b-w")[0]
    made.append(
        Input(
            "png-grey", _save(grey, "png"), "png", width, height, "grayscale", grey=True, quadrant_colours=grey_values
        )
    )
    grey_alpha = _with_alpha(grey.copy(interpretation="b-w"))
    made.append(
        Input(
            "png-grey-alpha",
            _save(grey_alpha, "png"),
            "png",
            width,
            height,
            "grayscale",
            grey=True,
            alpha=True,
            quadrant_colours=grey_values,
        )
    )
    made.append(Input("png-rgba", _save(_with_alpha(base), "png"), "png", width, height, "srgb", alpha=True))
    made.append(Input("webp-rgba", _save(_with_alpha(base), "webp"), "webp", width, height, "srgb", alpha=True))
    for fmt in ("gif", "webp"):
        made.append(Input(f"{fmt}-animated", _animation(base, fmt), fmt, width, height, "srgb", pages=3))
    made.append(Input("jpg-progressive", _save(base, "jpg", interlace=True), "jpg", width, height, "srgb"))
    made.append(
        Input(
            "jpg-exif-iptc-xmp",
            _save(_tagged(base), "jpg"),
            "jpg",
            width,
            height,
            "srgb",
            metadata=frozenset({"exif", "iptc", "xmp"}),
        )
    )
    made.append(
        Input(
            "png-exif-xmp",
            _save(_tagged(base), "png"),
            "png",
            width,
            height,
            "srgb",
            metadata=frozenset({"exif", "xmp"}),
        )
    )
    made.append(
        Input("png-1280x642", _save(_canvas(1280, 642), "png"), "png", 1280, 642, "srgb", tags=frozenset({"large"}))
    )
    made.append(
        Input("png-noisy-large", _noisy_png(400, 300), "png", 400, 300, "srgb", tags=frozenset({"large", "noisy"}))
    )
    return tuple(made)


def _through_cmyk(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    patch = pyvips.Image.black(4, 4, bands=3).new_from_image(list(colour)).cast("uchar").copy(interpretation="srgb")
    back = patch.icc_transform("cmyk", input_profile="srgb").icc_transform("srgb", input_profile="cmyk")
    red, green, blue = (round(v) for v in back(1, 1)[:3])
    return red, green, blue


def _builtin_profile(name: str) -> bytes:
    patch = pyvips.Image.black(2, 2, bands=3).cast("uchar").copy(interpretation="srgb")
    return bytes(patch.icc_transform(name, input_profile="srgb").get("icc-profile-data"))


def _animation(base: pyvips.Image, fmt: str) -> bytes:
    # Every frame is the quadrants (geometry checks hold on each), with a frame-numbered dot in
    # the middle so that no encoder folds frames together.
    frames = []
    for index in range(3):
        # black, white, black: consecutive frames stay distinct even after a black-and-white filter
        level = 255 * (index % 2)
        dot = base.draw_rect([level] * 3, base.width // 2 - 2, base.height // 2 - 2, 4, 4, fill=True)
        frames.append(dot)
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", base.height)
    strip.set_type(pyvips.GValue.gint_type, "n-pages", 3)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [80, 80, 80])
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    return _save(strip, fmt)


def _noisy_png(width: int, height: int) -> bytes:
    """The quadrants with light noise over them: too large to compress below the small-body cache."""
    noise = pyvips.Image.gaussnoise(width, height, mean=0, sigma=6)
    noisy = (_canvas(width, height).cast("float") + noise.bandjoin([noise, noise])).cast("uchar")
    return _save(noisy.copy(interpretation="srgb"), "png")
