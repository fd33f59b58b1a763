"""Hostile titles in the pickers, the bindings and the history: shown as text, layout intact.

Besides the sandbox's fixture titles (``<script>`` on deal 3, ``<img onerror>`` on deal 4,
an RTL mark and Arabic on deal 6, 10,000 characters with spaces on deal 7), this module
gives deal 8 a right-to-left override (U+202E) with markup and deal 9 one word of 10,000
characters, which nothing but the page's own wrapping can break. Each screen is checked in
a wide and a phone-sized frame: the titles are there as text, no element or script came
from them, no dialog opened, and the page is never wider than its frame.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from b24sandbox.server import RunningSandbox
from tests.browser import needs_chromium
from tests.e2e.harness import Portal
from tests.e2e.pages import frame_of, horizontal_overflow, open_app, open_tab, pick_with_keyboard

pytestmark = [pytest.mark.e2e, needs_chromium]

DEAL = 2
SCRIPT_TITLE = "<script>alert(1)</script>"
IMAGE_TITLE = "<img src=x onerror=alert(1)>"
# An override that is never closed (no U+202C): unless the title is isolated, it turns the
# rest of any sentence it is put into around.
RTL_TITLE = "Override \u202eexe.sgnidnib <svg onload=alert(2)> <b>bold</b>"
LONG_WORD = "Ж" * 9_990 + "LONGWORD"  # 9,998 characters, no space anywhere
WIDTHS = [1280, 360]

# Elements a title could have smuggled in, and attributes that would run script.
INJECTED_JS = """
() => {
  const found = [...document.querySelectorAll('svg, b, iframe, object, embed')]
    .filter((el) => el.closest('#screen'))
    .map((el) => el.tagName);
  const handlers = [...document.querySelectorAll('*')]
    .filter((el) => [...el.attributes].some((a) => a.name.startsWith('on')))
    .map((el) => el.tagName);
  const scripts = [...document.scripts].filter((s) => !s.src).length;
  const images = [...document.images].filter((img) => img.closest('#screen')).length;
  return { found, handlers, scripts, images };
}
"""

# Any element that reaches past the frame's right edge without a clipping ancestor.
OUTSIDE_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let node = el.parentElement; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.overflowX !== 'visible') return true;
    }
    return false;
  };
  return [...document.querySelectorAll('#screen *')]
    .filter((el) => el.checkVisibility() && el.getBoundingClientRect().right > width + 1)
    .filter((el) => !clipped(el))
    .map((el) => el.tagName + '.' + el.className);
}
"""


# The texts of a message's <bdi> elements (the parts isolated from the sentence).
ISOLATED_JS = """
(testid) => [...document.querySelector(`[data-testid="${testid}"]`).querySelectorAll('bdi')]
  .map((element) => element.textContent)
"""


def isolated_parts(page: Any, testid: str) -> list[str]:
    """The isolated parts of a message on the app's page."""
    return list(frame_of(page).evaluate(ISOLATED_JS, testid))


def set_title(sandbox: RunningSandbox, table: str, entity_id: int, title: str) -> None:
    """Give a deal or smart invoice of the first portal a title (the portal's own data)."""
    changed = sandbox.sandbox.db.execute(
        f"UPDATE {table} SET title = ? WHERE portal_id = 1 AND id = ?", (title, entity_id)
    )
    assert changed == 1


@pytest.fixture(scope="module", autouse=True)
def hostile_titles(portal: Portal, sandbox_server: RunningSandbox) -> None:
    """Deal 8 gets the RTL override with markup, deal 9 the 10,000-character word."""
    set_title(sandbox_server, "crm_deal", 8, RTL_TITLE)
    set_title(sandbox_server, "crm_deal", 9, LONG_WORD)


def assert_nothing_injected(page: Any, dialogs: list[str]) -> None:
    """No element, handler or script came from a title, and no dialog opened."""
    found = frame_of(page).evaluate(INJECTED_JS)
    assert found == {"found": [], "handlers": [], "scripts": 0, "images": 0}, found
    assert dialogs == []


def assert_layout_holds(page: Any) -> None:
    """The page is no wider than its frame, and nothing sticks out of it."""
    assert horizontal_overflow(page) == 0
    assert frame_of(page).evaluate(OUTSIDE_JS) == []


