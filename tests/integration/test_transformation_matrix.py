"""Every transformation on every kind of image a user can store, through HTTP, checked by decoding the answer.

The inputs (tests/support/real_images.py) are made once; one server renders the whole matrix. Each
answer is decoded and held against expectations computed here from geometry alone, never from the
service's own planning code: the size, the frame count, where each quadrant's colour went (turns
and mirrors), the colour after a colour-space change, and which metadata blocks survived. Any 5xx
fails at once with the server's log attached; a request that cannot be honoured must be a 4xx JSON
error naming its reason.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from tests.integration.conftest import start_deployment
from tests.support.deployment import Deployment
from tests.support.images import MIME_TYPES, load
from tests.support.real_images import (
    EXIF_ARTIST,
    IPTC_MARKER,
    ORIENTATION_TO_UPRIGHT,
    XMP_MARKER,
    Input,
    inputs,
)
from tests.support.services import PostgresService

SMALL_BODY_CACHE = 65536  # the large inputs exceed it, so they take the streamed path
MATRIX_CONFIG = f"""
[source.multipart]
max-bytes = 5000000

[cache]
small-object-max-size = {SMALL_BODY_CACHE}

[paths."/**"]
object-store.bucket = "assets"
"""

FORMATS = ("jpg", "png", "webp", "avif", "jxl", "heic", "gif")
ANIMATED_OUTPUTS = frozenset({"gif", "webp"})
LOADERS = {"jpg": "jpeg", "png": "png", "webp": "webp", "avif": "heif", "jxl": "jxl", "heic": "heif", "gif": "gif"}
# Where each block must survive when the image has it (JPEG XL, which libvips 8.14 wrote without them,
# is covered by tests/integration/test_heic_jxl_codecs.py).
CARRIES = {
    "exif": frozenset({"jpg", "png", "webp", "avif", "heic"}),
    "xmp": frozenset({"jpg", "png", "webp", "avif", "heic"}),
    "iptc": frozenset({"jpg"}),
}
# Formats whose decoder always attaches a profile, so "no profile" cannot be seen in them: none since
# JPEG XL is read by libjxl directly (libvips 8.14's loader attached libjxl's synthesised one).
ALWAYS_PROFILED: frozenset[str] = frozenset()
CURRENT_ROTATE = {"0", "90", "180", "270", "auto"}
CURRENT_FLIP = {"", "h", "v"}
CURRENT_FILTER = {"", "black_white", "grayscale", "sepia"}
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

Params = dict[str, str]


@dataclass(frozen=True)
class Case:
    name: str
    params: Params


def _requests() -> list[Case]:
    alone: list[Case] = [Case("w", {"w": "W/2"}), Case("h", {"h": "H/2"})]
    alone += [Case(f"fit={fit}", {"w": "W/2", "h": "W/2", "fit": fit}) for fit in ("fit", "fill", "stretch", "crop")]
    alone += [
        Case(f"g={g}", {"w": "W/2", "h": "W/2", "fit": "crop", "g": g}) for g in ("center", "entropy", "attention")
    ]
    alone += [Case(f"r={r}", {"r": r}) for r in ("0", "90", "180", "270", "auto")]
    alone += [Case(f"f={f}", {"f": f}) for f in ("h", "v")]
    alone += [Case(f"filter={kind}", {"filter": kind}) for kind in ("black_white", "grayscale", "sepia")]
    alone += [Case("blur", {"blur": "1.6"}), Case("q", {"q": "40"})]
    alone += [Case("pad", {"pad": "5", "pad-c": "#00ff0080"})]
    alone += [Case(f"strip={s}", {"strip": s}) for s in ("exif", "iptc,xmp", "icc")]
    alone += [Case(f"cs={cs}", {"cs": cs}) for cs in ("grayscale", "srgb", "p3")]
    alone += [Case(f"format={fmt}", {"format": fmt}) for fmt in FORMATS]
    cases = []
    for case in alone:
        cases.append(case)
        if "w" not in case.params and "h" not in case.params:
            cases.append(Case(case.name + "&w", {"w": "W/2"} | case.params))
    cases += [
        Case("crop+turn+mirror", {"w": "W/2", "h": "W/3", "fit": "crop", "g": "attention", "r": "90", "f": "h"}),
        Case("auto+flip+pad", {"r": "auto", "f": "v", "pad": "4", "pad-c": "#ff00ff", "format": "png"}),
        Case("p3+strip", {"cs": "p3", "strip": "exif,iptc,xmp", "format": "webp"}),
        Case("sepia+blur+q", {"filter": "sepia", "blur": "1.5", "q": "60", "format": "avif"}),
        Case("dpr", {"w": "W/4", "dpr": "2", "r": "270", "format": "jpg"}),
    ]
    return cases


REQUESTS = _requests()


def _concrete(params: Params, source: Input) -> Params:
    sizes = {"W/2": source.width // 2, "H/2": source.height // 2, "W/3": source.width // 3, "W/4": source.width // 4}
    return {key: str(sizes.get(value, value)) for key, value in params.items()}


def requests_for(source: Input) -> list[tuple[str, Params]]:
    cases = [(case.name, _concrete(case.params, source)) for case in REQUESTS]
    if "large" in source.tags:
        # Full-size encodes of large images are slow; they run with a resize, except the turns
        # and mirrors, whose unresized decode is what broke on real PNGs.
        cases = [
            (name, params)
            for name, params in cases
            if "w" in params or "h" in params or set(params) <= {"r", "f"} or params.get("format") in ("png", "jpg")
        ]
    return cases


# --------------------------------------------------------------------------------------------------
# Expectations, from geometry alone
# --------------------------------------------------------------------------------------------------


def _half_up(value: float) -> int:
    return max(1, math.floor(value + 0.5))


def _turns(source: Input, params: Params) -> list[tuple[int, bool]]:
    """The turns and mirrors applied after sizing, in order: (clockwise degrees, mirrored left-right)."""
    steps: list[tuple[int, bool]] = []
    rotate = params.get("r", "0")
    if rotate == "auto":
        steps.append(ORIENTATION_TO_UPRIGHT[source.orientation])
    elif rotate != "0":
        steps.append((int(rotate), False))
    if params.get("f") == "h":
        steps.append((0, True))
    elif params.get("f") == "v":
        steps.append((180, True))  # top-bottom is a half turn, then left-right
    return steps


def expected_size(source: Input, params: Params) -> tuple[int, int]:
    dpr = float(params.get("dpr", "1"))
    width = _half_up(int(params["w"]) * dpr) if "w" in params else None
    height = _half_up(int(params["h"]) * dpr) if "h" in params else None
    fit = params.get("fit", "fit")
    if width is not None and height is not None and fit in ("fill", "stretch", "crop"):
        size = (width, height)
    elif width is not None and height is not None:
        if width / source.width <= height / source.height:
            size = (width, _half_up(source.height * width / source.width))
        else:
            size = (_half_up(source.width * height / source.height), height)
    elif width is not None:
        size = (width, _half_up(source.height * width / source.width))
    elif height is not None:
        size = (_half_up(source.width * height / source.height), height)
    else:
        size = (source.width, source.height)
    for degrees, _ in _turns(source, params):
        if degrees in (90, 270):
            size = (size[1], size[0])
    pad = _half_up(int(params["pad"]) * dpr) if int(params.get("pad", "0")) else 0
    return size[0] + 2 * pad, size[1] + 2 * pad


def _undo(degrees: int, mirrored: bool, x: float, y: float) -> tuple[float, float]:
    """Where a point of a turned (then mirrored) picture was before, in coordinates from 0 to 1."""
    if mirrored:
        x = 1 - x
    if degrees == 90:
        return y, 1 - x
    if degrees == 180:
        return 1 - x, 1 - y
    if degrees == 270:
        return 1 - y, x
    return x, y


def source_point(source: Input, params: Params, x: float, y: float) -> tuple[float, float]:
    for degrees, mirrored in reversed(_turns(source, params)):
        x, y = _undo(degrees, mirrored, x, y)
    return x, y


def quadrant(x: float, y: float) -> int:
    return (2 if y >= 0.5 else 0) + (1 if x >= 0.5 else 0)


def _linear(channel: float) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: Sequence[float]) -> float:
    """sRGB relative luminance, encoded back with the sRGB curve, 0..255."""
    y = 0.2126 * _linear(colour[0]) + 0.7152 * _linear(colour[1]) + 0.0722 * _linear(colour[2])
    encoded = 12.92 * y if y <= 0.0031308 else 1.055 * y ** (1 / 2.4) - 0.055
    return 255 * encoded


def sepia(colour: Sequence[float]) -> tuple[float, float, float]:
    r, g, b = colour[:3]
    return (
        min(255.0, 0.393 * r + 0.769 * g + 0.189 * b),
        min(255.0, 0.349 * r + 0.686 * g + 0.168 * b),
        min(255.0, 0.272 * r + 0.534 * g + 0.131 * b),
    )


def expected_colour(source: Input, params: Params, colour: tuple[int, int, int]) -> tuple[float, ...] | None:
    """The colour a quadrant must show, as sRGB; None where this test cannot predict it."""
    srgb_source = source.colour_space in ("srgb", "grayscale")
    kind = params.get("filter")
    if kind and not srgb_source:
        return None  # filters work on the values of whatever RGB space the image has
    if "icc" in params.get("strip", "").split(",") and (not srgb_source or params.get("cs") == "p3"):
        return None  # the values stay, the profile that gave them meaning is gone
    if kind == "sepia":
        return sepia(colour)
    grey = luminance(colour)
    if kind == "black_white":
        return (255.0,) * 3 if grey > 128 else (0.0,) * 3
    if kind == "grayscale" or params.get("cs") == "grayscale":
        return (grey,) * 3
    return tuple(float(c) for c in colour)


# --------------------------------------------------------------------------------------------------
# Reading an answer the way a viewer shows it
# --------------------------------------------------------------------------------------------------


def displayed(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB as a colour-managed viewer shows it; alpha dropped."""
    fields = image.get_fields()
    if "icc-profile-data" in fields:
        image = image.icc_transform("srgb", embedded=True, intent="relative", black_point_compensation=True)
    elif image.interpretation == "cmyk":
        image = image.icc_transform("srgb", input_profile="cmyk", intent="relative")
    if image.format == "ushort":
        image = (image / 257).cast("uchar")
    if image.bands in (1, 2):
        image = image[0].bandjoin([image[0], image[0]])
    return image[0:3].cast("uchar")


