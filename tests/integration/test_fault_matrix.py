"""The fault matrix: every Bitrix24 failure against every action, over real HTTP.

Each cell injects one fault into the sandbox (``/_sandbox/faults``, or a portal address
where nothing listens for "connection refused"), runs one action the way the page or
Bitrix24 does, and checks two things: what the user is told (status, code, message,
``Retry-After``, the page) and what is stored afterwards (the binding in the sandbox, the
history rows, the token and portal rows, the job). A fault that is sent once is one a retry
gets past; a persisting one answers every attempt. docs/reliability.md lists the outcomes.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from b24app.extensions import db
from b24app.jobs.runner import run_once
from b24app.models import BindingRecord, Job, JobItem, Portal, UserToken, utcnow
from b24app.services.gateway import gateway
from tests.integration.conftest import POSTGRES, session_token_of

# The cells of the actions that write nothing under a fault (open, picker page, the token
# check) run on SQLite only: their outcome does not depend on the database, and storing a
# chain is proven on both databases in test_open.py and test_tokens.py.
READ_ONLY = pytest.mark.skipif(POSTGRES, reason="a read-only action's cells run on SQLite")

# Short timeouts so that a hanging portal costs a second per attempt, not fifteen.
FAST = {"B24_HTTP_TIMEOUT": 1, "B24_REQUEST_BUDGET": 4.0, "JOB_BATCH_BUDGET": 3.0}
PERSISTING = 50
# Longer than B24_HTTP_TIMEOUT: the held answer is never read.
LOST_MS = 3000
WORKER = "matrix-worker"


@dataclass(frozen=True)
class Fault:
    """One row of the matrix: what the portal does, and what the user should then see."""

    name: str
    # The fault's body for /_sandbox/faults (method and count are added per cell).
    spec: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    # None: the action succeeds; else (status, code) the user is given.
    expect: tuple[int, str] | None = None

    @property
    def id(self) -> str:
        """The cell's name in the test id."""
        return self.name


# The location of a moved portal is filled in per test (the sandbox's other address).
MOVED = {"status": 302}
FAULTS = [
    Fault("503-once", {"status": 503, "error": "QUERY_LIMIT_EXCEEDED"}),
    Fault(
        "503-persisting",
        {"status": 503, "error": "QUERY_LIMIT_EXCEEDED"},
        PERSISTING,
        (503, "portal_busy"),
    ),
    Fault("429", {"status": 429, "error": "OPERATION_TIME_LIMIT"}, 1, (503, "portal_busy")),
    # A time limit that lifts within the request's budget is waited for.
    Fault("429-short", {"status": 429, "error": "OPERATION_TIME_LIMIT", "reset_in": 2}),
    Fault("500-once", {"status": 500, "error": "INTERNAL_SERVER_ERROR"}),
    Fault(
        "500-persisting",
        {"status": 500, "error": "INTERNAL_SERVER_ERROR"},
        PERSISTING,
        (502, "portal_unavailable"),
    ),
    Fault("timeout-once", {"error": "timeout"}),
    Fault("timeout-persisting", {"error": "timeout"}, PERSISTING, (502, "portal_unavailable")),
    Fault("malformed-once", {"error": "malformed"}),
    Fault("malformed-persisting", {"error": "malformed"}, PERSISTING, (502, "portal_unavailable")),
    Fault("refused", {}, PERSISTING, (502, "portal_unavailable")),
    # The portal does the work, then its answer arrives after the app stopped waiting.
    Fault("lost-once", {"hold_ms": LOST_MS}),
    Fault("lost-persisting", {"hold_ms": LOST_MS}, PERSISTING, (502, "portal_unavailable")),
    Fault("expired-once", {"status": 401, "error": "expired_token"}),
    Fault(
        "expired-persisting",
        {"status": 401, "error": "expired_token"},
        PERSISTING,
        (401, "reauth_required"),
    ),
    Fault("invalid-grant", {}, 1, (401, "reauth_required")),
    Fault("moved-once", MOVED),
    Fault("moved-persisting", MOVED, PERSISTING, (502, "portal_unavailable")),
    Fault("portal-deleted", {"status": 500, "error": "PORTAL_DELETED"}, 1, (403, "portal_gone")),
    Fault(
        "user-access", {"status": 403, "error": "user_access_error"}, 1, (403, "user_access_error")
    ),
]
FAULTS_BY_NAME = {fault.name: fault for fault in FAULTS}
BY_NAME = {fault.name: fault for fault in FAULTS}


