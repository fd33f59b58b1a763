"""crm.orderentity.* over HTTP: binding, the one-owner rule, duplicates, rights, paging."""

from __future__ import annotations

import threading

import httpx
import pytest

from b24app.bitrix.http import tls_context
from b24sandbox import data

DUPLICATE = {
    "error": "201650000001",
    "error_description": "Duplicate entry for key [ownerId, ownerTypeId, orderId]",
}
WRITE_DENIED = {"error": "200040300020", "error_description": "Access Denied"}
READ_DENIED = {"error": "200040300010", "error_description": "Access Denied"}


def unbound_orders(sandbox, how_many: int = 1) -> list[int]:
    """Return ids of orders that have no owner yet on portal 1."""
    rows = sandbox.running.sandbox.db.query(
        "SELECT id FROM sale_order WHERE portal_id = 1 AND id NOT IN"
        " (SELECT order_id FROM crm_order_entity WHERE portal_id = 1) ORDER BY id LIMIT ?",
        (how_many,),
    )
    return [row[0] for row in rows]


def owner_of(sandbox, order_id: int) -> dict | None:
    """Return the stored binding of an order on portal 1."""
    return data.order_owner(sandbox.running.sandbox.db, 1, order_id)


def add(sandbox, order_id: int, owner_type_id: int, owner_id: int, user_id: int = 1):
    """Call crm.orderentity.add."""
    fields = {"orderId": order_id, "ownerTypeId": owner_type_id, "ownerId": owner_id}
    return sandbox.rest("crm.orderentity.add", {"fields": fields}, user_id=user_id)


def delete(sandbox, order_id: int, owner_type_id: int, owner_id: int, user_id: int = 1):
    """Call crm.orderentity.deleteByFilter."""
    fields = {"orderId": order_id, "ownerTypeId": owner_type_id, "ownerId": owner_id}
    return sandbox.rest("crm.orderentity.deleteByFilter", {"fields": fields}, user_id=user_id)


def bindings_of(sandbox, order_id: int, user_id: int = 1) -> list[dict]:
    """List the bindings of one order through the API."""
    response = sandbox.rest(
        "crm.orderentity.list", {"filter": {"orderId": order_id}}, user_id=user_id
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]["orderEntity"]


def test_add_binds_an_order_to_a_deal(sandbox):
    (order_id,) = unbound_orders(sandbox)
    response = add(sandbox, order_id, 2, 7)
    assert response.status_code == 200
    assert response.json()["result"] == {
        "dealOrder": {"orderId": order_id, "ownerId": 7, "ownerTypeId": 2}
    }
    assert bindings_of(sandbox, order_id) == [{"orderId": order_id, "ownerId": 7, "ownerTypeId": 2}]


def test_the_identical_triple_is_a_duplicate(sandbox):
    (order_id,) = unbound_orders(sandbox)
    assert add(sandbox, order_id, 2, 7).status_code == 200
    response = add(sandbox, order_id, 2, 7)
    assert response.status_code == 400
    assert response.json() == DUPLICATE


def test_a_new_owner_replaces_the_old_one(sandbox):
    (order_id,) = unbound_orders(sandbox)
    assert add(sandbox, order_id, 2, 7).status_code == 200
    assert add(sandbox, order_id, 2, 8).status_code == 200
    assert bindings_of(sandbox, order_id) == [{"orderId": order_id, "ownerId": 8, "ownerTypeId": 2}]
    assert add(sandbox, order_id, 31, 3).status_code == 200
    assert owner_of(sandbox, order_id) == {"orderId": order_id, "ownerId": 3, "ownerTypeId": 31}
    old_owner = sandbox.rest(
        "crm.orderentity.list", {"filter": {"ownerTypeId": 2, "ownerId": 8}}
    ).json()["result"]["orderEntity"]
    assert order_id not in [b["orderId"] for b in old_owner]


def test_seeded_bindings_are_replaced_too(sandbox):
    seeded = sandbox.running.sandbox.db.query(
        "SELECT order_id, owner_id FROM crm_order_entity"
        " WHERE portal_id = 1 AND owner_type_id = 2 LIMIT 1"
    )[0]
    order_id, owner_id = seeded[0], seeded[1]
    other = 1 if owner_id != 1 else 2
    assert add(sandbox, order_id, 2, other).status_code == 200
    assert bindings_of(sandbox, order_id) == [
        {"orderId": order_id, "ownerId": other, "ownerTypeId": 2}
    ]


