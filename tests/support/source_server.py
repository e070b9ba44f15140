"""A scriptable origin on 127.0.0.1 for URL-source tests: fixed bodies, redirects, slow and endless bodies."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["SourceServer"]

# Every generated body stops by itself: a client that fails to cut it off still ends the test.
_MAX_GENERATED_BYTES = 2 * 1024 * 1024 * 1024
_MAX_GENERATED_SECONDS = 60.0


@dataclass(frozen=True)
class _Route:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/octet-stream"
    headers: tuple[tuple[str, str], ...] = ()
    headers_delay: float = 0.0
    body_delay: float = 0.0
    # Generated bodies: `prefix`, then filler until `total` bytes (None = until the caps above).
    generated: bool = False
    total: int | None = None
    chunked: bool = True
    chunk_size: int = 64 * 1024
    chunk_interval: float = 0.0


@dataclass
class _State:
    routes: dict[str, _Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, *, send_body: bool) -> None:
        path = urlsplit(self.path).path
        state = self.server.state
        with state.lock:
            state.hits[path] += 1
            state.headers[path] = {k.lower(): v for k, v in self.headers.items()}
            route = state.routes.get(path)
        if route is None:
            route = _Route(status=404, body=b"not found", content_type="text/plain")
        try:
            if route.headers_delay:
                time.sleep(route.headers_delay)
            if route.generated:
                self._generated(route, send_body)
            else:
                self._fixed(route, send_body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            # The client hung up: exactly what size and time limits are meant to do.
            self.close_connection = True

    def _head(self, route: _Route, length: int | None) -> None:
        self.send_response(route.status)
        if route.content_type is not None:
            self.send_header("Content-Type", route.content_type)
        for name, value in route.headers:
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _fixed(self, route: _Route, send_body: bool) -> None:
        self._head(route, len(route.body))
        if not send_body:
            return
        if route.body_delay:
            self.wfile.flush()
            time.sleep(route.body_delay)
        self.wfile.write(route.body)

    def _generated(self, route: _Route, send_body: bool) -> None:
        declared = None if route.chunked else route.total
        self._head(route, declared)
        if not send_body:
            return
        self.wfile.flush()
        if route.body_delay:
            time.sleep(route.body_delay)
        limit = _MAX_GENERATED_BYTES if route.total is None else min(route.total, _MAX_GENERATED_BYTES)
        deadline = time.monotonic() + _MAX_GENERATED_SECONDS
        filler = b"\xab" * route.chunk_size
        sent = 0
        pending = route.body
        while sent < limit and time.monotonic() < deadline:
            piece = pending[: route.chunk_size] if pending else filler
            pending = pending[len(piece) :] if pending else b""
            piece = piece[: limit - sent]
            if route.chunked:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                self.wfile.write(piece)
            sent += len(piece)
            if route.chunk_interval:
                self.wfile.flush()
                time.sleep(route.chunk_interval)
        if route.chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        if sent < limit:
            # A declared length we did not honour must not leave the client waiting on keep-alive.
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class SourceServer:
    """Register routes, point the service at `url(path)`, then check `hits(path)`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.state = _State()
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SourceServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set(self, path: str, route: _Route) -> str:
        if not path.startswith("/"):
            path = "/" + path
        with self._httpd.state.lock:
            self._httpd.state.routes[path] = route
        return self.url(path)

    def add(
        self,
        path: str,
        body: bytes,
        content_type: str | None = "application/octet-stream",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve `body` at `path`; returns the route's URL. `content_type=None` sends no header."""
        route = _Route(status=status, body=body, content_type=content_type, headers=tuple((headers or {}).items()))
        return self._set(path, route)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        """Answer `status` (301, 302, 303, 307, 308) pointing at `location` (a path or absolute URL)."""
        target = self.url(location) if location.startswith("/") else location
        route = _Route(status=status, content_type=None, headers=(("Location", target),))
        return self._set(path, route)

    def slow(
        self,
        path: str,
        body: bytes,
        content_type: str | None = "application/octet-stream",
        *,
        delay: float,
        after_headers: bool = False,
    ) -> str:
        """Sleep `delay` seconds before answering, or after the headers and before the body."""
        route = _Route(
            body=body,
            content_type=content_type,
            headers_delay=0.0 if after_headers else delay,
            body_delay=delay if after_headers else 0.0,
        )
        return self._set(path, route)

    def endless(
        self,
        path: str,
        content_type: str = "image/jpeg",
        *,
        prefix: bytes = b"",
        total: int | None = None,
        chunked: bool = True,
        chunk_size: int = 64 * 1024,
        chunk_interval: float = 0.0,
    ) -> str:
        """A body generated on the fly: `prefix` (e.g. a real image header), then filler bytes.

        With `total=None` it runs until the client hangs up (capped at 2 GiB or 60 s). With
        `chunked=False` a Content-Length of `total` is declared up front, so a client can refuse
        it before reading; `chunk_interval` trickles the body to exercise overall time limits.
        """
        if not chunked and total is None:
            raise ValueError("a non-chunked body needs a total length to declare")
        route = _Route(
            body=prefix,
            content_type=content_type,
            generated=True,
            total=total,
            chunked=chunked,
            chunk_size=chunk_size,
            chunk_interval=chunk_interval,
        )
        return self._set(path, route)

    def hits(self, path: str) -> int:
        with self._httpd.state.lock:
            return self._httpd.state.hits[path if path.startswith("/") else "/" + path]

    def last_headers(self, path: str) -> dict[str, str]:
        """The (lower-cased) request headers of the latest request to `path`."""
        with self._httpd.state.lock:
            return dict(self._httpd.state.headers.get(path if path.startswith("/") else "/" + path, {}))

    def reset(self) -> None:
        with self._httpd.state.lock:
            self._httpd.state.routes.clear()
            self._httpd.state.hits.clear()
            self._httpd.state.headers.clear()
