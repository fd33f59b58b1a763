"""The binding API's contract: sessions, validation, rights, upstream cost, faults, OpenAPI."""

import json
import time
from pathlib import Path

import pytest

from tests.integration.test_api_bindings import (
    bind,
    call_count,
    first_owner,
    free_order,
    owner_in_sandbox,
)
from tests.integration.test_forged import sign, valid_claims

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = [
    ("GET", "/api/orders"),
    ("GET", "/api/owners?type=2"),
    ("GET", "/api/bindings?orderId=1"),
    ("POST", "/api/bindings"),
    ("DELETE", "/api/bindings/1?ownerTypeId=2&ownerId=1"),
    ("GET", "/api/history"),
    ("POST", "/api/history/1/undo"),
]
BODY = {"orderId": 1, "ownerTypeId": 2, "ownerId": 1}


@pytest.fixture
def installed(app, portal24):
    """The app installed on portal 1 and opened once by the administrator."""
    portal24.install()
    portal24.session(user_id=1)
    return portal24


def call(portal24, method, path, session, **kwargs):
    """Call the API; POSTs carry a valid body unless one is given."""
    if method == "POST" and "json" not in kwargs and "content" not in kwargs:
        kwargs["json"] = BODY
    return portal24.api(path, session, method=method, **kwargs)


def writes_sent(portal24, since):
    """Return the binding writes the sandbox saw after ``since``."""
    writes = {"crm.orderentity.add", "crm.orderentity.deletebyfilter"}
    return [c for c in portal24.sandbox.calls()["calls"][since:] if c["method"] in writes]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_missing_expired_and_tampered_sessions(app, installed, method, path):
    good = installed.session(user_id=1)
    now = int(time.time())
    expired = sign(app, valid_claims(app, installed, iat=now - 3600, exp=now - 60))
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}xx"
    since = call_count(installed)

    for token, code in (
        (None, "session_required"),
        (expired, "session_expired"),
        (tampered, "session_invalid"),
    ):
        answer = call(installed, method, path, token)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == code
        assert answer.json()["error"]["message"]
    assert [
        c for c in installed.sandbox.calls()["calls"][since:] if c["method"] != "app.info"
    ] == []


def test_a_session_of_another_portal_sees_only_its_own_portal(app, installed):
    installed.install(portal=2)
    other = installed.session(user_id=1, portal=2)
    session = installed.session(user_id=1)
    order = free_order(installed, session)
    deal = first_owner(installed, session, 2)
    bind(installed, session, order["id"], 2, deal["id"])

    assert installed.api("/api/history", other).json()["items"] == []
    mine = installed.api("/api/history", session).json()["items"]
    foreign = installed.api(f"/api/history/{mine[0]['id']}/undo", other, method="POST")
    assert foreign.status_code == 404
    assert owner_in_sandbox(installed, order["id"]) == (2, deal["id"])


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"orderId": 1, "ownerTypeId": 2}, "ownerId", "missing_field"),
        ({**BODY, "extra": 1}, "extra", "unknown_field"),
        ({**BODY, "orderId": "1"}, "orderId", "invalid_field"),
        ({**BODY, "orderId": 1.5}, "orderId", "invalid_field"),
        ({**BODY, "orderId": True}, "orderId", "invalid_field"),
        ({**BODY, "orderId": 0}, "orderId", "invalid_field"),
        ({**BODY, "ownerId": -4}, "ownerId", "invalid_field"),
        ({**BODY, "orderId": 2**31}, "orderId", "invalid_field"),
        ({**BODY, "ownerTypeId": None}, "ownerTypeId", "invalid_field"),
        ([BODY], "body", "invalid_field"),
        ("just a string", "body", "invalid_field"),
    ],
)
def test_malformed_bind_bodies_are_400s_naming_the_field(installed, body, field, code):
    session = installed.session(user_id=1)
    since = call_count(installed)

    answer = installed.api("/api/bindings", session, method="POST", json=body)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert field in error["message"]
    assert writes_sent(installed, since) == []