# -- helpers -------------------------------------------------------------------------------


def closed_port() -> int:
    """Return a local port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def moved_to(portal24) -> str:
    """The sandbox portal's other address (127.0.0.1 instead of localhost): where it moved."""
    return portal24.sandbox.portal_url(0).replace("localhost", "127.0.0.1") + "/rest/"


def inject(portal24, fault: Fault, method: str) -> None:
    """Queue the fault on ``method`` (``*``: any REST method of the portal)."""
    if fault.name == "invalid-grant":
        # The access token is refused as expired, and the refresh that follows is refused.
        queue(portal24, {"method": method, "status": 401, "error": "expired_token"})
        queue(portal24, {"method": "oauth.token", "status": 400, "error": "invalid_grant"})
        return
    spec = dict(fault.spec)
    if spec.get("status") == 302:
        spec["location"] = moved_to(portal24)
    queue(portal24, {"method": method, "count": fault.count, **spec})


def queue(portal24, body: dict[str, Any]) -> None:
    """POST one fault to the sandbox."""
    portal24.sandbox.control("faults", body)


def clear_faults(portal24) -> None:
    """Drop every pending fault (before the test reads the sandbox itself)."""
    portal24.sandbox.control("faults", {"clear": True})


def pending_faults(portal24) -> list[dict[str, Any]]:
    """Return the faults still queued."""
    return portal24.sandbox.control("faults", method="GET")["faults"]


def point_portal_at(app, endpoint: str) -> str:
    """Store another REST address for the portal; return the old one."""
    with app.app_context():
        portal = db.session.scalars(select(Portal)).one()
        old = portal.client_endpoint
        portal.client_endpoint = endpoint
        db.session.commit()
        return old


def refuse_verified_portal(app, monkeypatch) -> None:
    """Make the verified portal address one where nothing listens (open and install)."""
    closed = f"http://127.0.0.1:{closed_port()}/rest/"
    with app.app_context():
        monkeypatch.setattr(gateway(), "portal_endpoint", lambda domain: closed)


def prepare(app, portal24, monkeypatch, fault: Fault, method: str, verified: bool = False) -> None:
    """Arm the fault for the next action: a queued fault, or a refusing portal address."""
    if fault.name == "refused":
        if verified:
            refuse_verified_portal(app, monkeypatch)
        else:
            point_portal_at(app, f"http://127.0.0.1:{closed_port()}/rest/")
        return
    inject(portal24, fault, method)


def binding_in_sandbox(portal24, order_id: int) -> tuple[int, int] | None:
    """Return the order's (ownerTypeId, ownerId) as the portal holds it (faults cleared)."""
    answer = portal24.sandbox.rest(
        "crm.orderentity.list", {"filter": {"orderId": order_id}}, user_id=1
    ).json()
    rows = answer["result"]["orderEntity"]
    assert len(rows) <= 1, rows
    return (int(rows[0]["ownerTypeId"]), int(rows[0]["ownerId"])) if rows else None


def history(app) -> list[BindingRecord]:
    """Return every history row, oldest first (detached)."""
    with app.app_context():
        rows = list(db.session.scalars(select(BindingRecord).order_by(BindingRecord.id)))
        db.session.expunge_all()
        return rows


def token_rows(app) -> dict[int, UserToken]:
    """Return the stored token rows by user id (detached)."""
    with app.app_context():
        rows = {t.user_id: t for t in db.session.scalars(select(UserToken))}
        db.session.expunge_all()
        return rows


def stored_portals(app) -> list[Portal]:
    """Return the stored portal rows (detached)."""
    with app.app_context():
        rows = list(db.session.scalars(select(Portal)))
        db.session.expunge_all()
        return rows


def assert_error_json(response, expect: tuple[int, str]) -> dict[str, Any]:
    """Check a JSON error answer: status, code, a message and, for 503, Retry-After."""
    status, code = expect
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and code not in error["message"]
    assert_retry_after(response, code, error.get("retryAfter"))
    return error


