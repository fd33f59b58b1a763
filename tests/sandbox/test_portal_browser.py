"""The portal hosts an app the way Bitrix24 does, seen through headless Chromium.

A tiny app on ``127.0.0.1`` (another site than the portal's ``localhost``) records every
frame POST and renders what it got and what BX24.js reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import fresh_page, needs_chromium
from tests.sandbox.portal_test_app import Received, RecordingApp, start_test_app

WAIT_MS = 10_000

pytestmark = [
    pytest.mark.e2e,
    needs_chromium,
]


@pytest.fixture(scope="module")
def recording_app() -> Iterator[RecordingApp]:
    """Serve the test app for this module."""
    app = start_test_app()
    yield app
    app.stop()


@pytest.fixture
def sandbox_app_url(recording_app: RecordingApp) -> str:
    """Point the sandbox at the test app (and start each test with nothing received)."""
    recording_app.received.clear()
    return recording_app.url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """Open a fresh browser page (no cookies shared between tests)."""
    # Without motion the slider stands at its place at once, so its box can be measured.
    with fresh_page(
        browser, wait_ms=WAIT_MS, viewport={"width": 1280, "height": 860}, reduced_motion="reduce"
    ) as opened:
        yield opened


def frame_posts(app: RecordingApp, path: str) -> list[Received]:
    """Return the frame launches the app received on ``path`` (not event deliveries)."""
    return [r for r in app.received if r.path == path and "APP_SID" in r.query]


def bx24_state(page: Any) -> dict[str, Any]:
    """Wait for the framed app's BX24.init callback and return what BX24 reported."""
    frame = page.frame_locator('[data-testid="app-frame"]')
    state = frame.locator('[data-testid="bx24-state"]')
    state.filter(has_not_text="waiting").wait_for()
    return json.loads(state.text_content())


def install(sandbox: Any) -> None:
    """Install the app through the control API (install page, installFinish, events)."""
    assert sandbox.control("install")["installed"] is True


def test_app_page_posts_every_documented_field_into_a_cross_site_frame(
    sandbox: Any, recording_app: RecordingApp, page: Any
) -> None:
    install(sandbox)
    portal = sandbox.state()["portals"][0]

    page.goto(f"{sandbox.url}/marketplace/app/?user=2")
    frame = page.frame_locator('[data-testid="app-frame"]')
    frame.locator('[data-field="AUTH_ID"]').wait_for()

    posted = frame_posts(recording_app, "/app")[-1]
    assert posted.method == "POST"
    assert posted.content_type == "application/x-www-form-urlencoded"
    assert posted.query["DOMAIN"] == portal["domain"]
    assert posted.query["PROTOCOL"] == "0"
    assert posted.query["LANG"] == "en"
    assert set(posted.form) == {
        "AUTH_ID",
        "AUTH_EXPIRES",
        "REFRESH_ID",
        "SERVER_ENDPOINT",
        "APPLICATION_TOKEN",
        "APPLICATION_SCOPE",
        "member_id",
        "status",
        "PLACEMENT",
    }
    assert posted.form["PLACEMENT"] == "DEFAULT"
    assert posted.form["member_id"] == portal["member_id"]
    assert posted.form["APPLICATION_TOKEN"] == portal["application_token"]
    assert posted.form["SERVER_ENDPOINT"] == f"{sandbox.oauth_url}/rest/"
    # The browser shows inside the frame exactly what the app was posted.
    assert frame.locator('[data-field="AUTH_ID"]').text_content() == posted.form["AUTH_ID"]
    name = page.locator('[data-testid="app-frame"]').get_attribute("name")
    assert name == f"{portal['domain']}|0|{posted.query['APP_SID']}"

    # The posted token is the viewing user's own.
    me = sandbox.rest("user.current", token=posted.form["AUTH_ID"]).json()
    assert me["result"]["ID"] == "2"

    state = bx24_state(page)
    assert state["auth"]["access_token"] == posted.form["AUTH_ID"]
    assert state["auth"]["refresh_token"] == posted.form["REFRESH_ID"]
    assert state["auth"]["member_id"] == portal["member_id"]
    assert state["auth"]["domain"] == portal["domain"]
    assert state["placement"] == {"placement": "DEFAULT", "options": {}}
    assert state["isAdmin"] is False
    assert state["lang"] == "en"


