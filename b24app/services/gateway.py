"""The app's single set of Bitrix24 clients: one guarded HTTP pool, REST, OAuth, limiter."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from b24app.bitrix.client import BitrixClient
from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.errors import UnsafeEndpoint
from b24app.bitrix.http import make_http_client
from b24app.bitrix.oauth import OAuthClient
from b24app.bitrix.ratelimit import RateLimiter, SharedRateLimiter
from b24app.bitrix.retry import RetryPolicy

# A portal address as Bitrix24 names it: host name (or IPv4) and an optional port.
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::\d{1,5})?$")
_LOOPBACK_NAMES = {"localhost"}


@dataclass
class Gateway:
    """Everything that talks to Bitrix24, shared by all requests of the process."""

    http: httpx.Client
    guard: EndpointGuard
    rest: BitrixClient
    # The same portal buckets, for background jobs: a longer budget, and background
    # requests, which leave the web requests of a portal a share of its bucket while its
    # users are active (``RateLimiter.background_share``).
    jobs_rest: BitrixClient
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
    limiter = _limiter(app)
    app.extensions["b24_gateway"] = Gateway(
        http=http,
        guard=guard,
        rest=BitrixClient(
            http,
            limiter=limiter,
            retry=interactive_policy(app.config),
            endpoint_guard=guard,
            timeout=timeout,
        ),
        jobs_rest=BitrixClient(
            http,
            limiter=limiter,
            retry=background_policy(app.config),
            endpoint_guard=guard,
            timeout=timeout,
            background=True,
        ),
        oauth=OAuthClient(
            app.config["B24_OAUTH_SERVER"],
            app.config["B24_CLIENT_ID"],
            app.config["B24_CLIENT_SECRET"],
            http,
            timeout=timeout,
            verify_retry=interactive_policy(app.config),
        ),
        allow_http_portals=allow_http,
    )


def _policy(
    config: Mapping[str, Any], budget_key: str, attempts: int, max_delay: float
) -> RetryPolicy:
    """Build a retry policy whose every wait fits in the budget ``config[budget_key]``."""
    budget = float(config[budget_key])
    base = float(config["B24_RETRY_BASE_DELAY"])
    return RetryPolicy(
        max_attempts=attempts,
        base_delay=base,
        max_delay=max(base, max_delay),
        max_total=budget,
        max_time_limit_wait=budget,
    )


def interactive_policy(config: Mapping[str, Any]) -> RetryPolicy:
    """Retries for requests from the iframe: everything within B24_REQUEST_BUDGET seconds."""
    return _policy(
        config, "B24_REQUEST_BUDGET", 4, min(4.0, float(config["B24_REQUEST_BUDGET"]) / 2)
    )


def background_policy(config: Mapping[str, Any]) -> RetryPolicy:
    """Retries for background jobs: patient, but within one job lease."""
    return _policy(config, "JOB_BATCH_BUDGET", 8, 8.0)


def _limiter(app: Flask) -> RateLimiter:
    """Share the per-portal bucket: through Redis when REDIS_URL is set, else the database.

    ``RATE_LIMIT_STORE=local`` keeps one bucket per process (a single-process setup).
    """
    config = app.config
    url = config.get("REDIS_URL")
    store = config["RATE_LIMIT_STORE"]
    if store == "local":
        return RateLimiter()
    if not url or store == "database":
        from b24app.extensions import db
        from b24app.services.buckets import DatabaseRateLimiter

        with app.app_context():
            return DatabaseRateLimiter(db.engine)
    # Short timeouts: a slow Redis must not hold up calls; the limiter falls back instead.
    client = redis.Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    return SharedRateLimiter(client)


def gateway() -> Gateway:
    """Return the current app's gateway."""
    found: Gateway = current_app.extensions["b24_gateway"]
    return found


def close_gateway(app: Flask) -> None:
    """Release the app's connection pool (tests building many apps call this)."""
    found = app.extensions.get("b24_gateway")
    if found is not None:
        found.close()
