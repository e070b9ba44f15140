"""URL source downloads: allowed domains, SSRF guard, redirects, size and time limits.

Everything here talks to servers this module starts on loopback. Nothing may connect anywhere else:
an autouse fixture makes any socket connect to an address off this machine fail the test, and the
tests about internal addresses additionally make *every* connection attempt fail, so a guard that
let one through is caught before a packet leaves.

Two stand-ins keep the SSRF tests honest without real DNS or a public server:
- a stub resolver (the downloader's injectable `resolver`) answers for made-up hostnames;
- `route_public_address` plays "the internet": a connection the guard allows to PUBLIC_ADDRESS is
  handed to the local content server, so a public-looking first hop can redirect to loopback with
  `allow_private_networks=False`, and the guard, not the test setup, decides what happens next.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import msgspec
import pytest

from konifer_edge.sources.ssrf import refusal_reason
from konifer_edge.sources.url import UrlDownloader, UrlFetchPolicy, UrlSourceError

IMAGE = random.Random(7).randbytes(300_000)
# Never contacted: the socket guard fails any test that tries, and `route_public_address` hands
# connections for it to the local content server.
PUBLIC_ADDRESS = "93.184.216.34"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
CHUNK = 64 * 1024


# --------------------------------------------------------------------------- local servers


@dataclass
class ServerState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    host_headers: list[str] = field(default_factory=list)
    sni_names: list[str | None] = field(default_factory=list)
    # Per streaming path: bytes written and how the write loop ended ("complete", "cut", "deadline").
    streamed: dict[str, tuple[int, str]] = field(default_factory=dict)
    stream_done: dict[str, threading.Event] = field(default_factory=dict)

    def reset(self) -> None:
        with self.lock:
            self.hits = 0
            self.host_headers.clear()
            self.sni_names.clear()
            self.streamed.clear()
            self.stream_done.clear()

    def done_event(self, key: str) -> threading.Event:
        with self.lock:
            return self.stream_done.setdefault(key, threading.Event())


class _StatefulServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    state: ServerState

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer is what several tests are about; only report real errors.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _StatefulServerV6(_StatefulServer):
    address_family = socket.AF_INET6


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StatefulServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _count(self) -> None:
        with self.server.state.lock:
            self.server.state.hits += 1
            self.server.state.host_headers.append(self.headers.get("Host", ""))

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, key: str, total: int | None, *, chunked: bool, pause: float = 0.0) -> None:
        """Write `total` bytes (None: until the client goes away or 10 s pass), recording how it ended."""
        self.send_response(200)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(total))
        self.end_headers()
        piece = b"\0" * (1 if pause else CHUNK)
        sent, outcome, deadline = 0, "deadline", time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                if total is not None and sent >= total:
                    outcome = "complete"
                    break
                data = piece if total is None else piece[: total - sent]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                sent += len(data)
                if pause:
                    time.sleep(pause)
            if chunked and outcome == "complete":
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            outcome = "cut"
        finally:
            with self.server.state.lock:
                self.server.state.streamed[key] = (sent, outcome)
            self.server.state.done_event(key).set()
            self.close_connection = True


class ContentHandler(_QuietHandler):
    def do_GET(self) -> None:
        self._count()
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        match parts:
            case ["image"]:
                self._answer(200, IMAGE, {"Content-Type": "application/octet-stream"})
            case ["redirect"]:
                self._answer(int(query.get("status", "302")), headers={"Location": query["to"]})
            case ["chain", count]:
                if int(count) == 0:
                    self._answer(200, IMAGE)
                else:
                    self._answer(302, headers={"Location": f"/chain/{int(count) - 1}"})
            case ["loop"]:
                self._answer(302, headers={"Location": "/loop"})
            case ["no-location"]:
                self._answer(302)
            case ["status", code]:
                self._answer(int(code), b"no image here")
            case ["declared", size]:
                # Headers promising a huge body, then silence: only a client that trusts the
                # Content-Length answers quickly; one that waits for bytes runs into its timeout.
                self.send_response(200)
                self.send_header("Content-Length", size)
                self.end_headers()
                time.sleep(3)
                self.close_connection = True
            case ["sized", size]:
                self._stream(url.path, int(size), chunked=False)
            case ["chunked", size]:
                self._stream(url.path, int(size), chunked=True)
            case ["endless"]:
                self._stream(url.path, None, chunked=True)
            case ["trickle"]:
                self._stream(url.path, None, chunked=True, pause=0.05)
            case ["slow"]:
                time.sleep(3)
                self._answer(200, IMAGE)
            case _:
                self._answer(404)


class CanaryHandler(_QuietHandler):
    def do_GET(self) -> None:
        self._count()
        self._answer(200, b"canary reached")


def _start(server: _StatefulServer, state: ServerState) -> _StatefulServer:
    server.state = state
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Running:
    port: int
    state: ServerState

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def content_server() -> Iterator[Running]:
    server = _start(_StatefulServer(("127.0.0.1", 0), ContentHandler), ServerState())
    yield Running(server.server_address[1], server.state)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def canary() -> Iterator[Running]:
    """One hit counter listening on 127.0.0.1, 127.1.2.3 and ::1, all on the same port.

    Listening on every loopback form the tests use means a guard failure would really land here:
    the zero-hit assertions are not passing just because nothing listens.
    """
    state = ServerState()
    first = _start(_StatefulServer(("127.0.0.1", 0), CanaryHandler), state)
    port = first.server_address[1]
    servers = [
        first,
        _start(_StatefulServer(("127.1.2.3", port), CanaryHandler), state),
        _start(_StatefulServerV6(("::1", port), CanaryHandler), state),
    ]
    yield Running(port, state)
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _fresh_state(content_server: Running, canary: Running) -> None:
    content_server.state.reset()
    canary.state.reset()


# --------------------------------------------------------------------------- network fences


def _is_on_this_machine(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket path
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


@pytest.fixture(autouse=True)
def _no_traffic_off_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(sock: socket.socket, address: Any) -> None:
        if not _is_on_this_machine(address):
            raise AssertionError(f"connection attempt to {address!r}, off this machine")
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not _is_on_this_machine(address):
            raise AssertionError(f"connection attempt to {address!r}, off this machine")
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt at all fails the test, at every layer it could be made."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"connection attempted: {args!r} {kwargs!r}")

    async def refuse_async(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"connection attempted: {args!r} {kwargs!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", refuse_async)
    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", refuse_async)


@pytest.fixture
def route_public_address(monkeypatch: pytest.MonkeyPatch, content_server: Running) -> list[str]:
    """Hands TCP connections for PUBLIC_ADDRESS to the content server; returns every host connected to.

    Connections to loopback pass through untouched, so a guard failure reaches the canary and counts.
    """
    real_connect_tcp = httpcore.AnyIOBackend.connect_tcp
    connected: list[str] = []

    async def connect_tcp(
        backend: httpcore.AnyIOBackend, host: str, port: int, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        connected.append(host)
        if host == PUBLIC_ADDRESS:
            return await real_connect_tcp(backend, "127.0.0.1", content_server.port, **kwargs)
        return await real_connect_tcp(backend, host, port, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    return connected


class StubResolver:
    """Answers from a table; a list of answers per host is used in order, the last one repeating."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        sequence = self._answers.get(host)
        if not sequence:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return sequence.pop(0) if len(sequence) > 1 else sequence[0]