def first_frame(image: pyvips.Image) -> pyvips.Image:
    fields = image.get_fields()
    height = int(image.get("page-height")) if "page-height" in fields else image.height
    return image.crop(0, 0, image.width, height) if height < image.height else image


@dataclass
class Outcome:
    name: str
    params: Params
    problems: list[str]


class Matrix:
    """One server, the stored inputs, and a check of every answer."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.stored: dict[str, tuple[str, dict[str, Any]]] = {}

    def fail_on_5xx(self, response: httpx.Response, what: str) -> None:
        if response.status_code >= 500:
            pytest.fail(
                f"{what}: {response.status_code} {response.text[:500]}\n"
                f"--- server log ---\n{self.deployment.server.logs()}",
                pytrace=False,
            )

    def get(
        self, client: httpx.Client, path: str, params: Mapping[str, str], selector: str = "content"
    ) -> httpx.Response:
        response = client.get(f"/assets{path}/-/{selector}", params=dict(params))
        self.fail_on_5xx(response, f"GET {path}/-/{selector} {dict(params)}")
        return response

    def store(self, source: Input) -> tuple[str, dict[str, Any]]:
        if source.name not in self.stored:
            path = f"/matrix/{source.name}"
            response = self.deployment.client.post(
                f"/assets{path}",
                files={
                    "metadata": (None, "{}", "application/json"),
                    "file": ("image", source.data, "application/octet-stream"),
                },
            )
            self.fail_on_5xx(response, f"store {source.name}")
            assert response.status_code == 201, f"store {source.name}: {response.status_code} {response.text}"
            self.stored[source.name] = (path, response.json())
        return self.stored[source.name]


def expected_refusal(source: Input, params: Params) -> str | None:
    """The combinations that cannot be honoured (docs/imaging.md), and the reason each answers."""
    if params.get("cs") == "p3" and params.get("format", source.fmt) == "gif":
        return "invalid_transformation"  # GIF carries no colour profile
    return None


def check_answer(source: Input, params: Params, response: httpx.Response) -> list[str]:
    problems: list[str] = []
    refusal = expected_refusal(source, params)
    if refusal is not None:
        if response.status_code != 400 or response.json().get("error") != refusal:
            return [f"expected 400 {refusal}, got {response.status_code} {response.text[:300]}"]
        return []
    if response.status_code != 200:
        body = response.text[:300]
        if 400 <= response.status_code < 500:
            try:
                error = response.json()
                assert {"message", "error"} <= set(error)
            except (ValueError, AssertionError):
                problems.append(f"a {response.status_code} without a JSON error: {body}")
        return [*problems, f"status {response.status_code}: {body}"]
    fmt = params.get("format", source.fmt)
    if response.headers.get("content-type") != MIME_TYPES[fmt]:
        problems.append(f"content type {response.headers.get('content-type')}, expected {MIME_TYPES[fmt]}")
    content = response.content
    image = load(content)
    loader = str(image.get("vips-loader"))
    if not loader.startswith(LOADERS[fmt]):
        problems.append(f"decoded by {loader}, expected {fmt}")
    fields = set(image.get_fields())
    pages = int(image.get("n-pages")) if "n-pages" in fields else 1
    want_pages = source.pages if fmt in ANIMATED_OUTPUTS else 1
    if pages != want_pages:
        problems.append(f"{pages} frames, expected {want_pages}")
    frame = first_frame(image)
    size = (frame.width, frame.height)
    want = expected_size(source, params)
    if size != want:
        return [*problems, f"size {size}, expected {want}"]
    problems += _check_pixels(source, params, fmt, frame)
    problems += _check_metadata(source, params, fmt, fields, content, image)
    return problems


def _tolerance(source: Input, params: Params, fmt: str) -> float:
    if "q" in params:
        return 64.0  # q=40 is coarse, and flat colours show it most in the smallest images
    if source.colour_space == "cymk" or fmt in ("avif", "heic"):
        return 48.0
    return 40.0


def _check_pixels(source: Input, params: Params, fmt: str, frame: pyvips.Image) -> list[str]:
    problems: list[str] = []
    shown = displayed(frame)
    dpr = float(params.get("dpr", "1"))
    pad = _half_up(int(params["pad"]) * dpr) if int(params.get("pad", "0")) else 0
    inner_w, inner_h = shown.width - 2 * pad, shown.height - 2 * pad
    cropped_by_content = params.get("fit") == "crop" and params.get("g") in ("entropy", "attention")
    if not cropped_by_content:
        tolerance = _tolerance(source, params, fmt)
        for x, y in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
            u, v = source_point(source, params, x, y)
            expected = expected_colour(source, params, source.quadrant_colours[quadrant(u, v)])
            if expected is None:
                continue
            px, py = pad + int(x * inner_w), pad + int(y * inner_h)
            actual = list(shown(px, py))[:3]
            if any(abs(a - e) > tolerance for a, e in zip(actual, expected, strict=True)):
                problems.append(f"pixel at ({px},{py}) is {actual}, expected about {[round(e) for e in expected]}")
    # GIF has one transparent colour only, and libjxl's lossy mode does not keep the colour
    # under half-transparent pixels: their pad corners are not compared.
    if pad and fmt not in ("gif", "jxl"):
        corner = list(shown(0, 0))
        pad_colour = (0, 255, 0) if params.get("pad-c", "").startswith("#00ff00") else (255, 0, 255)
        if any(abs(a - e) > 40 for a, e in zip(corner, pad_colour, strict=True)):
            problems.append(f"pad colour {corner}, expected {pad_colour}")
    grey_output = params.get("cs") == "grayscale" or params.get("filter") in ("grayscale", "black_white")
    if grey_output:
        sample = list(shown(shown.width // 4, shown.height // 4))
        if max(sample) - min(sample) > 12:
            problems.append(f"grey output has colour {sample}")
    if params.get("cs") == "grayscale" and fmt in ("png", "jpg") and frame.bands not in (1, 2):
        problems.append(f"cs=grayscale gave {frame.bands} bands in {fmt}, expected 1 (2 with alpha)")
    return problems


def _check_metadata(
    source: Input, params: Params, fmt: str, fields: set[str], content: bytes, image: pyvips.Image
) -> list[str]:
    problems: list[str] = []
    stripped = set(filter(None, params.get("strip", "").split(",")))
    if "exif" in stripped and ("exif-data" in fields or EXIF_ARTIST.encode() in content):
        problems.append("EXIF left in after strip=exif")
    if "xmp" in stripped and ("xmp-data" in fields or XMP_MARKER.encode() in content):
        problems.append("XMP left in after strip=xmp")
    if "iptc" in stripped and ("iptc-data" in fields or IPTC_MARKER in content):
        problems.append("IPTC left in after strip=iptc")
    if "icc" in stripped and fmt not in ALWAYS_PROFILED and "icc-profile-data" in fields:
        problems.append("ICC profile left in after strip=icc")
    for block, marker in (("exif", EXIF_ARTIST.encode()), ("xmp", XMP_MARKER.encode()), ("iptc", IPTC_MARKER)):
        field = f"{block}-data"
        kept = field in fields and marker in bytes(image.get(field))
        # libvips' HEIF saver (AVIF) cannot leave out EXIF alone: strip=exif may take every block there
        all_gone = "exif" in stripped and fmt in ("avif", "heic")
        if block in source.metadata and block not in stripped and fmt in CARRIES[block] and not kept and not all_gone:
            problems.append(f"{block} of the original lost without strip")
    if params.get("cs") == "srgb" and fmt not in ALWAYS_PROFILED and "icc-profile-data" in fields:
        problems.append("cs=srgb output carries an ICC profile")
    turned = params.get("r", "0") != "0" or "f" in params
    if turned and "orientation" in fields and int(image.get("orientation")) != 1:
        problems.append(f"turned output still says orientation {image.get('orientation')}")
    return problems


def check_metadata_answer(source: Input, body: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for variant in body["variants"]:
        attributes = variant["attributes"]
        if not isinstance(attributes.get("colorSpace"), str):
            problems.append(f"variant without attributes.colorSpace: {attributes}")
        if variant["isOriginalVariant"]:
            if attributes.get("colorSpace") != source.colour_space:
                problems.append(f"original's colorSpace {attributes.get('colorSpace')}, expected {source.colour_space}")
            continue
        transformation = variant["transformation"]
        missing = TRANSFORMATION_FIELDS - set(transformation)
        if missing:
            problems.append(f"transformation without {sorted(missing)}")
            continue
        strip = transformation["metadata"]["strip"]
        if (
            transformation["rotate"] not in CURRENT_ROTATE
            or transformation["flip"] not in CURRENT_FLIP
            or transformation["filter"] not in CURRENT_FILTER
            or not isinstance(transformation["quality"], int)
            or not isinstance(transformation["blur"], int)
            or strip != sorted(set(strip))
            or not isinstance(transformation["colorSpace"], str)
        ):
            problems.append(f"transformation not in Konifer's current spellings: {transformation}")
        if transformation["format"] in ("png", "gif") and transformation["quality"] != 100:
            problems.append(f"lossless quality {transformation['quality']}, expected 100")
    return problems


# --------------------------------------------------------------------------------------------------
# The server and the matrix
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Matrix]:
    root: Path = tmp_path_factory.mktemp("matrix")
    deployment = start_deployment(root, MATRIX_CONFIG, store="filesystem", postgres=postgres, s3=None)
    try:
        yield Matrix(deployment)
    finally:
        deployment.stop()


def run_all(matrix: Matrix, source: Input, requests: list[tuple[str, Params]]) -> list[Outcome]:
    path, _ = matrix.store(source)
    clients = threading.local()
    opened: list[httpx.Client] = []

    def one(request: tuple[str, Params]) -> Outcome:
        name, params = request
        if not hasattr(clients, "client"):
            clients.client = httpx.Client(base_url=matrix.deployment.base_url, timeout=60.0)
            opened.append(clients.client)
        response = matrix.get(clients.client, path, params)
        return Outcome(name, params, check_answer(source, params, response))

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, requests))
    finally:
        for client in opened:
            client.close()


@pytest.mark.parametrize("source", inputs(), ids=lambda source: source.name)
def test_every_transformation_on_every_kind_of_image(matrix: Matrix, source: Input) -> None:
    outcomes = run_all(matrix, source, requests_for(source))
    failures = [f"{o.name} {o.params}: {'; '.join(o.problems)}" for o in outcomes if o.problems]
    path, stored = matrix.store(source)
    failures += check_metadata_answer(source, stored)
    metadata = matrix.get(matrix.deployment.client, path, {}, selector="metadata")
    assert metadata.status_code == 200, metadata.text
    failures += check_metadata_answer(source, metadata.json())
    assert not failures, f"{source.name}: {len(failures)} problems\n" + "\n".join(failures)


def test_a_5xx_fails_the_matrix_with_the_server_log(matrix: Matrix) -> None:
    """The guard every matrix request passes through: a 5xx is a failure that shows the server's log."""
    answer = httpx.Response(500, json={"message": "boom", "error": "internal_error"})
    with pytest.raises(pytest.fail.Exception) as failed:
        matrix.fail_on_5xx(answer, "GET /assets/x/-/content")
    message = str(failed.value)
    assert "500" in message and "boom" in message
    assert "--- server log ---" in message
    assert matrix.deployment.server.logs() in message


