"""Hostile store bodies against a real server, on a fixed budget: never a 5xx, always an answer.

Hypothesis builds the bodies (random bytes, damaged real images of every format, broken multipart
framing, huge and deeply nested metadata, hostile JSON stores) and each is POSTed as-is. Every answer
must be a 201 for an image the service can read, or a 4xx with the JSON error body; after each one
the server must still answer `/health`. Examples are derandomized and few, so CI runs the same set
every time in well under a minute.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.deployment import Deployment
from tests.support.images import FORMATS, make_image

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# One small image per format, made once: the mutations start from real encoder output.
IMAGES = {fmt: make_image(fmt, 48, 32) for fmt in FORMATS}
BOUNDARY = "fuzzboundary7MA4YWxkTrZu0gW"
# What RFC 9110 does not allow in a field value: control characters other than horizontal tab.
INVALID_FIELD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Target:
    """The server under fuzz: posts bodies, and tells a worker crash from any other failure.

    A native crash in an image decoder must cost one upload, never the worker process: decoding
    happens in disposable decode processes. A dead worker (Granian logs "Unexpected exit" and
    respawns it, losing the requests in flight on it) fails the example that caused it.
    """

    def __init__(self, deployment: Deployment, session: httpx.Client) -> None:
        self.deployment = deployment
        self.client = session

    def worker_exits(self) -> int:
        return self.deployment.server.stdout_path.read_text(errors="replace").count("Unexpected exit")

    def post(self, body: bytes, content_type: str) -> httpx.Response:
        # Raw header bytes: a fuzzed Content-Type need not be ASCII, and httpx would refuse to encode it.
        headers = {b"Content-Type": content_type.encode("utf-8", "surrogatepass")}
        exits = self.worker_exits()
        try:
            return self.client.post(f"/assets/fuzz/{uuid.uuid4().hex[:12]}", content=body, headers=headers)
        except httpx.LocalProtocolError:
            raise  # httpx itself would not send it: nothing reached the server
        except httpx.TransportError as error:
            deadline = time.monotonic() + 30
            while self.worker_exits() == exits and time.monotonic() < deadline:
                time.sleep(0.05)  # Granian logs the exit a moment after the connection drops
            if self.worker_exits() == exits:
                raise  # not a crash: a transport failure of the service's own making
            raise AssertionError(
                f"the server worker died under a {len(body)}-byte body ending {body[-120:]!r}: {error!r}"
            ) from error

    def check(self, answer: httpx.Response, *, may_store: bool) -> None:
        assert_answered_sanely(self.client, answer, may_store=may_store)


@pytest.fixture(scope="module")
def target(fs_api: Deployment) -> Iterator[Target]:
    with httpx.Client(base_url=fs_api.base_url, timeout=30.0) as session:
        yield Target(fs_api, session)


def multipart(metadata: bytes, asset: bytes, boundary: str = BOUNDARY) -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\nContent-Type: application/json\r\n\r\n'
        ).encode()
        + metadata
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="asset"; filename="a"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + asset
        + f"\r\n--{boundary}--\r\n".encode()
    )


def assert_answered_sanely(client: httpx.Client, answer: httpx.Response, *, may_store: bool) -> None:
    allowed = "201 or 4xx" if may_store else "4xx"
    assert answer.status_code < 500, f"{answer.status_code} (expected {allowed}): {answer.text[:300]}"
    if answer.status_code == 201:
        assert may_store, f"stored what it should have refused: {answer.text[:300]}"
        assert answer.json()["entryId"] >= 0
    else:
        assert 400 <= answer.status_code < 500, answer.status_code
        assert answer.headers.get("content-type", "").startswith("application/json"), (
            f"{answer.status_code} {answer.headers.get('content-type')!r}: {answer.content[:200]!r}"
        )
        body = answer.json()
        assert isinstance(body, dict) and set(body) == {"message", "error"}, body
        if answer.request.content:
            # The refusal may come before the whole body was read: the server closes the connection
            # and says so, or the client's next request would go down a connection being closed.
            assert answer.headers.get("connection") == "close", answer.headers
    assert client.get("/health").status_code == 200


# --- the image part -------------------------------------------------------------------------------


@FUZZ
@given(asset=st.binary(min_size=1, max_size=4096))
def test_random_bytes_as_the_image_are_refused(target: Target, asset: bytes) -> None:
    answer = target.post(multipart(b"{}", asset), f"multipart/form-data; boundary={BOUNDARY}")
    target.check(answer, may_store=False)


@st.composite
def damaged_images(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real image cut short, with bytes flipped, with junk spliced in, or left whole."""
    fmt = draw(st.sampled_from(FORMATS))
    data = bytearray(IMAGES[fmt])
    how = draw(st.sampled_from(["whole", "truncate", "flip", "splice", "repeat"]))
    if how == "truncate":
        data = data[: draw(st.integers(1, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 16))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= draw(st.integers(1, 255))
    elif how == "splice":
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(st.binary(min_size=1, max_size=256))
    elif how == "repeat":
        start = draw(st.integers(0, len(data) - 1))
        data += data[start:] * draw(st.integers(1, 4))
    return how, bytes(data)


# A HEIC with flipped bytes whose libvips error text quotes them: pyvips failed to decode that text
# as UTF-8, and the UnicodeDecodeError escaped as a 500 (found by a longer run of this fuzzer).
GARBLED_ERROR_HEIC = (Path(__file__).parent / "data" / "heic-vips-error-not-utf8.heic").read_bytes()


@FUZZ
@given(image=damaged_images())
@example(image=("flip", GARBLED_ERROR_HEIC))
def test_damaged_real_images_are_stored_or_refused_never_a_failure(target: Target, image: tuple[str, bytes]) -> None:
    how, asset = image
    answer = target.post(multipart(b'{"alt":"fuzz"}', asset), f"multipart/form-data; boundary={BOUNDARY}")
    # A damaged image may still decode (a cut-off trailer, a flipped pixel): then storing it is right.
    target.check(answer, may_store=True)
    if how == "whole":
        assert answer.status_code == 201, answer.text


# --- the framing ----------------------------------------------------------------------------------


@st.composite
def broken_framing(draw: st.DrawFn) -> tuple[bytes, str]:
    """A multipart body and Content-Type that disagree, or a body broken somewhere in its structure."""
    body = multipart(b"{}", IMAGES[draw(st.sampled_from(FORMATS))])
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    how = draw(
        st.sampled_from(
            ["cut", "other_boundary", "no_boundary", "no_crlf", "garbage_prefix", "no_end", "duplicate_part",
             "only_metadata", "bad_headers", "random_type", "empty"]
        )
    )  # fmt: skip
    if how == "cut":
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif how == "other_boundary":
        content_type = f"multipart/form-data; boundary={draw(st.text(min_size=1, max_size=70))!r}"
    elif how == "no_boundary":
        content_type = "multipart/form-data"
    elif how == "no_crlf":
        body = body.replace(b"\r\n", draw(st.sampled_from([b"\n", b"", b"\r"])))
    elif how == "garbage_prefix":
        body = draw(st.binary(min_size=1, max_size=512)) + body
    elif how == "no_end":
        body = body[: body.rindex(b"--" + BOUNDARY.encode())]
    elif how == "duplicate_part":
        body = multipart(b"{}", b"x") + body
    elif how == "only_metadata":
        body = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n'
        ).encode()
    elif how == "bad_headers":
        body = body.replace(b"Content-Disposition", draw(st.binary(min_size=1, max_size=40)), 1)
    elif how == "random_type":
        content_type = draw(st.text(max_size=80).filter(lambda text: "\n" not in text and "\r" not in text))
    return body, content_type