def assert_error_page(response, expect: tuple[int, str]) -> None:
    """Check an error page: status, its code, a message, and Retry-After on a 503."""
    status, code = expect
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert f'data-error-code="{code}"' in response.text
    assert "data-session=" not in response.text
    assert_retry_after(response, code, None)


def assert_retry_after(response, code: str, body_value: Any) -> None:
    """A busy portal says when to try again; nothing else does."""
    if code != "portal_busy":
        assert "Retry-After" not in response.headers
        return
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    if body_value is not None:
        assert body_value == seconds


def expected_wait(fault: Fault) -> int:
    """The least Retry-After a fault should produce: its time limit lifts in 10 minutes."""
    return 500 if fault.name == "429" else 1


# Faults after which a write may have been applied without an answer: the user and the
# history are told that it is not known, not that it failed.
UNCONFIRMED = {"timeout-persisting", "malformed-persisting", "lost-persisting"}


def write_expect(fault: Fault) -> tuple[int, str] | None:
    """What a bind or unbind answers after the fault (a read answers ``fault.expect``)."""
    if fault.name in UNCONFIRMED:
        return (502, "change_unconfirmed")
    return fault.expect


def cells() -> list[Any]:
    """The faults as test parameters, named by their row."""
    return [pytest.param(f, id=f.id) for f in FAULTS]


@pytest.fixture
def app(make_app):
    """The app with short timeouts, so hanging cells stay short."""
    return make_app(**FAST)


@pytest.fixture
def admin(app, portal24):
    """Installed and opened by the store administrator: the session token."""
    portal24.install()
    return portal24.session(user_id=1)


NOT_SAID = object()


def bind(portal24, session, order_id, owner_id, owner_type_id=2, seen=NOT_SAID):
    """POST a binding; ``seen`` is the (ownerTypeId, ownerId) the page showed, or None."""
    body = {"orderId": order_id, "ownerTypeId": owner_type_id, "ownerId": owner_id}
    if seen is not NOT_SAID:
        body["seenOwner"] = None if seen is None else {"ownerTypeId": seen[0], "ownerId": seen[1]}
    return portal24.api("/api/bindings", session, method="POST", json=body)


def recover(app, portal24, fault: Fault, old_endpoint: str | None) -> str:
    """Undo the fault's lasting effects the way a user would: reopen the app."""
    clear_faults(portal24)
    if old_endpoint is not None:
        point_portal_at(app, old_endpoint)
    return portal24.session(user_id=1)


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


def assert_chain_after(app, fault: Fault) -> None:
    """The acting user's chain: dead only after invalid_grant, never half written."""
    stored = token_rows(app)[1]
    assert (stored.invalid_grant_at is not None) == (fault.name == "invalid-grant")
    assert stored.access_token_encrypted and stored.refresh_token_encrypted


def assert_endpoint_after(app, portal24, fault: Fault) -> None:
    """A portal that answered 302 is remembered at its new address (after the guard)."""
    endpoint = stored_portals(app)[0].client_endpoint
    if fault.name.startswith("moved"):
        assert endpoint == moved_to(portal24)
    elif fault.name != "refused":
        assert endpoint == portal24.sandbox.portal_url(0) + "/rest/"


# -- bind, rebind --------------------------------------------------------------------------


@pytest.mark.parametrize("fault", cells())
@pytest.mark.parametrize(
    ("order_id", "before"),
    [pytest.param(1, None, id="bind"), pytest.param(2, (2, 1), id="rebind")],
)
def test_bind(app, portal24, admin, monkeypatch, fault, order_id, before):
    # Order 1 is free; order 2 is bound to deal 1 by the seed. Both go to deal 2.
    old = None
    if fault.name == "refused":
        old = stored_portals(app)[0].client_endpoint
    prepare(app, portal24, monkeypatch, fault, "*")

    # As the page does: the bind names the owner the user saw.
    response = bind(portal24, admin, order_id, 2, seen=before)

    clear_faults(portal24)
    assert_endpoint_after(app, portal24, fault)
    rows = history(app)
    assert len(rows) == 1
    row = rows[0]
    assert (row.order_id, row.owner_type_id, row.owner_id, row.action) == (
        order_id,
        2,
        2,
        "bind",
    )
    expect = write_expect(fault)
    if expect is None:
        assert response.status_code == 200, response.text
        answer = response.json()
        # After a lost answer the repeat reads the first attempt's own binding; what it
        # replaced is the owner the page showed.
        outcome = "bound" if before is None else "replaced"
        assert answer["outcome"] == outcome == row.outcome
        assert answer["historyId"] == row.id
        assert binding_in_sandbox(portal24, order_id) == (2, 2)
        replaced = (row.replaced_owner_type_id, row.replaced_owner_id)
        assert replaced == (before or (None, None))
    else:
        assert_error_json(response, expect)
        # A lost answer is no refusal: the portal bound the order; the user is told that it
        # is not known whether it was, and the history row says the same.
        landed = (2, 2) if fault.name == "lost-persisting" else before
        assert binding_in_sandbox(portal24, order_id) == landed
        assert (row.outcome, row.error_code) == ("failed", expect[1])
        # After reopening, the same bind goes through, once.
        session = recover(app, portal24, fault, old)
        again = bind(portal24, session, order_id, 2)
        assert again.status_code == 200, again.text
        assert binding_in_sandbox(portal24, order_id) == (2, 2)


