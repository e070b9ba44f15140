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

# The ranges are written out rather than asked of `ipaddress.is_private` / `is_global`, whose answers
# have changed between Python patch releases (3.11.2 calls 6to4 private, later 3.11s do not): the
# guard must answer the same on every Python. The lists follow the IANA IPv4 and IPv6
# Special-Purpose Address Registries: every block there that is not globally reachable is refused
# (docs/security.md lists them), and the few globally reachable blocks inside a refused one are let
# through explicitly.
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(reason: str, *cidrs: str) -> list[tuple[_Network, str]]:
    return [(ipaddress.ip_network(cidr), reason) for cidr in cidrs]


# Never a unicast HTTP server, whatever the policy: 0.0.0.0 and :: even reach local services.
_ALWAYS_REFUSED: list[tuple[_Network, str]] = [
    *_networks("an unspecified address", "0.0.0.0/32", "::/128"),
    *_networks("a multicast address", "224.0.0.0/4", "ff00::/8"),
]

_REFUSED_IPV4: list[tuple[_Network, str]] = [
    *_networks("a loopback address", "127.0.0.0/8"),
    *_networks("a link-local address", "169.254.0.0/16"),
    *_networks("a private network address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
    *_networks("a shared address space address", "100.64.0.0/10"),
    *_networks(
        "a reserved address",
        "0.0.0.0/8",  # "this network"
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "240.0.0.0/4",  # reserved for future use, and the limited broadcast address in it
    ),
]

_REFUSED_IPV6: list[tuple[_Network, str]] = [
    *_networks("a loopback address", "::1/128"),
    *_networks("a link-local address", "fe80::/10"),
    *_networks("a private network address", "fc00::/7"),  # unique local
    *_networks("a site-local address", "fec0::/10"),
    *_networks(
        "a reserved address",
        "100::/64",  # discard-only
        "100:0:0:1::/64",  # dummy prefix
        "2001::/23",  # IETF protocol assignments (Teredo, benchmarking, ...), exceptions below
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing (SRv6) SIDs
    ),
]

# Globally reachable blocks inside 2001::/23, as the IPv6 registry marks them.
_GLOBAL_IN_REFUSED: list[_Network] = [
    ipaddress.ip_network(cidr)
    for cidr in (
        "2001:1::1/128",  # port control protocol anycast
        "2001:1::2/128",  # traversal using relays around NAT anycast
        "2001:1::3/128",  # DNS-SD service registration protocol anycast
        "2001:3::/32",  # automatic multicast tunneling
        "2001:4:112::/48",  # AS112-v6
        "2001:20::/28",  # ORCHIDv2
        "2001:30::/28",  # drone remote ID protocol entity tags
    )
]

# Everything outside 2000::/3 that the tables above do not name is unallocated or reserved by IETF.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

# IPv6 forms that carry an IPv4 address in their last 32 bits: a connection to them reaches that
# IPv4 address (IPv4-mapped, RFC 4291; NAT64, RFC 6052 well-known prefix and RFC 8215 local-use).
_EMBEDS_IPV4_LAST_32 = (
    ipaddress.IPv6Network("::ffff:0:0/96"),
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)
# 6to4 (RFC 3056) carries the IPv4 address of its relay in bits 16-47.
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def _without_scope(address: IPAddress) -> IPAddress:
    # A zone id ("fe80::1%eth0") makes otherwise equal addresses compare unequal.
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(int(address))
    return address


def _address_reached(address: IPAddress) -> IPAddress:
    """The address a connection to `address` actually ends up at.

    IPv6 forms that carry an IPv4 address are judged by that IPv4 address alone, or
    ::ffff:127.0.0.1 would slip past a check that only looks at the IPv6 ranges, and a 6to4 address
    of a public IPv4 host would be refused for a range it only borrows.
    """
    address = _without_scope(address)
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if any(address in network for network in _EMBEDS_IPV4_LAST_32):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFF_FFFF)
    return address


def _matching_reason(address: IPAddress, table: list[tuple[_Network, str]]) -> str | None:
    for network, reason in table:
        if address.version == network.version and address in network:
            return reason
    return None


def refusal_reason(address: IPAddress, *, allow_private_networks: bool) -> str | None:
    """Why a URL source may not connect to `address` (a few words for a message), or None if it may."""
    reached = _address_reached(address)
    always = _matching_reason(reached, _ALWAYS_REFUSED)
    if always is not None:
        return always
    if reached in _CLOUD_METADATA:
        return "a cloud metadata address"
    if allow_private_networks:
        return None
    if isinstance(reached, ipaddress.IPv4Address):
        return _matching_reason(reached, _REFUSED_IPV4)
    if any(reached in network for network in _GLOBAL_IN_REFUSED):
        return None
    reason = _matching_reason(reached, _REFUSED_IPV6)
    if reason is None and reached not in _GLOBAL_UNICAST:
        return "a reserved address"
    return reason


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
