"""The servers the suite starts (each in its own session, stopped by its process group) and plain HTTP to them."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from settings import HOST


class Service:
    """A server started by the suite in its own session, stopped by its process group."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


SERVICES: list[Service] = []


def start_service(*args: Any, **kwargs: Any) -> Service:
    service = Service(*args, **kwargs)
    SERVICES.append(service)
    return service


def stop_all() -> None:
    while SERVICES:
        SERVICES.pop().stop()


def wait_http(
    port: int, path: str, timeout: float, service: Service | None = None, ok: tuple[int, ...] = (200,)
) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            raise RuntimeError(f"{service.name} exited during start-up:\n{service.tail()}")
        try:
            status, _, _ = http_request(port, "GET", path, timeout=2)
            if status in ok:
                return
            last = status
        except OSError as error:
            last = error
        time.sleep(0.2)
    raise RuntimeError(f"no answer on port {port}{path} within {timeout}s (last: {last})")


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


def multipart(metadata: dict[str, object], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "konifer-bench-" + uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n'
        f"Content-Type: application/json\r\n\r\n".encode()
        + json.dumps(metadata).encode()
        + b"\r\n",
        f'--{boundary}\r\nContent-Disposition: form-data; name="asset"; filename="{filename}"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + content
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
