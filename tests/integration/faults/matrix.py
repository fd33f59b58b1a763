"""The fault matrix: every Bitrix24 failure against every action, over real HTTP.

Each cell injects one fault into the sandbox (``/_sandbox/faults``, or a portal address
where nothing listens for "connection refused"), runs one action the way the page or
Bitrix24 does, and checks two things: what the user is told (status, code, message,
``Retry-After``, the page) and what is stored afterwards (the binding in the sandbox, the
history rows, the token and portal rows, the job). A fault that is sent once is one a retry
gets past; a persisting one answers every attempt. docs/reliability.md lists the outcomes.

This module holds the rows and the helpers; the cells are the ``test_*`` modules beside
it, one per group of actions, so that the test runner can spread them over its workers.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from b24app.bitrix.encoding import batch_command
from b24app.extensions import db
from b24app.jobs.runner import run_once
from b24app.models import BindingRecord, Job, JobItem, Portal, UserToken, utcnow
from b24app.services.gateway import gateway
from tests.integration.conftest import POSTGRES

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


def owners_in_sandbox(portal24, orders: list[int]) -> dict[int, tuple[int, int] | None]:
    """Return the orders' owners as the portal holds them, 50 a page."""
    found: dict[int, tuple[int, int] | None] = dict.fromkeys(orders)
    for at in range(0, len(orders), 50):
        answer = portal24.sandbox.rest(
            "crm.orderentity.list", {"filter": {"@orderId": orders[at : at + 50]}}
        ).json()
        for row in answer["result"]["orderEntity"]:
            found[int(row["orderId"])] = (int(row["ownerTypeId"]), int(row["ownerId"]))
    return found


def set_owners(portal24, owners: dict[int, tuple[int, int] | None]) -> None:
    """Bind (or free) orders on the portal itself, 50 commands a batch."""
    commands = {}
    for order_id, current in owners_in_sandbox(portal24, list(owners)).items():
        owner = owners[order_id]
        if owner == current:
            continue
        if owner is not None:
            fields = {"orderId": order_id, "ownerTypeId": owner[0], "ownerId": owner[1]}
            commands[f"a{order_id}"] = batch_command("crm.orderentity.add", {"fields": fields})
        else:
            fields = {"orderId": order_id, "ownerTypeId": current[0], "ownerId": current[1]}
            commands[f"d{order_id}"] = batch_command(
                "crm.orderentity.deleteByFilter", {"fields": fields}
            )
    keys = list(commands)
    for at in range(0, len(keys), 50):
        cmd = {k: commands[k] for k in keys[at : at + 50]}
        answer = portal24.sandbox.rest("batch", {"cmd": cmd}).json()
        assert not answer["result"]["result_error"], answer
    assert owners_in_sandbox(portal24, list(owners)) == owners


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