# --------------------------------------------------------------------------------------------------
# The defects real photos showed, one regression test each
# --------------------------------------------------------------------------------------------------


def named(name: str) -> Input:
    [source] = [source for source in inputs() if source.name == name]
    return source


def generated_rows(matrix: Matrix, path: str) -> int:
    rows = matrix.deployment.query(
        "SELECT count(*) FROM variant v JOIN asset a ON a.id = v.asset_id"
        " WHERE a.path = $1 AND v.transformation_key <> ''",
        path,
    )
    count: int = rows[0][0]
    return count


def fresh(matrix: Matrix, source: Input, suffix: str) -> str:
    """`source` stored at a path of its own, so that variant rows can be counted for one test."""
    path = f"/matrix-defects/{suffix}/{source.name}"
    response = matrix.deployment.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, "{}", "application/json"),
            "file": ("image", source.data, "application/octet-stream"),
        },
    )
    matrix.fail_on_5xx(response, f"store {source.name}")
    assert response.status_code == 201, response.text
    return path


def assert_answer(matrix: Matrix, source: Input, path: str, params: Params) -> httpx.Response:
    response = matrix.get(matrix.deployment.client, path, params)
    problems = check_answer(source, params, response)
    assert not problems, f"{source.name} {params}: {problems}"
    return response


