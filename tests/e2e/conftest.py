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

from b24sandbox.server import RunningSandbox
from tests.browser import launched_chromium
from tests.e2e.harness import Portal, ServedApp, served_app

WAIT_MS = 10_000
EXPECT_DEFAULT_MS = 5_000  # Playwright's own


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
    with httpx.Client(timeout=10) as http:
        handle = Portal(sandbox_server.url, http)
        handle.reset(served.url)
        handle.install()
        yield handle


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, once for the module."""
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (nothing shared between tests) with waits that allow a slow request."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    yield opened
    expect.set_options(timeout=EXPECT_DEFAULT_MS)
    context.close()
