"""The leaky bucket and injected faults, seen from a client."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.log_audit import request_lines_unlogged


def test_a_burst_of_sixty_gets_503_after_fifty(sandbox):
    # Bitrix24's threshold of 50, with a drain so slow that however long the burst takes,
    # no place frees up while it runs: only moving the sandbox clock drains the bucket.
    sandbox.control("limits", {"rps": 0.01, "burst": 50})
    token = sandbox.token(1)["access_token"]
    statuses = [sandbox.rest("user.admin", token=token).status_code for _ in range(60)]
    assert statuses == [200] * 50 + [503] * 10
    refused = sandbox.rest("user.admin", token=token)
    assert refused.json() == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }
    sandbox.advance_clock(100)  # 1 / rps seconds: room for exactly one more
    assert sandbox.rest("user.admin", token=token).status_code == 200
    assert sandbox.rest("user.admin", token=token).status_code == 503


def test_the_bucket_drains_over_time(sandbox):
    sandbox.control("limits", {"rps": 0.5, "burst": 3})
    token = sandbox.token(1)["access_token"]
    assert [sandbox.rest("user.admin", token=token).status_code for _ in range(4)][-1] == 503
    sandbox.advance_clock(2)  # 0.5/s drains one unit in 2 s
    assert sandbox.rest("user.admin", token=token).status_code == 200


def test_each_portal_has_its_own_bucket(sandbox):
    sandbox.control("limits", {"rps": 0, "burst": 2})
    for _ in range(2):
        assert sandbox.rest("user.admin", portal=1).status_code == 200
    assert sandbox.rest("user.admin", portal=1).status_code == 503
    assert sandbox.rest("user.admin", portal=2).status_code == 200


def test_limits_answer_their_setting_and_refuse_nonsense(sandbox):
    assert sandbox.control("limits", {"rps": 5, "burst": 250}) == {"rps": 5.0, "burst": 250}
    bad = sandbox.http.post(f"{sandbox.url}/_sandbox/limits", json={"burst": 0})
    assert bad.status_code == 400


def test_reset_restores_the_configured_limits(sandbox):
    sandbox.control("limits", {"rps": 1, "burst": 1})
    sandbox.control("reset", {})
    assert sandbox.state()["limits"] == {"rps": 2.0, "burst": 50}


def test_fault_answers_the_next_count_calls_of_a_method(sandbox):
    sandbox.control(
        "faults", {"method": "profile", "count": 2, "status": 503, "error": "QUERY_LIMIT_EXCEEDED"}
    )
    first, second, third = (sandbox.rest("profile") for _ in range(3))
    assert first.status_code == second.status_code == 503
    assert first.json() == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }
    assert third.status_code == 200
    assert sandbox.rest("user.admin").status_code == 200


def test_wildcard_fault_hits_any_method(sandbox):
    sandbox.control("faults", {"method": "*", "status": 500})
    response = sandbox.rest("user.admin")
    assert response.status_code == 500
    assert response.json()["error"] == "INTERNAL_SERVER_ERROR"


def test_operation_time_limit_fault_carries_the_reset_time(sandbox):
    sandbox.control("faults", {"method": "crm.deal.list", "status": 429})
    response = sandbox.rest("crm.deal.list")
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "OPERATION_TIME_LIMIT"
    assert body["time"]["operating_reset_at"] > time.time()


def test_expired_token_fault(sandbox):
    sandbox.control("faults", {"method": "profile", "status": 401, "error": "expired_token"})
    response = sandbox.rest("profile")
    assert response.status_code == 401
    assert response.json()["error"] == "expired_token"


def test_latency_fault_delays_a_normal_answer(sandbox):
    sandbox.control("faults", {"method": "profile", "latency_ms": 300})
    started = time.monotonic()
    response = sandbox.rest("profile")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_fault_never_answers_in_time(sandbox):
    sandbox.control("faults", {"method": "profile", "error": "timeout"})
    with pytest.raises(httpx.ReadTimeout):
        sandbox.http.post(
            f"{sandbox.url}/rest/profile",
            json={"auth": sandbox.token(1)["access_token"]},
            timeout=0.5,
        )
    assert sandbox.rest("profile").status_code == 200


def test_malformed_fault_sends_broken_json(sandbox):
    sandbox.control("faults", {"method": "sale.order.list", "error": "malformed"})
    response = sandbox.rest("sale.order.list")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_moved_portal_fault_redirects_to_the_same_call(sandbox):
    target = f"{sandbox.portal_url(1)}/rest/"
    sandbox.control("faults", {"method": "*", "status": 302, "location": target})
    token = sandbox.token(1)["access_token"]
    with request_lines_unlogged():
        response = sandbox.http.get(f"{sandbox.url}/rest/profile.json?auth={token}")
    assert response.status_code == 302
    assert response.headers["location"] == f"{target}profile.json?auth={token}"


def test_faults_are_listed_and_cleared(sandbox):
    sandbox.control("faults", {"method": "Profile.json", "count": 3, "status": 503})
    assert sandbox.control("faults", method="GET")["faults"][0]["method"] == "profile"
    assert sandbox.control("faults", {"clear": True}) == {"faults": []}
    bad = sandbox.http.post(f"{sandbox.url}/_sandbox/faults", json={"status": 302})
    assert bad.status_code == 400