def test_concurrent_adds_leave_exactly_one_owner(sandbox):
    (order_id,) = unbound_orders(sandbox)
    token = sandbox.token(1)["access_token"]
    statuses: list[int] = []

    def bind(owner_id: int) -> None:
        """Bind the shared order to one deal from its own connection."""
        with httpx.Client(verify=tls_context(), timeout=10) as http:
            response = http.post(
                f"{sandbox.url}/rest/crm.orderentity.add",
                json={
                    "auth": token,
                    "fields": {"orderId": order_id, "ownerTypeId": 2, "ownerId": owner_id},
                },
            )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=bind, args=(owner,)) for owner in range(1, 11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    bindings = bindings_of(sandbox, order_id)
    assert len(bindings) == 1 and bindings[0]["ownerId"] in range(1, 11)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"orderId": 1, "ownerTypeId": 2}, "Required fields: ownerId"),
        ({"ownerTypeId": 2}, "Required fields: ownerId, orderId"),
        ({}, "Required fields: ownerId, ownerTypeId, orderId"),
        (None, "Required fields: ownerId, ownerTypeId, orderId"),
    ],
)
def test_missing_fields(sandbox, fields, expected):
    params = {} if fields is None else {"fields": fields}
    for method in ("crm.orderentity.add", "crm.orderentity.deleteByFilter"):
        response = sandbox.rest(method, params)
        assert response.status_code == 400
        assert response.json() == {"error": "0", "error_description": expected}


@pytest.mark.parametrize(
    ("fields", "code", "name"),
    [
        ({"orderId": 1, "ownerTypeId": 2, "ownerId": 0}, "201640400001", "ownerId"),
        ({"orderId": 1, "ownerTypeId": "x", "ownerId": 4}, "201640400002", "ownerTypeId"),
        ({"orderId": -3, "ownerTypeId": 2, "ownerId": 4}, "201640400003", "orderId"),
    ],
)
def test_non_positive_fields(sandbox, fields, code, name):
    response = sandbox.rest("crm.orderentity.add", {"fields": fields})
    assert response.status_code == 400
    assert response.json() == {"error": code, "error_description": f"{name} - parameter is empty"}


def test_unknown_order(sandbox):
    response = add(sandbox, 99_999, 2, 7)
    assert response.status_code == 400
    assert response.json() == {"error": "200540400001", "error_description": "order does not exist"}


def test_owner_must_exist_and_be_an_offered_type(sandbox):
    (order_id,) = unbound_orders(sandbox)
    for owner_type_id, owner_id in ((2, 99_999), (31, 99_999), (5, 1), (4, 1)):
        response = add(sandbox, order_id, owner_type_id, owner_id)
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "0"
        assert str(owner_type_id) in body["error_description"]
    assert owner_of(sandbox, order_id) is None


def test_form_encoded_add_with_string_values(sandbox):
    (order_id,) = unbound_orders(sandbox)
    token = sandbox.token(1)["access_token"]
    response = sandbox.http.post(
        f"{sandbox.url}/rest/crm.orderentity.add.json",
        data={
            "auth": token,
            "fields[orderId]": str(order_id),
            "fields[ownerTypeId]": "2",
            "fields[ownerId]": "9",
        },
    )
    assert response.status_code == 200
    assert response.json()["result"]["dealOrder"] == {
        "orderId": order_id,
        "ownerId": 9,
        "ownerTypeId": 2,
    }


@pytest.mark.parametrize("user_id", [2, 3])
def test_only_store_administrators_may_write(sandbox, user_id):
    (order_id,) = unbound_orders(sandbox)
    response = add(sandbox, order_id, 2, 7, user_id=user_id)
    assert response.status_code == 400
    assert response.json() == WRITE_DENIED
    assert owner_of(sandbox, order_id) is None
    assert add(sandbox, order_id, 2, 7).status_code == 200
    response = delete(sandbox, order_id, 2, 7, user_id=user_id)
    assert response.json() == WRITE_DENIED
    assert owner_of(sandbox, order_id) is not None


def test_store_manager_may_read_and_employee_may_not(sandbox):
    assert sandbox.rest("crm.orderentity.list", user_id=2).status_code == 200
    assert sandbox.rest("crm.orderentity.getFields", user_id=2).status_code == 200
    for method in ("crm.orderentity.list", "crm.orderentity.getFields"):
        response = sandbox.rest(method, user_id=3)
        assert response.status_code == 400
        assert response.json() == READ_DENIED