def test_install_finish_from_the_installer_frame_marks_the_app_installed(
    sandbox: Any, recording_app: RecordingApp, page: Any
) -> None:
    page.goto(f"{sandbox.url}/marketplace/install/?user=1")
    page.get_by_test_id("install-confirm").click()
    frame = page.frame_locator('[data-testid="app-frame"]')
    frame.locator('[data-testid="bx24-state"]').filter(has_not_text="waiting").wait_for()
    assert frame_posts(recording_app, "/install")[-1].form["PLACEMENT"] == "DEFAULT"
    assert sandbox.state()["portals"][0]["installed"] is False
    assert bx24_state(page)["isAdmin"] is True

    frame.get_by_test_id("finish").click()

    page.get_by_test_id("install-finished").wait_for()
    assert sandbox.state()["portals"][0]["installed"] is True
    # Like Bitrix24, the portal then reloads into the installed app.
    page.wait_for_url("**/marketplace/app/?user=1")
    page.frame_locator('[data-testid="app-frame"]').locator('[data-field="PLACEMENT"]').wait_for()
    assert frame_posts(recording_app, "/app")


def test_a_deal_tab_frames_its_handler_with_the_deal_id(
    sandbox: Any, recording_app: RecordingApp, page: Any
) -> None:
    bound = sandbox.rest(
        "placement.bind",
        {
            "PLACEMENT": "CRM_DEAL_DETAIL_TAB",
            "HANDLER": f"{recording_app.url}/tab",
            "TITLE": "Orders",
        },
    ).json()
    assert bound["result"] is True
    install(sandbox)

    page.goto(f"{sandbox.url}/crm/deal/details/7/?user=1")
    page.get_by_test_id("app-tab").filter(has_text="Orders").click()
    state = bx24_state(page)

    posted = frame_posts(recording_app, "/tab")[-1]
    assert posted.form["PLACEMENT"] == "CRM_DEAL_DETAIL_TAB"
    assert json.loads(posted.form["PLACEMENT_OPTIONS"])["ID"] == "7"
    assert state["placement"]["placement"] == "CRM_DEAL_DETAIL_TAB"
    assert state["placement"]["options"]["ID"] == "7"
    assert state["isAdmin"] is True


def test_bx24_resizes_the_frame_refreshes_auth_and_calls_rest(
    sandbox: Any, recording_app: RecordingApp, page: Any
) -> None:
    install(sandbox)
    page.goto(f"{sandbox.url}/marketplace/app/?user=1")
    first = bx24_state(page)["auth"]
    page.screenshot(path="/tmp/portal.png", full_page=True)
    frame = page.frame_locator('[data-testid="app-frame"]')
    iframe = page.locator('[data-testid="app-frame"]')

    frame.get_by_test_id("resize").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=\"app-frame\"]').style.height === '345px'"
    )
    assert iframe.bounding_box()["height"] == 345

    frame.get_by_test_id("refresh").click()
    refreshed = frame.get_by_test_id("refreshed")
    refreshed.filter(has_not_text="pending").wait_for()
    auth = json.loads(refreshed.text_content())
    assert auth["access_token"] != first["access_token"]
    assert sandbox.rest("user.current", token=auth["access_token"]).json()["result"]["ID"] == "1"

    frame.get_by_test_id("call").click()
    result = frame.get_by_test_id("call-result")
    result.filter(has_not_text="pending").wait_for()
    assert json.loads(result.text_content())["ID"] == "1"


def test_the_language_switch_reaches_the_app_as_lang(
    sandbox: Any, recording_app: RecordingApp, page: Any
) -> None:
    install(sandbox)
    page.goto(f"{sandbox.url}/?user=2")
    page.get_by_test_id("lang-switcher").locator('[data-lang="ru"]').click()
    page.wait_for_url("**/?user=2&lang=ru")
    page.get_by_test_id("menu-app").click()
    page.wait_for_url("**/marketplace/app/?user=2&lang=ru")
    bx24_state(page)
    assert frame_posts(recording_app, "/app")[-1].query["LANG"] == "ru"

    page.get_by_test_id("user-switcher").locator('[data-user="3"]').click()
    page.wait_for_url("**/marketplace/app/?user=3&lang=ru")
    bx24_state(page)
    posted = frame_posts(recording_app, "/app")[-1]
    assert posted.query["LANG"] == "ru"
    assert sandbox.rest("user.current", token=posted.form["AUTH_ID"]).json()["result"]["ID"] == "3"