def new_page(browser: Any, width: int) -> tuple[Any, Any, list[str]]:
    """A page of ``width`` pixels that records every dialog."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    expect.set_options(timeout=10_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return context, page, dialogs


def shot(page: Any, folder: Path, name: str) -> None:
    """Keep a screenshot of the portal page with the app's frame."""
    page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_owner_picker_and_the_history_show_hostile_titles_as_text(
    portal: Portal, browser: Any, width: int, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    portal.unbind(11)
    portal.bind(11, DEAL, 3)
    context, page, dialogs = new_page(browser, width)
    try:
        app = open_app(page, portal)
        order = app.get_by_role("combobox", name="Order")
        order.focus()
        number = str(portal.order(11)["accountNumber"])
        pick_with_keyboard(page, app, order, number, f"Order {number}")
        expect(app.get_by_test_id("current-owner")).to_contain_text(SCRIPT_TITLE)

        deal = app.get_by_role("combobox", name="Deal")
        deal.focus()
        page.keyboard.type("alert(")
        listbox = app.locator(f'[id="{deal.get_attribute("aria-controls")}"]')
        for title in (SCRIPT_TITLE, IMAGE_TITLE, RTL_TITLE):
            expect(listbox.get_by_role("option", name=title)).to_be_visible()
        assert_nothing_injected(page, dialogs)
        assert_layout_holds(page)
        shot(page, tmp_path, f"picker-markup-{width}")
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")

        page.keyboard.type("LONGWORD")
        long_option = listbox.get_by_role("option", name=re.compile("LONGWORD"))
        expect(long_option).to_be_visible()
        assert_layout_holds(page)
        shot(page, tmp_path, f"picker-long-word-{width}")
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")

        # Rebind to the RTL title: the warning, the result and the history name it as text.
        pick_with_keyboard(page, app, deal, "Override", "Override")
        expect(app.get_by_test_id("replace-warning")).to_contain_text(RTL_TITLE)
        assert isolated_parts(page, "replace-warning") == [SCRIPT_TITLE, RTL_TITLE]
        app.get_by_role("button", name="Replace").click()
        expect(app.get_by_test_id("bind-result")).to_contain_text(RTL_TITLE)
        assert RTL_TITLE in isolated_parts(page, "bind-result")
        newest = app.get_by_test_id("history").get_by_role("listitem").first
        expect(newest).to_contain_text(RTL_TITLE)
        expect(newest).to_contain_text(SCRIPT_TITLE)
        assert portal.owners_of(11) == [(DEAL, 8)]
        assert_nothing_injected(page, dialogs)
        assert_layout_holds(page)
        shot(page, tmp_path, f"history-{width}")
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_bound_owners_and_orders_with_hostile_titles_keep_the_layout(
    portal: Portal, browser: Any, width: int, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    portal.unbind(12)
    portal.bind(12, DEAL, 9)
    portal.unbind(13)
    portal.bind(13, DEAL, 8)
    context, page, dialogs = new_page(browser, width)
    try:
        # The order card: its owner is the 10,000-character word.
        app = open_tab(page, portal, "/shop/orders/details/12/")
        expect(app.get_by_test_id("current-owner")).to_contain_text("LONGWORD")
        assert_nothing_injected(page, dialogs)
        assert_layout_holds(page)
        shot(page, tmp_path, f"order-tab-long-word-{width}")

        # The order card of the RTL override.
        app = open_tab(page, portal, "/shop/orders/details/13/")
        expect(app.get_by_test_id("current-owner")).to_contain_text(RTL_TITLE)
        assert_nothing_injected(page, dialogs)
        assert_layout_holds(page)

        # The deal card of the long word: its bound orders.
        app = open_tab(page, portal, "/crm/deal/details/9/")
        number = str(portal.order(12)["accountNumber"])
        expect(app.get_by_test_id("bindings-list")).to_contain_text(number)
        assert_nothing_injected(page, dialogs)
        assert_layout_holds(page)
        shot(page, tmp_path, f"deal-tab-long-word-{width}")
    finally:
        context.close()
