"""The official Python SDK (b24pysdk) talks to the sandbox unchanged, except for its URLs.

b24pysdk builds ``https://{domain}/rest`` for the portal and ``https://oauth.bitrix24.tech``
for the OAuth server. The sandbox serves plain http on loopback, so the fixture below
replaces exactly those two URL builders (the portal base URL property and the OAuth
requester's two URL constants) with the sandbox's http URLs. Request building, response
parsing, error mapping, retries and the refresh-on-``expired_token`` logic are the SDK's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from b24pysdk import BitrixApp, BitrixToken
from b24pysdk.api.callers.call_method import _MethodCaller
from b24pysdk.api.requesters.bitrix_oauth_requester import BitrixOAuthRequester
from b24pysdk.errors import (
    BitrixAPIError,
    BitrixAPIInsufficientScope,
    BitrixAPIQueryLimitExceeded,
)
from b24pysdk.errors.oauth import BitrixOAuthInvalidGrant, BitrixOAuthNoAuthFound

from tests.log_audit import request_lines_unlogged


@pytest.fixture
def sdk_urls(sandbox, monkeypatch) -> Iterator[None]:
    """Point the SDK's URL builders at the sandbox (http instead of https, local OAuth)."""
    monkeypatch.setattr(
        _MethodCaller, "_base_url", property(lambda self: f"http://{self._domain}/rest")
    )
    monkeypatch.setattr(
        BitrixOAuthRequester, "_OAUTH_TOKEN_URL", f"{sandbox.oauth_url}/oauth/token/"
    )
    monkeypatch.setattr(
        BitrixOAuthRequester, "_APP_INFO_URL", f"{sandbox.oauth_url}/rest/app.info/"
    )
    # The SDK sends its refresh as a GET with the refresh token in the query string, so
    # the request lines of its HTTP client would carry the tokens into the run's log.
    with request_lines_unlogged():
        yield


def sdk_token(sandbox, user_id=1, portal=1, **issue) -> BitrixToken:
    """Wrap a freshly issued sandbox token pair in the SDK's token object."""
    pair = sandbox.token(user_id, portal=portal, **issue)
    app = BitrixApp(client_id=sandbox.client_id, client_secret=sandbox.client_secret)
    return BitrixToken(
        domain=pair["client_endpoint"].split("/")[2],
        auth_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        expires_in=pair["expires_in"],
        bitrix_app=app,
    )


def test_sdk_calls_system_methods(sandbox, sdk_urls):
    token = sdk_token(sandbox, user_id=2)
    profile = token.call_method("profile")
    assert profile["result"]["ID"] == "2"
    assert profile["result"]["ADMIN"] is False
    assert token.call_method("user.admin")["result"] is False
    assert token.call_method("user.current")["result"]["NAME"] == "Mark"
    info = token.call_method("app.info")["result"]
    assert info["CODE"] == sandbox.client_id


def test_sdk_mixed_case_method_names_and_list_envelopes(sandbox, sdk_urls):
    token = sdk_token(sandbox)
    page = token.call_method("crm.orderentity.List", {"order": {"orderId": "asc"}})
    assert "orderEntity" in page["result"]
    assert page["total"] == sandbox.state()["portals"][0]["bindings"]
    orders = token.call_method("sale.order.list", {"filter": {"<id": 5}, "select": ["id"]})
    assert [o["id"] for o in orders["result"]["orders"]] == [1, 2, 3, 4]


def test_sdk_pages_through_a_list(sandbox, sdk_urls):
    token = sdk_token(sandbox)
    deals = token.call_list("crm.deal.list", {"select": ["ID"], "order": {"ID": "ASC"}})
    assert [int(d["ID"]) for d in deals["result"]] == list(range(1, 61))
    fast = token.call_list_fast("crm.deal.list", {"select": ["ID"]})
    assert sorted(int(d["ID"]) for d in fast["result"]) == list(range(1, 61))


def test_sdk_batch(sandbox, sdk_urls):
    token = sdk_token(sandbox)
    answer = token.call_batch(
        {"me": ("profile", {}), "deals": ("crm.deal.list", {"select": ["ID"]})}
    )
    batch = answer["result"]
    assert batch["result"]["me"]["ID"] == "1"
    assert batch["result_total"]["deals"] == 60
    assert batch["result_next"]["deals"] == 50


def test_sdk_verifies_a_token_with_app_info_on_the_oauth_server(sandbox, sdk_urls):
    sandbox.control("install", {"portal": 2})
    token = sdk_token(sandbox, user_id=3, portal=2)
    info = token.get_app_info().result
    portal = sandbox.state()["portals"][1]
    assert info.client_id == sandbox.client_id
    assert info.user_id == 3
    assert info.install.member_id == portal["member_id"]
    assert info.install.domain == portal["domain"]


def test_sdk_refreshes_on_expired_token_and_the_old_pair_dies(sandbox, sdk_urls):
    token = sdk_token(sandbox, expires_in=0)
    old_access, old_refresh = token.auth_token, token.refresh_token
    assert token.call_method("profile")["result"]["ID"] == "1"
    assert token.auth_token != old_access
    assert token.refresh_token != old_refresh
    assert sandbox.calls()["refreshes"] == 1
    assert [c["error"] for c in sandbox.calls()["calls"]] == ["expired_token", None]
    stale = sdk_token(sandbox)
    stale.refresh_token = old_refresh
    with pytest.raises(BitrixOAuthInvalidGrant):
        stale.refresh_oauth_token()


def test_sdk_maps_the_sandbox_errors_to_its_exceptions(sandbox, sdk_urls):
    narrow = sandbox.control("token", {"user_id": 1, "scope": "crm"})
    token = sdk_token(sandbox)
    token.auth_token = narrow["access_token"]
    with pytest.raises(BitrixAPIInsufficientScope):
        token.call_method("sale.order.list")
    token.auth_token = "0" * 32
    with pytest.raises(BitrixOAuthNoAuthFound):
        token.call_method("profile")
    manager = sdk_token(sandbox, user_id=3)
    with pytest.raises(BitrixAPIError) as denied:
        manager.call_method(
            "crm.orderentity.add", {"fields": {"orderId": 1, "ownerTypeId": 2, "ownerId": 1}}
        )
    assert denied.value.json_response["error"] == "200040300020"


def test_sdk_gives_up_on_query_limit_exceeded(sandbox, sdk_urls):
    sandbox.control("faults", {"method": "profile", "count": 5, "status": 503})
    token = sdk_token(sandbox)
    with pytest.raises(BitrixAPIQueryLimitExceeded):
        token.call_method("profile", max_retries=1)
