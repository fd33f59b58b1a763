"""The portal's web pages over HTTP: users, install wizard, app page, cards, frame launches."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

APP_URL = "http://127.0.0.1:9"  # nothing listens: the pages only render the launch form


@pytest.fixture
def sandbox_app_url() -> str:
    """The app URL the portal frames (its handlers are ``/app`` and ``/install``)."""
    return APP_URL


class PageParser(HTMLParser):
    """Collect the elements the tests look at: forms, inputs, iframes, test ids, links."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.iframes: list[dict[str, str]] = []
        self.testids: dict[str, list[dict[str, str]]] = {}
        self.links: list[dict[str, str]] = []
        self.init_data: list[str] = []
        self._in_init = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record one opening tag."""
        found = {name: value or "" for name, value in attrs}
        if "data-testid" in found:
            self.testids.setdefault(found["data-testid"], []).append(found)
        if tag == "form":
            self.forms.append({**found, "fields": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][found.get("name", "")] = found.get("value", "")
        elif tag == "iframe":
            self.iframes.append(found)
        elif tag == "a":
            self.links.append(found)
        elif tag == "script" and "data-frame-init" in found:
            self._in_init = True

    def handle_endtag(self, tag: str) -> None:
        """Close the init-data script."""
        if tag == "script":
            self._in_init = False

    def handle_data(self, data: str) -> None:
        """Keep the frame's init data."""
        if self._in_init:
            self.init_data.append(data)


def parse(response: httpx.Response) -> PageParser:
    """Parse a portal page."""
    parser = PageParser()
    parser.feed(response.text)
    return parser


def launch_form(page: PageParser) -> dict[str, Any]:
    """Return the page's frame launch form (the one aimed at the iframe)."""
    forms = [f for f in page.forms if "data-frame-form" in f]
    assert len(forms) == 1, "expected exactly one frame launch form"
    return forms[0]


def get(sandbox: Any, path: str, portal: int = 1) -> httpx.Response:
    """GET a portal page."""
    return sandbox.http.get(f"{sandbox.portal_url(portal - 1)}{path}")


def post(sandbox: Any, path: str) -> httpx.Response:
    """POST to a portal page (forms have no CSRF token: users are picked by ``?user=``)."""
    return sandbox.http.post(f"{sandbox.url}{path}")


def bind_tab(sandbox: Any, placement: str, handler: str, title: str) -> None:
    """Bind an app handler to a placement the way the app's installer does."""
    answer = sandbox.rest(
        "placement.bind", {"PLACEMENT": placement, "HANDLER": handler, "TITLE": title}
    ).json()
    assert answer["result"] is True


def portal_state(sandbox: Any) -> dict[str, Any]:
    """Return the first portal's entry of ``/_sandbox/state``."""
    return sandbox.state()["portals"][0]


def finish_install(sandbox: Any, app_sid: str) -> httpx.Response:
    """Call the page's installFinish endpoint as the page script does."""
    return sandbox.http.post(
        f"{sandbox.url}/marketplace/install/finish/", json={"APP_SID": app_sid}
    )


def install(sandbox: Any) -> None:
    """Install the app through the wizard: start it, then installFinish from its frame."""
    target = launch_form(parse(post(sandbox, "/marketplace/install/?user=1")))["target"]
    assert finish_install(sandbox, target.split("|")[2]).status_code == 200


# -- users ----------------------------------------------------------------------------------


def test_home_names_the_portal_and_switches_between_the_three_users(sandbox: Any) -> None:
    response = get(sandbox, "/?user=2")
    assert response.status_code == 200
    state = portal_state(sandbox)
    assert state["domain"] in response.text
    page = parse(response)
    switch = [a for a in page.links if "data-user" in a]
    assert [a["data-user"] for a in switch] == ["1", "2", "3"]
    assert [a["data-user"] for a in switch if a.get("aria-current") == "true"] == ["2"]
    assert all(parse_qs(urlsplit(a["href"]).query)["user"] == [a["data-user"]] for a in switch)
    assert "Mark Manager" in response.text


def test_the_switcher_keeps_the_page_and_its_tab(sandbox: Any) -> None:
    page = parse(get(sandbox, "/crm/deal/details/3/?user=1&tab=general"))
    to_eva = next(a for a in page.links if a.get("data-user") == "3")
    assert urlsplit(to_eva["href"]).path == "/crm/deal/details/3/"
    assert parse_qs(urlsplit(to_eva["href"]).query) == {"user": ["3"], "tab": ["general"]}


