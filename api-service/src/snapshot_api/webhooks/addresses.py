"""Which IP addresses a webhook may be sent to: public unicast only (SSRF defence).

Refused: loopback (unless allowed for development and tests), private, link-local, shared
(CGNAT), multicast, unspecified, reserved, documentation and other non-global ranges, cloud
metadata endpoints, and any of these embedded in IPv6 (IPv4-mapped ``::ffff:a.b.c.d``,
IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address
METADATA = frozenset(
    {
        IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack instance metadata
        IPv4Address("169.254.170.2"),  # AWS ECS task metadata
        IPv4Address("100.100.100.200"),  # Alibaba Cloud metadata
        IPv6Address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)
SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for or tunnels to, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address (the server's is public by design)
    if ip in NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return IPv4Address(int(ip))
    return None


# In order: the first that matches names the refusal.
CHECKS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("a cloud metadata address", lambda ip: ip in METADATA),
    ("the unspecified address", lambda ip: ip.is_unspecified),
    ("a link-local address", lambda ip: ip.is_link_local),
    ("a multicast address", lambda ip: ip.is_multicast),
    ("a shared (carrier-grade NAT) address", lambda ip: ip.version == 4 and ip in SHARED),
    ("a reserved address", lambda ip: ip.is_reserved),
    # Python's table: RFC 1918, ULA and the other special-purpose ranges.
    ("a private address", lambda ip: ip.is_private),
    ("a non-public address", lambda ip: not ip.is_global),
)


def refusal(ip: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why a webhook must not go to ``ip``, or None when it may."""
    if isinstance(ip, IPv6Address):
        if ip.scope_id:
            return "an IPv6 address with a zone"
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = refusal(inner, allow_loopback)
            return f"{why} (embedded in {ip})" if why else None
    if ip.is_loopback and ip not in METADATA:
        return None if allow_loopback else "a loopback address"
    return next((why for why, matches in CHECKS if matches(ip)), None)
