"""An S3 store that sends an object's headers and then holds its body.

Before any body byte reached the client, the answer is the documented 503 JSON; once the body has
started, the connection is cut (never a body that looks complete), the access line says which
status was sent and that the answer failed, and the cut is counted.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import STANDARD_CONFIG
from tests.support.deployment import Deployment
from tests.support.services import PostgresService, S3Service
from tests.support.stalling_s3 import StallingS3

CHUNK = 256 * 1024


@pytest.fixture(scope="module")
def stalling(s3: S3Service) -> Iterator[StallingS3]:
    proxy = StallingS3(s3)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, stalling: StallingS3
) -> Iterator[Deployment]:
    config = STANDARD_CONFIG + '\n[cache]\nsmall-object-max-size = "16KB"\n'
    deployment = Deployment(
        tmp_path_factory.mktemp("stalled-store"), config, store="s3", postgres=postgres, s3=stalling.as_s3()
    )
    # Fail fast: a 2 s read timeout and no retries, so a held body fails the read within seconds.
    config_file = deployment.server.config_path
    config_file.write_text(
        config_file.read_text().replace(
            "force-path-style = true", 'force-path-style = true\nread-timeout = "2s"\nmax-retries = 0'
        )
    )
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.stop()


def _big_png() -> bytes:
    # Noise does not compress: well over a few chunks, far over the small-body size.
    noise = random.Random(3).randbytes(700 * 700 * 3)
    import pyvips

    image = pyvips.Image.new_from_memory(noise, 700, 700, 3, "uchar")
    data: bytes = image.pngsave_buffer(compression=0)
    return data


def _store(node: Deployment, path: str, image: bytes) -> None:
    answer = node.client.post(
        f"/assets{path}", files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", image, "image/png")}
    )
    assert answer.status_code == 201, answer.text


def _raw_get(node: Deployment, target: str) -> tuple[bytes, bytes]:
    """The head and as much body as arrives before the server closes: what a client really gets."""
    with socket.create_connection((node.server.host, node.server.port), timeout=30) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while True:
            try:
                data = connection.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def _cut_count(node: Deployment, route: str) -> float:
    for line in node.client.get("/metrics").text.splitlines():
        if line.startswith(f'konifer_http_responses_cut_total{{route="{route}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _access_lines(node: Deployment, path: str, route: str) -> list[dict[str, object]]:
    """The access lines of ``route`` for ``path``, waiting for the first: lines are written in batches."""
    deadline = time.monotonic() + 10
    while True:
        lines = []
        for line in node.server.stderr_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and path in line:
                lines.append(json.loads(line))
        logged = [line for line in lines if line.get("route") == route]
        if logged or time.monotonic() > deadline:
            return logged
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["content", "download"])
def test_a_body_held_before_its_first_chunk_answers_503_json(
    node: Deployment, stalling: StallingS3, path: str, kind: str
) -> None:
    image = _big_png()
    assert len(image) > 4 * CHUNK
    _store(node, path, image)
    stalling.stall_bodies_after(0)
    try:
        answer = node.client.get(f"/assets{path}/-/{kind}")
    finally:
        stalling.release()
    assert stalling.stalled.is_set()
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == "dependency_unavailable"
    assert answer.headers["retry-after"] == "1"
    # and once the store answers again, so does the node
    assert node.client.get(f"/assets{path}/-/{kind}").content == image


@pytest.mark.parametrize("kind", ["content", "download"])
def test_a_body_held_after_it_started_cuts_the_connection_and_says_so(
    node: Deployment, stalling: StallingS3, path: str, kind: str
) -> None:
    image = _big_png()
    _store(node, path, image)
    route = f"fetch_{kind}"
    cuts_before = _cut_count(node, route)
    stalling.stall_bodies_after(2 * CHUNK + 1000)
    try:
        head, body = _raw_get(node, f"/assets{path}/-/{kind}")
    finally:
        stalling.release()
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.endswith(b"200 OK"), head
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    assert int(headers[b"content-length"]) == len(image)
    # Cut short, never completed: what arrived is a true prefix of the image.
    assert 0 < len(body) < len(image)
    assert image.startswith(body)
    assert _cut_count(node, route) == cuts_before + 1
    logged = _access_lines(node, path, route)
    assert logged[-1]["status"] == 200
    assert logged[-1]["failed"]
    assert logged[-1]["bytes"] == len(body)
    assert node.client.get(f"/assets{path}/-/{kind}").content == image
