"""The one pooled HTTP client the app shares for all Bitrix24 traffic.

Besides pooling, it checks the address of every socket it opens against the endpoint guard:
the guard's check before a call resolves the name once, and a name that resolves differently
a moment later (DNS rebinding) must still not reach loopback or private networks.
"""

from __future__ import annotations

import functools
import ssl
import typing
from typing import Any

import httpcore
import httpx

from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.errors import TransportError, UnsafeEndpoint

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


@functools.cache
def tls_context(verify: bool = True) -> ssl.SSLContext:
    """The process's TLS context (certifi's CAs, nothing from the environment).

    Building one reads and parses the whole CA bundle (tens of milliseconds); the context is
    safe to share between clients and threads, so the process builds it once.
    """
    return httpx.create_ssl_context(verify=verify, trust_env=False)


class _PeerCheckingBackend(httpcore.NetworkBackend):
    """Open TCP connections like httpcore does, then refuse peers the guard forbids."""

    def __init__(self, guard: EndpointGuard) -> None:
        self._inner = httpcore.SyncBackend()
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect, then close at once when the peer address is not allowed."""
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        peer = stream.get_extra_info("server_addr")
        if not peer or not self._guard.address_allowed(str(peer[0])):
            stream.close()
            raise UnsafeEndpoint("UNSAFE_ENDPOINT", "the host connected to a forbidden address")
        return stream

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Refuse Unix sockets: Bitrix24 is only ever reached over TCP."""
        raise UnsafeEndpoint("UNSAFE_ENDPOINT", "unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        """Sleep as the default backend does."""
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """An ``httpx.HTTPTransport`` whose connection pool checks every peer address."""

    def __init__(
        self, guard: EndpointGuard, *, limits: httpx.Limits = DEFAULT_LIMITS, verify: bool = True
    ) -> None:
        ssl_context = tls_context(verify)
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        # httpx builds its pool without a way to pass a network backend; rebuild it with one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PeerCheckingBackend(guard),
        )


def make_http_client(
    guard: EndpointGuard,
    *,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.Client:
    """Return the shared client: pooled, timeouts on, no redirects, no proxy from the env."""
    return httpx.Client(
        transport=GuardedTransport(guard, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "b24-order-binding"},
    )


def post_mapped(
    http: httpx.Client, url: str, counterpart: str, timeout: httpx.Timeout | float, **kwargs: Any
) -> httpx.Response:
    """POST without following redirects; turn transport failures into ``TransportError``.

    ``counterpart`` names the other side in the error text ("the portal", "the OAuth
    server"). Only a failure to connect proves the request never left (``maybe_sent``).
    """
    try:
        return http.post(url, timeout=timeout, follow_redirects=False, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransportError(
            "CONNECT_ERROR",
            f"{counterpart} could not be reached",
            timeout=isinstance(exc, httpx.TimeoutException),
            maybe_sent=False,
        ) from None
    except httpx.TimeoutException:
        raise TransportError(
            "TIMEOUT", f"{counterpart} did not answer in time", timeout=True, maybe_sent=True
        ) from None
    except httpx.HTTPError:
        raise TransportError(
            "TRANSPORT_ERROR", f"the connection to {counterpart} failed", maybe_sent=True
        ) from None
