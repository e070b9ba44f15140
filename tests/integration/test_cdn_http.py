"""HTTP as a CDN needs it: ranges, HEAD, lifetimes per URL kind, purge tags and the purge webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.conftest import STANDARD_CONFIG, start_deployment
from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService, S3Service, free_port


def _store(api: Deployment, path: str, image: bytes, alt: str | None = None) -> dict[str, object]:
    metadata = json.dumps({"alt": alt} if alt else {})
    answer = api.client.post(
        f"/assets{path}", files={"metadata": (None, metadata, "application/json"), "asset": ("a", image, "image/png")}
    )
    assert answer.status_code == 201, answer.text
    stored: dict[str, object] = answer.json()
    return stored


class PurgeReceiver:
    """Records the JSON bodies POSTed to it, like a CDN's purge API would receive them."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/purge"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[dict[str, object]]:
        deadline = time.monotonic() + 10
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.bodies


@pytest.fixture(scope="module")
def purge_receiver() -> Iterator[PurgeReceiver]:
    receiver = PurgeReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def streaming_api(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service, purge_receiver: PurgeReceiver
) -> Iterator[Deployment]:
    """Bodies never cached in memory (every answer streams), and a purge webhook."""
    config = STANDARD_CONFIG + f'\n[cache]\nsmall-object-max-size = 0\npurge-webhook-url = "{purge_receiver.url}"\n'
    deployment = start_deployment(
        tmp_path_factory.mktemp("streaming"), config, store="filesystem", postgres=postgres, s3=s3
    )
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(params=["memory", "stream"])
def any_api(request: pytest.FixtureRequest, fs_api: Deployment, streaming_api: Deployment) -> Deployment:
    """Small bodies come from memory on fs_api and always stream on streaming_api: ranges must agree."""
    return fs_api if request.param == "memory" else streaming_api


def test_ranges(any_api: Deployment, path: str) -> None:
    image = make_image("png", 64, 48)
    _store(any_api, path, image)
    url = f"/assets{path}/-/entry/0/content"
    size = len(image)
    cases = {"bytes=0-9": (0, 9), "bytes=10-": (10, size - 1), "bytes=-5": (size - 5, size - 1),
             f"bytes=5-{size + 100}": (5, size - 1)}  # fmt: skip
    for header, (start, end) in cases.items():
        answer = any_api.client.get(url, headers={"Range": header})
        assert answer.status_code == 206, header
        assert answer.content == image[start : end + 1], header
        assert answer.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert answer.headers["Content-Length"] == str(end - start + 1)
    past_end = any_api.client.get(url, headers={"Range": f"bytes={size}-"})
    assert past_end.status_code == 416
    assert past_end.headers["Content-Range"] == f"bytes */{size}"
    etag = any_api.client.get(url).headers["ETag"]
    assert any_api.client.get(url, headers={"Range": "bytes=0-3", "If-Range": etag}).status_code == 206
    stale = any_api.client.get(url, headers={"Range": "bytes=0-3", "If-Range": '"old"'})
    assert stale.status_code == 200
    assert stale.content == image
    several = any_api.client.get(url, headers={"Range": "bytes=0-1,4-5"})
    assert several.status_code == 200
    assert several.content == image


def test_head_answers_the_headers_of_get_without_a_body(any_api: Deployment, path: str) -> None:
    _store(any_api, path, make_image("png", 32, 24), alt="Head")
    for selector in ("content", "entry/0/download", "metadata", "link"):
        got = any_api.client.get(f"/assets{path}/-/{selector}")
        head = any_api.client.head(f"/assets{path}/-/{selector}")
        assert head.status_code == got.status_code == 200, selector
        assert head.content == b"", selector
        for name in ("content-type", "cache-control", "cache-tag", "etag", "k-alt"):
            assert head.headers.get(name) == got.headers.get(name), (selector, name)


def test_304_needs_no_object_store_read(fs_api: Deployment, path: str) -> None:
    stored = _store(fs_api, path, make_image("png", 32, 24))
    url = f"/assets{path}/-/entry/0/content"
    etag = fs_api.client.get(url).headers["ETag"]
    key = stored["variants"][0]["storeKey"]  # type: ignore[index]
    object_file = fs_api.root / "data" / "objects" / "assets" / key
    object_file.rename(object_file.with_suffix(".away"))
    try:
        answer = fs_api.client.get(url, headers={"If-None-Match": etag})
        assert answer.status_code == 304
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    finally:
        object_file.with_suffix(".away").rename(object_file)


def test_vary_accept_only_where_the_format_was_negotiated(fs_api: Deployment, path: str) -> None:
    _store(fs_api, path, make_image("png", 32, 24))
    assert fs_api.client.get(f"/assets{path}/-/content").headers["Vary"] == "Accept"
    assert "vary" not in fs_api.client.get(f"/assets{path}/-/content?format=webp").headers
    assert "vary" not in fs_api.client.get(f"/assets{path}/-/metadata").headers


def test_errors_are_never_cached(fs_api: Deployment) -> None:
    assert fs_api.client.get("/assets/nothing/here/at-all").headers["Cache-Control"] == "no-store"


def test_updates_and_deletes_call_the_purge_webhook(
    streaming_api: Deployment, purge_receiver: PurgeReceiver, path: str
) -> None:
    _store(streaming_api, path, make_image("png", 16, 16))
    before = len(purge_receiver.bodies)
    assert streaming_api.client.put(f"/assets{path}/-/entry/0", json={"alt": "new"}).status_code == 200
    update = purge_receiver.wait_for(before + 1)[before]
    assert update["reason"] == "update"
    assert f"entry:{path}/0" in update["tags"]  # type: ignore[operator]
    assert f"path:{path}" in update["tags"]  # type: ignore[operator]
    assert streaming_api.client.delete(f"/assets{path}/-/entry/0").status_code == 204
    delete = purge_receiver.wait_for(before + 2)[before + 1]
    assert delete["reason"] == "delete"
    assert f"entry:{path}/0" in delete["tags"]  # type: ignore[operator]
