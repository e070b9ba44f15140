"""SSRF guard for URL sources: which addresses we may connect to, and a network backend that enforces it.

The check has to happen where the socket is opened, not where the URL is parsed: a hostname checked
before the request and resolved again at connect time can answer differently the second time (DNS
rebinding). So `GuardedNetworkBackend.connect_tcp` resolves the host once, refuses the connection if
any resolved address is off limits, and connects to one of the addresses it checked. httpcore still
sends the original hostname in the Host header and uses it for TLS SNI and certificate verification,
because it only hands the backend the host for the TCP connect and calls `start_tls` with the origin's
hostname itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable

import httpcore

from konifer_edge.sources.errors import UrlSourceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves (host, port) to IP address strings. Injectable so tests never need real DNS."""

# Metadata services hand out cloud credentials; no image lives there, so they are refused even when
# private networks are allowed (AWS/GCP/Azure/OCI IPv4, AWS IPv6, Alibaba).
_CLOUD_METADATA: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)

# NAT64 gateways translate this prefix to the IPv4 address in its last 32 bits (RFC 6052).
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def _without_scope(address: IPAddress) -> IPAddress:
    # A zone id ("fe80::1%eth0") makes otherwise equal addresses compare unequal.
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(int(address))
    return address


def _addresses_reached(address: IPAddress) -> list[IPAddress]:
    """The addresses a connection to `address` may actually end up at.

    IPv6 forms that carry an IPv4 address are judged by that IPv4 address too, or
    ::ffff:127.0.0.1 would slip past a check that only looks at the IPv6 ranges.
    """
    address = _without_scope(address)
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)]
    reached: list[IPAddress] = [address]
    if address.sixtofour is not None:
        reached.append(address.sixtofour)
    if address.teredo is not None:
        reached.append(address.teredo[1])
    return reached


def refusal_reason(address: IPAddress, *, allow_private_networks: bool) -> str | None:
    """Why a URL source may not connect to `address` (a few words for a message), or None if it may."""
    for reached in _addresses_reached(address):
        # Never a unicast HTTP server, whatever the policy: 0.0.0.0 and :: even reach local services.
        if reached.is_unspecified:
            return "an unspecified address"
        if reached.is_multicast:
            return "a multicast address"
        if reached in _CLOUD_METADATA:
            return "a cloud metadata address"
        if allow_private_networks:
            continue
        if reached.is_loopback:
            return "a loopback address"
        if reached.is_link_local:
            return "a link-local address"
        if reached.is_private:
            return "a private network address"
        if isinstance(reached, ipaddress.IPv6Address) and reached.is_site_local:
            return "a site-local address"
        if reached.is_reserved or not reached.is_global:
            # is_global also rules out shared address space (100.64.0.0/10) and other special ranges.
            return "a reserved address"
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system's resolver, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class AddressGuard:
    """Resolves a host once and returns only addresses a URL source may connect to."""

    def __init__(self, resolver: Resolver, *, allow_private_networks: bool) -> None:
        self._resolver = resolver
        self._allow_private_networks = allow_private_networks

    async def vetted_addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = parse_ip_literal(host)
        if literal is not None:
            self._refuse_if_forbidden(host, [literal], literal=True)
            return [literal]
        addresses = await self._resolve(host, port)
        self._refuse_if_forbidden(host, addresses, literal=False)
        return addresses

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = await self._resolver(host, port)
        except OSError:
            raise UrlSourceError(502, "upstream_unreachable", f"The host {host!r} could not be resolved.") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            address = parse_ip_literal(answer)
            if address is None:
                raise UrlSourceError(502, "upstream_unreachable", f"The host {host!r} could not be resolved.")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UrlSourceError(502, "upstream_unreachable", f"The host {host!r} could not be resolved.")
        return addresses

    def _refuse_if_forbidden(self, host: str, addresses: Iterable[IPAddress], *, literal: bool) -> None:
        # One bad answer refuses the host: an attacker controlling DNS could otherwise mix a public
        # address with an internal one and hope the connection lands on the second.
        for address in addresses:
            why = refusal_reason(address, allow_private_networks=self._allow_private_networks)
            if why is None:
                continue
            subject = f"The address {host!r} is" if literal else f"The host {host!r} resolves to"
            raise UrlSourceError(400, "private_address", f"{subject} {why}, which URL sources may not reach.")


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that only opens TCP connections to addresses the guard vetted."""

    def __init__(self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._guard = guard
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface, not our choice
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._guard.vetted_addresses(host, port)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        # Try the vetted addresses in resolver order, never the hostname: passing the name on would
        # let the inner backend resolve it again and reach whatever the DNS answers then.
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        if failure is None:  # pragma: no cover - vetted_addresses never returns an empty list
            raise httpcore.ConnectError(f"no address to connect to for {host!r}")
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface, not our choice
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # A Unix socket is a local service by definition; URL sources never need one.
        raise httpcore.ConnectError("URL sources do not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
