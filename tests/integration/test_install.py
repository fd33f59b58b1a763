"""Installing and uninstalling through the sandbox portal, over real HTTP."""

from sqlalchemy import func, select

from b24app.crypto import cipher
from b24app.extensions import db
from b24app.models import BindingRecord, Portal, UserToken
from b24app.services.gateway import gateway
from b24app.services.tokens import installer_token_source

TABS = {"CRM_DEAL_DETAIL_TAB", "CRM_ORDER_DETAIL_TAB", "CRM_SMART_INVOICE_DETAIL_TAB"}


def count(app, model, **where):
    """Count rows of ``model`` matching ``where``."""
    with app.app_context():
        query = select(func.count()).select_from(model).filter_by(**where)
        return db.session.scalar(query)


def stored_portal(app):
    """Return the only stored portal (detached)."""
    with app.app_context():
        portal = db.session.scalars(select(Portal)).one()
        db.session.expunge(portal)
        return portal


def add_history(app, portal_id, rows=3):
    """Record some bind attempts for the portal."""
    with app.app_context():
        for order_id in range(1, rows + 1):
            db.session.add(
                BindingRecord(
                    portal_id=portal_id,
                    user_id=1,
                    order_id=order_id,
                    owner_type_id=2,
                    owner_id=7,
                    action="bind",
                    outcome="bound",
                )
            )
        db.session.commit()


def test_install_stores_portal_and_binds_tabs_and_uninstall_event(app, portal24, app_server):
    result = portal24.install()

    assert result["installed"] is True
    assert result["install_page"]["status"] == 200
    assert [e["status"] for e in result["events"]] == [200]
    state = portal24.state()
    assert {p["placement"] for p in state["placements"]} == TABS
    assert {p["handler"] for p in state["placements"]} == {f"{app_server.url}/app"}
    titles = {p["placement"]: p["langAll"]["ru"]["TITLE"] for p in state["placements"]}
    assert titles["CRM_DEAL_DETAIL_TAB"] == "Заказы магазина"
    assert [(e["event"], e["handler"]) for e in state["event_handlers"]] == [
        ("ONAPPUNINSTALL", f"{app_server.url}/events")
    ]
    portal = stored_portal(app)
    assert portal.member_id == state["member_id"]
    assert portal.is_installed
    assert portal.installer_user_id == 1
    assert portal.client_endpoint == state["client_endpoint"]
    with app.app_context():
        assert cipher().decrypt(portal.application_token_encrypted) == state["application_token"]
        token = db.session.scalars(select(UserToken)).one()
        assert (token.portal_id, token.user_id) == (portal.id, 1)
        assert token.access_token_encrypted.startswith("gAAAA")


def test_install_page_answers_with_install_finish_and_portal_framing(app, portal24, sandbox):
    response = portal24.frame_post("/install", user_id=1)

    assert response.status_code == 200
    assert "js/install.js" in response.text
    assert f'src="{sandbox.url}/bx24.js"' in response.text
    csp = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors {sandbox.url}" in csp
    assert "X-Frame-Options" not in response.headers
    assert "set-cookie" not in response.headers


def test_reinstall_is_idempotent(app, portal24):
    portal24.install()
    before = portal24.sandbox.calls()["counts"]
    portal24.install()
    portal24.install()

    state = portal24.state()
    assert len(state["placements"]) == 3
    assert len(state["event_handlers"]) == 1
    after = portal24.sandbox.calls()["counts"]
    # The handlers are read again, never bound twice.
    assert after.get("placement.bind", 0) == before.get("placement.bind", 0)
    assert after.get("event.bind", 0) == before.get("event.bind", 0)
    assert count(app, Portal) == 1
    assert count(app, UserToken) == 1


def test_onappinstall_on_events_url_installs_too(app, portal24, app_server):
    tokens = portal24.token(1)
    application_token = portal24.state()["application_token"]
    response = portal24.event(
        "/events",
        {
            "event": "ONAPPINSTALL",
            "data": {"VERSION": 1, "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"},
            "ts": 1,
            "auth": {
                "access_token": tokens["access_token"],
                "expires_in": tokens["expires_in"],
                "scope": tokens["scope"],
                "domain": tokens["client_endpoint"].split("/")[2],
                "server_endpoint": tokens["server_endpoint"],
                "status": tokens["status"],
                "client_endpoint": tokens["client_endpoint"],
                "member_id": tokens["member_id"],
                "refresh_token": tokens["refresh_token"],
                "application_token": application_token,
            },
        },
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"result": True}
    portal = stored_portal(app)
    assert portal.is_installed
    with app.app_context():
        assert cipher().decrypt(portal.application_token_encrypted) == application_token
    assert len(portal24.state()["placements"]) == 3


def test_non_admin_installer_gets_a_clear_page_and_nothing_is_stored(app, portal24):
    response = portal24.frame_post("/install", user_id=2)

    assert response.status_code == 403
    assert "Only a Bitrix24 administrator can install this app" in response.text
    assert count(app, Portal) == 0
    assert count(app, UserToken) == 0
    assert portal24.state()["placements"] == []
    assert "placement.bind" not in portal24.sandbox.calls()["counts"]


