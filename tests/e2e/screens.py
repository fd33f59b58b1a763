"""Take the README's screenshots: ``python -m tests.e2e.screens [folder]`` (default docs/screens).

Starts the sandbox portal and the app side by side (as the browser tests do), sets up the
bindings each picture needs through the portal's REST API, and saves PNGs of the app's
main screens: the app page, the replace warning, the deal tab, the store manager's
read-only view and the Russian page.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from b24sandbox.server import start_sandbox
from tests.browser import launched_chromium
from tests.conftest import sandbox_test_config
from tests.e2e.harness import Portal, served_app
from tests.e2e.pages import open_app, open_tab, pick_with_keyboard

ROOT = Path(__file__).resolve().parents[2]
DEAL, INVOICE = 2, 31


def save(page: Any, folder: Path, name: str) -> None:
    """Save the portal page with the app's frame, as a person sees it."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
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


def main(argv: list[str]) -> int:
    """Take the screenshots into the folder named on the command line."""
    folder = Path(argv[0]) if argv else ROOT / "docs" / "screens"
    folder.mkdir(parents=True, exist_ok=True)
    sandbox = start_sandbox(sandbox_test_config())
    try:
        with (
            tempfile.TemporaryDirectory() as scratch,
            served_app(sandbox, Path(scratch) / "app.sqlite3") as app,
            httpx.Client(timeout=10) as http,
            launched_chromium() as browser,
        ):
            portal = Portal(sandbox.url, http)
            portal.reset(app.url)
            portal.install()
            take(portal, browser, folder)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