def test_a_lost_rebind_names_the_owner_the_page_showed_and_can_be_undone(
    app, portal24, admin, monkeypatch
):
    # Order 2 is on deal 1; its first answer is lost, the repeat finds it on deal 2 already.
    prepare(app, portal24, monkeypatch, FAULTS_BY_NAME["lost-once"], "*")
    response = bind(portal24, admin, 2, 2, seen=(2, 1))
    clear_faults(portal24)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "replaced"
    assert (answer["replaced"]["ownerTypeId"], answer["replaced"]["ownerId"]) == (2, 1)
    # The undo puts back what was really there before.
    undone = portal24.api(f"/api/history/{answer['historyId']}/undo", admin, method="POST")
    assert undone.status_code == 200, undone.text
    assert binding_in_sandbox(portal24, 2) == (2, 1)


def test_a_lost_rebind_that_says_nothing_seen_is_recorded_as_already_bound(
    app, portal24, admin, monkeypatch
):
    # A client that does not say what it saw: the repeat's reading is all there is.
    prepare(app, portal24, monkeypatch, FAULTS_BY_NAME["lost-once"], "*")
    response = bind(portal24, admin, 2, 2)
    clear_faults(portal24)

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "already_bound"
    assert response.json()["replaced"] is None
    assert binding_in_sandbox(portal24, 2) == (2, 2)


def test_a_seen_owner_changes_nothing_when_no_answer_was_lost(app, portal24, admin):
    # The portal's own reading wins: the page saw deal 5, the order is really on deal 1.
    response = bind(portal24, admin, 2, 2, seen=(2, 5))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "replaced"
    assert (answer["replaced"]["ownerTypeId"], answer["replaced"]["ownerId"]) == (2, 1)


# -- unbind --------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_unbind(app, portal24, admin, monkeypatch, fault):
    assert bind(portal24, admin, 1, 2).status_code == 200
    old = stored_portals(app)[0].client_endpoint if fault.name == "refused" else None
    prepare(app, portal24, monkeypatch, fault, "*")

    response = portal24.api("/api/bindings/1?ownerTypeId=2&ownerId=2", admin, method="DELETE")

    clear_faults(portal24)
    assert_endpoint_after(app, portal24, fault)
    rows = history(app)
    assert len(rows) == 2
    row = rows[1]
    assert (row.action, row.order_id, row.owner_id) == ("unbind", 1, 2)
    # Every lost answer is a removal that happened: the repeat finds the binding gone
    # (201640400004, which is answered), and that is the success the first answer was.
    expect = None if fault.name == "lost-persisting" else write_expect(fault)
    if expect is None:
        assert response.status_code == 200, response.text
        assert response.json()["historyId"] == row.id
        assert row.outcome == "unbound"
        assert binding_in_sandbox(portal24, 1) is None
    else:
        assert_error_json(response, expect)
        assert (row.outcome, row.error_code) == ("failed", expect[1])
        assert binding_in_sandbox(portal24, 1) == (2, 2)
        session = recover(app, portal24, fault, old)
        again = portal24.api("/api/bindings/1?ownerTypeId=2&ownerId=2", session, method="DELETE")
        assert again.status_code == 200, again.text
        assert binding_in_sandbox(portal24, 1) is None