def test_bodies_that_are_not_json_or_too_large_are_refused(installed):
    session = installed.session(user_id=1)
    since = call_count(installed)
    form = installed.api("/api/bindings", session, method="POST", data={"orderId": "1"})
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported_media_type"
    broken = installed.http.post(
        f"{installed.app_url}/api/bindings",
        content=b'{"orderId": 1,',
        headers={"Authorization": f"Bearer {session}", "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "bad_request"
    huge = installed.http.post(
        f"{installed.app_url}/api/bindings",
        content=json.dumps({**BODY, "pad": "x" * 300_000}).encode(),
        headers={"Authorization": f"Bearer {session}", "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"
    assert writes_sent(installed, since) == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/orders?cursor=abc", "cursor"),
        ("/api/orders?cursor=0", "cursor"),
        ("/api/orders?q=" + "9" * 101, "q"),
        ("/api/orders?limit=5", "limit"),
        ("/api/owners", "type"),
        ("/api/owners?type=two", "type"),
        ("/api/owners?type=0", "type"),
        ("/api/bindings", "query"),
        ("/api/bindings?orderId=-1", "orderId"),
        ("/api/bindings?ownerTypeId=2", "query"),
        ("/api/bindings/5?ownerTypeId=2", "ownerId"),
        ("/api/history?cursor=-3", "cursor"),
        # Row ids are 32-bit: PostgreSQL refused to compare with a larger one (a 500).
        ("/api/history?cursor=8000000000", "cursor"),
        ("/api/jobs?cursor=2147483648", "cursor"),
        ("/api/jobs/1/items?cursor=9999999999", "cursor"),
    ],
)
def test_malformed_queries_are_400s_naming_the_field(installed, path, field):
    session = installed.session(user_id=1)
    method = "DELETE" if path.startswith("/api/bindings/") else "GET"

    answer = installed.api(path, session, method=method)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field


@pytest.mark.parametrize("path", ["/api/history", "/api/jobs"])
def test_the_largest_row_cursor_is_accepted(installed, path):
    session = installed.session(user_id=1)

    answer = installed.api(f"{path}?cursor=2147483647", session)

    assert answer.status_code == 200, answer.text
    assert answer.json()["nextCursor"] is None


def test_path_ids_out_of_range_are_400s(installed):
    session = installed.session(user_id=1)
    answer = installed.api(
        f"/api/bindings/{2**40}?ownerTypeId=2&ownerId=1", session, method="DELETE"
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "orderId"
    assert installed.api("/api/history/0/undo", session, method="POST").status_code == 400


def test_a_store_manager_reads_but_every_write_is_refused_before_bitrix24(installed):
    admin = installed.session(user_id=1)
    order = free_order(installed, admin)
    deal = first_owner(installed, admin, 2)
    bound = bind(installed, admin, order["id"], 2, deal["id"]).json()
    manager = installed.session(user_id=2)
    since = call_count(installed)

    for path in ("/api/orders", "/api/owners?type=2", f"/api/bindings?orderId={order['id']}"):
        assert installed.api(path, manager).status_code == 200
    entries = installed.api("/api/history", manager).json()["items"]
    assert entries and not any(e["undoable"] for e in entries)
    refused = [
        bind(installed, manager, order["id"], 2, deal["id"]),
        installed.api(
            f"/api/bindings/{order['id']}?ownerTypeId=2&ownerId={deal['id']}",
            manager,
            method="DELETE",
        ),
        installed.api(f"/api/history/{bound['historyId']}/undo", manager, method="POST"),
    ]
    for answer in refused:
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "permission_denied"
    calls = installed.sandbox.calls()["calls"][since:]
    assert writes_sent(installed, since) == []
    assert {c["user_id"] for c in calls if c["method"] != "app.info"} == {2}
    assert owner_in_sandbox(installed, order["id"]) == (2, deal["id"])


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_an_employee_without_store_access_gets_no_store_access(installed, method, path):
    employee = installed.session(user_id=3)
    since = call_count(installed)

    answer = call(installed, method, path, employee)

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "no_store_access"
    assert installed.api("/api/me", employee).status_code == 200
    assert writes_sent(installed, since) == []


def test_only_the_acting_users_token_reaches_bitrix24(installed):
    admin = installed.session(user_id=1)
    installed.session(user_id=2)
    since = call_count(installed)
    order = free_order(installed, admin)
    deal = first_owner(installed, admin, 2)
    bind(installed, admin, order["id"], 2, deal["id"])
    installed.api("/api/history", admin)

    calls = installed.sandbox.calls()["calls"][since:]
    assert {c["user_id"] for c in calls} == {1}


def test_a_write_bitrix24_still_refuses_is_permission_denied(app, installed):
    admin = installed.session(user_id=1)
    order = free_order(installed, admin)
    deal = first_owner(installed, admin, 2)
    installed.session(user_id=2)
    # The manager's session claims the right (say it was withdrawn after opening):
    # Bitrix24, judging the manager's own token, refuses the add.
    claims = valid_claims(app, installed, name="Mark Manager")
    claims["sub"] = claims["sub"].rsplit(":", 1)[0] + ":2"
    stale = sign(app, claims)

    answer = bind(installed, stale, order["id"], 2, deal["id"])

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"
    assert owner_in_sandbox(installed, order["id"]) is None


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "error": "QUERY_LIMIT_EXCEEDED"},
        {"status": 500, "error": "INTERNAL_SERVER_ERROR"},
        {"error": "timeout"},
        {"error": "malformed"},
    ],
)
def test_one_failing_answer_on_a_write_neither_loses_nor_doubles_the_binding(installed, fault):
    admin = installed.session(user_id=1)
    order = free_order(installed, admin)
    deal = first_owner(installed, admin, 2)
    installed.sandbox.control("faults", {"method": "batch", "count": 1, **fault})

    answer = bind(installed, admin, order["id"], 2, deal["id"])

    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] in {"bound", "already_bound"}
    assert owner_in_sandbox(installed, order["id"]) == (2, deal["id"])
    installed.sandbox.control(
        "faults", {"method": "crm.orderentity.deleteByFilter", "count": 1, **fault}
    )
    removed = installed.api(
        f"/api/bindings/{order['id']}?ownerTypeId=2&ownerId={deal['id']}", admin, method="DELETE"
    )
    assert removed.status_code == 200, removed.text
    assert owner_in_sandbox(installed, order["id"]) is None


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"status": 503, "error": "QUERY_LIMIT_EXCEEDED"}, 503, "portal_busy"),
        ({"status": 500, "error": "INTERNAL_SERVER_ERROR"}, 502, "portal_unavailable"),
        # A 200 whose body is broken may have done the work: not known, so not "failed".
        ({"error": "malformed"}, 502, "change_unconfirmed"),
    ],
)
def test_a_write_failing_every_time_is_a_clear_error_and_changes_nothing(
    installed, fault, status, code
):
    admin = installed.session(user_id=1)
    order = free_order(installed, admin)
    deal = first_owner(installed, admin, 2)
    installed.sandbox.control("faults", {"method": "batch", "count": 20, **fault})

    answer = bind(installed, admin, order["id"], 2, deal["id"])

    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert owner_in_sandbox(installed, order["id"]) is None
    if status == 503:
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.json()["error"]["retryAfter"] >= 1