# --------------------------------------------------------------------------- helpers


def _policy(allowed: tuple[str, ...] = LOCAL_HOSTS, *, private: bool = True, **overrides: Any) -> UrlFetchPolicy:
    return UrlFetchPolicy(
        allowed_domains=allowed,
        max_bytes=overrides.pop("max_bytes", 1_000_000),
        allow_private_networks=private,
        **overrides,
    )


@asynccontextmanager
async def _downloader(policy: UrlFetchPolicy, resolver: StubResolver | None = None) -> AsyncIterator[UrlDownloader]:
    async with UrlDownloader(policy, resolver=resolver) as downloader:
        yield downloader


async def _failure(policy: UrlFetchPolicy, url: str, resolver: StubResolver | None = None) -> UrlSourceError:
    async with _downloader(policy, resolver) as downloader:
        with pytest.raises(UrlSourceError) as caught:
            await downloader.download(url)
    return caught.value


def _wait_stream_end(state: ServerState, key: str) -> tuple[int, str]:
    assert state.done_event(key).wait(10), f"the server never stopped writing {key}"
    return state.streamed[key]


# --------------------------------------------------------------------------- happy paths


async def test_downloads_the_body_byte_for_byte(content_server: Running) -> None:
    async with _downloader(_policy()) as downloader:
        assert await downloader.download(content_server.url("/image")) == IMAGE
        # By hostname, through the system resolver.
        assert await downloader.download(content_server.url("/image", host="localhost")) == IMAGE