def test_the_default_user_is_the_admin_and_unknown_users_are_not_found(sandbox: Any) -> None:
    page = parse(get(sandbox, "/"))
    current = [a for a in page.links if a.get("aria-current") == "true" and "data-user" in a]
    assert [a["data-user"] for a in current] == ["1"]
    assert get(sandbox, "/?user=9").status_code == 404
    assert get(sandbox, "/?user=admin").status_code == 404


def test_home_lists_recent_records_and_hides_orders_from_employees(sandbox: Any) -> None:
    admin = parse(get(sandbox, "/?user=1"))
    assert "recent-orders" in admin.testids
    assert any(a["href"].startswith("/shop/orders/details/") for a in admin.links)
    assert any(a["href"].startswith("/crm/deal/details/") for a in admin.links)
    assert any(a["href"].startswith("/crm/type/31/details/") for a in admin.links)
    employee = get(sandbox, "/?user=3")
    assert "recent-orders" not in parse(employee).testids
    assert "no access to online store orders" in employee.text


# -- install --------------------------------------------------------------------------------


def test_only_the_admin_sees_the_install_button(sandbox: Any) -> None:
    admin = parse(get(sandbox, "/?user=1"))
    assert admin.testids["install-state"][0]["data-state"] == "absent"
    assert admin.testids["install-button"][0]["href"] == "/marketplace/install/?user=1"
    assert "install-button" not in parse(get(sandbox, "/?user=2")).testids


@pytest.mark.parametrize("user", [2, 3])
def test_non_admins_cannot_install(sandbox: Any, user: int) -> None:
    for response in (
        get(sandbox, f"/marketplace/install/?user={user}"),
        post(sandbox, f"/marketplace/install/?user={user}"),
    ):
        assert response.status_code == 403
        assert "Only a Bitrix24 administrator can install applications" in response.text
        assert not parse(response).iframes
    assert portal_state(sandbox)["install_started"] is False


def test_the_wizard_asks_before_it_starts_installing(sandbox: Any) -> None:
    response = get(sandbox, "/marketplace/install/?user=1")
    assert response.status_code == 200
    assert "install-confirm" in parse(response).testids
    assert not parse(response).iframes
    assert portal_state(sandbox)["install_started"] is False


def test_installing_frames_the_installer_with_a_fresh_admin_token(sandbox: Any) -> None:
    response = post(sandbox, "/marketplace/install/?user=1")
    assert response.status_code == 200
    state = portal_state(sandbox)
    assert state["install_started"] is True
    assert state["installed"] is False

    page = parse(response)
    form = launch_form(page)
    action = urlsplit(form["action"])
    query = {k: v[0] for k, v in parse_qs(action.query).items()}
    assert f"{action.scheme}://{action.netloc}{action.path}" == f"{APP_URL}/install"
    assert query["DOMAIN"] == state["domain"]
    assert query["PROTOCOL"] == "0"
    assert query["LANG"] == "en"
    assert re.fullmatch(r"[0-9a-f]{32}", query["APP_SID"])
    assert form["method"] == "post"
    iframe = page.iframes[0]
    assert iframe["data-testid"] == "app-frame"
    assert form["target"] == iframe["name"] == f"{state['domain']}|0|{query['APP_SID']}"

    fields = form["fields"]
    assert fields["PLACEMENT"] == "DEFAULT"
    assert "PLACEMENT_OPTIONS" not in fields  # the main page gets none, as documented
    assert fields["AUTH_EXPIRES"] == "3600"
    assert fields["SERVER_ENDPOINT"] == f"{sandbox.oauth_url}/rest/"
    assert fields["APPLICATION_TOKEN"] == state["application_token"]
    assert fields["APPLICATION_SCOPE"] == sandbox.state()["scope"]
    assert fields["member_id"] == state["member_id"]
    assert fields["status"] == "L"
    me = sandbox.rest("user.current", token=fields["AUTH_ID"]).json()["result"]
    assert me["ID"] == "1"

    init = json.loads(page.init_data[0])
    assert init["INSTALL"] is True
    assert init["IS_ADMIN"] is True
    assert init["APP_SID"] == query["APP_SID"]
    assert init["AUTH_ID"] == fields["AUTH_ID"]