@FUZZ
@given(request=broken_framing())
def test_broken_multipart_framing_is_a_4xx(target: Target, request: tuple[bytes, str]) -> None:
    body, content_type = request
    try:
        answer = target.post(body, content_type)
    except httpx.LocalProtocolError:
        return  # a header httpx itself will not send never reaches the server
    if INVALID_FIELD_VALUE.search(content_type):
        # Not HTTP at all (RFC 9110 forbids control characters in a field value): Granian's parser
        # answers a bare 400 and closes, before the application sees anything.
        assert answer.status_code == 400, answer.status_code
        assert target.client.get("/health").status_code == 200
        return
    # Even broken framing can carry a whole, readable image (a garbage preamble is legal multipart).
    target.check(answer, may_store=True)


# --- metadata and JSON bodies ---------------------------------------------------------------------


def nested(depth: int, opener: str) -> str:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '{"a":' if opener == "{" else "["
    return (inner * depth) + "1" + (closer * depth)


ODD_JSON = [
    '{"alt": NaN}',
    '{"alt": "a", "alt": "b"}',
    '{"alt": "\\u0000"}',
    '{"labels": {"k": 1}}',
    "[]",
    "null",
    '"x"',
    "{",
    '{"alt": "\\ud800"}',
    '{"tags": "notalist"}',
    '{"labels": {"": ""}}',
    "1e999999",
]
# URLs the allowlist refuses before any connection: nothing leaves the machine.
REFUSED_URLS = [
    "",
    "ftp://example.invalid/a.png",
    "http://example.invalid/a.png",
    "not a url",
    "http://[::1",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://user:pass@example.invalid:99999/",
]
hostile_json = st.one_of(
    st.integers(1, 200_000).map(lambda depth: '{"alt": ' + nested(depth, "[") + "}"),
    st.integers(1, 50_000).map(lambda depth: '{"labels": ' + nested(depth, "{") + "}"),
    st.integers(1, 50_000).map(lambda depth: '{"unknown": ' + nested(depth, "[") + "}"),
    st.integers(60_000, 300_000).map(lambda size: json.dumps({"alt": "a" * size})),
    st.integers(51, 2000).map(lambda count: json.dumps({"labels": {f"k{i}": "v" for i in range(count)}})),
    st.integers(51, 2000).map(lambda count: json.dumps({"tags": [f"t{i}" for i in range(count)]})),
    st.sampled_from(ODD_JSON),
    st.text(max_size=200),
)


