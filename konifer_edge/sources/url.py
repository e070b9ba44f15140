"""Downloading asset content from a client-supplied URL (the "URL source" of spec 03).

Every hop of a download is checked the same way before any byte is sent: http or https only, the
host in `allowed-domains`, and (at connect time, in `ssrf.GuardedNetworkBackend`) an address outside
loopback, private, link-local and other internal ranges. The body is streamed and cut off at
`max_bytes`, and the whole download, redirects included, is bounded by `timeout_seconds`.

`allowed-domains` is matched as Konifer matches it: the URL's host, lower-cased, must equal one of
the configured entries, lower-cased. No subdomains, no wildcards, the port plays no part, and an empty
list refuses every URL.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
from types import TracebackType

import httpx
import msgspec

from konifer_edge.sources.errors import UrlSourceError, UrlSourceReason
from konifer_edge.sources.ssrf import (
    AddressGuard,
    GuardedNetworkBackend,
    Resolver,
    parse_ip_literal,
    system_resolver,
)
from konifer_edge.sources.transport import PinnedNetworkTransport

__all__ = ["Resolver", "UrlDownloader", "UrlFetchPolicy", "UrlSourceError", "UrlSourceReason"]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SCHEMES = frozenset({"http", "https"})

_REQUEST_HEADERS = {
    "Accept": "image/*, */*;q=0.5",
    # Images gain nothing from transfer compression, and a compressed body could inflate far beyond
    # what its Content-Length promised before our size check sees it.
    "Accept-Encoding": "identity",
    "User-Agent": "konifer-edge",
}


class UrlFetchPolicy(msgspec.Struct, frozen=True):
    allowed_domains: tuple[str, ...]
    max_bytes: int
    allow_private_networks: bool = False
    timeout_seconds: float = 30.0
    max_redirects: int = 5

    def __post_init__(self) -> None:
        if self.max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        if not self.timeout_seconds > 0:
            raise ValueError("timeout_seconds must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")


def _canonical_host(host: str) -> str:
    """One spelling per host: IP literals in their compressed form ("0:0::1", "[::1]" and "::1"
    are one address), names as httpx gives them (lower case, IDNA)."""
    literal = parse_ip_literal(host)
    return literal.compressed if literal is not None else host


def _normalized_host(domain: str) -> str:
    """An allowed domain in the form `_checked_url` compares: see `_canonical_host`."""
    candidate = domain.strip()
    if parse_ip_literal(candidate) is not None:
        return _canonical_host(candidate)
    try:
        raw_host = httpx.URL(scheme="http", host=candidate, path="/").raw_host
    except httpx.InvalidURL:
        raise ValueError(f"allowed domain {domain!r} is not a host name or IP address") from None
    if not raw_host:
        raise ValueError(f"allowed domain {domain!r} is empty")
    return _canonical_host(raw_host.decode("ascii"))


def _refuse_all_cookies() -> http.cookiejar.CookieJar:
    # One client serves every tenant's downloads; a cookie set by one upstream must not ride along
    # on another client's request to the same host.
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class UrlDownloader:
    """Downloads URL sources under one `UrlFetchPolicy`. Create once, share, `aclose` at shutdown."""

    def __init__(self, policy: UrlFetchPolicy, *, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._allowed_hosts = frozenset(_normalized_host(domain) for domain in policy.allowed_domains)
        guard = AddressGuard(
            resolver if resolver is not None else system_resolver,
            allow_private_networks=policy.allow_private_networks,
        )
        transport = PinnedNetworkTransport(
            GuardedNetworkBackend(guard),
            ssl_context=httpx.create_ssl_context(),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0),
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            # No proxies from the environment (a proxy resolves hosts itself, past our guard) and no
            # credentials from .netrc.
            trust_env=False,
            timeout=httpx.Timeout(policy.timeout_seconds),
            headers=_REQUEST_HEADERS,
            cookies=_refuse_all_cookies(),
        )

    async def __aenter__(self) -> UrlDownloader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def download(self, url: str) -> bytes:
        """The whole body behind `url`, at most `max_bytes` long, or a `UrlSourceError` saying why not."""
        target = self._checked_url(url)
        try:
            async with asyncio.timeout(self._policy.timeout_seconds):
                return await self._follow_redirects(target)
        except TimeoutError:
            raise self._timed_out() from None

    async def _follow_redirects(self, target: httpx.URL) -> bytes:
        visited = {target}
        redirects = 0
        while True:
            next_target = await self._fetch_once(target)
            if isinstance(next_target, bytes):
                return next_target
            if redirects >= self._policy.max_redirects:
                raise UrlSourceError(
                    400,
                    "too_many_redirects",
                    f"The source redirected more than {self._policy.max_redirects} times.",
                )
            if next_target in visited:
                raise UrlSourceError(400, "too_many_redirects", "The source redirects in a loop.")
            redirects += 1
            visited.add(next_target)
            target = next_target

    async def _fetch_once(self, target: httpx.URL) -> bytes | httpx.URL:
        """The body of a final answer, or the checked URL a redirect points to."""
        try:
            async with self._client.stream("GET", target) as response:
                if response.status_code in _REDIRECT_STATUSES:
                    return self._redirect_target(target, response)
                return await self._read_body(response)
        except httpx.TimeoutException:
            raise self._timed_out() from None
        except httpx.TransportError:
            # The cause (with addresses and errno) stays out of the message on purpose: the client
            # learns that the source failed, not what our network looks like.
            raise UrlSourceError(
                502,
                "upstream_unreachable",
                f"Could not download from {target.host!r}: the connection failed.",
            ) from None

    def _redirect_target(self, current: httpx.URL, response: httpx.Response) -> httpx.URL:
        location = response.headers.get("location")
        if not location:
            raise UrlSourceError(
                502,
                "upstream_status",
                f"The source answered HTTP {response.status_code} without a Location header.",
            )
        try:
            target = current.join(location)
        except httpx.InvalidURL:
            raise UrlSourceError(
                400, "invalid_url", f"The source redirected to an invalid URL: {location!r}."
            ) from None
        checked = self._checked_url(target)
        if current.scheme == "https" and checked.scheme == "http":
            # As Konifer does: a download that started encrypted must not continue in the clear.
            raise UrlSourceError(400, "invalid_url", "The source redirected from HTTPS to HTTP.")
        return checked

    async def _read_body(self, response: httpx.Response) -> bytes:
        if not 200 <= response.status_code < 300:
            raise UrlSourceError(502, "upstream_status", f"The source answered HTTP {response.status_code}.")
        declared = response.headers.get("content-length")
        if declared is not None:
            try:
                declared_length = int(declared)
            except ValueError:
                raise UrlSourceError(
                    502, "upstream_status", "The source sent an invalid Content-Length header."
                ) from None
            if declared_length > self._policy.max_bytes:
                raise self._too_large()
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > self._policy.max_bytes:
                # Leaving the `stream` block closes the connection, so the rest is never read.
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _checked_url(self, url: str | httpx.URL) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise UrlSourceError(400, "invalid_url", f"{url!r} is not a valid URL.") from None
        if parsed.scheme not in _SCHEMES:
            raise UrlSourceError(400, "invalid_url", f"{str(url)!r} is not an http or https URL.")
        host = parsed.raw_host.decode("ascii")
        if not host:
            raise UrlSourceError(400, "invalid_url", f"{str(url)!r} has no host.")
        if _canonical_host(host) not in self._allowed_hosts:
            raise UrlSourceError(400, "domain_not_allowed", f"The host {host!r} is not in the allowed domains.")
        return parsed

    def _too_large(self) -> UrlSourceError:
        return UrlSourceError(
            413, "too_large", f"The source is larger than the limit of {self._policy.max_bytes} bytes."
        )

    def _timed_out(self) -> UrlSourceError:
        return UrlSourceError(
            504, "timeout", f"The source did not answer within {self._policy.timeout_seconds:g} seconds."
        )