# -- BX24.openPath: the side slider ----------------------------------------------------------

AURORA_DEAL = "Espresso machines for Aurora Bakery"
AURORA_INVOICE = "Aurora Bakery espresso machines, prepayment"
CLOSED = {"result": "close"}
REFUSED = {"result": "error", "errorCode": "PATH_NOT_AVAILABLE"}


def open_path(page: Any, path: str) -> None:
    """Have the framed app call ``BX24.openPath(path, callback)`` (a click, as a user would)."""
    frame = page.frame_locator('[data-testid="app-frame"]')
    frame.get_by_test_id("path").fill(path)
    frame.get_by_test_id("open-path").click()


def open_path_answers(page: Any, count: int) -> list[Any]:
    """Wait until the app's openPath callback ran ``count`` times and return its answers."""
    from playwright.sync_api import expect

    results = page.frame_locator('[data-testid="app-frame"]').get_by_test_id("open-path-results")
    expect(results.get_by_role("listitem")).to_have_count(count)
    return [json.loads(text) for text in results.get_by_role("listitem").all_text_contents()]


def test_open_path_shows_the_deal_card_in_a_side_slider_for_the_same_user_and_language(
    sandbox: Any, page: Any
) -> None:
    from playwright.sync_api import expect

    install(sandbox)
    page.goto(f"{sandbox.url}/marketplace/app/?user=2&lang=ru")
    bx24_state(page)

    open_path(page, "/crm/deal/details/1/")

    slider = page.get_by_role("dialog", name="Deal #1")
    expect(slider).to_be_visible()
    expect(slider).to_have_attribute("aria-modal", "true")
    expect(page.get_by_test_id("slider-close")).to_be_focused()
    # The page behind is shaded and out of reach while the slider is open.
    assert page.locator(".b24-layout").first.evaluate("layout => layout.inert") is True
    box = slider.bounding_box()
    assert box["x"] > 0 and box["x"] + box["width"] == 1280 and box["height"] == 860

    card = page.frame_locator('[data-testid="slider-frame"]')
    expect(card.locator('[data-field="title"]')).to_have_text(AURORA_DEAL)
    expect(card.get_by_test_id("card-tabs")).to_be_visible()
    # Inside the slider the card shows only its work area, for the user who is looking.
    expect(card.get_by_test_id("user-switcher")).to_have_count(0)
    expect(card.locator("body")).to_have_attribute("data-user", "2")
    expect(card.locator("body")).to_have_attribute("data-lang", "ru")
    src = page.get_by_test_id("slider-frame").get_attribute("src")
    path, _, query = src.partition("?")
    assert path == "/crm/deal/details/1/"
    assert dict(pair.split("=") for pair in query.split("&")) == {
        "IFRAME": "Y",
        "IFRAME_TYPE": "SIDE_SLIDER",
        "from": "rest_placement",
        "from_app": "1",
        "user": "2",
        "lang": "ru",
    }
    # The callback waits for the slider to close.
    expect(
        page.frame_locator('[data-testid="app-frame"]').get_by_test_id("open-path-results")
    ).to_be_empty()


def test_open_path_shows_a_smart_invoice_and_the_close_button_answers_close(
    sandbox: Any, page: Any
) -> None:
    from playwright.sync_api import expect

    install(sandbox)
    page.goto(f"{sandbox.url}/marketplace/app/?user=1")
    bx24_state(page)

    open_path(page, "/crm/type/31/details/1/")

    slider = page.get_by_role("dialog", name="Invoice #1")
    expect(slider).to_be_visible()
    card = page.frame_locator('[data-testid="slider-frame"]')
    expect(card.locator('[data-field="title"]')).to_have_text(AURORA_INVOICE)

    page.get_by_role("button", name="Close").click()
    expect(page.get_by_test_id("portal-slider")).to_have_count(0)
    assert open_path_answers(page, 1) == [CLOSED]
    assert page.locator(".b24-layout").first.evaluate("layout => layout.inert") is False


