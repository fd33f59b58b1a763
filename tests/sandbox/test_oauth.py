"""The OAuth server: authorization codes, token grants, rotation, expiry and app.info."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

from b24sandbox import tokens
from tests.log_audit import request_lines_unlogged

TOKEN_FIELDS = {
    "access_token",
    "refresh_token",
    "expires",
    "expires_in",
    "scope",
    "domain",
    "server_endpoint",
    "client_endpoint",
    "member_id",
    "user_id",
    "status",
}


def authorize(sandbox, user: int = 1, portal: int = 1, state: str = "s-1") -> dict[str, str]:
    """Run /oauth/authorize/ and return the redirect's query."""
    response = sandbox.http.get(
        f"{sandbox.portal_url(portal - 1)}/oauth/authorize/",
        params={"client_id": sandbox.client_id, "state": state, "user": user},
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/oauth/callback"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def token_request(sandbox, method: str = "GET", **params):
    """Call the OAuth server's token endpoint with the app's credentials by default."""
    params = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret} | params
    url = f"{sandbox.oauth_url}/oauth/token/"
    if method == "GET":
        # Bitrix24 documents the token request as a GET with the grant in the query.
        with request_lines_unlogged():
            return sandbox.http.get(url, params=params)
    return sandbox.http.post(url, data=params)


def test_authorize_redirects_to_the_app_with_code_and_portal(sandbox, sandbox_app_url):
    query = authorize(sandbox, user=2, state="xyz")
    state = sandbox.state()["portals"][0]
    assert query["state"] == "xyz"
    assert query["domain"] == state["domain"]
    assert query["member_id"] == state["member_id"]
    assert query["scope"] == "crm,sale,placement,user_brief"
    assert query["server_domain"] == urlsplit(sandbox.oauth_url).netloc
    assert len(query["code"]) == 32 and query["code"].isalnum() and query["code"].islower()


def test_authorize_refuses_an_unknown_client_without_redirect(sandbox):
    response = sandbox.http.get(
        f"{sandbox.url}/oauth/authorize/", params={"client_id": "local.other", "state": "x"}
    )
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_code_exchange_returns_every_documented_field(sandbox, method):
    code = authorize(sandbox, user=2, portal=2)["code"]
    response = token_request(sandbox, method, grant_type="authorization_code", code=code)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TOKEN_FIELDS
    assert body["user_id"] == 2
    assert body["expires_in"] == 3600
    assert abs(body["expires"] - (time.time() + 3600)) < 5
    assert body["domain"] == urlsplit(sandbox.oauth_url).netloc
    assert body["server_endpoint"] == f"{sandbox.oauth_url}/rest/"
    assert body["client_endpoint"] == f"{sandbox.portal_url(1)}/rest/"
    assert body["member_id"] == sandbox.state()["portals"][1]["member_id"]
    profile = sandbox.rest("profile", token=body["access_token"], portal=2).json()
    assert profile["result"]["ID"] == "2"


