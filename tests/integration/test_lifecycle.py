"""The server's life: SIGTERM drains requests in flight and exits cleanly; `/ready` follows the database.

Requests are held in flight by the test itself (a download it stops reading, an upload whose
body it stops sending), so whether they are still running when SIGTERM arrives never depends on
how fast anything is. Each test has a server of its own: SIGTERM ends it.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService

CONFIG = '[paths."/**"]\nobject-store.bucket = "assets"\n'
# Background jobs stay out of the way: whatever they would write, only the shutdown writes here.
QUIET = {"KONIFER_EDGE_ACCESS_FLUSH_INTERVAL": "3600", "KONIFER_EDGE_PURGE_INTERVAL": "3600"}
# Bounds on waiting for something that must happen; none of them is asserted on.
DEADLINE_SECONDS = 60.0


def eventually_true(check: Any, what: str, deadline: float = DEADLINE_SECONDS) -> None:
    give_up = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < give_up, f"gave up waiting: {what}"
        time.sleep(0.05)


def noise_png(width: int, height: int) -> bytes:
    """An image that does not compress: its PNG is about width x height x 3 bytes."""
    bands = [pyvips.Image.gaussnoise(width, height, mean=128, sigma=60).cast("uchar") for _ in range(3)]
    image = bands[0].bandjoin(bands[1:]).copy(interpretation="srgb")
    data: bytes = image.pngsave_buffer(compression=0)
    return data


def refuses_connections(url: str) -> bool:
    try:
        httpx.get(url, timeout=5)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False  # accepted, then cut: not yet the state we wait for
    return False


def multipart(boundary: str, image: bytes) -> bytes:
    return (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="metadata"\r\nContent-Type: application/json\r\n\r\n'
            '{"alt":"sent during shutdown"}\r\n'
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="asset"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )


class SlowUpload:
    """A store whose body stops halfway until `finish()`: the server is then reading a request."""

    def __init__(self, base_url: str, path: str, image: bytes) -> None:
        boundary = uuid.uuid4().hex
        body = multipart(boundary, image)
        self._first, self._rest = body[: len(body) // 2], body[len(body) // 2 :]
        self._base_url, self._path, self._boundary = base_url, path, boundary
        self.sending = threading.Event()
        self._go_on = threading.Event()
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _body(self) -> Iterator[bytes]:
        yield self._first
        self.sending.set()
        self._go_on.wait(DEADLINE_SECONDS)
        yield self._rest

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self._base_url, timeout=DEADLINE_SECONDS) as client:
                self.response = client.post(
                    f"/assets{self._path}",
                    content=self._body(),
                    headers={"Content-Type": f"multipart/form-data; boundary={self._boundary}"},
                )
        except BaseException as error:
            self.error = error

    def start(self) -> SlowUpload:
        self._thread.start()
        return self

    def finish(self) -> httpx.Response:
        self._go_on.set()
        self._thread.join(DEADLINE_SECONDS)
        assert self.error is None, repr(self.error)
        assert self.response is not None
        return self.response


@pytest.fixture
def node(tmp_path: Path, postgres: PostgresService) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path / "node", CONFIG, store="filesystem", postgres=postgres, env=QUIET).start()
    try:
        yield deployment
    finally:
        deployment.stop()


def test_sigterm_finishes_requests_in_flight_then_exits_zero(node: Deployment) -> None:
    server = node.server
    assert server.process is not None
    base = f"/life/{uuid.uuid4().hex[:10]}"
    # Larger than every socket buffer between the server and a client that stops reading.
    big = noise_png(2000, 2000)
    stored = node.client.post(
        f"/assets{base}/big",
        files={"metadata": (None, "{}", "application/json"), "asset": ("big.png", big, "image/png")},
    )
    assert stored.status_code == 201, stored.text
    # A variant served before shutdown: its last use is written to the database by the shutdown.
    small = make_image("png", 40, 30)
    assert (
        node.client.post(
            f"/assets{base}/small",
            files={"metadata": (None, "{}", "application/json"), "asset": ("s.png", small, "image/png")},
        ).status_code
        == 201
    )
    assert node.client.get(f"/assets{base}/small/-/content?w=8&format=webp").headers["K-Cache-Status"] == "miss"
    idle = httpx.Client(base_url=node.base_url, timeout=10)  # a kept-alive connection, idle at SIGTERM
    assert idle.get("/ready").status_code == 200

    # A download the client stops reading after its first bytes: the answer is being sent.
    small_window = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)])
    reader = httpx.Client(base_url=node.base_url, timeout=DEADLINE_SECONDS, transport=small_window)
    download = reader.send(reader.build_request("GET", f"/assets{base}/big/-/content"), stream=True)
    assert download.status_code == 200
    chunks = download.iter_bytes(64 * 1024)
    received = [next(chunks)]
    # An upload that stops halfway through its body: the request is being read.
    upload = SlowUpload(node.base_url, f"{base}/uploaded", make_image("png", 50, 40)).start()
    assert upload.sending.wait(DEADLINE_SECONDS)
    # One worker accepts connections in the order they arrive: once a later connection is answered,
    # the upload's connection has been accepted too.
    assert httpx.get(node.base_url + "/health", timeout=10).status_code == 200

    server.process.terminate()  # SIGTERM

    eventually_true(lambda: refuses_connections(node.base_url + "/health"), "new connections refused")
    assert server.is_running(), "the server must wait for the requests in flight"
    # Unready while it drains: no answer at all on a connection kept alive from before, never a 200.
    try:
        answer = idle.get("/ready")
    except httpx.HTTPError:
        pass
    else:
        assert answer.status_code == 503, answer.text
    idle.close()

    uploaded = upload.finish()
    received.extend(chunks)
    download.close()
    reader.close()

    assert uploaded.status_code == 201, uploaded.text
    body = b"".join(received)
    assert len(body) == len(big)
    assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
    assert server.process.wait(timeout=DEADLINE_SECONDS) == 0, server.logs()[-4000:]
    assert refuses_connections(node.base_url + "/health")
    # Everything the lifespan does on the way out ran: the last uses it had gathered were written.
    rows = node.query(
        "SELECT v.created_at, v.last_accessed_at FROM variant v JOIN asset a ON a.id = v.asset_id"
        " WHERE a.path = $1 AND v.transformation_key <> ''",
        f"{base}/small",
    )
    assert len(rows) == 1
    created, last_used = rows[0]
    assert last_used > created
    assert node.query("SELECT alt FROM asset WHERE path = $1", f"{base}/uploaded") == [("sent during shutdown",)]


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[Deployment, PostgresService]]:
    """A server on a PostgreSQL of its own, which the test may stop: the suite's shared one stays up."""
    database = PostgresService()
    database.start()
    try:
        deployment = Deployment(tmp_path / "node", CONFIG, store="filesystem", postgres=database, env=QUIET).start()
        try:
            yield deployment, database
        finally:
            deployment.stop()
    finally:
        database.close()