async def test_allowed_domains_ignore_case(content_server: Running) -> None:
    async with _downloader(_policy(("LocalHost",))) as downloader:
        assert await downloader.download(content_server.url("/image", host="LOCALHOST")) == IMAGE


async def test_follows_relative_and_absolute_redirects(content_server: Running) -> None:
    to_other_allowed_host = content_server.url("/image", host="localhost")
    url = content_server.url(f"/redirect?status=301&to={urllib.parse.quote(to_other_allowed_host)}")
    async with _downloader(_policy()) as downloader:
        assert await downloader.download(url) == IMAGE
        assert await downloader.download(content_server.url("/chain/5")) == IMAGE


async def test_body_of_exactly_max_bytes_is_accepted(content_server: Running) -> None:
    async with _downloader(_policy(max_bytes=len(IMAGE))) as downloader:
        assert await downloader.download(content_server.url("/image")) == IMAGE


# --------------------------------------------------------------------------- redirects


async def test_redirect_to_a_domain_not_allowed_is_refused(content_server: Running) -> None:
    resolver = StubResolver({"localhost": [["127.0.0.1"]]})
    url = content_server.url("/redirect?to=" + urllib.parse.quote("http://evil.example/image"))
    error = await _failure(_policy(), url, resolver)
    assert (error.status, error.reason) == (400, "domain_not_allowed")
    assert "evil.example" in error.message
    assert resolver.calls == []  # refused before even a DNS lookup
    assert content_server.state.hits == 1


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/image", "gopher://127.0.0.1/"])
async def test_redirect_to_a_non_http_scheme_is_refused(content_server: Running, target: str) -> None:
    error = await _failure(_policy(), content_server.url("/redirect?to=" + urllib.parse.quote(target)))
    assert (error.status, error.reason) == (400, "invalid_url")


async def test_too_many_redirects(content_server: Running) -> None:
    error = await _failure(_policy(max_redirects=5), content_server.url("/chain/6"))
    assert (error.status, error.reason) == (400, "too_many_redirects")
    assert content_server.state.hits == 6  # the first request and five redirects, no seventh

    error = await _failure(_policy(max_redirects=0), content_server.url("/chain/1"))
    assert error.reason == "too_many_redirects"


async def test_redirect_loop_is_refused(content_server: Running) -> None:
    error = await _failure(_policy(), content_server.url("/loop"))
    assert (error.status, error.reason) == (400, "too_many_redirects")
    assert content_server.state.hits == 1


async def test_redirect_without_location_is_an_upstream_failure(content_server: Running) -> None:
    error = await _failure(_policy(), content_server.url("/no-location"))
    assert (error.status, error.reason) == (502, "upstream_status")


