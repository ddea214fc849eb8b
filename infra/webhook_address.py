"""Where a webhook may be sent (SPEC §12): the guard against server-side request forgery.

Checked when an endpoint is created and again on every try, because a name may resolve elsewhere
tomorrow. The try then connects only to the address this check returned (the URL's host stays in
the Host header and TLS SNI), so a DNS answer that changes between the check and the connect
(rebinding) cannot steer the request.

Outside dev: `https` only, and every address the host resolves to must be public. Loopback,
private, shared (100.64/10), reserved and multicast addresses are refused unless listed in
`WEBHOOK_ALLOW_PRIVATE_CIDRS` (on-premises receivers). Link-local, cloud metadata and
unspecified addresses are refused everywhere, whatever the settings. Dev also allows `http` and
loopback. Numeric hosts are read the way the C library reads them (`0x7f000001`, `2130706433` and
`0177.0.0.1` are all 127.0.0.1).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import urlsplit

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network
# (host, port) → the addresses it resolves to, as text. Injectable so tests can make a name
# resolve to a metadata address without touching /etc/hosts.
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048

# Reachable by no legitimate receiver, and what SSRF is after: never allowed, not even opted in.
_ALWAYS_REFUSED: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this host": connects to loopback on Linux
        "169.254.0.0/16",  # link-local, with 169.254.169.254 (AWS, GCP, Azure metadata)
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "192.0.0.192/32",  # Oracle Cloud metadata
        "224.0.0.0/4",  # multicast
        "255.255.255.255/32",
        "::/128",
        "fe80::/10",  # link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "ff00::/8",  # multicast
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookUrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why, for the API's `param: url` error."""


@dataclass(frozen=True)
class AddressRules:
    dev: bool
    allowed_networks: tuple[IpNetwork, ...] = ()


@dataclass(frozen=True)
class CheckedTarget:
    """A URL that passed, with the one address to connect to."""

    url: str
    scheme: str
    host: str  # as written (for Host and SNI)
    port: int
    path: str  # path and query
    address: IpAddress

    @property
    def connect_url(self) -> str:
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_allowed_networks(text: str) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


def numeric_host(host: str) -> IpAddress | None:
    """The address a numeric host names, in any form the C library accepts; None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64, the deprecated compatible form)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (1 < int(address) < 2**32):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IpAddress, rules: AddressRules) -> str | None:
    """Why this address may not receive webhooks, or None when it may."""
    if isinstance(address, IPv6Address):
        if address.teredo is not None:
            return "a Teredo tunnel address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            address = embedded
    if any(address in net for net in _ALWAYS_REFUSED if net.version == address.version):
        return "a link-local, metadata, multicast or unspecified address"
    if address.is_loopback and rules.dev:
        return None
    if any(address in net for net in rules.allowed_networks if net.version == address.version):
        return None
    if address.is_loopback:
        return "a loopback address"
    if isinstance(address, IPv4Address) and address in _SHARED:
        return "a shared (100.64/10) address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "a private or reserved address"
    return None


async def check_webhook_url(
    url: str, rules: AddressRules, resolver: Resolver = system_resolver
) -> CheckedTarget:
    """The address to connect to, or `WebhookUrlRefused` saying why not."""
    if len(url) > MAX_URL_LENGTH or any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in url):
        raise WebhookUrlRefused("the URL must be at most 2048 printable ASCII characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookUrlRefused("the URL must start with https://")
    if scheme == "http" and not rules.dev:
        raise WebhookUrlRefused("the URL must start with https:// (http is for dev only)")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("the URL must not carry a user name or password")
    host = parts.hostname
    if not host:
        raise WebhookUrlRefused("the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise WebhookUrlRefused("the URL's port is not a number from 1 to 65535") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    literal = numeric_host(host)
    if literal is not None:
        addresses: list[IpAddress] = [literal]
    else:
        try:
            answers = await resolver(host, port)
        except (OSError, UnicodeError):
            raise WebhookUrlRefused(f"the host {host} does not resolve") from None
        addresses = []
        for text in answers:
            try:
                addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError:
                raise WebhookUrlRefused(
                    f"the host {host} resolves to something that is not an address"
                ) from None
        if not addresses:
            raise WebhookUrlRefused(f"the host {host} does not resolve")
    # Every answer must pass: a name with one public and one internal address is refused, or the
    # connection could be steered to the internal one.
    for address in addresses:
        reason = address_refusal(address, rules)
        if reason is not None:
            raise WebhookUrlRefused(f"the host {host} resolves to {reason}")
    return CheckedTarget(url=url, scheme=scheme, host=host, port=port, path=path, address=addresses[0])
