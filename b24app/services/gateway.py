"""The app's single set of Bitrix24 clients: one guarded HTTP pool, REST, OAuth, limiter."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import httpx
from flask import Flask, current_app

from b24app.bitrix.client import BitrixClient
from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.errors import UnsafeEndpoint
from b24app.bitrix.http import make_http_client
from b24app.bitrix.oauth import OAuthClient
from b24app.bitrix.ratelimit import RateLimiter

# A portal address as Bitrix24 names it: host name (or IPv4) and an optional port.
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::\d{1,5})?$")
_LOOPBACK_NAMES = {"localhost"}


@dataclass
class Gateway:
    """Everything that talks to Bitrix24, shared by all requests of the process."""

    http: httpx.Client
    guard: EndpointGuard
    rest: BitrixClient
    oauth: OAuthClient
    allow_http_portals: bool

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def portal_endpoint(self, domain: str) -> str:
        """Return the REST base URL of a portal from a *verified* domain, guard-checked.

        https always, except a loopback portal while ALLOW_HTTP_PORTALS is on (development).
        """
        domain = domain.strip().lower()
        if not _DOMAIN.match(domain):
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "the portal domain is not a host name")
        scheme = "https"
        if self.allow_http_portals and _is_loopback_host(domain.rsplit(":", 1)[0]):
            scheme = "http"
        return self.guard.check(f"{scheme}://{domain}/rest/")


def _is_loopback_host(host: str) -> bool:
    """Tell whether ``host`` names this machine."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def init_gateway(app: Flask) -> None:
    """Build the app's Bitrix24 clients from its configuration."""
    allow_http = bool(app.config["ALLOW_HTTP_PORTALS"])
    guard = EndpointGuard(allow_http_loopback=allow_http)
    timeout = httpx.Timeout(float(app.config["B24_HTTP_TIMEOUT"]), connect=5.0)
    http = make_http_client(guard, timeout=timeout)
    app.extensions["b24_gateway"] = Gateway(
        http=http,
        guard=guard,
        rest=BitrixClient(http, limiter=RateLimiter(), endpoint_guard=guard, timeout=timeout),
        oauth=OAuthClient(
            app.config["B24_OAUTH_SERVER"],
            app.config["B24_CLIENT_ID"],
            app.config["B24_CLIENT_SECRET"],
            http,
            timeout=timeout,
        ),
        allow_http_portals=allow_http,
    )


def gateway() -> Gateway:
    """Return the current app's gateway."""
    found: Gateway = current_app.extensions["b24_gateway"]
    return found


def close_gateway(app: Flask) -> None:
    """Release the app's connection pool (tests building many apps call this)."""
    found = app.extensions.get("b24_gateway")
    if found is not None:
        found.close()