def test_turns_and_mirrors_without_a_resize_decode_real_pngs(matrix: Matrix) -> None:
    """Defect 1: a 1280x642 PNG turned or mirrored top-bottom without a resize answered 500."""
    source = named("png-1280x642")
    path = fresh(matrix, source, "turns")
    for params in ({"r": "90"}, {"r": "180"}, {"r": "270", "f": "v"}, {"f": "v"}, {"r": "270"}):
        assert_answer(matrix, source, path, params)
    oriented = named("jpg-orientation-6")
    assert_answer(matrix, oriented, fresh(matrix, oriented, "turns"), {"r": "auto"})


@pytest.mark.parametrize("fmt", FORMATS)
def test_strip_exif_leaves_no_exif_in_any_output_format(matrix: Matrix, fmt: str) -> None:
    """Defect 2: the JPEG encoder wrote a fresh EXIF block after the EXIF fields were removed."""
    source = named("jpg-exif-iptc-xmp")
    path, _ = matrix.store(source)
    for strip in ("exif", "exif,iptc,xmp"):
        response = assert_answer(matrix, source, path, {"strip": strip, "format": fmt})
        fields = load(response.content).get_fields()
        assert not [field for field in fields if field.startswith("exif")], (strip, fmt, fields)
    if fmt in ("jpg", "png", "webp"):
        # only the EXIF goes: the other blocks and the profile stay where the format holds them
        kept = matrix.get(matrix.deployment.client, path, {"strip": "exif", "format": fmt}).content
        assert XMP_MARKER.encode() in bytes(load(kept).get("xmp-data"))
        p3 = named("png-display-p3")
        p3_path, _ = matrix.store(p3)
        answer = assert_answer(matrix, p3, p3_path, {"strip": "exif", "format": fmt})
        assert "icc-profile-data" in load(answer.content).get_fields()


