"""The control API: state, reset, tokens, calls, and its loopback-only rule."""

from __future__ import annotations

from b24sandbox.server import create_portal_app


def test_state_describes_every_portal(sandbox):
    state = sandbox.state()
    assert state["oauth_url"] == sandbox.oauth_url
    assert [p["id"] for p in state["portals"]] == [1, 2]
    first, second = state["portals"]
    assert first["url"] == sandbox.portal_url(0)
    assert first["domain"] == sandbox.portal_url(0).removeprefix("http://")
    assert first["member_id"] != second["member_id"]
    assert first["installed"] is False
    assert first["application_token"] is None
    assert first["placements"] == [] and first["event_handlers"] == []
    assert isinstance(first["bindings"], int)
    assert [u["id"] for u in state["users"]] == [1, 2, 3]


def test_token_issues_a_working_pair_for_each_user_and_portal(sandbox):
    for portal in (1, 2):
        for user_id in (1, 2, 3):
            pair = sandbox.token(user_id, portal=portal)
            assert pair["user_id"] == user_id
            assert pair["client_endpoint"] == f"{sandbox.portal_url(portal - 1)}/rest/"
            profile = sandbox.rest("profile", token=pair, portal=portal).json()["result"]
            assert profile["ID"] == str(user_id)


def test_token_honours_expires_in(sandbox):
    pair = sandbox.token(2, expires_in=120)
    assert pair["expires_in"] == 120


def test_token_for_an_unknown_user_or_portal_is_refused(sandbox):
    assert (
        sandbox.http.post(f"{sandbox.url}/_sandbox/token", json={"user_id": 9}).status_code == 404
    )
    no_portal = sandbox.http.post(f"{sandbox.url}/_sandbox/token", json={"portal": 7})
    assert no_portal.status_code == 404
    bad = sandbox.http.post(f"{sandbox.url}/_sandbox/token", json={"user_id": "one"})
    assert bad.status_code == 400


def test_a_control_call_acts_on_the_portal_it_reached(sandbox):
    pair = sandbox.http.post(f"{sandbox.portal_url(1)}/_sandbox/token", json={}).json()
    assert pair["member_id"] == sandbox.state()["portals"][1]["member_id"]


def test_reset_forgets_tokens_installs_calls_and_faults(sandbox, sandbox_app_url):
    pair = sandbox.token(1)
    sandbox.rest(
        "placement.bind", {"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": f"{sandbox_app_url}/app"}
    )
    sandbox.control("faults", {"method": "profile", "status": 500})
    sandbox.control("reset", {})
    assert sandbox.rest("profile", token=pair).status_code == 401
    state = sandbox.state()
    assert state["faults"] == []
    assert state["portals"][0]["placements"] == []
    assert state["portals"][0]["application_token"] is None
    assert sandbox.calls()["counts"] == {"profile": 1}


def test_reset_reseeds_the_data(sandbox):
    before = sandbox.state()["portals"][0]["bindings"]
    bound = sandbox.rest("crm.orderentity.list", {}).json()["result"]["orderEntity"][0]
    removed = sandbox.rest("crm.orderentity.deleteByFilter", {"fields": bound})
    assert removed.status_code == 200, removed.text
    assert sandbox.state()["portals"][0]["bindings"] == before - 1
    sandbox.control("reset", {})
    assert sandbox.state()["portals"][0]["bindings"] == before


def test_reset_can_point_the_sandbox_at_another_app(sandbox):
    answer = sandbox.control("reset", {"app_url": "http://127.0.0.1:8123/"})
    assert answer["app_url"] == "http://127.0.0.1:8123"
    assert sandbox.state()["app_url"] == "http://127.0.0.1:8123"


def test_calls_can_be_read_per_portal(sandbox):
    sandbox.rest("profile", portal=1)
    sandbox.rest("user.admin", portal=2)
    assert sandbox.calls(portal=2)["counts"] == {"user.admin": 1}
    assert sandbox.calls()["counts"] == {"profile": 1, "user.admin": 1}


def test_control_api_refuses_non_loopback_callers(sandbox_server):
    sandbox = sandbox_server.sandbox
    client = create_portal_app(sandbox, sandbox.portals[0]).test_client()
    remote = client.get("/_sandbox/state", environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert remote.status_code == 403
    local = client.get("/_sandbox/state", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert local.status_code == 200


def test_a_bad_body_is_a_400(sandbox):
    response = sandbox.http.post(f"{sandbox.url}/_sandbox/reset", json=[1, 2])
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
