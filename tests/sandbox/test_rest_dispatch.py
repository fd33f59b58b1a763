"""The REST dispatcher over HTTP: envelope, parameter encodings, method names, auth errors."""

from __future__ import annotations

from tests.log_audit import request_lines_unlogged

TIME_KEYS = {
    "start",
    "finish",
    "duration",
    "processing",
    "date_start",
    "date_finish",
    "operating_reset_at",
    "operating",
}


def test_success_envelope_has_result_and_full_time(sandbox):
    response = sandbox.rest("profile", user_id=2)
    assert response.status_code == 200
    body = response.json()
    assert body["result"]["ID"] == "2"
    assert set(body["time"]) == TIME_KEYS
    assert body["time"]["finish"] >= body["time"]["start"]


def test_unknown_method_is_404_method_not_found(sandbox):
    response = sandbox.rest("no.such.method")
    assert response.status_code == 404
    assert response.json() == {
        "error": "ERROR_METHOD_NOT_FOUND",
        "error_description": "Method not found!",
    }


def test_missing_token_is_401_no_auth_found(sandbox):
    response = sandbox.http.post(f"{sandbox.url}/rest/profile", json={})
    assert response.status_code == 401
    assert response.json()["error"] == "NO_AUTH_FOUND"


def test_token_of_one_portal_is_refused_by_the_other(sandbox):
    token = sandbox.token(1, portal=1)["access_token"]
    response = sandbox.http.post(f"{sandbox.portal_url(1)}/rest/profile", json={"auth": token})
    assert response.status_code == 401
    assert response.json()["error"] == "NO_AUTH_FOUND"


def test_calls_are_logged_without_tokens(sandbox):
    token = sandbox.token(3)["access_token"]
    sandbox.rest("Profile.JSON", token=token)
    log = sandbox.calls()
    assert log["counts"] == {"profile": 1}
    entry = log["calls"][0]
    assert entry["method"] == "profile"
    assert entry["user_id"] == 3
    assert entry["status"] == 200
    assert token not in str(log)


def test_method_names_are_case_insensitive_with_optional_json_suffix(sandbox):
    for name in ("user.admin", "USER.Admin", "user.admin.json", "User.Admin.JSON"):
        response = sandbox.rest(name)
        assert response.status_code == 200, name
        assert response.json()["result"] is True


def test_get_with_auth_in_query_string(sandbox):
    token = sandbox.token(2)["access_token"]
    with request_lines_unlogged():
        response = sandbox.http.get(f"{sandbox.url}/rest/profile.json", params={"auth": token})
    assert response.status_code == 200
    assert response.json()["result"]["ID"] == "2"


def test_post_form_body_with_bracketed_arrays(sandbox):
    token = sandbox.token(2)["access_token"]
    granted = sandbox.http.post(
        f"{sandbox.url}/rest/user.access",
        data={"auth": token, "ACCESS[]": ["G1", "U2"]},
    )
    assert granted.status_code == 200
    assert granted.json()["result"] is True
    refused = sandbox.http.post(
        f"{sandbox.url}/rest/user.access", data={"auth": token, "ACCESS[0]": "U1"}
    )
    assert refused.json()["result"] is False


def test_auth_in_query_and_params_in_json_body_merge(sandbox):
    token = sandbox.token(3)["access_token"]
    with request_lines_unlogged():
        response = sandbox.http.post(
            f"{sandbox.url}/rest/user.access?auth={token}", json={"ACCESS": ["U3"]}
        )
    assert response.status_code == 200
    assert response.json()["result"] is True


def test_nested_form_arrays_reach_the_method(sandbox, sandbox_app_url):
    token = sandbox.token(1)["access_token"]
    response = sandbox.http.post(
        f"{sandbox.url}/rest/placement.bind",
        data={
            "auth": token,
            "PLACEMENT": "CRM_DEAL_DETAIL_TAB",
            "HANDLER": f"{sandbox_app_url}/app",
            "TITLE": "Orders",
            "LANG_ALL[en][TITLE]": "Orders",
            "LANG_ALL[de][TITLE]": "Bestellungen",
        },
    )
    assert response.status_code == 200, response.text
    placements = sandbox.rest("placement.get").json()["result"]
    assert placements[0]["langAll"] == {"en": {"TITLE": "Orders"}, "de": {"TITLE": "Bestellungen"}}


def test_filter_with_operator_keys_in_a_form_body(sandbox):
    token = sandbox.token(1)["access_token"]
    response = sandbox.http.post(
        f"{sandbox.url}/rest/crm.deal.list",
        data={"auth": token, "filter[>ID]": "55", "select[]": ["ID", "TITLE"], "order[ID]": "ASC"},
    )
    assert response.status_code == 200, response.text
    ids = [int(deal["ID"]) for deal in response.json()["result"]]
    assert ids and min(ids) > 55
    assert set(response.json()["result"][0]) == {"ID", "TITLE"}


def test_expired_token_is_401_expired_token(sandbox):
    token = sandbox.token(1, expires_in=0)["access_token"]
    response = sandbox.rest("profile", token=token)
    assert response.status_code == 401
    assert response.json() == {
        "error": "expired_token",
        "error_description": "The access token provided has expired.",
    }


def test_unknown_token_is_401_no_auth_found(sandbox):
    response = sandbox.rest("profile", token="x" * 32)
    assert response.status_code == 401
    assert response.json() == {
        "error": "NO_AUTH_FOUND",
        "error_description": "Wrong authorization data",
    }


def test_token_without_the_scope_is_403_insufficient_scope(sandbox):
    token = sandbox.control("token", {"user_id": 1, "scope": "crm"})["access_token"]
    refused = sandbox.rest("sale.order.list", token=token)
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    # basic methods need no scope at all
    assert sandbox.rest("profile", token=token).status_code == 200


def test_list_envelope_has_total_and_next_only_when_more_rows_remain(sandbox):
    first = sandbox.rest("crm.deal.list", {"order": {"ID": "ASC"}}).json()
    assert len(first["result"]) == 50
    assert first["total"] == 60
    assert first["next"] == 50
    last = sandbox.rest("crm.deal.list", {"order": {"ID": "ASC"}, "start": 50}).json()
    assert len(last["result"]) == 10
    assert last["total"] == 60
    assert "next" not in last
    fast = sandbox.rest("crm.deal.list", {"order": {"ID": "ASC"}, "start": -1}).json()
    assert len(fast["result"]) == 50
    assert "total" not in fast and "next" not in fast


def test_handler_failure_is_500_internal_server_error(sandbox, monkeypatch):
    from b24sandbox.registry import METHODS

    def explode(ctx, params):
        raise RuntimeError("boom")

    monkeypatch.setattr(METHODS["profile"], "handler", explode)
    response = sandbox.rest("profile")
    assert response.status_code == 500
    assert response.json()["error"] == "INTERNAL_SERVER_ERROR"
    assert "boom" not in response.text
