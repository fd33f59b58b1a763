"""The guard every portal URL passes before the app sends a request to it.

A portal address can come from a browser (``DOMAIN``), an event or a redirect; an attacker who
controls it must not make the app reach loopback, private networks or cloud metadata.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from b24app.bitrix.errors import TransportError, UnsafeEndpoint

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# RFC 6598 shared address space (carrier-grade NAT): not global, yet not "private" to Python.
_SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")


def resolve_host(host: str, port: int) -> list[str]:
    """Return every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _unmapped(address: IPAddress) -> IPAddress:
    """Return the IPv4 address hidden in an IPv4-mapped or 6to4 IPv6 address, else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def forbidden_reason(address: IPAddress) -> str | None:
    """Say why a non-loopback address may not be contacted, or None when it may."""
    address = _unmapped(address)
    checks = (
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("shared", isinstance(address, ipaddress.IPv4Address) and address in _SHARED_SPACE),
        ("not global", not address.is_global),
    )
    for reason, matched in checks:
        if matched:
            return reason
    return None


def _is_loopback(address: IPAddress) -> bool:
    """Tell whether ``address`` (possibly IPv4-mapped) is a loopback address."""
    return _unmapped(address).is_loopback


class EndpointGuard:
    """Refuse URLs that are not https or that point at non-public addresses.

    ``allow_http_loopback`` (development and tests only) lets a portal on the local machine be
    reached, over http too; it never opens private, link-local or metadata addresses.
    Resolutions are cached briefly so a busy portal does not cost a DNS lookup per call.
    """

    def __init__(
        self,
        allow_http_loopback: bool = False,
        *,
        resolver: Resolver = resolve_host,
        cache_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allow_http_loopback = allow_http_loopback
        self._resolver = resolver
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def check(self, url: str) -> str:
        """Return ``url`` unchanged when the app may send requests there; else raise."""
        if any(ch in url for ch in "\\\r\n\t ") or not url.isprintable():
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "the URL contains forbidden characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "the URL cannot be parsed") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "only https URLs are allowed")
        if scheme == "http" and not self.allow_http_loopback:
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "only https URLs are allowed")
        if "@" in parts.netloc or parts.username is not None or parts.password is not None:
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "URLs with user information are refused")
        host = parts.hostname
        if not host:
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "the URL has no host")
        if port is None:
            port = 443 if scheme == "https" else 80
        addresses = self._addresses(host, port)
        loopback = [a for a in addresses if _is_loopback(a)]
        if loopback and (len(loopback) != len(addresses) or not self.allow_http_loopback):
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "the host resolves to a loopback address")
        if not loopback:
            for address in addresses:
                reason = forbidden_reason(address)
                if reason is not None:
                    raise UnsafeEndpoint(
                        "UNSAFE_ENDPOINT", f"the host resolves to a {reason} address"
                    )
        if scheme == "http" and not (loopback and self.allow_http_loopback):
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "only https URLs are allowed")
        return url

    def address_allowed(self, address: str) -> bool:
        """Tell whether a connection to the IP ``address`` may be kept (checked per socket)."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if _is_loopback(ip):
            return self.allow_http_loopback
        return forbidden_reason(ip) is None

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        """Return the addresses of ``host``: a literal IP as is, a name through the resolver."""
        try:
            return [ipaddress.ip_address(host.split("%", 1)[0])]
        except ValueError:
            pass
        key = (host.lower(), port)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            raw: Sequence[str] = cached[1]
        else:
            try:
                raw = tuple(self._resolver(host, port))
            except (OSError, UnicodeError) as exc:
                raise TransportError(
                    "DNS_ERROR", "the portal host cannot be resolved", maybe_sent=False
                ) from exc
            with self._lock:
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[key] = (now + self._cache_seconds, tuple(raw))
        if not raw:
            raise TransportError("DNS_ERROR", "the portal host has no address", maybe_sent=False)
        try:
            return [ipaddress.ip_address(a.split("%", 1)[0]) for a in raw]
        except ValueError as exc:
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "the host resolves to a bad address") from exc
