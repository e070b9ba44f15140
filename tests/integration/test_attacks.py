"""Hostile files: refused from their headers, before any full decode, and the node keeps serving."""

from __future__ import annotations

import struct
import zlib

import httpx

from tests.support.deployment import Deployment
from tests.support.images import make_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny file whose header promises 2.5 gigapixels; decoding it would need ~7.5 GB."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024)  # a sliver of the promised pixels
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def many_frame_gif(frames: int = 10_000, side: int = 1) -> bytes:
    """A side x side GIF with `frames` 1x1 frames: a few bytes each, costly for anything that decodes them all."""
    screen = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = (
        b"\x21\xf9\x04\x00\x01\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    )
    return screen + loop + frame * frames + b"\x3b"


def _post(api: Deployment, path: str, body: bytes) -> tuple[int, dict[str, str]]:
    answer = api.client.post(
        f"/assets{path}", files={"metadata": (None, "{}", "application/json"), "asset": ("x", body, "image/png")}
    )
    return answer.status_code, answer.json()


def _refused_and_still_serving(api: Deployment, path: str, body: bytes, reason: str) -> None:
    before = api.snapshot()
    status, error = _post(api, path, body)
    assert status == 400, error
    assert error["error"] == reason, error
    assert api.snapshot() == before
    assert api.client.get("/health").status_code == 200
    ok, _ = _post(api, path, make_image("png", 8, 8))
    assert ok == 201


def test_decompression_bomb_is_refused_from_its_header(fs_api: Deployment, path: str) -> None:
    _refused_and_still_serving(fs_api, path, png_bomb(), "image_too_large")


def test_ten_thousand_frames_are_refused_from_the_header(fs_api: Deployment, path: str) -> None:
    _refused_and_still_serving(fs_api, path, many_frame_gif(), "too_many_frames")


def test_pixels_count_every_frame(fs_api: Deployment, path: str) -> None:
    # 12000 x 9000 is within the width and height limits, but 108 MP is over the 100 MP default.
    _refused_and_still_serving(fs_api, path, png_bomb(12_000, 9_000), "too_many_pixels")
    # 200 frames of 800 x 800: each frame is small, together they are 128 MP.
    _refused_and_still_serving(fs_api, path, many_frame_gif(200, 800), "too_many_pixels")
    _refused_and_still_serving(fs_api, path, many_frame_gif(1001), "too_many_frames")


def test_a_large_camera_photo_is_accepted_by_default(fs_api: Deployment, path: str) -> None:
    # 48 MP, as phone cameras take them: within the 100 MP default.
    status, metadata = _post(fs_api, path, make_image("jpg", 8000, 6000))
    assert status == 201, metadata


def test_a_file_whose_signature_lies_is_refused(fs_api: Deployment, path: str) -> None:
    # A GIF signature in front of PNG bytes: libvips' GIF loader cannot read it.
    before = fs_api.snapshot()
    status, error = _post(fs_api, path, b"GIF89a" + make_image("png", 16, 16)[6:])
    assert status == 400, error
    assert fs_api.snapshot() == before


def test_trailing_payload_after_an_image_is_served_only_as_that_image(fs_api: Deployment, path: str) -> None:
    # A JPEG with HTML appended (a classic polyglot) stays a JPEG: declared type, nosniff.
    image = make_image("jpg", 16, 16) + b"<html><script>alert(1)</script></html>"
    status, _ = _post(fs_api, path, image)
    assert status == 201
    answer = fs_api.client.get(f"/assets{path}/-/content")
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_an_oversized_request_head_is_refused_and_the_node_stays_up(fs_api: Deployment) -> None:
    # The server answers 431 and closes; a client still writing the head may see only the close.
    with httpx.Client(base_url=fs_api.base_url, timeout=10) as fresh:
        try:
            status = fresh.get("/health", headers={"X-Padding": "a" * 100_000}).status_code
        except httpx.TransportError:
            status = None
    assert status in (431, None)
    assert fs_api.client.get("/health", headers={"X-Padding": "a" * 8_000}).status_code == 200