def test_install_page_in_russian(app, portal24):
    response = portal24.frame_post("/install", user_id=3, lang="ru")

    assert response.status_code == 403
    assert 'lang="ru"' in response.text
    assert "Установить приложение может только администратор" in response.text


def test_uninstall_deletes_tokens_and_marks_portal_but_keeps_history(app, portal24):
    portal24.install()
    portal24.session(user_id=2)
    portal_id = stored_portal(app).id
    add_history(app, portal_id)
    assert count(app, UserToken) == 2

    result = portal24.uninstall(clean=0)

    assert [e["status"] for e in result["events"]] == [200]
    portal = stored_portal(app)
    assert not portal.is_installed
    assert portal.uninstalled_at is not None
    assert count(app, UserToken) == 0
    assert count(app, BindingRecord, portal_id=portal_id) == 3
    state = portal24.state()
    assert state["placements"] == [] and state["event_handlers"] == []


def test_uninstall_with_clean_removes_history(app, portal24):
    portal24.install()
    portal_id = stored_portal(app).id
    add_history(app, portal_id)

    portal24.uninstall(clean=1)

    assert count(app, BindingRecord) == 0
    assert count(app, UserToken) == 0
    assert not stored_portal(app).is_installed


def uninstall_event(state, application_token, clean=0):
    """Build an ONAPPUNINSTALL delivery as Bitrix24 sends it."""
    return {
        "event": "ONAPPUNINSTALL",
        "event_handler_id": "1",
        "data": {"LANGUAGE_ID": "en", "CLEAN": clean},
        "ts": 1,
        "auth": {
            "domain": state["domain"],
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "client_endpoint": state["client_endpoint"],
            "member_id": state["member_id"],
            "application_token": application_token,
        },
    }


def test_repeated_uninstall_delivery_is_harmless(app, portal24):
    portal24.install()
    state = portal24.state()
    portal24.uninstall()
    first = stored_portal(app).uninstalled_at

    again = portal24.event("/events", uninstall_event(state, state["application_token"]))

    assert again.status_code == 200
    assert stored_portal(app).uninstalled_at == first
    assert count(app, UserToken) == 0


def test_uninstall_with_wrong_application_token_changes_nothing(app, portal24):
    portal24.install()
    portal24.session(user_id=3)
    state = portal24.state()
    add_history(app, stored_portal(app).id)

    wrong = state["application_token"][:-1] + (
        "0" if state["application_token"][-1] != "0" else "1"
    )
    for token in (wrong, "", "x"):
        response = portal24.event("/events", uninstall_event(state, token, clean=1))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "event_forbidden"

    assert stored_portal(app).is_installed
    assert count(app, UserToken) == 2
    assert count(app, BindingRecord) == 3


def test_uninstall_for_unknown_member_is_refused(app, portal24):
    portal24.install()
    state = dict(portal24.state(), member_id="0" * 32)

    response = portal24.event("/events", uninstall_event(state, "whatever-token-value"))

    assert response.status_code == 403
    assert stored_portal(app).is_installed


def test_other_events_and_malformed_deliveries_are_refused(app, portal24):
    portal24.install()
    state = portal24.state()

    other = uninstall_event(state, state["application_token"])
    other["event"] = "ONCRMDEALADD"
    assert portal24.event("/events", other).status_code == 400
    assert portal24.event("/events", {"auth": {"member_id": "x"}}).status_code == 400
    assert stored_portal(app).is_installed


def test_reinstall_after_uninstall_stores_the_new_application_token(app, portal24):
    portal24.install()
    portal24.uninstall()
    portal24.install()

    state = portal24.state()
    portal = stored_portal(app)
    assert portal.is_installed
    with app.app_context():
        assert cipher().decrypt(portal.application_token_encrypted) == state["application_token"]
    assert count(app, Portal) == 1


def test_installer_token_serves_portal_level_calls(app, portal24):
    portal24.install()

    with app.app_context():
        portal = db.session.scalars(select(Portal)).one()
        answer = gateway().rest.call(installer_token_source(portal), "user.admin")

    assert answer.result is True


def test_a_moved_portal_is_followed_and_its_new_address_stored(app, portal24, sandbox):
    portal24.install()
    before = stored_portal(app)
    port = before.client_endpoint.split(":")[2].split("/")[0]
    new_endpoint = f"http://127.0.0.1:{port}/rest/"
    sandbox.control(
        "faults", {"method": "user.admin", "count": 1, "status": 302, "location": new_endpoint}
    )

    with app.app_context():
        portal = db.session.scalars(select(Portal)).one()
        answer = gateway().rest.call(installer_token_source(portal), "user.admin")

    assert answer.result is True
    after = stored_portal(app)
    assert before.client_endpoint != new_endpoint
    assert after.client_endpoint == new_endpoint
    assert after.domain == f"127.0.0.1:{port}"