def test_upstream_cost_open_two_picker_one(app, portal24):
    portal24.install()
    since = call_count(portal24)
    session = portal24.session(user_id=1)
    opened = [c for c in portal24.sandbox.calls()["calls"][since:] if not c.get("batch")]
    assert sorted(c["method"] for c in opened) == ["app.info", "batch"]

    for path in ("/api/orders", "/api/owners?type=31", "/api/orders?q=1"):
        since = call_count(portal24)
        assert portal24.api(path, session).status_code == 200
        sent = [c for c in portal24.sandbox.calls()["calls"][since:] if not c.get("batch")]
        assert [c["method"] for c in sent] == ["batch"], path


def test_the_served_openapi_document_equals_the_committed_copy(app, portal24):
    served = portal24.http.get(f"{portal24.app_url}/api/openapi.json")

    assert served.status_code == 200
    document = served.json()
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert document == committed
    assert document["openapi"].startswith("3.1")
    schemes = document["components"]["securitySchemes"]
    assert schemes["session"]["scheme"] == "bearer"
    paths = document["paths"]
    for path in (
        "/api/orders",
        "/api/owners",
        "/api/bindings",
        "/api/bindings/{order_id}",
        "/api/history",
        "/api/history/{record_id}/undo",
        "/api/me",
    ):
        assert path in paths, path
    post = paths["/api/bindings"]["post"]
    assert {"200", "400", "401", "403", "404", "415"} <= set(post["responses"])


def test_a_time_limit_beyond_the_request_budget_says_when_to_retry(installed):
    admin = installed.session(user_id=1)
    installed.sandbox.control(
        "faults", {"method": "batch", "count": 1, "status": 429, "error": "OPERATION_TIME_LIMIT"}
    )
    batches = installed.sandbox.calls()["counts"].get("batch", 0)

    answer = installed.api("/api/orders", admin)

    assert answer.status_code == 503
    # No second try: waiting for the reset would outlast the request's budget.
    assert installed.sandbox.calls()["counts"].get("batch", 0) == batches + 1
    error = answer.json()["error"]
    assert error["code"] == "portal_busy"
    assert error["retryAfter"] >= 1
    assert str(error["retryAfter"]) in error["message"]
    assert answer.headers["Retry-After"] == str(error["retryAfter"])