async def test_https_to_http_redirect_is_refused(tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    tls_server.trust(monkeypatch)
    back_to_http = f"http://allowed.example:{tls_server.port}/image"
    url = f"https://allowed.example:{tls_server.port}/redirect?to={urllib.parse.quote(back_to_http)}"
    error = await _failure(_policy(("allowed.example",)), url, tls_server.resolver())
    assert (error.status, error.reason) == (400, "invalid_url")
    assert "HTTPS to HTTP" in error.message


# --------------------------------------------------------------------------- size limits


async def test_declared_content_length_over_the_limit_is_refused_before_the_body(
    content_server: Running,
) -> None:
    started = time.monotonic()
    error = await _failure(_policy(max_bytes=1_000_000, timeout_seconds=2), content_server.url("/declared/1000001"))
    assert (error.status, error.reason) == (413, "too_large")
    assert time.monotonic() - started < 1


async def test_large_body_with_content_length_is_cut_off(content_server: Running) -> None:
    size = 64 * 1024 * 1024
    error = await _failure(_policy(max_bytes=1_000_000), content_server.url(f"/sized/{size}"))
    assert (error.status, error.reason) == (413, "too_large")
    sent, outcome = _wait_stream_end(content_server.state, f"/sized/{size}")
    assert outcome == "cut"
    assert sent < size


async def test_chunked_body_over_the_limit_is_refused(content_server: Running) -> None:
    error = await _failure(_policy(max_bytes=1_000_000), content_server.url("/chunked/1000001"))
    assert (error.status, error.reason) == (413, "too_large")
    assert "1000000 bytes" in error.message


async def test_endless_body_is_cut_off(content_server: Running) -> None:
    started = time.monotonic()
    error = await _failure(_policy(max_bytes=2_000_000), content_server.url("/endless"))
    assert (error.status, error.reason) == (413, "too_large")
    assert time.monotonic() - started < 5
    sent, outcome = _wait_stream_end(content_server.state, "/endless")
    assert outcome == "cut", "the server kept writing: the connection was not closed"
    assert sent < 64 * 1024 * 1024  # the limit plus what socket buffers absorb, not the 10 s stream


# --------------------------------------------------------------------------- time limits


@pytest.mark.parametrize("path", ["/slow", "/trickle"])
async def test_whole_download_is_bounded_by_timeout(content_server: Running, path: str) -> None:
    # /trickle sends a byte every 50 ms: no single read times out, only the overall bound can stop it.
    started = time.monotonic()
    policy = _policy(timeout_seconds=0.5, max_bytes=10_000_000)
    error = await _failure(policy, content_server.url(path))
    assert (error.status, error.reason) == (504, "timeout")
    assert time.monotonic() - started < 2


# --------------------------------------------------------------------------- upstream failures


@pytest.mark.parametrize("status", [404, 500, 304])
async def test_non_2xx_answer_is_a_bad_gateway(content_server: Running, status: int) -> None:
    error = await _failure(_policy(), content_server.url(f"/status/{status}"))
    assert (error.status, error.reason) == (502, "upstream_status")
    assert str(status) in error.message


async def test_connection_refused_is_a_bad_gateway() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    error = await _failure(_policy(), f"http://127.0.0.1:{free_port}/image")
    assert (error.status, error.reason) == (502, "upstream_unreachable")
    assert "127.0.0.1" in error.message and str(free_port) not in error.message


async def test_unresolvable_host_is_a_bad_gateway(no_connections: None) -> None:
    resolver = StubResolver({})
    error = await _failure(_policy(("nowhere.example",)), "http://nowhere.example/image", resolver)
    assert (error.status, error.reason) == (502, "upstream_unreachable")
    assert resolver.calls == [("nowhere.example", 80)]


# --------------------------------------------------------------------------- URL and domain checks


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/image",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://127.0.0.1:70/_",
        "not a url",
        "",
        "http:///image",
        "//127.0.0.1/image",
    ],
)
async def test_non_http_urls_are_refused(url: str, no_connections: None) -> None:
    resolver = StubResolver({})
    error = await _failure(_policy(), url, resolver)
    assert (error.status, error.reason) == (400, "invalid_url")
    assert resolver.calls == []


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (LOCAL_HOSTS, "http://example.com/image"),
        (("example.com",), "http://img.example.com/image"),  # no subdomains, as in Konifer
        (("example.com",), "http://example.com.evil.test/image"),
        (("example.com",), "http://example.com@evil.test/image"),  # userinfo is not the host
        (("*.example.com",), "http://img.example.com/image"),  # no wildcards either
        ((), "http://127.0.0.1/image"),  # an empty list refuses everything
    ],
)
async def test_hosts_outside_allowed_domains_are_refused(
    allowed: tuple[str, ...], url: str, no_connections: None
) -> None:
    resolver = StubResolver({})
    error = await _failure(_policy(allowed), url, resolver)
    assert (error.status, error.reason) == (400, "domain_not_allowed")
    assert resolver.calls == []


async def test_messages_escape_user_input(no_connections: None) -> None:
    error = await _failure(_policy(), "ftp://a/\r\nX-Injected: 1")
    assert "\r" not in error.message and "\n" not in error.message


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        UrlFetchPolicy(allowed_domains=(), max_bytes=-1)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"allowed_domains": [], "max_bytes": 1, "timeout_seconds": 0}, UrlFetchPolicy)
    with pytest.raises(ValueError):
        UrlDownloader(_policy(("images.example.com:8080",)))


# --------------------------------------------------------------------------- SSRF: canary


def _canary_urls(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://127.1.2.3:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://0.0.0.0:{port}/",
        f"http://localhost:{port}/",
    ]