def test_a_code_works_once(sandbox):
    code = authorize(sandbox)["code"]
    assert token_request(sandbox, grant_type="authorization_code", code=code).status_code == 200
    again = token_request(sandbox, grant_type="authorization_code", code=code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_code_older_than_its_lifetime_is_refused(sandbox, monkeypatch):
    monkeypatch.setattr(tokens, "CODE_TTL", 0)
    code = authorize(sandbox)["code"]
    response = token_request(sandbox, grant_type="authorization_code", code=code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_refresh_rotates_and_kills_the_old_pair(sandbox, method):
    first = sandbox.token(1)
    response = token_request(
        sandbox, method, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert response.status_code == 200
    second = response.json()
    assert set(second) == TOKEN_FIELDS
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user_id"] == 1
    # the new access token works, the old one is dead
    assert sandbox.rest("profile", token=second["access_token"]).status_code == 200
    dead = sandbox.rest("profile", token=first["access_token"])
    assert dead.status_code == 401
    # the old refresh token is spent
    reused = token_request(
        sandbox, method, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert sandbox.calls()["refreshes"] == 1


def test_refreshing_an_expired_access_token_gives_a_fresh_hour(sandbox):
    first = sandbox.token(1, expires_in=0)
    assert sandbox.rest("profile", token=first).json()["error"] == "expired_token"
    second = token_request(
        sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"]
    ).json()
    assert second["expires_in"] == 3600
    assert sandbox.rest("profile", token=second).status_code == 200


def test_access_token_expires_after_its_lifetime(sandbox):
    pair = sandbox.token(1, expires_in=60)
    assert sandbox.rest("profile", token=pair).status_code == 200
    sandbox.advance_clock(60)
    expired = sandbox.rest("profile", token=pair)
    assert expired.status_code == 401
    assert expired.json()["error"] == "expired_token"


def test_wrong_secret_is_invalid_client(sandbox):
    pair = sandbox.token(1)
    response = token_request(
        sandbox,
        grant_type="refresh_token",
        refresh_token=pair["refresh_token"],
        client_secret="wrong",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    # a refused request does not spend the refresh token
    ok = token_request(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"grant_type": "refresh_token"},
        {"grant_type": "authorization_code"},
        {"grant_type": "password", "refresh_token": "x"},
        {},
    ],
)
def test_missing_or_bad_parameters_are_invalid_request(sandbox, params):
    response = token_request(sandbox, **params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert set(response.json()) == {"error", "error_description"}


def test_every_portal_origin_answers_the_token_endpoint(sandbox):
    pair = sandbox.token(3, portal=2)
    response = sandbox.http.post(
        f"{sandbox.portal_url(1)}/oauth/token/",
        data={
            "grant_type": "refresh_token",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "refresh_token": pair["refresh_token"],
        },
    )
    assert response.status_code == 200
    assert response.json()["user_id"] == 3


def test_app_info_on_the_oauth_server_names_the_tokens_portal(sandbox):
    sandbox.control("install", {"portal": 2})
    pair = sandbox.token(2, portal=2)
    # the SDKs call {server_endpoint}app.info, with or without a trailing slash
    for path in ("app.info", "app.info/"):
        with request_lines_unlogged():
            response = sandbox.http.get(
                f"{pair['server_endpoint']}{path}", params={"auth": pair["access_token"]}
            )
        assert response.status_code == 200
        result = response.json()["result"]
        assert result["client_id"] == sandbox.client_id
        assert result["install"]["domain"] == urlsplit(sandbox.portal_url(1)).netloc
        assert result["install"]["member_id"] == pair["member_id"]
        assert result["install"]["installed"] is False  # nothing answered the install page
        assert result["user_id"] == 2
        assert result["scope"] == pair["scope"]


def test_app_info_on_another_portal_is_the_documented_shape_only(sandbox):
    pair = sandbox.token(1, portal=2)
    result = sandbox.rest("app.info", token=pair, portal=2).json()["result"]
    assert set(result) == {
        "ID",
        "CODE",
        "VERSION",
        "STATUS",
        "INSTALLED",
        "PAYMENT_EXPIRED",
        "DAYS",
        "LANGUAGE_ID",
        "LICENSE",
        "LICENSE_TYPE",
        "LICENSE_FAMILY",
    }
    assert result["STATUS"] == "L"
    assert result["INSTALLED"] is False


def test_oauth_token_fault_can_make_a_refresh_fail(sandbox):
    pair = sandbox.token(1)
    sandbox.control("faults", {"method": "oauth.token", "status": 503, "error": "SERVICE_DOWN"})
    failed = token_request(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert failed.status_code == 503
    ok = token_request(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert ok.status_code == 200


def test_concurrent_refreshes_of_one_chain_leave_exactly_one_winner(sandbox):
    pair = sandbox.token(1)
    barrier = threading.Barrier(6)

    def refresh() -> int:
        barrier.wait()
        return token_request(
            sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"]
        ).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: refresh(), range(6)))
    assert sorted(statuses) == [200, 400, 400, 400, 400, 400]
    assert sandbox.calls()["refreshes"] == 1
