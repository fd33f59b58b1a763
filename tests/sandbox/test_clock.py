"""The sandbox clock: expiry, the leaky bucket and every timestamp follow ``/_sandbox/clock``."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from b24sandbox import tokens
from b24sandbox.clock import MAX_ADVANCE, SandboxClock
from b24sandbox.server import create_portal_app
from tests.sandbox.receiver import Receiver

DAY = 24 * 3600


def token_request(sandbox, **params):
    """POST to the OAuth server's token endpoint with the app's credentials."""
    params = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret} | params
    return sandbox.http.post(f"{sandbox.oauth_url}/oauth/token/", data=params)


def authorization_code(sandbox) -> str:
    """Run /oauth/authorize/ as user 1 and return the code it redirects with."""
    response = sandbox.http.get(
        f"{sandbox.url}/oauth/authorize/", params={"client_id": sandbox.client_id, "user": 1}
    )
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


# -- the clock itself ----------------------------------------------------------------------


def test_the_clock_is_real_time_plus_the_offset():
    wall, steady = [1_000.0], [50.0]
    clock = SandboxClock(wall=lambda: wall[0], steady=lambda: steady[0])
    assert (clock.time(), clock.monotonic(), clock.offset) == (1_000.0, 50.0, 0.0)
    assert clock.advance(2.5) == 2.5
    assert clock.advance(0) == 2.5
    wall[0] += 1
    steady[0] += 1
    assert (clock.time(), clock.monotonic()) == (1_003.5, 53.5)
    assert clock.describe() == {"now": 1_003.5, "offset": 2.5}
    clock.reset()
    assert (clock.time(), clock.monotonic(), clock.offset) == (1_001.0, 51.0, 0.0)


@pytest.mark.parametrize("step", [-1, -0.001, float("nan"), float("inf"), True, "5", None])
def test_the_clock_refuses_steps_that_are_not_forward_seconds(step):
    clock = SandboxClock()
    with pytest.raises(ValueError):
        clock.advance(step)
    assert clock.offset == 0.0


def test_advances_from_many_threads_all_count():
    clock = SandboxClock()
    barrier = threading.Barrier(8)

    def advance_often():
        barrier.wait()
        for _ in range(2_000):
            clock.advance(0.5)

    threads = [threading.Thread(target=advance_often) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert clock.offset == 8 * 2_000 * 0.5


# -- the control API -----------------------------------------------------------------------


def test_get_and_advance_answer_the_sandbox_time_and_the_offset(sandbox):
    before = time.time()
    start = sandbox.clock()
    assert set(start) == {"now", "offset"}
    assert start["offset"] == 0
    assert before <= start["now"] <= time.time()
    moved = sandbox.advance_clock(90.25)
    assert moved["offset"] == 90.25
    assert moved["now"] >= start["now"] + 90.25
    assert sandbox.advance_clock(9.75)["offset"] == 100
    assert sandbox.clock()["offset"] == 100
    assert sandbox.state()["clock"]["offset"] == 100


def test_reset_returns_the_clock_to_real_time(sandbox):
    sandbox.advance_clock(5 * DAY)
    sandbox.control("reset", {})
    before = time.time()
    clock = sandbox.clock()
    assert clock["offset"] == 0
    assert before <= clock["now"] <= time.time()
    # tokens issued now live their full hour again on the real clock
    pair = sandbox.token(1)
    assert before + 3600 - 1 <= pair["expires"] <= time.time() + 3600
    assert sandbox.rest("profile", token=pair).status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ("advance=5", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ("[5]", "application/json"),
        ("{}", "application/json"),
        ('{"advance": -1}', "application/json"),
        ('{"advance": -0.5}', "application/json"),
        ('{"advance": "5"}', "application/json"),
        ('{"advance": true}', "application/json"),
        ('{"advance": null}', "application/json"),
        ('{"advance": [1]}', "application/json"),
        ('{"advance": NaN}', "application/json"),
        ('{"advance": Infinity}', "application/json"),
        (json.dumps({"advance": MAX_ADVANCE + 1}), "application/json"),
        (json.dumps({"advance": 10**400}), "application/json"),
    ],
)
def test_a_bad_advance_is_a_400_and_moves_nothing(sandbox, content, content_type):
    response = sandbox.http.post(
        f"{sandbox.url}/_sandbox/clock", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert body["error_description"]
    assert sandbox.clock()["offset"] == 0


def test_the_clock_is_loopback_only(sandbox_server, sandbox):
    running = sandbox_server.sandbox
    client = create_portal_app(running, running.portals[0]).test_client()
    remote = {"REMOTE_ADDR": "192.0.2.10"}
    assert client.get("/_sandbox/clock", environ_base=remote).status_code == 403
    refused = client.post("/_sandbox/clock", json={"advance": 60}, environ_base=remote)
    assert refused.status_code == 403
    assert sandbox.clock()["offset"] == 0


def test_every_portal_shares_the_clock(sandbox):
    sandbox.control("clock", {"advance": 30}, portal=2)
    assert sandbox.control("clock", method="GET", portal=1)["offset"] == 30


# -- tokens and codes ----------------------------------------------------------------------


def test_an_access_token_dies_when_the_clock_passes_its_lifetime(sandbox):
    natural = sandbox.rest("profile", token=sandbox.token(1, expires_in=0))
    pair = sandbox.token(1)
    assert pair["expires_in"] == 3600
    sandbox.advance_clock(3590)
    assert sandbox.rest("profile", token=pair).status_code == 200
    sandbox.advance_clock(10)
    expired = sandbox.rest("profile", token=pair)
    assert natural.status_code == expired.status_code == 401
    assert expired.json() == natural.json()
    assert expired.json()["error"] == "expired_token"
    assert expired.headers["content-type"] == natural.headers["content-type"]


def test_a_refresh_after_the_advance_gives_an_hour_on_the_sandbox_clock(sandbox):
    pair = sandbox.token(1)
    sandbox.advance_clock(2 * 3600)
    assert sandbox.rest("profile", token=pair).json()["error"] == "expired_token"
    before = sandbox.clock()["now"]
    fresh = token_request(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    after = sandbox.clock()["now"]
    assert fresh.status_code == 200
    body = fresh.json()
    assert body["expires_in"] == 3600
    assert int(before + 3600) <= body["expires"] <= int(after + 3600)
    assert sandbox.rest("profile", token=body).status_code == 200


def test_a_refresh_token_expires_with_the_clock(sandbox):
    pair = sandbox.token(1)
    sandbox.advance_clock(tokens.REFRESH_TTL)
    response = token_request(
        sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"]
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_an_authorization_code_expires_with_the_clock(sandbox):
    young = authorization_code(sandbox)
    sandbox.advance_clock(tokens.CODE_TTL - 10)
    assert token_request(sandbox, grant_type="authorization_code", code=young).status_code == 200
    old = authorization_code(sandbox)
    sandbox.advance_clock(tokens.CODE_TTL)
    response = token_request(sandbox, grant_type="authorization_code", code=old)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_token_answers_and_app_info_read_the_sandbox_clock(sandbox):
    sandbox.advance_clock(3 * DAY)
    before = sandbox.clock()["now"]
    pair = sandbox.token(1)
    after = sandbox.clock()["now"]
    assert int(before + 3600) <= pair["expires"] <= int(after + 3600)
    assert pair["expires"] > time.time() + 3 * DAY
    info = sandbox.rest("app.info", token=pair).json()["result"]
    assert datetime.fromisoformat(info["expires"]).timestamp() == pytest.approx(
        pair["expires"], abs=1
    )


# -- the leaky bucket ----------------------------------------------------------------------


def test_advancing_the_clock_drains_the_bucket(sandbox):
    # So slow a drain that real time cannot free a place: only the clock can.
    sandbox.control("limits", {"rps": 0.01, "burst": 3})
    token = sandbox.token(1)
    assert [sandbox.rest("user.admin", token=token).status_code for _ in range(3)] == [200] * 3
    refused = sandbox.rest("user.admin", token=token)
    assert refused.status_code == 503
    assert refused.json()["error"] == "QUERY_LIMIT_EXCEEDED"
    sandbox.advance_clock(50)  # half a unit drains: still no room
    assert sandbox.rest("user.admin", token=token).status_code == 503
    sandbox.advance_clock(50)  # 1 / rps seconds in all: room for exactly one more
    assert sandbox.rest("user.admin", token=token).status_code == 200
    assert sandbox.rest("user.admin", token=token).status_code == 503
    sandbox.advance_clock(300)  # three units: the bucket is empty again
    assert [sandbox.rest("user.admin", token=token).status_code for _ in range(4)] == [
        200,
        200,
        200,
        503,
    ]


def test_reset_empties_a_bucket_that_the_clock_drained(sandbox):
    sandbox.control("limits", {"rps": 0.01, "burst": 1})
    token = sandbox.token(1)
    assert sandbox.rest("user.admin", token=token).status_code == 200
    sandbox.advance_clock(1_000)
    sandbox.control("reset", {})
    assert sandbox.state()["limits"] == {"rps": 2.0, "burst": 50}
    # After the clock went back by 1,000 s a new bucket starts empty, not overdrawn or full.
    sandbox.control("limits", {"rps": 0.01, "burst": 1})
    token = sandbox.token(1)
    assert sandbox.rest("user.admin", token=token).status_code == 200
    assert sandbox.rest("user.admin", token=token).status_code == 503


# -- timestamps ----------------------------------------------------------------------------


def test_the_time_block_follows_the_clock(sandbox):
    sandbox.advance_clock(DAY)
    token = sandbox.token(1)
    before = sandbox.clock()["now"]
    block = sandbox.rest("profile", token=token).json()["time"]
    after = sandbox.clock()["now"]
    assert before <= block["start"] <= block["finish"] <= after
    assert block["start"] > time.time() + DAY - 3600
    assert datetime.fromisoformat(block["date_start"]).timestamp() == int(block["start"])
    assert datetime.fromisoformat(block["date_finish"]).timestamp() == int(block["finish"])
    assert block["operating_reset_at"] == int(block["start"]) + 600
    # durations are measured, not read off the clock: the day's offset is not in them
    assert 0 <= block["duration"] == block["processing"] < 3600


def test_batch_times_and_the_time_limit_answer_follow_the_clock(sandbox):
    sandbox.advance_clock(2 * DAY)
    token = sandbox.token(1)
    before = sandbox.clock()["now"]
    result = sandbox.rest("batch", {"cmd": {"me": "profile"}}, token=token).json()
    sandbox.control("faults", {"method": "profile", "status": 429})
    limited = sandbox.rest("profile", token=token).json()
    after = sandbox.clock()["now"]
    command = result["result"]["result_time"]["me"]
    assert before <= command["start"] <= command["finish"] <= after
    assert command["duration"] < 3600
    assert before <= result["time"]["start"] <= after
    assert limited["error"] == "OPERATION_TIME_LIMIT"
    assert before <= limited["time"]["start"] <= after
    assert limited["time"]["operating_reset_at"] == int(limited["time"]["start"]) + 600


def test_the_call_log_stamps_calls_with_the_clock(sandbox):
    sandbox.advance_clock(DAY)
    token = sandbox.token(1)
    before = sandbox.clock()["now"]
    sandbox.rest("profile", token=token)
    after = sandbox.clock()["now"]
    (call,) = sandbox.calls()["calls"]
    assert before <= call["ts"] <= after


@pytest.fixture
def sandbox_app_url(receiver: Receiver) -> str:
    """Point the sandbox at the receiver, so that installs finish."""
    return receiver.url


def test_install_and_event_timestamps_follow_the_clock(sandbox, receiver):
    sandbox.advance_clock(10 * DAY)
    before = sandbox.clock()["now"]
    assert sandbox.control("install")["installed"] is True
    after = sandbox.clock()["now"]
    (event,) = [d for d in receiver.at("/install") if d.form.get("event") == "ONAPPINSTALL"]
    assert int(before) <= int(event.form["ts"]) <= int(after)
    assert int(before + 3600) <= int(event.form["auth[expires]"]) <= int(after + 3600)
    installed_at = sandbox.state()["portals"][0]["installed_at"]
    assert int(before) <= datetime.fromisoformat(installed_at).timestamp() <= int(after)