def _variant_with(body: dict[str, Any], key_part: str) -> dict[str, Any]:
    for variant in body["variants"]:
        if not variant["isOriginalVariant"] and variant["transformation"]["colorSpace"] == key_part:
            return dict(variant)
    raise AssertionError(f"no variant with colorSpace {key_part}: {body['variants']}")


def test_colour_space_changes_follow_the_profile(matrix: Matrix) -> None:
    """Defect 3: cs=srgb on a Display-P3 original returned the original, profile and all."""
    source = named("png-display-p3")
    path = fresh(matrix, source, "colour")
    original = matrix.get(matrix.deployment.client, path, {}).content
    converted = assert_answer(matrix, source, path, {"cs": "srgb"})
    assert converted.content != original
    image = load(converted.content)
    assert "icc-profile-data" not in image.get_fields()
    red = list(image(10, 10))[:3]
    assert all(abs(a - e) <= 6 for a, e in zip(red, (251, 8, 4), strict=True)), red
    # already in P3: nothing to do, the original answers
    same = assert_answer(matrix, source, path, {"cs": "p3"})
    assert same.content == original
    assert same.headers["K-Cache-Status"] == "hit"
    grey = assert_answer(matrix, source, path, {"cs": "grayscale"})
    grey_image = load(grey.content)
    assert grey_image.bands == 1 and "icc-profile-data" not in grey_image.get_fields()
    body = matrix.get(matrix.deployment.client, path, {}, selector="metadata").json()
    assert body["variants"][0]["attributes"]["colorSpace"] == "p3"
    srgb = _variant_with(body, "srgb")
    assert srgb["attributes"]["colorSpace"] == "srgb"
    assert _variant_with(body, "grayscale")["attributes"]["colorSpace"] == "grayscale"
    # sRGB to P3 attaches the P3 profile; CMYK and Adobe RGB convert by theirs
    plain = named("plain-png")
    plain_path = fresh(matrix, plain, "colour")
    to_p3 = assert_answer(matrix, plain, plain_path, {"cs": "p3"})
    assert load(to_p3.content).get_fields().count("icc-profile-data") == 1
    p3_variant = _variant_with(matrix.get(matrix.deployment.client, plain_path, {}, selector="metadata").json(), "p3")
    assert p3_variant["attributes"]["colorSpace"] == "p3"
    for name in ("jpg-cmyk", "jpg-adobe-rgb"):
        assert_answer(matrix, named(name), matrix.store(named(name))[0], {"cs": "srgb", "format": "png"})
        assert_answer(matrix, named(name), matrix.store(named(name))[0], {"cs": "grayscale"})


