"""Where webhooks may go: only to public addresses, unless the deployment names a host or network.

A subscriber chooses the URL, and notify's workers sit inside the police network: without this
check a webhook to http://10.0.0.5:5432/ or http://169.254.169.254/ would let any integration
token probe (and, by the outcome, port-scan) internal systems. The check runs at subscription and
again at every send, after resolving the name then, because DNS may change in between; the sender
then connects to the very address it checked, so a second lookup cannot swap it (DNS rebinding).

WEBHOOK_ALLOWED_HOSTS (comma-separated) names the exceptions: host names (matched exactly, case
insensitive) and IP addresses or CIDR networks (matched against every resolved address)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 ranges that lead to an IPv4 address, which is what a packet would really reach.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Never a public destination: IPv4-compatible (deprecated), local-use NAT64, site-local.
_NEVER_PUBLIC_V6 = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("fec0::/10"),
)

RESOLVE_TIMEOUT_S = 5.0


class AddressRefused(Exception):
    """The URL may not be used; `reason` is a short code safe to show to callers."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address is where the tunnel ends
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Whether `ip` is an ordinary public unicast address: not loopback, private, link-local,
    multicast, reserved, unspecified or shared (100.64.0.0/10), judged by the IPv4 address inside
    for IPv4-mapped, 6to4, Teredo and NAT64 addresses."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return is_public(inner)
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in n for n in _NEVER_PUBLIC_V6):
        return False
    if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    return ip.is_global


@dataclass(frozen=True)
class Target:
    """A URL whose host was resolved and checked: connect to `address`, speak to `host`."""

    scheme: str
    host: str
    port: int
    address: IPAddress


class WebhookPolicy:
    def __init__(self, hosts: frozenset[str] = frozenset(), networks: tuple[Network, ...] = (), resolver=None) -> None:
        self.hosts = hosts
        self.networks = networks
        self._resolver = resolver  # for tests only: async (host, port) -> list of address strings

    @classmethod
    def from_setting(cls, value: str | None) -> WebhookPolicy:
        hosts, networks = set(), []
        for entry in (value or "").split(","):
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if not all(part and len(part) <= 63 for part in entry.rstrip(".").split(".")) or " " in entry:
                    raise ValueError(f"WEBHOOK_ALLOWED_HOSTS: {entry!r} is neither a host name nor a network") from None
                hosts.add(entry.rstrip(".").lower())
        return cls(frozenset(hosts), tuple(networks))

    def address_allowed(self, ip: IPAddress) -> bool:
        if is_public(ip):
            return True
        candidates = [ip, embedded_ipv4(ip)]
        return any(c is not None and c.version == n.version and c in n for c in candidates for n in self.networks)

    async def _lookup(self, host: str, port: int) -> list[str]:
        if self._resolver is not None:
            return await self._resolver(host, port)
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), RESOLVE_TIMEOUT_S
        )
        hosts = []
        for *_, sockaddr in infos:
            # Only AF_INET/AF_INET6 results here, whose address starts with the host as text.
            assert isinstance(sockaddr[0], str), "getaddrinfo gave a non-IP socket address"
            hosts.append(sockaddr[0])
        return hosts

    async def check(self, url: str) -> Target:
        """Resolve the URL's host now and return the address to connect to; AddressRefused if the
        URL is unusable or any of its addresses is not allowed."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise AddressRefused("invalid_url") from None
        host = (parts.hostname or "").rstrip(".").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise AddressRefused("invalid_url")
        try:
            literal = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = await self._lookup(host, port)
            except (TimeoutError, OSError, UnicodeError):
                raise AddressRefused("unresolvable_host") from None
            # Scoped IPv6 results (fe80::1%eth0) lose the scope: they are link-local either way.
            addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in found))
            if not addresses:
                raise AddressRefused("unresolvable_host")
        if host not in self.hosts and not all(self.address_allowed(a) for a in addresses):
            raise AddressRefused("address_not_allowed")
        return Target(scheme=parts.scheme, host=host, port=port, address=addresses[0])
