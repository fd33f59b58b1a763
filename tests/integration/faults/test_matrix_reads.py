"""The fault matrix for the actions that write nothing: open, the picker page, the token check."""

from __future__ import annotations

import pytest

from tests.integration.conftest import session_token_of
from tests.integration.faults.matrix import (
    BY_NAME,
    FAST,
    FAULTS,
    READ_ONLY,
    assert_chain_after,
    assert_endpoint_after,
    assert_error_json,
    assert_error_page,
    cells,
    clear_faults,
    closed_port,
    expected_wait,
    history,
    prepare,
    queue,
    stored_portals,
    token_rows,
)

# -- open (POST /app) ----------------------------------------------------------------------


@READ_ONLY
@pytest.mark.parametrize("fault", cells())
def test_open(app, portal24, monkeypatch, fault):
    portal24.install()
    before = token_rows(app)
    prepare(app, portal24, monkeypatch, fault, "batch", verified=True)
    posted = portal24.token(2)

    response = portal24.open(user_id=2, tokens=posted)

    clear_faults(portal24)
    after = token_rows(app)
    if fault.expect is None:
        assert response.status_code == 200, response.text[:500]
        portal24.seen.add(session_token_of(response.text))
        stored = after[2]
        assert stored.invalid_grant_at is None
        if fault.name == "expired-once":
            # The posted pair was refreshed on the way; the rotated pair is what is stored.
            assert portal24.sandbox.calls()["refreshes"] == 1
        assert portal24.sandbox.rest("profile", token=posted).status_code == (
            401 if fault.name == "expired-once" else 200
        )
    else:
        assert_error_page(response, fault.expect)
        if fault.expect[1] == "portal_busy":
            assert int(response.headers["Retry-After"]) >= expected_wait(fault)
        # Nothing is stored for a user whose open failed; the installer's chain is untouched.
        assert set(after) == set(before) == {1}
        assert after[1].access_token_encrypted == before[1].access_token_encrypted


# -- picker (GET /api/orders) --------------------------------------------------------------


@READ_ONLY
@pytest.mark.parametrize("fault", cells())
def test_picker(app, portal24, admin, monkeypatch, fault):
    prepare(app, portal24, monkeypatch, fault, "*")

    response = portal24.api("/api/orders", admin)

    if fault.expect is None:
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == 50
    else:
        error = assert_error_json(response, fault.expect)
        if fault.expect[1] == "portal_busy":
            assert error["retryAfter"] >= expected_wait(fault)
    assert history(app) == []
    assert_chain_after(app, fault)
    assert_endpoint_after(app, portal24, fault)


def test_every_fault_is_a_row_of_the_matrix():
    names = [f.name for f in FAULTS]
    assert len(names) == len(set(names)) == len(BY_NAME)
    assert {f.expect for f in FAULTS if f.name.endswith("-once")} == {None}


# -- the token check on the OAuth server (app.info), for open and install -----------------

CHECK_FAULTS = [
    pytest.param(BY_NAME["503-once"], id="503-once"),
    pytest.param(BY_NAME["500-once"], id="500-once"),
    pytest.param(BY_NAME["timeout-once"], id="timeout-once"),
    pytest.param(BY_NAME["malformed-once"], id="malformed-once"),
    pytest.param(BY_NAME["500-persisting"], id="500-persisting"),
    pytest.param(BY_NAME["timeout-persisting"], id="timeout-persisting"),
    pytest.param(BY_NAME["refused"], id="refused"),
]


@READ_ONLY
@pytest.mark.parametrize("fault", CHECK_FAULTS)
@pytest.mark.parametrize("action", ["open", "install"])
def test_token_check(make_app, portal24, action, fault):
    app = make_app(**FAST)
    if action == "open":
        portal24.install()
    if fault.name == "refused":
        # The OAuth server cannot be reached at all.
        app = make_app(**FAST, B24_OAUTH_SERVER=f"http://127.0.0.1:{closed_port()}")
    else:
        queue(portal24, {"method": "app.info", "count": fault.count, **fault.spec})

    response = portal24.frame_post("/app" if action == "open" else "/install", user_id=1)

    clear_faults(portal24)
    if fault.expect is None:
        # A read: sent again after a busy, failing or silent OAuth server.
        assert response.status_code == 200, response.text[:500]
        if action == "open":
            portal24.seen.add(session_token_of(response.text))
        assert stored_portals(app)[0].is_installed
    else:
        assert_error_page(response, (502, "oauth_unavailable"))
        assert (stored_portals(app) == []) == (action == "install")