def test_install_finish_from_the_installer_frame_marks_the_app_installed(sandbox: Any) -> None:
    app_sid = launch_form(parse(post(sandbox, "/marketplace/install/?user=1")))["target"]
    response = finish_install(sandbox, app_sid.split("|")[2])
    assert response.status_code == 200
    assert response.json()["result"] is True
    assert portal_state(sandbox)["installed"] is True
    home = parse(get(sandbox, "/?user=2"))
    assert home.testids["install-state"][0]["data-state"] == "installed"


def test_install_finish_refuses_unknown_frames_and_non_installers(sandbox: Any) -> None:
    assert finish_install(sandbox, "0" * 32).status_code == 403
    # A plain form post (no JSON) is refused too: the page script always sends JSON.
    plain = sandbox.http.post(f"{sandbox.url}/marketplace/install/finish/", data={"APP_SID": "x"})
    assert plain.status_code == 403
    # The app's main page is no installer, even for the admin.
    install(sandbox)
    app_frame = launch_form(parse(get(sandbox, "/marketplace/app/?user=1")))["target"]
    sandbox.control("uninstall", {"clean": 0})
    assert finish_install(sandbox, app_frame.split("|")[2]).status_code == 403
    assert portal_state(sandbox)["install_started"] is False


def test_an_installer_frame_of_one_portal_cannot_finish_another(sandbox: Any) -> None:
    app_sid = launch_form(parse(post(sandbox, "/marketplace/install/?user=1")))["target"]
    other = sandbox.http.post(
        f"{sandbox.portal_url(1)}/marketplace/install/finish/",
        json={"APP_SID": app_sid.split("|")[2]},
    )
    assert other.status_code == 403
    assert portal_state(sandbox)["installed"] is False


# -- the app page ---------------------------------------------------------------------------


def test_the_app_page_of_an_absent_app_is_not_found(sandbox: Any) -> None:
    admin = get(sandbox, "/marketplace/app/?user=1")
    assert admin.status_code == 404
    assert parse(admin).testids["message-action"][0]["href"] == "/marketplace/install/?user=1"
    employee = get(sandbox, "/marketplace/app/?user=3")
    assert employee.status_code == 404
    assert "message-action" not in parse(employee).testids


def test_an_unfinished_install_blocks_users_and_shows_the_admin_the_installer(
    sandbox: Any,
) -> None:
    post(sandbox, "/marketplace/install/?user=1")
    blocked = get(sandbox, "/marketplace/app/?user=2")
    assert blocked.status_code == 403
    assert "The application is not fully installed yet" in blocked.text
    assert not parse(blocked).iframes
    admin = parse(get(sandbox, "/marketplace/app/?user=1"))
    assert urlsplit(launch_form(admin)["action"]).path == "/install"
    assert json.loads(admin.init_data[0])["INSTALL"] is True


def test_the_installed_app_page_frames_the_handler_for_the_viewing_user(sandbox: Any) -> None:
    install(sandbox)
    response = get(sandbox, "/marketplace/app/?user=3")
    assert response.status_code == 200
    page = parse(response)
    form = launch_form(page)
    assert form["action"].startswith(f"{APP_URL}/app?DOMAIN=")
    assert form["fields"]["PLACEMENT"] == "DEFAULT"
    me = sandbox.rest("user.current", token=form["fields"]["AUTH_ID"]).json()["result"]
    assert me["ID"] == "3"
    init = json.loads(page.init_data[0])
    assert init["IS_ADMIN"] is False
    assert init["INSTALL"] is False
    assert init["PLACEMENT_OPTIONS"] == {}


def test_every_render_launches_a_new_frame_session(sandbox: Any) -> None:
    install(sandbox)
    first = launch_form(parse(get(sandbox, "/marketplace/app/?user=1")))
    second = launch_form(parse(get(sandbox, "/marketplace/app/?user=1")))
    assert first["target"] != second["target"]
    assert first["fields"]["AUTH_ID"] != second["fields"]["AUTH_ID"]


