"""Install and uninstall: what the app receives, and what the portal keeps afterwards."""

from __future__ import annotations

import pytest

from tests.log_audit import request_lines_unlogged
from tests.sandbox.receiver import Receiver


@pytest.fixture
def sandbox_app_url(receiver: Receiver) -> str:
    """Point the sandbox at the receiver."""
    return receiver.url


def test_install_posts_the_install_page_as_bitrix24_frames_it(sandbox, receiver):
    summary = sandbox.control("install")
    assert summary["installed"] is True
    assert summary["install_page"]["status"] == 200
    page = receiver.at("/install")[0]
    portal = sandbox.state()["portals"][0]
    assert page.content_type == "application/x-www-form-urlencoded"
    assert page.query["DOMAIN"] == portal["domain"]
    assert page.query["PROTOCOL"] == "0"
    assert page.query["LANG"] == "en"
    assert len(page.query["APP_SID"]) == 32
    assert set(page.form) == {
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
    assert page.form["member_id"] == portal["member_id"]
    assert page.form["APPLICATION_TOKEN"] == portal["application_token"]
    assert page.form["AUTH_EXPIRES"] == "3600"
    assert page.form["SERVER_ENDPOINT"] == f"{sandbox.oauth_url}/rest/"
    # The install page is framed like the main page: DEFAULT, and no PLACEMENT_OPTIONS at all
    # (settings/oauth/simple-way.md), exactly as the portal's install wizard frames it.
    assert page.form["PLACEMENT"] == "DEFAULT"
    assert "PLACEMENT_OPTIONS" not in page.form
    # the posted token is the admin's, and it works
    me = sandbox.rest("profile", token=page.form["AUTH_ID"]).json()["result"]
    assert me["ID"] == "1" and me["ADMIN"] is True


def test_install_sends_onappinstall_with_tokens_to_the_installer(sandbox, receiver):
    sandbox.control("install")
    event = [d for d in receiver.at("/install") if d.form.get("event") == "ONAPPINSTALL"]
    assert len(event) == 1
    form = event[0].form
    portal = sandbox.state()["portals"][0]
    assert form["data[INSTALLED]"] == "Y"
    assert form["data[LANGUAGE_ID]"] == "en"
    assert "data[VERSION]" in form and form["ts"].isdigit()
    assert form["auth[application_token]"] == portal["application_token"]
    assert form["auth[member_id]"] == portal["member_id"]
    assert form["auth[domain]"] == portal["domain"]
    assert form["auth[client_endpoint]"] == f"{portal['url']}/rest/"
    assert form["auth[server_endpoint]"] == f"{sandbox.oauth_url}/rest/"
    assert sandbox.rest("user.admin", token=form["auth[access_token]"]).json()["result"] is True
    assert form["auth[refresh_token]"]


def test_install_is_not_finished_when_the_install_page_fails(sandbox, receiver):
    receiver.status = 500
    summary = sandbox.control("install")
    assert summary["installed"] is False
    assert summary["install_page"]["status"] == 500
    assert summary["events"] == []
    assert sandbox.state()["portals"][0]["installed"] is False


def test_install_reports_an_unreachable_app_instead_of_failing(sandbox):
    sandbox.control("reset", {"app_url": "http://127.0.0.1:9"})
    summary = sandbox.control("install")
    assert summary["installed"] is False
    assert summary["install_page"]["status"] is None
    assert summary["install_page"]["error"]


def test_reinstall_keeps_the_application_token(sandbox, receiver):
    sandbox.control("install")
    token = sandbox.state()["portals"][0]["application_token"]
    sandbox.control("install")
    assert sandbox.state()["portals"][0]["application_token"] == token


def test_onappinstall_also_reaches_a_bound_handler(sandbox, receiver):
    bound = sandbox.rest(
        "event.bind", {"event": "onAppInstall", "handler": f"{receiver.url}/events"}
    )
    assert bound.json()["result"] is True
    sandbox.control("install")
    assert [d.form["event"] for d in receiver.at("/events")] == ["ONAPPINSTALL"]


def test_uninstall_posts_onappuninstall_without_tokens_and_revokes_access(sandbox, receiver):
    sandbox.control("install")
    admin = sandbox.token(1)
    sandbox.rest("event.bind", {"event": "ONAPPUNINSTALL", "handler": f"{receiver.url}/events"})
    sandbox.rest(
        "placement.bind",
        {"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": f"{receiver.url}/app", "TITLE": "Orders"},
    )
    before = sandbox.state()["portals"][0]
    summary = sandbox.control("uninstall", {"clean": 1})
    assert summary["events"][0]["status"] == 200
    event = receiver.at("/events")[0].form
    assert event["event"] == "ONAPPUNINSTALL"
    assert event["data[CLEAN]"] == "1"
    assert event["data[LANGUAGE_ID]"] == "en"
    assert event["auth[application_token]"] == before["application_token"]
    assert event["auth[member_id]"] == before["member_id"]
    assert not any(key in event for key in ("auth[access_token]", "auth[refresh_token]"))
    after = sandbox.state()["portals"][0]
    assert after["installed"] is False
    assert after["placements"] == [] and after["event_handlers"] == []
    assert sandbox.rest("profile", token=admin).status_code == 401


def test_uninstall_with_clean_zero(sandbox, receiver):
    sandbox.control("install")
    sandbox.rest("event.bind", {"event": "ONAPPUNINSTALL", "handler": f"{receiver.url}/events"})
    sandbox.control("uninstall", {"clean": 0})
    assert receiver.at("/events")[0].form["data[CLEAN]"] == "0"


def test_uninstall_of_one_portal_leaves_the_other_alone(sandbox, receiver):
    sandbox.control("install", {"portal": 1})
    sandbox.control("install", {"portal": 2})
    other = sandbox.token(1, portal=2)
    sandbox.control("uninstall", {"portal": 1})
    portals = sandbox.state()["portals"]
    assert portals[0]["installed"] is False and portals[1]["installed"] is True
    assert sandbox.rest("profile", token=other, portal=2).status_code == 200


def test_uninstall_refuses_a_bad_clean_flag(sandbox):
    response = sandbox.http.post(f"{sandbox.url}/_sandbox/uninstall", json={"clean": "yes"})
    assert response.status_code == 400


def test_after_uninstall_a_refresh_is_invalid_client_even_after_reinstall(sandbox, receiver):
    sandbox.control("install")
    pair = sandbox.token(2)
    sandbox.control("uninstall", {"clean": 0})
    sandbox.control("install")
    with request_lines_unlogged():
        response = sandbox.http.get(
            f"{sandbox.oauth_url}/oauth/token/",
            params={
                "grant_type": "refresh_token",
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
                "refresh_token": pair["refresh_token"],
            },
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert sandbox.rest("profile", token=pair).status_code == 401


def test_install_to_a_malformed_app_url_is_reported_not_raised(sandbox):
    sandbox.control("reset", {"app_url": "notaurl"})
    summary = sandbox.control("install")
    assert summary["installed"] is False
    assert summary["install_page"]["status"] is None
