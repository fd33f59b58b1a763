"""Shared fixtures: a real sandbox portal served over HTTP on free ports.

``sandbox_server`` (session) starts two portals once per test session. ``sandbox``
(function) resets them before each test and hands out a small client. Test packages
that need the sandbox to talk to their own app override ``sandbox_app_url`` in their
``conftest.py``; the ``sandbox`` fixture passes it to ``POST /_sandbox/reset``, so one
server serves every package.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from b24app.bitrix.http import tls_context
from b24sandbox.config import SandboxConfig
from b24sandbox.server import RunningSandbox, start_sandbox
from tests.browser import launched_chromium
from tests.log_audit import no_secret_in_any_log  # noqa: F401  (session-wide log audit)

# Nothing listens here (port 9 is "discard"): deliveries to the app fail fast unless a
# test package points the sandbox at its own app.
UNUSED_APP_URL = "http://127.0.0.1:9"

TEST_CLIENT_ID = "local.sandboxtest000.00000001"
TEST_CLIENT_SECRET = "sandbox-test-secret"


def sandbox_test_config(app_url: str = UNUSED_APP_URL) -> SandboxConfig:
    """The configuration every test session's sandbox uses: small, two portals, free ports."""
    return SandboxConfig(
        host="127.0.0.1",
        port=0,
        app_url=app_url,
        client_id=TEST_CLIENT_ID,
        client_secret=TEST_CLIENT_SECRET,
        seed=7,
        orders=120,
        deals=60,
        invoices=30,
        owner_types=(2, 31),
        portals=2,
    )


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[RunningSandbox]:
    """Start the sandbox once per session (two portals on free ports)."""
    running = start_sandbox(
        sandbox_test_config(os.environ.get("SANDBOX_TEST_APP_URL", UNUSED_APP_URL))
    )
    yield running
    running.stop()


@pytest.fixture
def sandbox_app_url() -> str:
    """The app URL the sandbox posts installs and events to; override it per package."""
    return os.environ.get("SANDBOX_TEST_APP_URL", UNUSED_APP_URL)


class SandboxHandle:
    """A test's view of the running sandbox: URLs, tokens, REST and control calls."""

    def __init__(self, running: RunningSandbox, http: httpx.Client) -> None:
        self.running = running
        self.http = http
        self.url = running.url
        self.oauth_url = running.oauth_url
        self.portal_urls = running.portal_urls
        self.client_id = running.sandbox.config.client_id
        self.client_secret = running.sandbox.config.client_secret
        self._tokens: dict[tuple[int, int], str] = {}

    def portal_url(self, index: int) -> str:
        """Return the base URL of portal ``index`` (0-based, like ``portal_urls``)."""
        return self.portal_urls[index]

    def portal_id(self, url: str) -> int:
        """Return the portal id (1-based, as ``/_sandbox/state`` lists it) of a base URL."""
        return self.portal_urls.index(url) + 1

    def control(
        self, path: str, json: dict[str, Any] | None = None, method: str = "POST", portal: int = 1
    ) -> dict[str, Any]:
        """Call ``/_sandbox/<path>`` on portal ``portal`` (an id) and return its JSON."""
        response = self.http.request(
            method, f"{self.portal_urls[portal - 1]}/_sandbox/{path.lstrip('/')}", json=json
        )
        response.raise_for_status()
        return response.json()

    def token(self, user_id: int, expires_in: int | None = None, portal: int = 1) -> dict:
        """Issue a fresh token set for a user, as ``/oauth/token/`` returns it."""
        body: dict[str, Any] = {"user_id": user_id, "portal": portal}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return self.control("token", body)

    def rest(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        token: str | dict | None = None,
        user_id: int = 1,
        portal: int = 1,
    ) -> httpx.Response:
        """POST a REST call with JSON params and ``auth`` in the body.

        Without ``token`` a cached token of ``user_id`` on ``portal`` is used.
        """
        if isinstance(token, dict):
            token = token["access_token"]
        if token is None:
            key = (portal, user_id)
            if key not in self._tokens:
                self._tokens[key] = self.token(user_id, portal=portal)["access_token"]
            token = self._tokens[key]
        body = dict(params or {})
        body["auth"] = token
        return self.http.post(f"{self.portal_urls[portal - 1]}/rest/{method}", json=body)

    def calls(self, portal: int | None = None) -> dict[str, Any]:
        """Return the call log (all portals, or one by id)."""
        path = "calls" if portal is None else f"calls?portal={portal}"
        return self.control(path, method="GET")

    def state(self) -> dict[str, Any]:
        """Return ``GET /_sandbox/state``."""
        return self.control("state", method="GET")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the sandbox clock ``seconds`` forward; return its time and total offset."""
        return self.control("clock", {"advance": seconds})

    def clock(self) -> dict[str, Any]:
        """Return ``GET /_sandbox/clock``: the sandbox time and its offset."""
        return self.control("clock", method="GET")


@pytest.fixture
def sandbox(sandbox_server: RunningSandbox, sandbox_app_url: str) -> Iterator[SandboxHandle]:
    """Reset the sandbox (pointed at ``sandbox_app_url``) and hand out a client for it."""
    with httpx.Client(verify=tls_context(), timeout=10) as http:
        handle = SandboxHandle(sandbox_server, http)
        handle.control("reset", {"app_url": sandbox_app_url})
        yield handle


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, launched once for a module of browser tests."""
    with launched_chromium() as launched:
        yield launched
