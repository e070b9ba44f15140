"""An S3 endpoint whose object bodies can stall: a small HTTP proxy in front of moto.

Every request goes to moto as it came. While `stall_after` is set, the answer to a `GET` of an
object sends its status line and headers, then that many bytes of the body, then nothing more
until `release()` (or the client hangs up): an object store that answers and then holds the body.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.services import S3Service

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: StallingS3


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(owner.s3.host, owner.s3.port, timeout=60)
        try:
            headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
            answer_headers = [(n, v) for n, v in answer.getheaders() if n.lower() not in _HOP_BY_HOP]
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command == "HEAD":
            return
        stall_after = owner.stall_after
        is_object = self.command == "GET" and "?" not in self.path and self.path.count("/") >= 2
        if stall_after is None or not is_object or answer.status != 200:
            self.wfile.write(content)
            return
        owner.stalled.set()
        try:
            self.wfile.write(content[:stall_after])
            self.wfile.flush()
            owner.released.wait(60)
        finally:
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


class StallingS3:
    def __init__(self, s3: S3Service) -> None:
        self.s3 = s3
        self.stall_after: int | None = None
        self.stalled = threading.Event()
        self.released = threading.Event()
        self._server = _Proxy(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.host = "127.0.0.1"
        self.port: int = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def as_s3(self) -> S3Service:
        """moto's S3Service as a deployment sees it, but reached through this proxy."""
        return _Behind(self)

    def stall_bodies_after(self, byte_count: int) -> None:
        self.released.clear()
        self.stalled.clear()
        self.stall_after = byte_count

    def release(self) -> None:
        self.stall_after = None
        self.released.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


class _Behind(S3Service):
    """The same moto, its endpoint replaced by the proxy's (buckets are still made in moto directly)."""

    def __init__(self, proxy: StallingS3) -> None:  # no super().__init__: moto already runs
        self._proxy = proxy
        self._moto = proxy.s3

    @property
    def endpoint_url(self) -> str:
        return self._proxy.endpoint_url

    def create_bucket(self, name: str) -> None:
        self._moto.create_bucket(name)

    def list_keys(self, bucket: str) -> list[str]:
        return self._moto.list_keys(bucket)

    def get_object(self, bucket: str, key: str) -> bytes:
        return self._moto.get_object(bucket, key)