# -- undo (POST /api/history/<id>/undo) ----------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_undo(app, portal24, admin, monkeypatch, fault):
    rebound = bind(portal24, admin, 2, 2).json()
    assert rebound["outcome"] == "replaced"
    old = stored_portals(app)[0].client_endpoint if fault.name == "refused" else None
    prepare(app, portal24, monkeypatch, fault, "*")

    response = portal24.api(f"/api/history/{rebound['historyId']}/undo", admin, method="POST")

    clear_faults(portal24)
    assert_endpoint_after(app, portal24, fault)
    rows = history(app)
    original = rows[0]
    if fault.expect is None:
        assert response.status_code == 200, response.text
        assert len(rows) == 2
        undo_row = rows[1]
        assert (undo_row.owner_id, undo_row.outcome) == (1, "replaced")
        assert undo_row.undo_of_id == original.id and original.undone_by_id == undo_row.id
        assert binding_in_sandbox(portal24, 2) == (2, 1)
    else:
        assert_error_json(response, fault.expect)
        assert binding_in_sandbox(portal24, 2) == (2, 2)
        # A failed undo leaves the attempt undoable; any row it left says it failed.
        assert original.undone_by_id is None
        assert all(r.outcome == "failed" for r in rows[1:])
        session = recover(app, portal24, fault, old)
        again = portal24.api(f"/api/history/{rebound['historyId']}/undo", session, method="POST")
        assert again.status_code == 200, again.text
        assert binding_in_sandbox(portal24, 2) == (2, 1)


# -- bulk (a job) --------------------------------------------------------------------------

JOB_ORDERS = [1, 5, 10]


def job_state(app, job_id: int) -> tuple[Job, list[JobItem]]:
    """Return the job row and its items (detached)."""
    with app.app_context():
        job = db.session.get(Job, job_id)
        items = list(db.session.scalars(select(JobItem).where(JobItem.job_id == job_id)))
        db.session.expunge_all()
        assert job is not None
        return job, items


def run_worker(app, later: float = 0.0) -> None:
    """Run job steps until idle, as a worker would ``later`` seconds from now."""
    moment = utcnow() + timedelta(seconds=later)
    with app.app_context():
        while run_once(WORKER, clock=lambda: moment):
            pass