def _host_of(url: str) -> str:
    return httpx.URL(url).host


async def test_loopback_addresses_never_reach_the_canary(canary: Running) -> None:
    for url in _canary_urls(canary.port):
        # The host is allowed by name, so only the address guard can stop it.
        error = await _failure(_policy((_host_of(url),), private=False), url)
        assert (error.status, error.reason) == (400, "private_address"), url
    assert canary.state.hits == 0


def test_control_the_canary_is_reachable_at_every_form(canary: Running) -> None:
    # Without this, the zero-hit test above could pass because nothing listened there.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for url in _canary_urls(canary.port):
        with opener.open(url, timeout=5) as answer:
            assert answer.read() == b"canary reached", url
    assert canary.state.hits == len(_canary_urls(canary.port))


async def test_control_downloader_reaches_the_canary_when_private_networks_are_allowed(
    canary: Running,
) -> None:
    urls = [url for url in _canary_urls(canary.port) if "0.0.0.0" not in url]  # refused by any policy
    for url in urls:
        async with _downloader(_policy((_host_of(url),), private=True)) as downloader:
            assert await downloader.download(url) == b"canary reached", url
    assert canary.state.hits == len(urls)


@pytest.mark.parametrize("allowed", ["[::1]", "::1", "[0:0::1]"])
async def test_ipv6_allowed_domains_match_in_any_spelling_and_stay_guarded(canary: Running, allowed: str) -> None:
    url = f"http://[::1]:{canary.port}/"
    async with _downloader(_policy((allowed,), private=True)) as downloader:
        assert await downloader.download(url) == b"canary reached"
    # Allowed by name, the loopback address is still refused unless private networks are allowed.
    error = await _failure(_policy((allowed,), private=False), url)
    assert (error.status, error.reason) == (400, "private_address")
    assert canary.state.hits == 1


async def test_redirect_from_a_public_host_to_loopback_is_refused(
    canary: Running, content_server: Running, route_public_address: list[str]
) -> None:
    resolver = StubResolver(
        {
            "allowed.example": [[PUBLIC_ADDRESS]],
            "rebind.example": [["127.0.0.1"]],
            "localhost": [["127.0.0.1"]],
        }
    )
    policy = _policy(("allowed.example", "127.0.0.1", "localhost", "rebind.example"), private=False)
    async with _downloader(policy, resolver) as downloader:
        # Control: the public-looking host really is served, so the refusals below come from the guard.
        image_url = f"http://allowed.example:{content_server.port}/image"
        assert await downloader.download(image_url) == IMAGE
        assert content_server.state.host_headers == [f"allowed.example:{content_server.port}"]

        for host in ("127.0.0.1", "localhost", "rebind.example"):
            target = urllib.parse.quote(f"http://{host}:{canary.port}/")
            with pytest.raises(UrlSourceError) as caught:
                await downloader.download(f"http://allowed.example:{content_server.port}/redirect?to={target}")
            assert (caught.value.status, caught.value.reason) == (400, "private_address"), host

    assert canary.state.hits == 0
    assert set(route_public_address) == {PUBLIC_ADDRESS}


async def test_dns_rebinding_connects_to_the_checked_address(
    canary: Running, content_server: Running, route_public_address: list[str]
) -> None:
    # First answer public, every later answer loopback: a second lookup at connect time would hit
    # the canary on this very port.
    resolver = StubResolver({"allowed.example": [[PUBLIC_ADDRESS], ["127.0.0.1"]]})
    policy = _policy(("allowed.example",), private=False)
    async with _downloader(policy, resolver) as downloader:
        assert await downloader.download(f"http://allowed.example:{canary.port}/image") == IMAGE
    assert resolver.calls == [("allowed.example", canary.port)]
    assert route_public_address == [PUBLIC_ADDRESS]
    assert canary.state.hits == 0


async def test_one_internal_answer_among_public_ones_refuses_the_host(no_connections: None) -> None:
    resolver = StubResolver({"mixed.example": [[PUBLIC_ADDRESS, "127.0.0.1"]]})
    error = await _failure(_policy(("mixed.example",), private=False), "http://mixed.example/", resolver)
    assert (error.status, error.reason) == (400, "private_address")


# --------------------------------------------------------------------------- SSRF: internal addresses

