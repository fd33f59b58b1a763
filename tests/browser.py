"""Debian's Chromium, headless, for the browser tests (driven by Playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Playwright's own timeout for assertions.
EXPECT_DEFAULT_MS = 5_000

needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: browser tests need it"
)


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Launch Chromium headless and close it afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_page(
    browser: Any, *, wait_ms: int, expect_ms: int | None = None, **context: Any
) -> Iterator[Any]:
    """A page in a context of its own (nothing shared between tests), closed afterwards.

    ``wait_ms`` is the page's default timeout; with ``expect_ms`` Playwright's assertions
    wait that long too (and go back to ``expect_ms``'s default, 5 s, afterwards).
    """
    from playwright.sync_api import expect

    opened_context = browser.new_context(**context)
    opened = opened_context.new_page()
    opened.set_default_timeout(wait_ms)
    if expect_ms is not None:
        expect.set_options(timeout=expect_ms)
    try:
        yield opened
    finally:
        if expect_ms is not None:
            expect.set_options(timeout=EXPECT_DEFAULT_MS)
        opened_context.close()
