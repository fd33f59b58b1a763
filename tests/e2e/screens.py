"""Take the README's screenshots: ``python -m tests.e2e.screens [folder]`` (default docs/screens).

Starts the sandbox portal and the app side by side (as the browser tests do), sets up the
bindings each picture needs through the portal's REST API, and saves PNGs of the app's
main screens: the app page, the replace warning, the deal tab, the store manager's
read-only view, the Russian page, and bulk binding in the deal tab (the preview before
confirming, a finished job with its per-order results) run by a job worker in this process.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from b24app.bitrix.http import tls_context
from b24sandbox.server import start_sandbox
from tests.browser import launched_chromium
from tests.conftest import sandbox_test_config
from tests.e2e.harness import Portal, job_worker, served_app
from tests.e2e.pages import open_app, open_tab, pick_with_keyboard

ROOT = Path(__file__).resolve().parents[2]
DEAL, INVOICE = 2, 31


def save(page: Any, folder: Path, name: str) -> None:
    """Save the portal page with the app's frame, as a person sees it.

    Chromium paints a cross-site frame only inside the viewport, so the viewport grows to
    the whole page for the picture (and shrinks back afterwards).
    """
    page.wait_for_timeout(300)  # the frame's last resize
    size = dict(page.viewport_size)
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    page.evaluate("window.scrollTo(0, 0)")
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def take(portal: Portal, browser: Any, folder: Path) -> None:
    """Arrange the data and take every screenshot."""
    from playwright.sync_api import expect

    for order_id in {1, 2, 3, 10, *portal.orders_of(DEAL, 1)}:
        portal.unbind(order_id)
    portal.bind(1, DEAL, 1)
    portal.bind(2, DEAL, 1)
    number = str(portal.order(10)["accountNumber"])

    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.set_default_timeout(15_000)

    # The app page after a binding: the result, the order's owner, the history entry.
    app = open_app(page, portal)
    order = app.get_by_role("combobox", name="Order")
    order.focus()
    pick_with_keyboard(page, app, order, number, f"Order {number}")
    expect(app.get_by_test_id("current-owner")).to_contain_text("Not bound")
    deal = app.get_by_role("combobox", name="Deal")
    deal.focus()
    pick_with_keyboard(page, app, deal, "Aurora", "Espresso machines for Aurora Bakery")
    app.get_by_role("button", name="Bind", exact=True).click()
    expect(app.get_by_test_id("bind-result")).to_be_visible()
    expect(app.get_by_test_id("history").get_by_role("listitem")).to_have_count(1)
    save(page, folder, "app-page")

    # The replace warning.
    app.get_by_role("radio", name="Invoice").check()
    invoice = app.get_by_role("combobox", name="Invoice")
    invoice.focus()
    pick_with_keyboard(page, app, invoice, "Aurora", "Aurora Bakery espresso machines")
    expect(app.get_by_test_id("replace-warning")).to_be_visible()
    save(page, folder, "replace-warning")

    # The deal tab.
    open_tab(page, portal, "/crm/deal/details/1/")
    app = page.frame_locator('[data-testid="app-frame"]')
    expect(app.get_by_test_id("bindings-list").get_by_role("listitem")).to_have_count(3)
    save(page, folder, "deal-tab")

    # The store manager's read-only view.
    app = open_app(page, portal, user=2)
    expect(app.get_by_test_id("history")).to_have_attribute("aria-busy", "false")
    save(page, folder, "manager-read-only")

    # Russian.
    app = open_app(page, portal, lang="ru")
    order = app.get_by_role("combobox", name="Заказ")
    order.focus()
    page.keyboard.type("1")
    expect(app.locator('[role="option"]:not([aria-disabled])').first).to_be_visible()
    save(page, folder, "russian")
    context.close()
    take_bulk(portal, browser, folder)


def take_bulk(portal: Portal, browser: Any, folder: Path) -> None:
    """Bulk binding in the deal tab: the preview, then the finished job after reopening."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    app = open_tab(page, portal, "/crm/deal/details/1/")
    app.get_by_role("button", name="Bind several orders").click()
    app.get_by_label("Created from").fill("2025-04-01")
    app.get_by_label("Created to").fill("2025-06-30")
    app.get_by_role("button", name="Check the orders").click()
    expect(app.get_by_test_id("job-preview")).to_be_visible()
    save(page, folder, "bulk-preview")
    app.get_by_role("button", name=re.compile(r"^Bind \d+ orders$")).click()
    expect(app.get_by_test_id("job-progress")).to_have_attribute("aria-valuenow", "100")

    # Opened again (a frame only grows while open): the job is in the list; show it.
    app = open_tab(page, portal, "/crm/deal/details/1/")
    app.get_by_role("button", name=re.compile(r"^Show job #")).first.click()
    expect(app.get_by_test_id("job-results").get_by_role("listitem").first).to_be_visible()
    save(page, folder, "bulk-job")
    context.close()


def main(argv: list[str]) -> int:
    """Take the screenshots into the folder named on the command line."""
    folder = Path(argv[0]) if argv else ROOT / "docs" / "screens"
    folder.mkdir(parents=True, exist_ok=True)
    sandbox = start_sandbox(sandbox_test_config())
    try:
        with (
            tempfile.TemporaryDirectory() as scratch,
            served_app(sandbox, Path(scratch) / "app.sqlite3") as app,
            httpx.Client(verify=tls_context(), timeout=10) as http,
            launched_chromium() as browser,
        ):
            portal = Portal(sandbox.url, http)
            portal.reset(app.url)
            portal.install()
            with job_worker(app):
                take(portal, browser, folder)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
