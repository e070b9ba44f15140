"""The SSRF guard's address ranges, stated per the IANA special-purpose registries.

The guard must answer the same on every Python patch release, so these cases pin each registry
block (one address at its start and one at its end where that matters) rather than comparing with
`ipaddress.is_private` / `is_global`, whose answers moved between 3.11 patch releases.
"""

from __future__ import annotations

import ipaddress

import pytest

from konifer_edge.sources.ssrf import refusal_reason

# (address, reason) for every block of the IPv4 registry that is not globally reachable.
REFUSED_IPV4 = [
    ("0.0.0.0", "an unspecified address"),
    ("0.1.2.3", "a reserved address"),
    ("0.255.255.255", "a reserved address"),
    ("10.0.0.0", "a private network address"),
    ("10.255.255.255", "a private network address"),
    ("100.64.0.0", "a shared address space address"),
    ("100.127.255.255", "a shared address space address"),
    ("127.0.0.1", "a loopback address"),
    ("127.255.255.254", "a loopback address"),
    ("169.254.0.1", "a link-local address"),
    ("172.16.0.0", "a private network address"),
    ("172.31.255.255", "a private network address"),
    ("192.0.0.8", "a reserved address"),
    ("192.0.2.1", "a reserved address"),
    ("192.88.99.1", "a reserved address"),
    ("192.168.0.1", "a private network address"),
    ("198.18.0.1", "a reserved address"),
    ("198.19.255.255", "a reserved address"),
    ("198.51.100.1", "a reserved address"),
    ("203.0.113.1", "a reserved address"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.255", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
]

REFUSED_IPV6 = [
    ("::", "an unspecified address"),
    ("::1", "a loopback address"),
    ("::127.0.0.1", "a reserved address"),  # IPv4-compatible, deprecated
    ("100::1", "a reserved address"),  # discard-only
    ("100:0:0:1::1", "a reserved address"),  # dummy prefix
    ("2001::1", "a reserved address"),  # Teredo
    ("2001:2::1", "a reserved address"),  # benchmarking
    ("2001:1ff:ffff::1", "a reserved address"),  # end of 2001::/23
    ("2001:db8::1", "a reserved address"),
    ("3fff::1", "a reserved address"),
    ("5f00::1", "a reserved address"),
    ("fc00::1", "a private network address"),
    ("fdff:ffff::1", "a private network address"),
    ("fe80::1", "a link-local address"),
    ("febf::1", "a link-local address"),
    ("fec0::1", "a site-local address"),
    ("ff02::1", "a multicast address"),
    ("4000::1", "a reserved address"),  # outside 2000::/3, not allocated
]

# IPv6 forms judged by the IPv4 address they carry.
EMBEDDED = [
    ("::ffff:127.0.0.1", "a loopback address"),
    ("::ffff:10.1.2.3", "a private network address"),
    ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 well-known prefix
    ("64:ff9b::c0a8:101", "a private network address"),
    ("64:ff9b:1::a00:1", "a private network address"),  # NAT64 local-use prefix
    ("2002:7f00:1::1", "a loopback address"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "a cloud metadata address"),  # 6to4 of 169.254.169.254
    ("2002:c000:201::1", "a reserved address"),  # 6to4 of 192.0.2.1
    ("2002::1", "an unspecified address"),  # 6to4 of 0.0.0.0
]

PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.216.34",
    "100.63.255.255",  # just below shared address space
    "100.128.0.0",  # just above it
    "172.32.0.1",
    "192.0.1.1",
    "192.31.196.1",  # AS112-v4, globally reachable
    "192.52.193.1",  # AMT, globally reachable
    "192.175.48.1",  # AS112 direct delegation, globally reachable
    "223.255.255.255",
    "2606:4700::1111",
    "2a00:1450:4001::1",
    "2001:200::1",  # just above 2001::/23
    "2001:1::1",  # PCP anycast, globally reachable inside 2001::/23
    "2001:3::1",  # AMT
    "2001:4:112::1",  # AS112-v6
    "2001:20::1",  # ORCHIDv2
    "2620:4f:8000::1",  # AS112 direct delegation
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "64:ff9b:1::808:808",
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
]


@pytest.mark.parametrize(("address", "reason"), REFUSED_IPV4 + REFUSED_IPV6 + EMBEDDED)
def test_special_purpose_ranges_are_refused(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_private_networks=False) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_reachable_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_private_networks=False) is None


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.1", "::1", "fd12::1", "::ffff:192.168.1.1", "2002:c0a8:101::1", "64:ff9b::a00:1"]
)
def test_private_networks_allowed_lets_internal_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_private_networks=True) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("::ffff:0.0.0.0", "an unspecified address"),
        ("239.1.1.1", "a multicast address"),
        ("ff05::2", "a multicast address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("2002:a9fe:a9fe::1", "a cloud metadata address"),
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),
    ],
)
def test_some_addresses_are_refused_whatever_the_policy(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_private_networks=True) == reason


def test_zone_ids_do_not_change_the_answer() -> None:
    assert refusal_reason(ipaddress.ip_address("fe80::1%eth0"), allow_private_networks=False) == "a link-local address"