def test_quality_on_a_png_original_is_the_original(matrix: Matrix) -> None:
    """Defect 4: format=png&q=40 on a PNG rendered and stored a second, identical PNG."""
    source = named("plain-png")
    path = fresh(matrix, source, "quality")
    original = matrix.get(matrix.deployment.client, path, {}).content
    for params in ({"format": "png", "q": "40"}, {"q": "40"}, {"format": "png"}):
        response = assert_answer(matrix, source, path, params)
        assert response.content == original
        assert response.headers["K-Cache-Status"] == "hit"
    assert generated_rows(matrix, path) == 0
    gif = named("plain-gif")
    gif_path = fresh(matrix, gif, "quality")
    assert assert_answer(matrix, gif, gif_path, {"q": "10"}).content == gif.data
    assert generated_rows(matrix, gif_path) == 0


def test_pad_zero_is_no_pad(matrix: Matrix) -> None:
    """Defect 5: pad=0, the default written out, was refused."""
    source = named("plain-jpg")
    path = fresh(matrix, source, "pad")
    response = assert_answer(matrix, source, path, {"pad": "0"})
    assert response.content == source.data
    resized = assert_answer(matrix, source, path, {"w": "48"})
    again = assert_answer(matrix, source, path, {"w": "48", "pad": "0"})
    assert again.headers["K-Cache-Status"] == "hit"
    assert again.content == resized.content
    assert generated_rows(matrix, path) == 1


