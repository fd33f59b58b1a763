"""Held answers (``hold_ms``): the call does its work, then its answer is held back.

This is how an answer gets lost after Bitrix24 acted: a refresh that rotated the pair while
the caller gave up (or died), an add that bound the order while the caller timed out.
"""

from __future__ import annotations

import time

import httpx
import pytest


def token_request(sandbox, timeout: float, **params: str) -> httpx.Response:
    """POST to the token endpoint with the app's credentials and a client timeout."""
    body = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret, **params}
    return httpx.post(f"{sandbox.oauth_url}/oauth/token/", data=body, timeout=timeout)


def wait_for(predicate, seconds: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_held_refresh_answer_has_already_rotated_the_pair(sandbox):
    pair = sandbox.token(1)
    sandbox.control("faults", {"method": "oauth.token", "hold_ms": 5000})

    with pytest.raises(httpx.ReadTimeout):
        token_request(sandbox, 0.5, grant_type="refresh_token", refresh_token=pair["refresh_token"])

    assert wait_for(lambda: sandbox.calls()["refreshes"] == 1)
    # The old refresh token is spent and the new pair was never read: the chain is lost.
    again = token_request(
        sandbox, 5, grant_type="refresh_token", refresh_token=pair["refresh_token"]
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert sandbox.rest("profile", token=pair).status_code == 401
    assert sandbox.control("faults", method="GET")["faults"] == []


def test_a_held_rest_answer_comes_after_the_work_is_done(sandbox):
    sandbox.control("faults", {"method": "crm.orderentity.add", "hold_ms": 5000})
    token = sandbox.token(1)["access_token"]
    fields = {"orderId": 1, "ownerTypeId": 2, "ownerId": 1}

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{sandbox.url}/rest/crm.orderentity.add",
            json={"auth": token, "fields": fields},
            timeout=0.5,
        )

    calls = sandbox.calls()["calls"]
    assert [(c["method"], c["status"]) for c in calls] == [("crm.orderentity.add", 200)]
    listed = sandbox.rest("crm.orderentity.list", {"filter": {"orderId": 1}}, token=token).json()
    rows = listed["result"]["orderEntity"]
    assert [{k: int(row[k]) for k in fields} for row in rows] == [fields]
    repeat = sandbox.rest("crm.orderentity.add", {"fields": fields}, token=token)
    assert str(repeat.json()["error"]) == "201650000001"


@pytest.mark.parametrize(
    "body",
    [
        {"method": "batch", "hold_ms": 100, "status": 503},
        {"method": "batch", "hold_ms": 100, "error": "timeout"},
        {"method": "batch", "hold_ms": -1},
    ],
)
def test_hold_ms_only_holds_a_successful_answer(sandbox, body):
    response = sandbox.http.post(f"{sandbox.url}/_sandbox/faults", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