def test_refresh_auth_issues_working_tokens_for_the_frame_user(sandbox: Any) -> None:
    install(sandbox)
    form = launch_form(parse(get(sandbox, "/marketplace/app/?user=2")))
    response = sandbox.http.post(
        f"{sandbox.url}/marketplace/frame/refresh/", json={"APP_SID": form["target"][-32:]}
    )
    assert response.status_code == 200
    auth = response.json()
    assert set(auth) == {"AUTH_ID", "REFRESH_ID", "AUTH_EXPIRES"}
    assert auth["AUTH_ID"] != form["fields"]["AUTH_ID"]
    assert sandbox.rest("user.current", token=auth["AUTH_ID"]).json()["result"]["ID"] == "2"
    unknown = sandbox.http.post(f"{sandbox.url}/marketplace/frame/refresh/", json={"APP_SID": "x"})
    assert unknown.status_code == 403


def test_frames_of_an_uninstalled_app_can_neither_refresh_nor_finish(sandbox: Any) -> None:
    installer = launch_form(parse(post(sandbox, "/marketplace/install/?user=1")))["target"]
    sandbox.control("uninstall", {"clean": 0})
    app_sid = installer.split("|")[2]
    refresh = sandbox.http.post(
        f"{sandbox.url}/marketplace/frame/refresh/", json={"APP_SID": app_sid}
    )
    assert refresh.status_code == 403
    assert finish_install(sandbox, app_sid).status_code == 403
    assert portal_state(sandbox)["install_started"] is False


# -- cards ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/crm/deal/details/{id}/", "/shop/orders/details/{id}/", "/crm/type/31/details/{id}/"],
)
def test_cards_show_their_entity_and_missing_ones_are_not_found(sandbox: Any, path: str) -> None:
    response = get(sandbox, path.format(id=1))
    assert response.status_code == 200
    assert "entity-fields" in parse(response).testids
    missing = get(sandbox, path.format(id=999999))
    assert missing.status_code == 404
    assert "999999 was not found" in missing.text


def test_the_deal_card_shows_the_deal_and_its_bound_orders(sandbox: Any) -> None:
    deal = sandbox.rest("crm.item.list", {"entityTypeId": 2, "filter": {"id": 1}}).json()
    bound = sandbox.rest(
        "crm.orderentity.add", {"fields": {"orderId": 11, "ownerTypeId": 2, "ownerId": 1}}
    ).json()
    assert bound["result"]["dealOrder"]["orderId"] == 11
    order = sandbox.rest("sale.order.get", {"id": 11}).json()["result"]["order"]
    response = get(sandbox, "/crm/deal/details/1/")
    assert deal["result"]["items"][0]["title"] in response.text
    assert f"Order {order['accountNumber']}" in response.text
    order_card = get(sandbox, "/shop/orders/details/11/")
    assert 'href="/crm/deal/details/1/?user=1"' in order_card.text


