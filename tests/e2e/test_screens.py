"""The binding screens in headless Chromium, inside the sandbox portal (another site).

The sandbox's fixture records (``b24sandbox/data/fixtures.py``) give known titles on known
ids: deal 1 "Espresso machines for Aurora Bakery" and smart invoice 1 "Aurora Bakery
espresso machines, prepayment" (words no other title has), hostile titles on deals 2-7.
Each test first sets the bindings it relies on through the portal's REST API, whatever the
seed bound, so the tests of this module share one installed portal and one app.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from b24sandbox.bx24 import frame_post_fields
from tests.browser import needs_chromium
from tests.e2e.harness import Portal, ServedApp
from tests.e2e.pages import (
    app_frame,
    contrast_failures,
    horizontal_overflow,
    open_app,
    open_tab,
    pick_with_keyboard,
)

pytestmark = [pytest.mark.e2e, needs_chromium]

DEAL, INVOICE = 2, 31
AURORA_DEAL = "Espresso machines for Aurora Bakery"
AURORA_INVOICE = "Aurora Bakery espresso machines, prepayment"
SCRIPT_TITLE = "<script>alert(1)</script>"
IMAGE_TITLE = "<img src=x onerror=alert(1)>"
QUOTES_TITLE = '"Big" deal for O\'Brien & Sons'
CYRILLIC_TITLE = "Поставка оборудования «Ромашка»"


def number_of(portal: Portal, order_id: int) -> str:
    """The account number the portal shows for an order."""
    return str(portal.order(order_id)["accountNumber"])


def part_of(number: str) -> str:
    """Part of an order number, as a person would type it."""
    return number[1:] if len(number) > 2 else number


def russian_orders_found(count: int) -> str:
    """How Russian says "N orders found" (1 заказ, 2-4 заказа, 5-20 заказов, 21 заказ...)."""
    if count % 10 == 1 and count % 100 != 11:
        return f"Найден {count} заказ"
    if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
        return f"Найдено {count} заказа"
    return f"Найдено {count} заказов"


def test_admin_binds_rebinds_undoes_and_unbinds_with_the_keyboard(
    portal: Portal, page: Any
) -> None:
    from playwright.sync_api import expect

    portal.unbind(10)
    number = number_of(portal, 10)
    app = open_app(page, portal)

    # Find the order by part of its number, then the deal by part of its title: keys only.
    order = app.get_by_role("combobox", name="Order")
    order.focus()
    pick_with_keyboard(page, app, order, part_of(number), f"Order {number}")
    current = app.get_by_test_id("current-owner")
    expect(current).to_contain_text("Not bound")
    page.keyboard.press("Tab")  # to the owner-type switch (Deal is checked)
    expect(app.get_by_role("radio", name="Deal")).to_be_focused()
    page.keyboard.press("Tab")
    deal = app.get_by_role("combobox", name="Deal")
    pick_with_keyboard(page, app, deal, "Aurora Bak", AURORA_DEAL)
    expect(app.get_by_test_id("replace-warning")).to_be_hidden()
    page.keyboard.press("Tab")
    bind = app.get_by_role("button", name="Bind", exact=True)
    expect(bind).to_be_focused()
    page.keyboard.press("Enter")

    result = app.get_by_test_id("bind-result")
    expect(result).to_contain_text(f"Bound: order {number}")
    expect(current).to_contain_text(AURORA_DEAL)
    assert portal.owners_of(10) == [(DEAL, 1)]
    assert contrast_failures(page) == []

    # Rebinding to a smart invoice warns first, naming both, and the button says Replace.
    page.keyboard.press("Shift+Tab")  # back to the owner picker
    page.keyboard.press("Shift+Tab")  # the switch
    expect(app.get_by_role("radio", name="Deal")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(app.get_by_role("radio", name="Invoice")).to_be_checked()
    page.keyboard.press("Tab")
    invoice = app.get_by_role("combobox", name="Invoice")
    pick_with_keyboard(page, app, invoice, "Aurora Bakery esp", AURORA_INVOICE)
    warning = app.get_by_test_id("replace-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(
        f"replaces deal «{AURORA_DEAL}» with invoice «{AURORA_INVOICE}»"
    )
    replace = app.get_by_role("button", name="Replace")
    page.keyboard.press("Tab")
    expect(replace).to_be_focused()
    page.keyboard.press("Enter")
    expect(result).to_contain_text(f"Replaced deal «{AURORA_DEAL}»")
    expect(current).to_contain_text(AURORA_INVOICE)
    expect(warning).to_be_hidden()
    assert portal.owners_of(10) == [(INVOICE, 1)]

    # Undo in the history restores the deal.
    history = app.get_by_test_id("history")
    newest = history.get_by_role("listitem").first
    expect(newest).to_contain_text("Replaced")
    expect(newest).to_contain_text(AURORA_INVOICE)
    newest.get_by_role("button", name=re.compile(r"^Undo entry")).click()
    expect(history.get_by_role("status").filter(has_text="undone")).to_be_visible()
    expect(current).to_contain_text(AURORA_DEAL)
    assert portal.owners_of(10) == [(DEAL, 1)]

    # Unbind asks first; cancelling keeps the binding, confirming removes it.
    unbind = app.get_by_test_id("unbind-button")
    unbind.click()
    dialog = app.get_by_role("dialog", name="Unbind the order?")
    expect(dialog).to_contain_text(f"Order {number} will no longer belong to deal «{AURORA_DEAL}»")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    assert portal.owners_of(10) == [(DEAL, 1)]
    unbind.click()
    dialog.get_by_role("button", name="Unbind").click()
    expect(result).to_contain_text(f"Unbound: order {number}")
    expect(current).to_contain_text("Not bound")
    assert portal.owners_of(10) == []


def test_store_manager_sees_bindings_read_only_with_the_reason(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    portal.unbind(1)
    portal.bind(1, DEAL, 1)
    app = open_app(page, portal, user=2)

    denied = app.get_by_test_id("permission-denied").filter(visible=True)
    expect(denied).to_have_count(1)
    expect(denied).to_have_attribute("data-kind", "read_only")
    expect(denied).to_contain_text("online store administrator")
    expect(denied).to_contain_text("Online store → Settings → Access permissions")
    bind = app.get_by_role("button", name="Bind")
    expect(bind).to_be_disabled()
    explanation = app.locator(f'[id="{bind.get_attribute("aria-describedby")}"]')
    expect(explanation).to_contain_text("online store administrator right")
    expect(app.get_by_test_id("owner-picker")).to_have_count(0)
    expect(app.get_by_test_id("unbind-button")).to_have_count(0)

    # Reading still works: the order's owner and the history, without Undo.
    order = app.get_by_role("combobox", name="Order")
    order.focus()
    number = number_of(portal, 1)
    pick_with_keyboard(page, app, order, number, f"Order {number}")
    expect(app.get_by_test_id("current-owner")).to_contain_text(AURORA_DEAL)
    history = app.get_by_test_id("history")
    expect(history).to_have_attribute("aria-busy", "false")
    expect(history.get_by_role("button", name=re.compile("^Undo"))).to_have_count(0)
    assert contrast_failures(page) == []


def test_employee_without_store_access_sees_only_the_no_access_panel(
    portal: Portal, page: Any
) -> None:
    from playwright.sync_api import expect

    app = open_app(page, portal, user=3)

    denied = app.get_by_test_id("permission-denied").filter(visible=True)
    expect(denied).to_have_count(1)
    expect(denied).to_have_attribute("data-kind", "no_access")
    expect(denied).to_contain_text("No access to the online store")
    for hook in ("order-picker", "owner-picker", "bind-button", "history", "current-owner"):
        expect(app.get_by_test_id(hook)).to_have_count(0)


def test_deal_tab_lists_its_orders_and_binds_another(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    for order_id in {1, 2, 5, *portal.orders_of(DEAL, 1)}:
        portal.unbind(order_id)
    portal.bind(1, DEAL, 1)
    portal.bind(2, DEAL, 1)
    app = open_tab(page, portal, "/crm/deal/details/1/")

    listed = app.get_by_test_id("bindings-list")
    for order_id in (1, 2):
        expect(listed).to_contain_text(f"Order {number_of(portal, order_id)}")
    expect(listed.get_by_role("listitem")).to_have_count(2)
    expect(app.get_by_role("region", name="Orders bound to this card")).to_contain_text(
        "2 orders bound"
    )

    order = app.get_by_role("combobox", name="Order")
    order.focus()
    number = number_of(portal, 5)
    pick_with_keyboard(page, app, order, part_of(number), f"Order {number}")
    expect(app.get_by_test_id("current-owner")).to_contain_text("Not bound")
    app.get_by_role("button", name="Bind", exact=True).click()
    expect(app.get_by_test_id("bind-result")).to_contain_text(f"deal «{AURORA_DEAL}»")
    expect(listed.get_by_role("listitem")).to_have_count(3)
    expect(listed).to_contain_text(f"Order {number}")
    assert portal.owners_of(5) == [(DEAL, 1)]

    # Each row unbinds after confirmation.
    row = listed.get_by_role("listitem").filter(has_text=f"Order {number}")
    row.get_by_role("button", name="Unbind").click()
    app.get_by_role("dialog").get_by_role("button", name="Unbind").click()
    expect(listed.get_by_role("listitem")).to_have_count(2)
    assert portal.owners_of(5) == []


def test_invoice_tab_shows_a_store_manager_its_orders_read_only(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    for order_id in {3, *portal.orders_of(INVOICE, 1)}:
        portal.unbind(order_id)
    portal.bind(3, INVOICE, 1)
    app = open_tab(page, portal, "/crm/type/31/details/1/", user=2)

    listed = app.get_by_test_id("bindings-list")
    expect(listed.get_by_role("listitem")).to_have_count(1)
    expect(listed).to_contain_text(f"Order {number_of(portal, 3)}")
    expect(listed.get_by_role("button")).to_have_count(0)
    denied = app.get_by_test_id("permission-denied").filter(visible=True)
    expect(denied).to_have_attribute("data-kind", "read_only")
    expect(app.get_by_test_id("order-picker")).to_have_count(0)


def test_order_tab_shows_the_owner_and_rebinds_it(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    portal.unbind(3)
    portal.bind(3, INVOICE, 1)
    app = open_tab(page, portal, "/shop/orders/details/3/")

    current = app.get_by_test_id("current-owner")
    expect(current).to_contain_text(AURORA_INVOICE)
    expect(app.get_by_test_id("order-picker")).to_have_count(0)
    deal = app.get_by_role("combobox", name="Deal")
    deal.focus()
    pick_with_keyboard(page, app, deal, "Espresso mach", AURORA_DEAL)
    expect(app.get_by_test_id("replace-warning")).to_contain_text(
        f"replaces invoice «{AURORA_INVOICE}» with deal «{AURORA_DEAL}»"
    )
    app.get_by_role("button", name="Replace").click()
    expect(app.get_by_test_id("bind-result")).to_contain_text(
        f"Replaced invoice «{AURORA_INVOICE}»"
    )
    expect(current).to_contain_text(AURORA_DEAL)
    assert portal.owners_of(3) == [(DEAL, 1)]


def test_russian_portal_gets_russian_texts_plurals_and_money(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    app = open_app(page, portal, lang="ru")

    expect(app.locator("html")).to_have_attribute("lang", "ru")
    expect(app.get_by_role("button", name="Привязать")).to_be_disabled()
    order = app.get_by_role("combobox", name="Заказ")
    order.focus()
    page.keyboard.press("Alt+ArrowDown")  # the newest orders, one page of 50
    status = app.get_by_test_id("order-picker").get_by_role("status")
    expect(status).to_have_text(re.compile(r"^Найдено 50 заказов"))
    page.keyboard.type("1")
    expect(status).not_to_have_text(re.compile("50"))
    expect(status).to_have_text(re.compile(r"^Найден"))
    count = int(re.search(r"\d+", status.inner_text()).group())
    assert status.inner_text().startswith(russian_orders_found(count))
    first = app.get_by_role("option").first
    # Russian money: grouping by (narrow) no-break spaces, decimal comma, sign after.
    expect(first).to_have_text(re.compile(r"\d[\u00a0\u202f]\d{3},\d{2}\u00a0(₽|\$|€|RUB|USD)"))
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.keyboard.type("1" + "0" * 8)
    expect(status).to_have_text("Ничего не найдено")
    expect(app.get_by_test_id("history")).to_contain_text("История")


def test_narrow_frame_has_no_horizontal_scroll(portal: Portal, browser: Any) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        portal.unbind(8)
        portal.bind(8, DEAL, 7)  # the 10,000-character title
        app = open_app(page, portal)
        width = page.locator('[data-testid="app-frame"]').bounding_box()["width"]
        assert width <= 360
        order = app.get_by_role("combobox", name="Order")
        order.focus()
        number = number_of(portal, 8)
        pick_with_keyboard(page, app, order, number, f"Order {number}")
        expect(app.get_by_test_id("current-owner")).to_contain_text("Summit Builders")
        deal = app.get_by_role("combobox", name="Deal")
        deal.focus()
        page.keyboard.type("Summit")
        expect(app.get_by_role("option", name=re.compile("Summit Builders")).first).to_be_visible()
        assert horizontal_overflow(page) == 0
    finally:
        context.close()


def test_hostile_titles_render_as_text(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    portal.unbind(4)
    portal.bind(4, DEAL, 3)
    app = open_app(page, portal)

    order = app.get_by_role("combobox", name="Order")
    order.focus()
    number = number_of(portal, 4)
    pick_with_keyboard(page, app, order, number, f"Order {number}")
    current = app.get_by_test_id("current-owner")
    expect(current).to_contain_text(SCRIPT_TITLE)

    deal = app.get_by_role("combobox", name="Deal")
    deal.focus()
    page.keyboard.type("alert(1)")
    listbox = app.get_by_role("listbox")
    expect(listbox.get_by_role("option", name=IMAGE_TITLE)).to_be_visible()
    expect(listbox.get_by_role("option", name=SCRIPT_TITLE)).to_be_visible()
    expect(listbox.locator("img, script")).to_have_count(0)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    pick_with_keyboard(page, app, deal, "onerror", IMAGE_TITLE)
    expect(app.get_by_test_id("replace-warning")).to_contain_text(
        f"replaces deal «{SCRIPT_TITLE}» with deal «{IMAGE_TITLE}»"
    )

    page.keyboard.press("Escape")  # clear the field
    for title in (QUOTES_TITLE, CYRILLIC_TITLE):
        page.keyboard.type(title[-8:])
        expect(listbox.get_by_role("option", name=title)).to_be_visible()
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")
    expect(app.locator("#screen img")).to_have_count(0)
    assert dialogs == []


def test_home_page_says_what_the_app_is_in_both_languages(served: ServedApp) -> None:
    english = httpx.get(f"{served.url}/", headers={"Accept-Language": "en-GB,en;q=0.8"})
    russian = httpx.get(f"{served.url}/", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    chosen = httpx.get(f"{served.url}/?LANG=en", headers={"Accept-Language": "ru"})

    assert english.status_code == russian.status_code == chosen.status_code == 200
    assert "opens inside Bitrix24" in english.text
    assert f"{served.url}/install" in english.text
    assert '<html lang="ru">' in russian.text
    assert "открывается внутри Битрикс24" in russian.text
    assert '<html lang="en">' in chosen.text


@pytest.mark.parametrize("options", [{"ID": "0"}, {"ID": "12a"}, {"URI": "/crm/deal/details/1/"}])
def test_a_tab_without_a_card_id_is_a_clear_error(
    portal: Portal, served: ServedApp, options: dict[str, str]
) -> None:
    tokens = portal.control("token", {"user_id": 1})
    domain = portal.state()["portals"][0]["domain"]
    query, form = frame_post_fields(
        tokens, domain=domain, placement="CRM_DEAL_DETAIL_TAB", options=options
    )

    answer = httpx.post(f"{served.url}/app", params=query, data=form)

    assert answer.status_code == 400
    assert "This tab cannot be opened" in answer.text
    assert "data-session" not in answer.text


def test_an_app_page_has_no_inline_script_or_style(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    app = open_app(page, portal)
    expect(app.get_by_test_id("history")).to_have_attribute("aria-busy", "false")
    body = app_frame(page).locator("body")
    expect(body).not_to_have_attribute("data-session", re.compile("."))
    assert violations == []
