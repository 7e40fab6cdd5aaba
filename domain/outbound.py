"""Which network addresses pipelines may reach: the rule behind outbound request safety.

A pipeline's URLs come from task authors and from data (templates over tool outputs and
events), so without a rule any agent could make the worker fetch cloud metadata
(169.254.169.254) or poke services on the private network (server-side request forgery).
Only globally routable unicast addresses are reachable, plus what the admin allow-lists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from domain.errors import RuleViolation

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The local machine is allowed by default: `ordinaut up` is local-first and its tools (MCP
# servers over HTTP, scripts) usually listen on loopback. An empty allow-list refuses it too.
DEFAULT_ALLOW = "127.0.0.0/8,::1/128"


class OutboundRuleError(RuleViolation):
    """An allow-list setting is malformed."""


def parse_allow_list(text: str) -> tuple[Network, ...]:
    """Comma-separated networks (``10.1.2.0/24``) or addresses; blanks ignored."""
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise OutboundRuleError("allow", f"{item!r} is not a network or address") from exc
    return tuple(networks)


def refusal(address: str, allowed: Iterable[Network]) -> str | None:
    """Why ``address`` may not be reached (None: it may)."""
    ip: Address = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if ip.is_unspecified:
        return "not a public unicast address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_private or ip in _SHARED:
        return "a private network address"
    if ip.is_multicast or ip.is_reserved or not ip.is_global:
        return "not a public unicast address"
    return None


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not global either