def test_delete_by_filter_removes_the_exact_binding(sandbox):
    (order_id,) = unbound_orders(sandbox)
    assert add(sandbox, order_id, 2, 7).status_code == 200
    wrong = delete(sandbox, order_id, 2, 8)
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "201640400004",
        "error_description": "entity relation is not exists",
    }
    assert owner_of(sandbox, order_id) is not None
    response = sandbox.rest(
        "crm.orderentity.deletebyfilter",
        {"fields": {"orderId": order_id, "ownerTypeId": 2, "ownerId": 7}},
    )
    assert response.status_code == 200
    assert response.json()["result"] is True
    assert bindings_of(sandbox, order_id) == []
    assert delete(sandbox, order_id, 2, 7).json()["error"] == "201640400004"


def test_list_default_order_filters_select_and_paging(sandbox):
    db = sandbox.running.sandbox.db
    total = db.query("SELECT COUNT(*) FROM crm_order_entity WHERE portal_id = 1")[0][0]
    body = sandbox.rest("crm.orderentity.list").json()
    rows = body["result"]["orderEntity"]
    assert body["total"] == total
    assert ("next" in body) == (total > 50)
    assert [r["ownerId"] for r in rows] == sorted(r["ownerId"] for r in rows)
    assert set(rows[0]) == {"orderId", "ownerId", "ownerTypeId"}

    owners = sorted({r["ownerId"] for r in rows if r["ownerTypeId"] == 2})[:3]
    body = sandbox.rest(
        "crm.orderentity.list",
        {
            "select": ["orderId", "ownerId"],
            "filter": {"=ownerTypeId": 2, "@ownerId": owners},
            "order": {"orderId": "asc"},
        },
    ).json()
    found = body["result"]["orderEntity"]
    assert found and all(set(r) == {"orderId", "ownerId"} for r in found)
    assert {r["ownerId"] for r in found} == set(owners)
    assert [r["orderId"] for r in found] == sorted(r["orderId"] for r in found)
    assert body["total"] == len(found)


def test_list_pages_and_start_minus_one(sandbox):
    orders = unbound_orders(sandbox, 55)
    commands = {
        f"b{order_id}": "crm.orderentity.add?"
        f"fields[orderId]={order_id}&fields[ownerTypeId]=2&fields[ownerId]=42"
        for order_id in orders[:50]
    }
    assert sandbox.rest("batch", {"halt": 0, "cmd": commands}).status_code == 200
    for order_id in orders[50:]:
        assert add(sandbox, order_id, 2, 42).status_code == 200
    filter_ = {"ownerTypeId": 2, "ownerId": 42}
    first = sandbox.rest("crm.orderentity.list", {"filter": filter_}).json()
    seeded = first["total"] - 55
    assert len(first["result"]["orderEntity"]) == 50 and first["next"] == 50
    second = sandbox.rest("crm.orderentity.list", {"filter": filter_, "start": 50}).json()
    assert len(second["result"]["orderEntity"]) == 5 + seeded and "next" not in second
    listed = first["result"]["orderEntity"] + second["result"]["orderEntity"]
    assert set(orders) <= {r["orderId"] for r in listed}
    # start=-1: the first 50 rows without the COUNT (the core's REST manager keeps the page).
    quick = sandbox.rest("crm.orderentity.list", {"filter": filter_, "start": -1}).json()
    assert quick["result"]["orderEntity"] == first["result"]["orderEntity"]
    assert "total" not in quick and "next" not in quick


def test_batch_reports_duplicates_with_string_codes(sandbox):
    (order_id,) = unbound_orders(sandbox)
    command = (
        f"crm.orderentity.add?fields[orderId]={order_id}&fields[ownerTypeId]=2&fields[ownerId]=7"
    )
    body = sandbox.rest("batch", {"halt": 0, "cmd": {"first": command, "again": command}}).json()
    result = body["result"]
    assert result["result"]["first"]["dealOrder"]["ownerId"] == 7
    assert result["result_error"]["again"] == DUPLICATE


def test_get_fields(sandbox):
    response = sandbox.rest("crm.orderentity.getFields")
    info = {"isImmutable": True, "isReadOnly": False, "isRequired": True, "type": "integer"}
    assert response.json()["result"] == {
        "orderEntity": {"orderId": info, "ownerId": info, "ownerTypeId": info}
    }


def test_reset_restores_the_seeded_bindings(sandbox):
    (order_id,) = unbound_orders(sandbox)
    assert add(sandbox, order_id, 2, 7).status_code == 200
    sandbox.control("reset")
    assert owner_of(sandbox, order_id) is None
