"""The owner link on the app's screen opens the deal's card in the portal's slider.

The app calls ``BX24.openPath`` for a card link (``static/js/bx24.js``); the sandbox portal
answers it as Bitrix24 does: the card opens in a side slider over the portal page, and the
app's frame stays where it was. Order 2 is bound to deal 1 ("Espresso machines for Aurora
Bakery") here whatever the seed or an earlier test left.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import needs_chromium
from tests.e2e.harness import Portal
from tests.e2e.pages import FRAME, open_app, pick_with_keyboard

pytestmark = [pytest.mark.e2e, needs_chromium]

DEAL = 2
AURORA_DEAL = "Espresso machines for Aurora Bakery"


def test_the_owner_link_opens_the_deal_card_in_the_portal_slider(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    portal.unbind(2)
    portal.bind(2, DEAL, 1)
    number = str(portal.order(2)["accountNumber"])
    app = open_app(page, portal)

    order = app.get_by_role("combobox", name="Order")
    order.focus()
    pick_with_keyboard(page, app, order, number, f"Order {number}")
    current = app.get_by_test_id("current-owner")
    link = current.get_by_role("link", name=AURORA_DEAL)
    expect(link).to_have_attribute("href", f"{portal.url}/crm/deal/details/1/")

    link.click()

    slider = page.get_by_role("dialog", name="Deal #1")
    expect(slider).to_be_visible()
    card = page.frame_locator('[data-testid="slider-frame"]')
    expect(card.locator('[data-field="title"]')).to_have_text(AURORA_DEAL)
    expect(card.get_by_test_id("bound-orders")).to_contain_text(f"Order {number}")
    # The slider replaced the new tab the link would open without BX24.openPath.
    assert len(page.context.pages) == 1
    expect(page.get_by_test_id("slider-close")).to_be_focused()

    page.keyboard.press("Escape")
    expect(page.get_by_test_id("portal-slider")).to_have_count(0)
    expect(page.locator(FRAME)).to_be_focused()
    expect(current).to_contain_text(AURORA_DEAL)