@pytest.mark.parametrize("fault", cells())
def test_bulk(app, portal24, admin, monkeypatch, fault):
    started = portal24.api(
        "/api/jobs/bind",
        admin,
        method="POST",
        json={"orderIds": JOB_ORDERS, "ownerTypeId": 2, "ownerId": 2},
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job"]["id"]
    old = stored_portals(app)[0].client_endpoint if fault.name == "refused" else None
    prepare(app, portal24, monkeypatch, fault, "*")

    with app.app_context():
        assert run_once(WORKER)

    clear_faults(portal24)
    assert_endpoint_after(app, portal24, fault)
    job, items = job_state(app, job_id)
    shown = portal24.api(f"/api/jobs/{job_id}", admin)
    if fault.expect is None:
        run_worker(app)
    else:
        # Nothing is recorded for a batch that did not go through.
        assert {i.state for i in items} == {"pending"}
        assert history(app) == []
        landed = (2, 2) if fault.name == "lost-persisting" else None
        assert all(binding_in_sandbox(portal24, o) == landed for o in JOB_ORDERS)
        code = fault.expect[1]
        if code in ("reauth_required", "portal_gone", "user_access_error"):
            # Waiting does not help: the job says why and waits for the user.
            assert job.state == "paused" and job.paused_reason == code
            assert shown.json()["job"]["state"] == "paused"
            assert shown.json()["job"]["pausedReason"]
            run_worker(app, later=3600)
            assert job_state(app, job_id)[0].state == "paused"
            recover(app, portal24, fault, old)
        else:
            # Busy or down: the job is postponed (the time limit's own reset time at least).
            assert job.state == "running" and job.lease_owner is None
            wait = (job.lease_until - utcnow()).total_seconds()
            assert wait >= (500 if fault.name == "429" else 10)
            clear_faults(portal24)
            if old is not None:
                point_portal_at(app, old)
        run_worker(app, later=3600)
    job, items = job_state(app, job_id)
    assert job.state == "done"
    assert sorted(i.order_id for i in items) == JOB_ORDERS
    # After a lost answer the batch is sent again and finds its own adds: "already bound".
    done = "already_bound" if fault.name.startswith("lost") else "bound"
    assert {i.state for i in items} == {done}
    rows = history(app)
    assert sorted(r.order_id for r in rows) == JOB_ORDERS
    assert {(r.outcome, r.job_id) for r in rows} == {(done, job_id)}
    assert all(binding_in_sandbox(portal24, o) == (2, 2) for o in JOB_ORDERS)


# -- install (POST /install) ---------------------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_install(app, portal24, monkeypatch, fault):
    prepare(app, portal24, monkeypatch, fault, "batch", verified=True)

    response = portal24.frame_post("/install", user_id=1)

    clear_faults(portal24)
    state = portal24.state()
    portals = stored_portals(app)
    if fault.expect is None:
        assert response.status_code == 200, response.text[:500]
        assert "js/install.js" in response.text
        assert len(portals) == 1 and portals[0].is_installed
        assert set(token_rows(app)) == {1}
        assert len(state["placements"]) == 3
        assert [e["event"] for e in state["event_handlers"]] == ["ONAPPUNINSTALL"]
    else:
        assert_error_page(response, fault.expect)
        assert "js/install.js" not in response.text
        # Nothing is half installed: no portal row, no tokens; installing again works.
        assert portals == [] and token_rows(app) == {}
        monkeypatch.undo()
        result = portal24.install()
        assert result["install_page"]["status"] == 200
        assert stored_portals(app)[0].is_installed


# -- uninstall (ONAPPUNINSTALL) ------------------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_uninstall(app, portal24, admin, monkeypatch, fault):
    assert bind(portal24, admin, 1, 2).status_code == 200
    prepare(app, portal24, monkeypatch, fault, "*")
    queued = pending_faults(portal24)

    result = portal24.uninstall(clean=0)

    # ONAPPUNINSTALL needs no call to Bitrix24: the faults are all still pending.
    assert [e["status"] for e in result["events"]] == [200]
    assert pending_faults(portal24) == queued
    portal = stored_portals(app)[0]
    assert not portal.is_installed
    assert token_rows(app) == {}
    assert len(history(app)) == 1


def test_every_fault_is_a_row_of_the_matrix():
    names = [f.name for f in FAULTS]
    assert len(names) == len(set(names)) == len(BY_NAME)
    assert {f.expect for f in FAULTS if f.name.endswith("-once")} == {None}


# -- install: the batch that binds the tabs and the event (plain writes) -------------------

WRITE_BATCH_FAULTS = [
    pytest.param(
        {"status": 503, "error": "QUERY_LIMIT_EXCEEDED"}, 1, (503, "portal_busy"), id="503"
    ),
    pytest.param(
        {"status": 500, "error": "INTERNAL_SERVER_ERROR"}, 1, (502, "portal_unavailable"), id="500"
    ),
    pytest.param({"hold_ms": LOST_MS}, 1, (502, "portal_unavailable"), id="lost"),
]


@pytest.mark.parametrize(("spec", "count", "expect"), WRITE_BATCH_FAULTS)
def test_install_binding_handlers(app, portal24, spec, count, expect):
    # The first batch (who installs, what is bound) passes; the second one binds.
    queue(portal24, {"method": "batch", "skip": 1, "count": count, **spec})

    response = portal24.frame_post("/install", user_id=1)

    clear_faults(portal24)
    # placement.bind and event.bind are plain writes: not sent twice, whatever the error.
    batches = [c for c in portal24.sandbox.calls()["calls"] if c["method"] == "batch"]
    assert len(batches) == 2
    assert_error_page(response, expect)
    assert stored_portals(app) == [] and token_rows(app) == {}
    bound = len(portal24.state()["placements"])
    # A lost answer bound the tabs; the other failures bound nothing.
    assert bound == (3 if "hold_ms" in spec else 0)
    # Installing again binds what is missing (nothing twice) and stores the portal.
    result = portal24.install()
    assert result["install_page"]["status"] == 200
    assert stored_portals(app)[0].is_installed
    state = portal24.state()
    assert len(state["placements"]) == 3
    assert [e["event"] for e in state["event_handlers"]] == ["ONAPPUNINSTALL"]


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