# Once a 500: msgspec recursed into the unknown field until RecursionError.
DEEP_UNKNOWN = '{"unknown": ' + nested(5000, "[") + "}"


def encoded(text: str) -> bytes:
    # surrogatepass: a lone surrogate goes out as the invalid UTF-8 a hostile client would send
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(metadata=st.one_of(hostile_json.map(encoded), st.binary(max_size=300)))
@example(metadata=encoded(DEEP_UNKNOWN))
# Once 500s: a NUL in alt reached PostgreSQL; invalid UTF-8 in a string raised UnicodeDecodeError.
@example(metadata=b'{"alt": "\\u0000"}')
@example(metadata=b'{"alt": "\xff"}')
@example(metadata=encoded('{"alt": "\udcff"}'))
def test_hostile_metadata_parts_are_refused_or_stored_never_a_failure(target: Target, metadata: bytes) -> None:
    answer = target.post(multipart(metadata, IMAGES["png"]), f"multipart/form-data; boundary={BOUNDARY}")
    target.check(answer, may_store=True)


@FUZZ
@given(
    body=st.one_of(
        hostile_json,
        st.builds(
            lambda url, alt: json.dumps({"url": url, "alt": alt}),
            st.sampled_from(REFUSED_URLS),
            st.one_of(st.none(), st.text(max_size=200)),
        ),
    )
)
@example(body=DEEP_UNKNOWN)
@example(body='{"url": "http://example.invalid/", "alt": "\udcff"}')
def test_hostile_json_store_bodies_are_refused(target: Target, body: str) -> None:
    answer = target.post(encoded(body), "application/json")
    target.check(answer, may_store=False)


def test_the_server_survived_the_fuzzing(fs_api: Deployment, target: Target) -> None:
    assert fs_api.server.is_running()
    assert target.client.get("/ready").status_code == 200
    assert target.worker_exits() == 0, "a server worker died during the fuzzing"
