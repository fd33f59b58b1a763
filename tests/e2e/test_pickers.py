"""The pickers and the error states in the browser, on the real app inside the sandbox portal.

The combobox follows the WAI-ARIA "editable combobox with list autocomplete": these tests
drive it with keys only and read it through its roles and ARIA states. Error answers the
server gives rarely (a busy portal, a refusal, a dead sign-in, a changed owner) are played
by intercepting the frame's API calls with the documented error shape.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from b24sandbox.bx24 import frame_post_fields
from tests.browser import needs_chromium
from tests.e2e.harness import Portal
from tests.e2e.pages import frame_of, open_app, pick_with_keyboard

pytestmark = [pytest.mark.e2e, needs_chromium]

DEAL = 2
AURORA_DEAL = "Espresso machines for Aurora Bakery"


def query_of(url: str) -> dict[str, str]:
    """The query values of a URL (first of each)."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def error_answer(status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """A route fulfilment with the API's error shape."""
    return {
        "status": status,
        "content_type": "application/json",
        "body": json.dumps({"error": {"code": code, "message": message, **extra}}),
    }


def test_the_order_picker_is_a_combobox_driven_by_keys(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    app = open_app(page, portal)
    order = app.get_by_role("combobox", name="Order")
    expect(order).to_have_attribute("aria-autocomplete", "list")
    expect(order).to_have_attribute("aria-expanded", "false")
    listbox = app.locator(f'[id="{order.get_attribute("aria-controls")}"]')
    expect(listbox).to_have_attribute("role", "listbox")
    status = app.get_by_test_id("order-picker").get_by_role("status")

    # Alt+ArrowDown opens the list without choosing: the newest 50 and a "Load more" row.
    order.focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(order).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    expect(options).to_have_count(51)
    expect(options.last).to_have_text("Load more")
    expect(status).to_have_text(re.compile(r"^50 orders found\. More are available"))
    expect(listbox).to_have_attribute("aria-busy", "false")
    assert order.get_attribute("aria-activedescendant") is None

    def active() -> Any:
        return app.locator(f'[id="{order.get_attribute("aria-activedescendant")}"]')

    page.keyboard.press("ArrowDown")
    expect(active()).to_contain_text(re.compile(r"Order \d+"))
    first_id = order.get_attribute("aria-activedescendant")
    page.keyboard.press("End")
    expect(active()).to_have_text("Load more")
    page.keyboard.press("Home")
    assert order.get_attribute("aria-activedescendant") == first_id
    page.keyboard.press("ArrowUp")  # wraps to the last row
    expect(active()).to_have_text("Load more")

    # Enter on "Load more" appends the next page and moves to its first row.
    page.keyboard.press("Enter")
    expect(status).to_have_text(re.compile(r"^100 orders found"))
    expect(options).to_have_count(101)
    expect(active()).to_have_attribute("id", re.compile(r"-option-50$"))
    page.keyboard.press("Enter")
    expect(order).to_have_attribute("aria-expanded", "false")
    chosen = order.input_value()
    assert chosen.startswith("Order ")

    # Escape closes an open list and keeps the text; on a closed list it clears the field.
    page.keyboard.press("ArrowDown")
    expect(order).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(order).to_have_attribute("aria-expanded", "false")
    expect(order).to_have_value(chosen)
    page.keyboard.press("Escape")
    expect(order).to_have_value("")
    expect(app.get_by_test_id("current-owner")).to_contain_text("Choose an order")


def test_typing_searches_once_after_a_pause_and_drops_stale_answers(
    portal: Portal, page: Any
) -> None:
    from playwright.sync_api import expect

    searched: list[str] = []
    held: list[Any] = []

    def intercept(route: Any) -> None:
        """Hold the answer to the first search; let every other one through."""
        query = query_of(route.request.url).get("q", "")
        searched.append(query)
        if query == "7":
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/api/orders\?"), intercept)
    app = open_app(page, portal)
    order = app.get_by_role("combobox", name="Order")
    status = app.get_by_test_id("order-picker").get_by_role("status")
    listbox = app.get_by_role("listbox")
    order.focus()

    with page.expect_request(lambda request: query_of(request.url).get("q") == "7"):
        page.keyboard.type("7")
    expect(listbox).to_have_attribute("aria-busy", "true")
    # A second search while the first is unanswered: the first is cancelled, not awaited.
    with page.expect_event(
        "requestfailed", predicate=lambda request: query_of(request.url).get("q") == "7"
    ):
        page.keyboard.type("56")
    expect(status).to_have_text(re.compile(r"orders? found"))
    expect(listbox).to_have_attribute("aria-busy", "false")
    for text in listbox.get_by_role("option").all_inner_texts():
        assert "756" in text or text == "Load more"
    # Typed fast, "56" was one search ("756"), not two.
    assert searched == ["7", "756"]
    for route in held:
        try:
            route.abort()
        except Exception:  # the browser already dropped it
            pass

    page.keyboard.type("000000")
    expect(status).to_have_text("Nothing found")
    expect(listbox.get_by_role("option", name="Nothing found")).to_be_visible()


def test_a_busy_portal_is_explained_in_the_picker(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    busy = "Bitrix24 is busy right now. Try again in 7 s."
    page.route(
        re.compile(r"/api/owners\?"),
        lambda route: route.fulfill(**error_answer(503, "portal_busy", busy, retryAfter=7)),
    )
    app = open_app(page, portal)
    deal = app.get_by_role("combobox", name="Deal")
    deal.focus()
    page.keyboard.type("Aurora")
    expect(app.get_by_role("listbox").get_by_role("option", name=busy)).to_be_visible()
    expect(app.get_by_test_id("owner-picker").get_by_role("status")).to_have_text(busy)


def choose_order_and_deal(page: Any, app: Any, portal: Portal, order_id: int) -> str:
    """Pick an order and deal 1 in the app page; return the order's number."""
    from playwright.sync_api import expect

    number = str(portal.order(order_id)["accountNumber"])
    order = app.get_by_role("combobox", name="Order")
    order.focus()
    pick_with_keyboard(page, app, order, number, f"Order {number}")
    expect(app.get_by_test_id("current-owner")).not_to_have_attribute("aria-busy", "true")
    deal = app.get_by_role("combobox", name="Deal")
    deal.focus()
    pick_with_keyboard(page, app, deal, "Aurora", AURORA_DEAL)
    return number


def test_a_refusal_from_the_api_shows_the_permission_panel(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    portal.unbind(4)
    refusal = "You do not have the online store administrator right needed."
    page.route(
        re.compile(r"/api/bindings$"),
        lambda route: (
            route.fulfill(**error_answer(403, "permission_denied", refusal))
            if route.request.method == "POST"
            else route.continue_()
        ),
    )
    app = open_app(page, portal)
    denied = app.get_by_test_id("permission-denied").filter(visible=True)
    expect(denied).to_have_count(0)
    choose_order_and_deal(page, app, portal, 4)
    bind = app.get_by_role("button", name="Bind", exact=True)
    bind.click()

    expect(denied).to_have_count(1)
    expect(denied).to_have_attribute("data-kind", "read_only")
    expect(bind).to_be_disabled()
    assert bind.get_attribute("aria-describedby") == "denied-explanation"
    assert portal.owners_of(4) == []


def test_a_dead_sign_in_offers_the_reconnect_link(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    portal.unbind(4)
    dead = "Bitrix24 no longer accepts your sign-in. Reopen the app in Bitrix24."
    page.route(
        re.compile(r"/api/bindings$"),
        lambda route: (
            route.fulfill(**error_answer(401, "reauth_required", dead))
            if route.request.method == "POST"
            else route.continue_()
        ),
    )
    app = open_app(page, portal)
    choose_order_and_deal(page, app, portal, 4)
    app.get_by_role("button", name="Bind", exact=True).click()

    error = app.get_by_test_id("action-error")
    expect(error).to_contain_text(dead)
    link = error.get_by_role("link", name="Restore access")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", re.compile(r"/oauth/authorize/"))


def test_unbinding_an_owner_that_changed_meanwhile_shows_the_new_one(
    portal: Portal, page: Any
) -> None:
    from playwright.sync_api import expect

    portal.unbind(4)
    portal.bind(4, DEAL, 1)
    app = open_app(page, portal)
    number = str(portal.order(4)["accountNumber"])
    order = app.get_by_role("combobox", name="Order")
    order.focus()
    pick_with_keyboard(page, app, order, number, f"Order {number}")
    current = app.get_by_test_id("current-owner")
    expect(current).to_contain_text(AURORA_DEAL)

    portal.bind(4, DEAL, 5)  # someone else rebinds the order in Bitrix24
    app.get_by_test_id("unbind-button").click()
    app.get_by_role("dialog").get_by_role("button", name="Unbind").click()

    expect(app.get_by_test_id("action-error")).to_be_visible()
    expect(current).to_contain_text("Поставка оборудования «Ромашка»")
    assert portal.owners_of(4) == [(DEAL, 5)]


def test_without_javascript_the_page_explains_instead_of_loading(
    portal: Portal, served: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    tokens = portal.control("token", {"user_id": 1})
    domain = portal.state()["portals"][0]["domain"]
    query, form = frame_post_fields(tokens, domain=domain)
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in form.items()
    )
    action = html.escape(f"{served.url}/app?{urlencode(query)}")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.set_content(
            f'<form method="post" action="{action}">{inputs}<button>Open</button></form>'
        )
        page.get_by_role("button", name="Open").click()
        expect(page.get_by_role("alert")).to_contain_text("This app needs JavaScript")
        expect(page.get_by_role("combobox")).to_have_count(0)
        expect(page.get_by_text("Loading…").filter(visible=True)).to_have_count(0)
    finally:
        context.close()


def test_a_dead_sign_in_found_on_opening_is_shown_at_once(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    def me(route: Any) -> None:
        """Answer /api/me as for a user whose Bitrix24 token chain died."""
        answer = route.fetch()
        body = answer.json()
        body["bitrix_auth"] = "reauth_required"
        route.fulfill(response=answer, json=body)

    page.route(re.compile(r"/api/me$"), me)
    app = open_app(page, portal)

    error = app.get_by_test_id("app-error")
    expect(error).to_contain_text("Bitrix24 no longer accepts your sign-in")
    expect(error.get_by_role("link", name="Restore access")).to_have_attribute(
        "href", re.compile(r"/oauth/authorize/")
    )


def test_the_frame_follows_its_content(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    app = open_app(page, portal)
    expect(app.get_by_test_id("history")).to_have_attribute("aria-busy", "false")
    frame = page.locator('[data-testid="app-frame"]')

    def fits() -> None:
        """Wait until the frame is as tall as the app's page."""
        content = frame.content_frame.locator("body").evaluate(
            "() => Math.ceil(document.documentElement.scrollHeight)"
        )
        page.wait_for_function(
            "([selector, height]) => document.querySelector(selector)"
            ".getBoundingClientRect().height >= height",
            arg=['[data-testid="app-frame"]', content],
        )

    fits()
    before = frame.bounding_box()["height"]
    # A longer list grows the page; the frame grows with it.
    order = app.get_by_role("combobox", name="Order")
    order.focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(app.get_by_role("option", name="Load more")).to_be_attached()
    page.keyboard.press("ArrowUp")  # the last row: "Load more"
    page.keyboard.press("Enter")
    expect(app.get_by_role("option")).to_have_count(101)
    fits()
    assert frame.bounding_box()["height"] >= before


def test_undo_refuses_when_the_owner_changed_since(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    portal.unbind(5)
    app = open_app(page, portal)
    choose_order_and_deal(page, app, portal, 5)
    app.get_by_role("button", name="Bind", exact=True).click()
    expect(app.get_by_test_id("bind-result")).to_contain_text("Bound")
    history = app.get_by_test_id("history")
    newest = history.get_by_role("listitem").first
    expect(newest).to_contain_text(AURORA_DEAL)

    portal.bind(5, DEAL, 5)  # changed in Bitrix24 after the app bound it
    newest.get_by_role("button", name=re.compile(r"^Undo entry")).click()

    expect(history.get_by_role("alert")).to_contain_text("has changed since then")
    assert portal.owners_of(5) == [(DEAL, 5)]


def test_the_frame_gives_height_back_when_its_content_shrinks(portal: Portal, page: Any) -> None:
    open_app(page, portal)
    frame_selector = "[data-testid='app-frame']"

    def wait_for_frame_height(condition: str, value: int) -> int:
        """Wait until the frame's height meets ``condition`` against ``value``; return it."""
        page.wait_for_function(
            f"""([selector, value]) => {{
                const height = document.querySelector(selector).getBoundingClientRect().height;
                return {condition};
            }}""",
            arg=[frame_selector, value],
        )
        return int(page.locator(frame_selector).evaluate("e => e.getBoundingClientRect().height"))

    def content_height() -> int:
        return int(frame_of(page).evaluate("() => document.body.getBoundingClientRect().height"))

    # The frame is as tall as the page's content (within a pixel of rounding).
    wide = wait_for_frame_height("Math.abs(height - value) <= 1", content_height())

    # A narrow window wraps the content onto more lines: the frame grows with it.
    page.set_viewport_size({"width": 420, "height": 900})
    page.wait_for_function(
        "([selector, value]) => document.querySelector(selector).getBoundingClientRect().height"
        " > value + 100",
        arg=[frame_selector, wide],
    )
    # Wide again, the content is short again, and so is the frame: it gives the height back
    # instead of keeping the tallest it ever was.
    page.set_viewport_size({"width": 1280, "height": 900})
    wait_for_frame_height("height <= value + 1", wide)
