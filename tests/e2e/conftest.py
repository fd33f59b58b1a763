"""Browser tests of the screens: the app served beside the sandbox portal, seen in Chromium.

One app (its own SQLite file) and one installed portal serve a whole module; tests that
need a known starting point arrange the bindings they use through the portal's REST API
(``Portal.bind`` / ``Portal.unbind``) instead of resetting everything. Every wait is for a
state on the page, never a fixed time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from b24app.bitrix.http import tls_context
from b24sandbox.server import RunningSandbox
from tests.browser import fresh_page
from tests.e2e.harness import Portal, ServedApp, served_app

WAIT_MS = 10_000


@pytest.fixture(scope="module")
def served(
    sandbox_server: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The app for this module, trusting the sandbox as its Bitrix24."""
    with served_app(sandbox_server, tmp_path_factory.mktemp("e2e") / "app.sqlite3") as app:
        yield app


@pytest.fixture(scope="module")
def portal(sandbox_server: RunningSandbox, served: ServedApp) -> Iterator[Portal]:
    """The sandbox's first portal from its seed, with the app installed."""
    with httpx.Client(verify=tls_context(), timeout=10) as http:
        handle = Portal(sandbox_server.url, http)
        handle.reset(served.url)
        handle.install()
        yield handle


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (nothing shared between tests) with waits that allow a slow request."""
    with fresh_page(
        browser, wait_ms=WAIT_MS, expect_ms=WAIT_MS, viewport={"width": 1280, "height": 900}
    ) as opened:
        yield opened