def test_auto_rotation_of_an_upright_original_is_the_original(matrix: Matrix) -> None:
    """Defect 6: r=auto on an upright image rendered a pixel-identical variant."""
    for name in ("jpg-orientation-1", "plain-png", "plain-webp"):
        source = named(name)
        path = fresh(matrix, source, "upright")
        response = assert_answer(matrix, source, path, {"r": "auto"})
        assert response.content == source.data
        assert response.headers["K-Cache-Status"] == "hit"
        assert generated_rows(matrix, path) == 0
    turned = named("jpg-orientation-6")
    path = fresh(matrix, turned, "upright")
    response = assert_answer(matrix, turned, path, {"r": "auto"})
    assert response.headers["K-Cache-Status"] == "miss"
    assert generated_rows(matrix, path) == 1


# --------------------------------------------------------------------------------------------------
# Konifer's wire spellings (spec 06 §4)
# --------------------------------------------------------------------------------------------------


def test_metadata_uses_konifers_current_spellings(matrix: Matrix) -> None:
    source = named("plain-png")
    path = fresh(matrix, source, "spellings")
    # what Konifer's current client sends for "none": empty values, and r=0
    first = assert_answer(matrix, source, path, {"w": "48", "f": "", "filter": "", "r": "0", "blur": "1.5"})
    second = matrix.get(matrix.deployment.client, path, {"w": "48", "blur": "2"})
    assert second.headers["K-Cache-Status"] == "hit" and second.content == first.content
    matrix.get(matrix.deployment.client, path, {"w": "40", "filter": "greyscale", "strip": "xmp,icc,exif", "r": "90"})
    body = matrix.get(matrix.deployment.client, path, {}, selector="metadata").json()
    [blurred, grey] = sorted(
        (v["transformation"] for v in body["variants"] if not v["isOriginalVariant"]), key=lambda t: -t["width"]
    )
    assert (blurred["rotate"], blurred["flip"], blurred["filter"], blurred["blur"]) == ("0", "", "", 2)
    assert blurred["quality"] == 100  # png
    assert blurred["metadata"] == {"strip": []}
    assert blurred["colorSpace"] == "srgb"
    assert (grey["rotate"], grey["filter"]) == ("90", "grayscale")
    assert grey["metadata"] == {"strip": ["exif", "icc", "xmp"]}


