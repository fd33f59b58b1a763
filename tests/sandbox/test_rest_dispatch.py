"""The REST dispatcher over HTTP: envelope, parameter encodings, method names, auth errors."""

from __future__ import annotations

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
