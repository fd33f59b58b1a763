"""The official JS SDK (b24jssdk, vendored unchanged) runs against the sandbox portal's pages.

The test app on ``127.0.0.1`` answers every frame POST with a page that loads the SDK's
browser bundle, calls ``initializeB24Frame()`` and shows what the SDK reports; its buttons
call the SDK's frame methods. The portal page must answer them as a Bitrix24 page does
(the core's ``BX.rest.AppLayout``): init data, placement info, resizing the app's frame,
the slider for ``openPath`` and installFinish.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import fresh_page, needs_chromium
from tests.sandbox.b24jssdk_app import SdkTestApp, start_sdk_test_app

WAIT_MS = 10_000
FRAME = '[data-testid="app-frame"]'

pytestmark = [pytest.mark.e2e, needs_chromium]


@pytest.fixture(scope="module")
def sdk_app() -> Iterator[SdkTestApp]:
    """Serve the SDK test app for this module."""
    app = start_sdk_test_app()
    yield app
    app.stop()


@pytest.fixture
def sandbox_app_url(sdk_app: SdkTestApp) -> str:
    """Point the sandbox at the SDK test app."""
    sdk_app.posted.clear()
    return sdk_app.url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """Open a fresh browser page."""
    with fresh_page(browser, wait_ms=WAIT_MS, viewport={"width": 1280, "height": 860}) as opened:
        yield opened


def sdk_frame(page: Any) -> Any:
    """Return the app frame once the SDK's initializeB24Frame() has resolved in it."""
    frame = page.frame_locator(FRAME)
    status = frame.get_by_label("SDK status")
    status.filter(has_not_text="loading").wait_for()
    assert status.text_content() == "ready"
    return frame


def sdk_frame_name(page: Any) -> str:
    """Return the app iframe's name (``DOMAIN|PROTOCOL|APP_SID``)."""
    return page.locator(FRAME).get_attribute("name")


def init_data(frame: Any) -> dict[str, Any]:
    """Return what the SDK reported after its init."""
    return json.loads(frame.get_by_label("Init data").text_content())


def press(frame: Any, button: str, answer: str) -> Any:
    """Click one of the page's buttons and return the JSON answer it shows."""
    frame.get_by_role("button", name=button).click()
    shown = frame.get_by_label(answer)
    shown.filter(has_not_text="pending").wait_for()
    return json.loads(shown.text_content())


def frame_size(page: Any) -> dict[str, float]:
    """Return the app iframe's size as the portal page lays it out."""
    box = page.locator(FRAME).bounding_box()
    return {"width": box["width"], "height": box["height"]}


def open_path_answers(frame: Any, count: int) -> list[Any]:
    """Wait for ``count`` openPath answers and return them in order."""
    items = frame.get_by_label("Open path answers").get_by_role("listitem")
    items.nth(count - 1).wait_for()
    return [json.loads(text) for text in items.all_text_contents()]


def install(sandbox: Any) -> None:
    """Install the app through the control API."""
    assert sandbox.control("install")["installed"] is True


def test_init_on_the_app_page_reports_the_portal_the_user_and_a_working_token(
    sandbox: Any, page: Any
) -> None:
    install(sandbox)
    portal = sandbox.state()["portals"][0]

    page.goto(f"{sandbox.url}/marketplace/app/?user=2&lang=ru")
    frame = sdk_frame(page)
    data = init_data(frame)

    assert sdk_frame_name(page).endswith("|0|" + data["appSid"])
    assert data["targetOrigin"] == sandbox.url
    assert data["lang"] == "ru"
    assert data["memberId"] == portal["member_id"]
    assert data["auth"]["member_id"] == portal["member_id"]
    assert data["auth"]["expires_in"] == 3600
    assert data["isAdmin"] is False
    assert data["isInstallMode"] is False
    assert data["isFirstRun"] is False
    assert data["placement"] == "DEFAULT"
    assert data["isDefault"] is True
    assert data["placementOptions"] == {}
    token = data["auth"]["access_token"]
    assert sandbox.rest("user.current", token=token).json()["result"]["ID"] == "2"

    refreshed = press(frame, "Refresh auth", "Refreshed auth")
    assert refreshed["access_token"] != token
    assert refreshed["member_id"] == portal["member_id"]
    me = sandbox.rest("user.current", token=refreshed["access_token"]).json()
    assert me["result"]["ID"] == "2"

    # The SDK's own REST client (JSON posts, so the browser asks a CORS preflight first)
    # calls the portal with the frame's token.
    assert press(frame, "Call user.current", "REST answer")["ID"] == "2"

    # A frame of the app's own page has no placement-specific commands or events.
    assert press(frame, "Get interface", "Interface") == {"command": [], "event": []}
    # setTitle retitles the app's own page and answers with what it was given.
    assert press(frame, "Set title", "Title answer") == {"title": "Orders seen by the SDK"}
    assert page.get_by_role("heading", level=1).text_content() == "Orders seen by the SDK"


