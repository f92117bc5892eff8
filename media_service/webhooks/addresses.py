"""Where a webhook may be sent: http(s) URLs whose host resolves to public addresses only (SSRF).

The addresses that passed the check are what the delivery connects to (``Target.addresses``): the host is
resolved once per attempt, so a name that answers a public address to the check and a private one to the
connection (DNS rebinding) cannot reach the private one. Addresses that embed an IPv4 address (IPv4-mapped,
IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo) are judged by what they lead to, or refused.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from media_service.errors import BadRequest

# Prefixes that translate to (possibly private) IPv4 destinations, or are not routable on the internet.
_REFUSED_V6 = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b::/96",    # NAT64 well-known prefix: 64:ff9b::7f00:1 reaches 127.0.0.1 through a translator
    "64:ff9b:1::/48",  # local-use NAT64
    "::/96",           # IPv4-compatible (deprecated): ::127.0.0.1
    "2001::/32",       # Teredo
    "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))


def is_public_address(text: str) -> bool:
    """True when a connection to this address leaves for the public internet (and nowhere else)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(str(address.ipv4_mapped))
        if address.sixtofour is not None:
            return is_public_address(str(address.sixtofour))
        if any(address in network for network in _REFUSED_V6):
            return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect (``addresses``) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def receiver(self) -> str:
        """One receiver's key for concurrency limits: scheme, host and port."""
        return f"{self.scheme}://{self.host}:{self.port}"


def _invalid(detail: str) -> BadRequest:
    return BadRequest(detail, code="invalid_webhook_url")


def parse_webhook_url(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and request path of an absolute http(s) URL, or a 400."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _invalid(f"the webhook URL is not valid: {exc}") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise _invalid("the webhook URL must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise _invalid("the webhook URL must not carry a user name or password")
    if port == 0:
        raise _invalid("the webhook URL's port must be 1 to 65535")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in path for c in "\r\n\x00 ") or any(c in parts.hostname for c in "\r\n\x00 /"):
        raise _invalid("the webhook URL contains spaces or control characters")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Check ``url`` and resolve its host once; every address must be public unless ``allow_private``."""
    scheme, host, port, path = parse_webhook_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise _invalid(f"the webhook host {host!r} does not resolve: {exc}") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise _invalid(f"the webhook host {host!r} does not resolve")
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise _invalid(f"the webhook host resolves to a non-public address ({address}); use a public URL")
    return Target(scheme, host, port, path, addresses)


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are not http(s) or that point into private networks (SSRF); 400 invalid_webhook_url.

    Where private networks are allowed (development), a host need not resolve yet when it is registered:
    every delivery resolves it again and connects only to the address it checked."""
    if allow_private:
        parse_webhook_url(url)
        return
    resolve_target(url, allow_private=allow_private)