@pytest.mark.parametrize("path", ["/crm/deal/details/{id}/", "/crm/type/31/details/{id}/"])
@pytest.mark.parametrize(
    ("entity_id", "raw", "escaped"),
    [
        (3, "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        (4, "<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    ],
)
def test_cards_show_hostile_titles_as_text(
    sandbox: Any, path: str, entity_id: int, raw: str, escaped: str
) -> None:
    response = get(sandbox, path.format(id=entity_id))
    assert escaped in response.text and raw not in response.text


def test_employees_without_store_access_cannot_open_order_cards(sandbox: Any) -> None:
    response = get(sandbox, "/shop/orders/details/1/?user=3")
    assert response.status_code == 403
    assert "no access to online store orders" in response.text
    assert get(sandbox, "/shop/orders/details/1/?user=2").status_code == 200


def test_tabs_stay_hidden_until_the_install_is_finished(sandbox: Any) -> None:
    post(sandbox, "/marketplace/install/?user=1")
    bind_tab(sandbox, "CRM_DEAL_DETAIL_TAB", f"{APP_URL}/deal-tab", "Orders")
    for user in (1, 2):
        page = parse(get(sandbox, f"/crm/deal/details/2/?user={user}"))
        assert "app-tab" not in page.testids
    assert get(sandbox, "/crm/deal/details/2/?user=1&tab=app-1").status_code == 404


@pytest.mark.parametrize(
    ("placement", "path", "entity_id"),
    [
        ("CRM_DEAL_DETAIL_TAB", "/crm/deal/details/{id}/", 5),
        ("CRM_ORDER_DETAIL_TAB", "/shop/orders/details/{id}/", 6),
        ("CRM_SMART_INVOICE_DETAIL_TAB", "/crm/type/31/details/{id}/", 3),
    ],
)
def test_a_card_tab_frames_its_handler_with_the_placement_and_entity_id(
    sandbox: Any, placement: str, path: str, entity_id: int
) -> None:
    bind_tab(sandbox, placement, f"{APP_URL}/app", "Order binding")
    install(sandbox)
    card_path = path.format(id=entity_id)

    general = parse(get(sandbox, f"{card_path}?user=2"))
    tabs = general.testids["app-tab"]
    assert len(tabs) == 1
    assert not general.iframes

    page = parse(get(sandbox, f"{card_path}?user=2&tab={tabs[0]['data-tab']}"))
    form = launch_form(page)
    assert form["action"].startswith(f"{APP_URL}/app?DOMAIN=")
    assert form["fields"]["PLACEMENT"] == placement
    raw = form["fields"]["PLACEMENT_OPTIONS"]
    options = json.loads(raw)
    # Exactly the keys the detail-tab page prints: ID as a string, and the card's URI as the
    # slider opens it; no entity type (PLACEMENT tells it). Slashes escaped, as PHP encodes.
    assert options == {
        "ID": str(entity_id),
        "URI": f"{card_path}?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER",
    }
    assert raw == json.dumps(options, separators=(",", ":")).replace("/", "\\/")
    assert form["target"] == page.iframes[0]["name"]
    init = json.loads(page.init_data[0])
    assert init["PLACEMENT"] == placement
    assert init["PLACEMENT_OPTIONS"] == options


def test_cards_show_only_the_tabs_bound_to_their_placement(sandbox: Any) -> None:
    bind_tab(sandbox, "CRM_DEAL_DETAIL_TAB", f"{APP_URL}/app", "Orders")
    bind_tab(sandbox, "CRM_DEAL_DETAIL_TAB", f"{APP_URL}/app?second=1", "More orders")
    install(sandbox)
    deal = get(sandbox, "/crm/deal/details/1/")
    assert [t["data-tab"] for t in parse(deal).testids["app-tab"]] == ["app-1", "app-2"]
    assert "More orders" in deal.text
    assert "app-tab" not in parse(get(sandbox, "/crm/type/31/details/1/")).testids
    second = launch_form(parse(get(sandbox, "/crm/deal/details/1/?tab=app-2")))
    assert second["action"].startswith(f"{APP_URL}/app?second=1&DOMAIN=")


# -- interface language ---------------------------------------------------------------------


def query_of(href: str) -> dict[str, list[str]]:
    """Return the query values of a link."""
    return parse_qs(urlsplit(href).query)


def test_the_language_switch_marks_the_current_language(sandbox: Any) -> None:
    default = parse(get(sandbox, "/"))
    langs = [a for a in default.links if "data-lang" in a]
    assert [a["data-lang"] for a in langs] == ["en", "ru"]
    assert [a["data-lang"] for a in langs if a.get("aria-current") == "true"] == ["en"]
    russian = get(sandbox, "/?lang=ru")
    assert '<html lang="ru">' in russian.text
    langs = [a for a in parse(russian).links if "data-lang" in a]
    assert [a["data-lang"] for a in langs if a.get("aria-current") == "true"] == ["ru"]
    # Any other value is the default language.
    assert '<html lang="en">' in get(sandbox, "/?lang=xx").text


def test_switching_language_keeps_the_page_the_user_and_the_tab(sandbox: Any) -> None:
    page = parse(get(sandbox, "/crm/deal/details/3/?user=2&tab=general"))
    to_ru = next(a for a in page.links if a.get("data-lang") == "ru")
    assert urlsplit(to_ru["href"]).path == "/crm/deal/details/3/"
    assert query_of(to_ru["href"]) == {"user": ["2"], "tab": ["general"], "lang": ["ru"]}
    russian = parse(get(sandbox, "/crm/deal/details/3/?user=2&lang=ru"))
    to_eva = next(a for a in russian.links if a.get("data-user") == "3")
    assert query_of(to_eva["href"]) == {"user": ["3"], "lang": ["ru"]}


def test_links_between_pages_keep_user_and_language(sandbox: Any) -> None:
    bind_tab(sandbox, "CRM_DEAL_DETAIL_TAB", f"{APP_URL}/app", "Orders")
    install(sandbox)
    for path in ("/", "/crm/deal/details/1/", "/marketplace/install/"):
        page = parse(get(sandbox, f"{path}?user=2&lang=ru"))
        inner = [
            a["href"]
            for a in page.links
            if a.get("href", "").startswith("/") and "data-user" not in a and "data-lang" not in a
        ]
        assert inner, path
        for href in inner:
            assert query_of(href).get("user") == ["2"], href
            assert query_of(href).get("lang") == ["ru"], href


def test_a_card_in_the_slider_shows_only_its_work_area_and_links_stay_in_the_slider(
    sandbox: Any,
) -> None:
    bind_tab(sandbox, "CRM_DEAL_DETAIL_TAB", f"{APP_URL}/app", "Orders")
    install(sandbox)
    query = "IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER&from=rest_placement&from_app=1&user=2&lang=ru"
    response = get(sandbox, f"/crm/deal/details/1/?{query}")
    assert response.status_code == 200
    page = parse(response)
    assert "user-switcher" not in page.testids
    assert "menu-app" not in page.testids
    assert 'data-user="2" data-lang="ru" data-app-id="1"' in response.text
    tabs = [a for a in page.links if "data-tab" in a]
    assert [a["data-tab"] for a in tabs] == ["general", "app-1"]
    for link in tabs:
        values = query_of(link["href"])
        assert values["IFRAME"] == ["Y"] and values["IFRAME_TYPE"] == ["SIDE_SLIDER"]
        assert values["user"] == ["2"] and values["lang"] == ["ru"]
        assert "from" not in values
    # Outside the slider the same card has the portal's menu and header.
    whole = parse(get(sandbox, "/crm/deal/details/1/?user=2"))
    assert "user-switcher" in whole.testids and "menu-app" in whole.testids
    assert all("IFRAME" not in query_of(a["href"]) for a in whole.links if "data-tab" in a)


def test_the_app_page_frames_the_app_in_the_portal_language(sandbox: Any) -> None:
    install(sandbox)
    for lang in ("ru", "en"):
        page = parse(get(sandbox, f"/marketplace/app/?user=3&lang={lang}"))
        form = launch_form(page)
        assert query_of(form["action"])["LANG"] == [lang]
        assert json.loads(page.init_data[0])["LANG"] == lang
        assert form["fields"]["PLACEMENT"] == "DEFAULT"
        assert "PLACEMENT_OPTIONS" not in form["fields"]
    default = launch_form(parse(get(sandbox, "/marketplace/app/?user=3")))
    assert query_of(default["action"])["LANG"] == ["en"]


def test_the_installer_and_card_tabs_get_the_language_too(sandbox: Any) -> None:
    installer = launch_form(parse(post(sandbox, "/marketplace/install/?user=1&lang=ru")))
    assert query_of(installer["action"])["LANG"] == ["ru"]
    assert "PLACEMENT_OPTIONS" not in installer["fields"]
    assert finish_install(sandbox, installer["target"].split("|")[2]).status_code == 200
    answer = sandbox.rest(
        "placement.bind",
        {
            "PLACEMENT": "CRM_ORDER_DETAIL_TAB",
            "HANDLER": f"{APP_URL}/app",
            "TITLE": "Binding",
            "LANG_ALL": {"en": {"TITLE": "Deal binding"}, "ru": {"TITLE": "Привязка к сделке"}},
        },
    ).json()
    assert answer["result"] is True
    general = get(sandbox, "/shop/orders/details/4/?user=2&lang=ru")
    assert "Привязка к сделке" in general.text
    assert "Deal binding" in get(sandbox, "/shop/orders/details/4/?user=2").text
    tab = launch_form(parse(get(sandbox, "/shop/orders/details/4/?user=2&lang=ru&tab=app-1")))
    assert query_of(tab["action"])["LANG"] == ["ru"]
    assert json.loads(tab["fields"]["PLACEMENT_OPTIONS"]) == {
        "ID": "4",
        "URI": "/shop/orders/details/4/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER",
    }


# -- BX24.js --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/", "/bx24.js"])
def test_bx24_js_is_served_as_a_script(sandbox: Any, path: str) -> None:
    response = get(sandbox, path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "window.BX24 = {" in response.text
    for name in (
        "installFinish",
        "fitWindow",
        "resizeWindow",
        "getAuth",
        "refreshAuth",
        "openPath",
    ):
        assert f"{name}:" in response.text


def test_rest_answers_can_be_read_by_a_framed_app_on_another_origin(sandbox: Any) -> None:
    response = sandbox.rest("user.current", user_id=1)
    assert response.headers["access-control-allow-origin"] == "*"