COMPAT_CONFIG = """
[compat]
wire = "v0.2"

[paths."/**"]
object-store.bucket = "assets"
"""


def test_compat_wire_writes_konifer_0_2_spellings(tmp_path: Path, postgres: PostgresService) -> None:
    deployment = start_deployment(tmp_path, COMPAT_CONFIG, store="filesystem", postgres=postgres, s3=None)
    try:
        source = named("plain-png")
        response = deployment.client.post(
            "/assets/compat/image",
            files={"metadata": (None, "{}", "application/json"), "file": ("i", source.data, "image/png")},
        )
        assert response.status_code == 201, response.text
        for params in ({"w": "48", "r": "90", "filter": "grayscale"}, {"w": "40", "r": "180", "f": "h"}):
            assert deployment.client.get("/assets/compat/image/-/content", params=params).status_code == 200
        body = deployment.client.get("/assets/compat/image/-/metadata").json()
        spelled = {
            (t["rotate"], t["flip"], t["filter"])
            for t in (v["transformation"] for v in body["variants"] if not v["isOriginalVariant"])
        }
        # r=180&f=h is f=v, which Konifer 0.2 spells as a vertical flip without a turn
        assert spelled == {("ninety", "none", "greyscale"), ("zero", "v", "none")}
        assert body["variants"][0]["attributes"]["colorSpace"] == "srgb"
    finally:
        deployment.stop()