def test_a_deal_tab_gives_the_sdk_its_placement_and_options(sandbox: Any, page: Any) -> None:
    bound = sandbox.rest(
        "placement.bind",
        {
            "PLACEMENT": "CRM_DEAL_DETAIL_TAB",
            "HANDLER": f"{sandbox.state()['app_url']}/tab",
            "TITLE": "SDK",
        },
    ).json()
    assert bound["result"] is True
    install(sandbox)

    page.goto(f"{sandbox.url}/crm/deal/details/7/?user=1")
    page.get_by_role("link", name="SDK").click()
    frame = sdk_frame(page)
    data = init_data(frame)

    assert data["placement"] == "CRM_DEAL_DETAIL_TAB"
    assert data["isDefault"] is False
    assert data["placementOptions"] == {
        "ID": "7",
        "URI": "/crm/deal/details/7/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER",
    }
    assert data["isSliderMode"] is False
    assert data["isAdmin"] is True

    # A tab may resize its frame ...
    assert press(frame, "Resize window", "Resize answer") == {"width": 700, "height": 345}
    assert frame_size(page) == {"width": 700, "height": 345}
    # ... but not retitle the card: Bitrix24 leaves setTitle from a widget unanswered, so
    # the SDK settles it on its own timer.
    assert press(frame, "Set title", "Title answer") == {"isSafely": True}
    assert page.get_by_role("heading", level=1).text_content() == "Deal #7"


def test_fit_window_and_resize_window_change_the_portal_frame(sandbox: Any, page: Any) -> None:
    install(sandbox)
    page.goto(f"{sandbox.url}/marketplace/app/?user=1")
    frame = sdk_frame(page)
    full_width = frame_size(page)["width"]

    # resizeWindow(700, 345): the frame takes that size, the answer is the size it took.
    assert press(frame, "Resize window", "Resize answer") == {"width": 700, "height": 345}
    assert frame_size(page) == {"width": 700, "height": 345}

    # fitWindow: the full width again, and as tall as the content has grown.
    frame.get_by_role("button", name="Add rows").click()
    grown = press(frame, "Fit window", "Resize answer")
    assert grown["width"] == full_width
    assert grown["height"] > 40 * 24
    assert frame_size(page) == grown

    # The content shrinks: fitWindow measures the document's scroll height, which is never
    # less than the frame, so the frame keeps its height, as Bitrix24 documents it ...
    frame.get_by_role("button", name="Remove rows").click()
    assert press(frame, "Fit window", "Resize answer") == grown
    assert frame_size(page) == grown

    # ... while resizeWindow to the content's own size (resizeWindowAuto) shrinks it.
    fitted = press(frame, "Resize to content", "Resize answer")
    assert fitted["height"] < grown["height"] / 2
    assert frame_size(page) == fitted


def test_open_path_opens_the_slider_for_listed_pages_and_refuses_others(
    sandbox: Any, page: Any
) -> None:
    install(sandbox)
    page.goto(f"{sandbox.url}/marketplace/app/?user=1")
    frame = sdk_frame(page)

    frame.get_by_role("button", name="Open deal 1").click()
    slider = page.get_by_role("dialog", name="Deal #1")
    slider.wait_for()
    assert "/crm/deal/details/1/" in page.get_by_test_id("slider-frame").get_attribute("src")
    page.get_by_role("button", name="Close").click()
    slider.wait_for(state="detached")
    assert open_path_answers(frame, 1) == [{"isOpenAtNewWindow": False, "isClose": True}]

    # The store's order card is not a page Bitrix24 opens in the slider: the SDK's
    # openPath rejects with the portal's error code, and nothing opens.
    frame.get_by_role("button", name="Open order 1").click()
    assert open_path_answers(frame, 2)[1] == {"error": "PATH_NOT_AVAILABLE"}
    frame.get_by_role("button", name="Send openPath for order 1 as written").click()
    assert open_path_answers(frame, 3)[2] == {"result": "error", "errorCode": "PATH_NOT_AVAILABLE"}
    assert page.get_by_role("dialog").count() == 0


def test_install_finish_from_the_install_wizard_marks_the_app_installed(
    sandbox: Any, sdk_app: SdkTestApp, page: Any
) -> None:
    page.goto(f"{sandbox.url}/marketplace/install/?user=1")
    page.get_by_role("button", name="Install").click()
    frame = sdk_frame(page)
    data = init_data(frame)
    assert sdk_app.posted == ["/install"]
    assert data["isInstallMode"] is True
    # The first run: the SDK told the portal so (setInstall) and got its answer, or its
    # init would not have finished.
    assert data["isFirstRun"] is True
    assert data["isAdmin"] is True
    assert data["placement"] == "DEFAULT"
    assert sandbox.state()["portals"][0]["installed"] is False

    frame.get_by_role("button", name="Finish installation").click()
    page.get_by_text("The application has been installed.").wait_for()
    assert sandbox.state()["portals"][0]["installed"] is True

    # The portal then opens the installed app, no longer in install mode.
    page.wait_for_url("**/marketplace/app/?user=1")
    data = init_data(sdk_frame(page))
    assert data["isInstallMode"] is False
    assert data["isFirstRun"] is False
    assert sdk_app.posted == ["/install", "/app"]
