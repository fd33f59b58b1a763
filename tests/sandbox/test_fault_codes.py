"""Faults that name a documented system error answer it as Bitrix24 does."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("error", "status", "description"),
    [
        ("PORTAL_DELETED", 500, "Portal was deleted"),
        ("user_access_error", 403, "The user does not have access to the application."),
        ("expired_token", 401, "The access token provided has expired."),
        ("QUERY_LIMIT_EXCEEDED", 503, "Too many requests"),
    ],
)
def test_a_named_system_error_has_its_documented_status_and_description(
    sandbox, error, status, description
):
    sandbox.control("faults", {"method": "profile", "error": error})

    response = sandbox.rest("profile")

    assert response.status_code == status
    assert response.json() == {"error": error, "error_description": description}
    assert sandbox.rest("profile").status_code == 200


def test_an_unknown_error_without_a_status_is_a_400(sandbox):
    sandbox.control("faults", {"method": "profile", "error": "SOMETHING_ELSE"})

    response = sandbox.rest("profile")

    assert response.status_code == 400
    assert response.json()["error"] == "SOMETHING_ELSE"


def test_invalid_grant_from_the_token_endpoint_is_an_oauth_error(sandbox):
    pair = sandbox.token(1)
    sandbox.control("faults", {"method": "oauth.token", "status": 400, "error": "invalid_grant"})

    refused = sandbox.http.post(
        f"{sandbox.oauth_url}/oauth/token/",
        data={
            "grant_type": "refresh_token",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "refresh_token": pair["refresh_token"],
        },
    )

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert set(refused.json()) == {"error", "error_description"}


def test_a_time_limit_fault_names_when_the_limit_lifts(sandbox):
    sandbox.control("faults", {"method": "profile", "status": 429, "reset_in": 2})
    sandbox.control("faults", {"method": "profile", "status": 429})

    soon = sandbox.rest("profile").json()
    later = sandbox.rest("profile").json()

    assert soon["error"] == later["error"] == "OPERATION_TIME_LIMIT"
    start = soon["time"]["start"]
    assert soon["time"]["operating_reset_at"] == int(start + 2)
    assert later["time"]["operating_reset_at"] == int(later["time"]["start"]) + 600


@pytest.mark.parametrize(
    "body",
    [
        {"method": "profile", "status": 503, "reset_in": 2},
        {"method": "profile", "status": 429, "reset_in": -1},
    ],
)
def test_reset_in_is_only_for_a_time_limit(sandbox, body):
    response = sandbox.http.post(f"{sandbox.url}/_sandbox/faults", json=body)
    assert response.status_code == 400


def test_skip_lets_matching_calls_through_before_the_fault(sandbox):
    sandbox.control("faults", {"method": "profile", "skip": 2, "status": 503})

    statuses = [sandbox.rest("profile").status_code for _ in range(4)]

    assert statuses == [200, 200, 503, 200]
    bad = sandbox.http.post(
        f"{sandbox.url}/_sandbox/faults", json={"method": "profile", "skip": -1, "status": 503}
    )
    assert bad.status_code == 400
