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