def ready(deployment: Deployment) -> httpx.Response:
    return deployment.client.get("/ready")


def store_small(deployment: Deployment, path: str) -> httpx.Response:
    image = make_image("png", 20, 10)
    return deployment.client.post(
        f"/assets{path}", files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", image)}
    )


def test_ready_and_writes_answer_503_while_the_database_is_down_and_recover_with_it(
    outage: tuple[Deployment, PostgresService],
) -> None:
    deployment, database = outage
    assert ready(deployment).status_code == 200
    assert ready(deployment).json()["checks"] == {"database": "ok", "object_store": "ok"}

    database.stop()

    eventually_true(lambda: ready(deployment).status_code == 503, "/ready answers 503")
    answer = ready(deployment).json()
    assert answer["status"] == "unavailable"
    assert answer["checks"]["database"].startswith("unavailable")
    assert answer["checks"]["object_store"] == "ok"
    assert deployment.client.get("/health").status_code == 200, "liveness does not depend on the database"
    refused = store_small(deployment, f"/ready/{uuid.uuid4().hex[:10]}")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["error"] == "dependency_unavailable"

    database.start()

    eventually_true(lambda: ready(deployment).status_code == 200, "/ready answers 200 again")
    assert ready(deployment).json()["checks"] == {"database": "ok", "object_store": "ok"}
    assert store_small(deployment, f"/ready/{uuid.uuid4().hex[:10]}").status_code == 201
