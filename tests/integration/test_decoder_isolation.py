"""A decoder that crashes or hangs on an upload costs that upload, never the server worker.

The server runs with one worker and one decode process, and its decode processes import the
test-only fault (tests/support/decoder_faults.py, through `KONIFER_EDGE_DECODER_PRELOAD`): an upload
carrying the marker (`KONIFER_EDGE_TEST_FAULT_MARKER`) and ":abort" makes the decode process abort as
a native decoder crash would, ":hang" makes it hang. The marker sits after the
image's end, where decoders do not look: without the variable, such an upload is stored.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import STANDARD_CONFIG, start_deployment
from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService, S3Service

MARKER = f"fault-{uuid.uuid4().hex}"
ISOLATION_CONFIG = STANDARD_CONFIG + '\n[variant-generation]\ndecode-workers = 1\nrender-timeout = "5s"\n'


@pytest.fixture(scope="module")
def isolated(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service
) -> Iterator[Deployment]:
    deployment = start_deployment(
        tmp_path_factory.mktemp("isolated"),
        ISOLATION_CONFIG,
        store="filesystem",
        postgres=postgres,
        s3=s3,
        env={"KONIFER_EDGE_DECODER_PRELOAD": "tests.support.decoder_faults", "KONIFER_EDGE_TEST_FAULT_MARKER": MARKER},
    )
    yield deployment
    deployment.stop()


def _multipart(image: bytes) -> dict[str, tuple[str | None, bytes | str, str]]:
    return {"metadata": (None, "{}", "application/json"), "asset": ("a.png", image, "image/png")}


def _store(deployment: Deployment, path: str, image: bytes) -> httpx.Response:
    return deployment.client.post(f"/assets{path}", files=_multipart(image))


def _worker_exits(deployment: Deployment) -> int:
    return deployment.server.stdout_path.read_text(errors="replace").count("Unexpected exit")


def _decode_failures(deployment: Deployment, cause: str) -> float:
    text = deployment.client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "konifer_decode_failures_total" and sample.labels.get("cause") == cause
    )


def _decode_processes(deployment: Deployment) -> set[int]:
    """The server's live decode processes: the children of the forkserver its worker started."""
    assert deployment.server.process is not None
    parents: dict[int, int] = {}
    forkserver_like: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # it ended meanwhile
        if state != "Z":
            parents[int(entry.name)] = int(parent)
        if b"multiprocessing.forkserver" in command:
            forkserver_like.add(int(entry.name))
    descendants = {deployment.server.process.pid}
    while grown := {pid for pid, parent in parents.items() if parent in descendants} - descendants:
        descendants |= grown
    # Forked from the forkserver, decode processes share its command line; it alone has another parent.
    forkservers = {pid for pid in forkserver_like & descendants if parents[pid] not in forkserver_like}
    return {pid for pid in descendants if parents.get(pid) in forkservers}


class HeldUpload:
    """A store whose body is sent in two halves, the second only when released: a request in flight."""

    def __init__(self, deployment: Deployment, path: str, image: bytes) -> None:
        request = httpx.Request("POST", f"{deployment.base_url}/assets{path}", files=_multipart(image))
        self._body = request.read()
        self._headers = {"Content-Type": request.headers["Content-Type"]}
        self._url = str(request.url)
        self._first_half_sent = threading.Event()
        self._release = threading.Event()
        self.answer: httpx.Response | BaseException | None = None
        self._thread = threading.Thread(target=self._send, name="held-upload", daemon=True)

    def _chunks(self) -> Iterator[bytes]:
        half = len(self._body) // 2
        yield self._body[:half]
        self._first_half_sent.set()
        self._release.wait(60)
        yield self._body[half:]

    def _send(self) -> None:
        try:
            self.answer = httpx.post(self._url, content=self._chunks(), headers=self._headers, timeout=60)
        except BaseException as error:
            self.answer = error

    def start(self) -> None:
        self._thread.start()
        assert self._first_half_sent.wait(30), "the held upload never started"

    def finish(self) -> httpx.Response:
        self._release.set()
        self._thread.join(60)
        assert isinstance(self.answer, httpx.Response), f"the held upload failed: {self.answer!r}"
        return self.answer


def test_a_decoder_crash_is_a_400_and_the_worker_keeps_its_requests(isolated: Deployment, path: str) -> None:
    exits = _worker_exits(isolated)
    crashes = _decode_failures(isolated, "crash")
    held = HeldUpload(isolated, f"{path}/held", make_image("png", 40, 30))
    held.start()

    crashing = _store(isolated, path, make_image("png", 16, 16) + f"\n{MARKER}:abort".encode())

    assert crashing.status_code == 400, crashing.text
    assert crashing.json() == {
        "message": "The image cannot be decoded: the decoder failed on it",
        "error": "undecodable_image",
    }
    # The request in flight on the same worker since before the crash completes.
    assert held.finish().status_code == 201
    # The only decode process died; the next upload gets a fresh one.
    assert _store(isolated, path, make_image("png", 16, 16)).status_code == 201
    assert _worker_exits(isolated) == exits
    assert _decode_failures(isolated, "crash") == crashes + 1
    assert "died (SIGABRT) while reading a" in isolated.server.logs()
    assert isolated.query("SELECT count(*) FROM asset WHERE path = $1", path) == [(1,)]


def test_a_decode_past_the_render_timeout_is_stopped_and_the_next_upload_works(isolated: Deployment, path: str) -> None:
    timeouts = _decode_failures(isolated, "timeout")

    hanging = _store(isolated, path, make_image("png", 16, 16) + f"\n{MARKER}:hang".encode())

    assert hanging.status_code == 503, hanging.text
    assert hanging.json()["error"] == "render_timeout"
    assert hanging.headers["Retry-After"] == "1"
    # The hanging process is the only one and sleeps for an hour: an upload can only succeed again
    # once it has been stopped and replaced.
    answer = _store(isolated, path, make_image("png", 16, 16))
    for _ in range(10):
        if answer.status_code != 503:
            break
        time.sleep(1)
        answer = _store(isolated, path, make_image("png", 16, 16))
    assert answer.status_code == 201, answer.text
    assert _decode_failures(isolated, "timeout") >= timeouts + 1
    assert _worker_exits(isolated) == 0


def test_a_decode_process_killed_while_idle_is_replaced(isolated: Deployment, path: str) -> None:
    # pebble gives up on its whole pool when a process it was not using dies (the kernel's OOM
    # killer, an operator's kill); the worker starts a new pool.
    before = _decode_processes(isolated)
    assert len(before) == 1, before
    for pid in before:
        os.kill(pid, signal.SIGKILL)

    assert _store(isolated, path, make_image("png", 16, 16)).status_code == 201
    after = _decode_processes(isolated)
    assert len(after) == 1 and not after & before, (before, after)
    assert _worker_exits(isolated) == 0