def test_open_path_refuses_the_order_card_and_paths_that_leave_the_list(
    sandbox: Any, page: Any
) -> None:
    from playwright.sync_api import expect

    install(sandbox)
    page.goto(f"{sandbox.url}/marketplace/app/?user=1")
    bx24_state(page)
    refused = [
        "/shop/orders/details/2/",  # the store's order card is not in Bitrix24's list
        "/crm/deal/../../shop/orders/details/2/",
        "/crm/deal/%2e%2e/%2e%2e/shop/orders/details/2/",
        "//evil.example/crm/deal/details/1/",
        "http://evil.example/crm/deal/details/1/",
        "crm/deal/details/1/",
        "/crm/dealer/details/1/",
    ]
    for count, path in enumerate(refused, start=1):
        open_path(page, path)
        assert open_path_answers(page, count)[-1] == REFUSED, path
    expect(page.get_by_test_id("portal-slider")).to_have_count(0)


def test_escape_closes_the_slider_answers_close_and_gives_focus_back(
    sandbox: Any, page: Any
) -> None:
    from playwright.sync_api import expect

    install(sandbox)
    page.goto(f"{sandbox.url}/marketplace/app/?user=1")
    bx24_state(page)

    open_path(page, "/crm/deal/details/1/")
    expect(page.get_by_role("dialog", name="Deal #1")).to_be_visible()
    page.keyboard.press("Escape")

    expect(page.get_by_test_id("portal-slider")).to_have_count(0)
    assert open_path_answers(page, 1) == [CLOSED]
    # Focus goes back to the app's frame (which element inside it is the app's to choose:
    # a page on another site cannot focus into it).
    expect(page.get_by_test_id("app-frame")).to_be_focused()

    # Escape works as well while the focus is in the page the slider shows. (The path is
    # written as b24jssdk sends it: a width hint before it, the slider mode after it.)
    open_path(page, "/crm/deal/../../crm/deal/details/2/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER")
    expect(page.get_by_role("dialog", name="Deal #2")).to_be_visible()
    src = page.get_by_test_id("slider-frame").get_attribute("src")
    assert src.startswith("/crm/deal/details/2/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER&from=")
    card = page.frame_locator('[data-testid="slider-frame"]')
    card.get_by_role("link", name="General").focus()
    expect(card.get_by_role("link", name="General")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("portal-slider")).to_have_count(0)
    assert open_path_answers(page, 2) == [CLOSED, CLOSED]


def test_an_app_in_a_card_inside_the_slider_stacks_another_slider(
    sandbox: Any, recording_app: RecordingApp, page: Any
) -> None:
    from playwright.sync_api import expect

    sandbox.rest(
        "placement.bind",
        {
            "PLACEMENT": "CRM_DEAL_DETAIL_TAB",
            "HANDLER": f"{recording_app.url}/tab",
            "TITLE": "Orders",
        },
    )
    install(sandbox)
    page.goto(f"{sandbox.url}/marketplace/app/?user=1")
    bx24_state(page)

    open_path(page, "/crm/deal/details/1/")
    card = page.frame_locator('[data-testid="slider-frame"]')
    card.get_by_test_id("app-tab").click()
    tab = card.frame_locator('[data-testid="app-frame"]')
    tab.locator('[data-testid="bx24-state"]').filter(has_not_text="waiting").wait_for()
    assert frame_posts(recording_app, "/tab")[-1].form["PLACEMENT"] == "CRM_DEAL_DETAIL_TAB"

    tab.get_by_test_id("path").fill("/crm/type/31/details/1/")
    tab.get_by_test_id("open-path").click()
    # The second slider opens on the top page, above the first, which is out of reach.
    sliders = page.get_by_test_id("portal-slider")
    expect(sliders).to_have_count(2)
    expect(page.get_by_role("dialog", name="Invoice #1")).to_be_visible()
    assert sliders.first.evaluate("slider => slider.inert") is True

    page.keyboard.press("Escape")
    expect(sliders).to_have_count(1)
    expect(tab.get_by_test_id("open-path-results").get_by_role("listitem")).to_have_text(
        [json.dumps(CLOSED, separators=(",", ":"))]
    )
    expect(page.get_by_role("dialog", name="Deal #1")).to_be_visible()
    page.keyboard.press("Escape")
    expect(sliders).to_have_count(0)
    assert open_path_answers(page, 1) == [CLOSED]