INTERNAL_ADDRESSES = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.1.1",
    "100.64.0.1",
    "100.100.100.200",
    "224.0.0.1",
    "255.255.255.255",
    "0.0.0.0",
    "127.0.0.1",
    "fd00:ec2::254",
    "fc00::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "::",
    "::1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:c0a8:101::1",  # 6to4 wrapping 192.168.1.1
    "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
]


@pytest.mark.parametrize("address", INTERNAL_ADDRESSES)
async def test_resolved_internal_addresses_are_refused(address: str, no_connections: None) -> None:
    resolver = StubResolver({"internal.example": [[address]]})
    policy = _policy(("internal.example",), private=False)
    error = await _failure(policy, "http://internal.example/latest/meta-data/", resolver)
    assert (error.status, error.reason) == (400, "private_address")
    assert resolver.calls == [("internal.example", 80)]
    assert address not in error.message  # our network layout stays ours


@pytest.mark.parametrize("address", INTERNAL_ADDRESSES)
async def test_literal_internal_addresses_are_refused(address: str, no_connections: None) -> None:
    resolver = StubResolver({})
    host = f"[{address}]" if ":" in address else address
    error = await _failure(_policy((address,), private=False), f"http://{host}/latest/meta-data/", resolver)
    assert (error.status, error.reason) == (400, "private_address")
    assert resolver.calls == []


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "0.0.0.0"])
async def test_metadata_and_unspecified_are_refused_even_with_private_networks(
    address: str, no_connections: None
) -> None:
    resolver = StubResolver({"metadata.example": [[address]]})
    error = await _failure(_policy(("metadata.example",), private=True), "http://metadata.example/", resolver)
    assert (error.status, error.reason) == (400, "private_address")


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"])
def test_public_addresses_pass_the_guard(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_private_networks=False) is None


# --------------------------------------------------------------------------- TLS to a pinned address


@dataclass
class TlsServer:
    port: int
    state: ServerState
    ca_pem: str

    def resolver(self) -> StubResolver:
        return StubResolver({"allowed.example": [["127.0.0.1"]]})

    def trust(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the downloader trust our test CA instead of the public ones."""
        original: Callable[..., ssl.SSLContext] = httpx.create_ssl_context
        monkeypatch.setattr(httpx, "create_ssl_context", lambda *a, **k: _client_context(original, self.ca_pem))


def _client_context(original: Callable[..., ssl.SSLContext], ca_pem: str) -> ssl.SSLContext:
    context = original()
    context.load_verify_locations(cadata=ca_pem)
    return context


def _make_certificates(directory: Path) -> tuple[Path, Path, str]:
    pytest.importorskip("cryptography")  # installed with moto; skip rather than fail without it
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "konifer-edge test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "allowed.example")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("allowed.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "leaf.pem", directory / "leaf.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, ca.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    cert_path, key_path, ca_pem = _make_certificates(tmp_path_factory.mktemp("tls"))
    state = ServerState()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)

    def remember_sni(_sock: Any, name: str | None, _context: ssl.SSLContext) -> None:
        with state.lock:
            state.sni_names.append(name)

    context.sni_callback = remember_sni
    server = _StatefulServer(("127.0.0.1", 0), ContentHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _start(server, state)
    yield TlsServer(server.server_address[1], state, ca_pem)
    server.shutdown()
    server.server_close()


async def test_tls_verifies_the_hostname_while_connecting_to_the_vetted_address(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_server.state.reset()
    tls_server.trust(monkeypatch)
    resolver = tls_server.resolver()
    async with _downloader(_policy(("allowed.example",)), resolver) as downloader:
        assert await downloader.download(f"https://allowed.example:{tls_server.port}/image") == IMAGE
    assert tls_server.state.sni_names == ["allowed.example"]
    assert tls_server.state.host_headers == [f"allowed.example:{tls_server.port}"]
    assert resolver.calls == [("allowed.example", tls_server.port)]


async def test_tls_certificate_for_another_name_is_refused(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_server.state.reset()
    tls_server.trust(monkeypatch)
    resolver = StubResolver({"other.example": [["127.0.0.1"]]})
    error = await _failure(_policy(("other.example",)), f"https://other.example:{tls_server.port}/image", resolver)
    assert (error.status, error.reason) == (502, "upstream_unreachable")
    assert tls_server.state.hits == 0
