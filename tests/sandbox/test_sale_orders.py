"""sale.order.list and sale.order.get over HTTP: shapes, paging, filters, rights, errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from b24app.bitrix.http import tls_context
from b24sandbox.config import SandboxConfig
from b24sandbox.server import RunningSandbox, start_sandbox

# The keys sale.order.list prints for an order (api-reference/sale/order/sale-order-list.md).
ORDER_KEYS = {
    "accountNumber", "additionalInfo", "affiliateId", "canceled", "comments", "companyId",
    "currency", "dateCanceled", "dateInsert", "dateLock", "dateMarked", "dateStatus",
    "dateUpdate", "deducted", "discountValue", "empCanceledId", "empMarkedId", "empStatusId",
    "externalOrder", "id", "id1c", "lid", "lockedBy", "marked", "orderTopic", "payed",
    "personTypeId", "personTypeXmlId", "price", "reasonCanceled", "reasonMarked", "recountFlag",
    "recurringId", "responsibleId", "statusId", "statusXmlId", "taxValue", "updated1c",
    "userDescription", "userId", "version", "version1c", "xmlId",
}  # fmt: skip
ORDER_COUNT = 120  # the shared test sandbox's --orders


def orders(response: httpx.Response) -> list[dict]:
    """Return the orders of a successful sale.order.list answer."""
    assert response.status_code == 200, response.text
    return response.json()["result"]["orders"]


def test_first_page_has_50_orders_total_and_next(sandbox):
    body = sandbox.rest("sale.order.list").json()
    page = body["result"]["orders"]
    assert len(page) == 50
    assert [o["id"] for o in page] == list(range(1, 51))  # default order: id ascending
    assert body["total"] == ORDER_COUNT
    assert body["next"] == 50
    assert set(page[0]) == ORDER_KEYS


def test_order_values_have_the_documented_types(sandbox):
    order = orders(sandbox.rest("sale.order.list", {"filter": {"id": 7}}))[0]
    assert isinstance(order["id"], int)
    assert isinstance(order["accountNumber"], str)
    assert isinstance(order["price"], int | float)
    assert order["payed"] in ("Y", "N")
    assert order["recurringId"] == ""
    assert order["lid"] == "s1"
    assert order["dateInsert"].endswith("+03:00")


def test_paging_walks_all_orders_and_the_last_page_has_no_next(sandbox):
    second = sandbox.rest("sale.order.list", {"start": 50}).json()
    assert [o["id"] for o in second["result"]["orders"]] == list(range(51, 101))
    assert second["next"] == 100
    last = sandbox.rest("sale.order.list", {"start": 100}).json()
    assert [o["id"] for o in last["result"]["orders"]] == list(range(101, 121))
    assert last["total"] == ORDER_COUNT
    assert "next" not in last


def test_start_minus_one_skips_total_and_next(sandbox):
    body = sandbox.rest("sale.order.list", {"start": -1}).json()
    assert len(body["result"]["orders"]) == 50
    assert "total" not in body and "next" not in body


def test_filter_select_and_order(sandbox):
    db = sandbox.running.sandbox.db
    expected = [
        row[0]
        for row in db.query(
            "SELECT id FROM sale_order WHERE portal_id = 1 AND payed = 'Y' AND price > 1000"
            " ORDER BY price DESC, id ASC"
        )
    ]
    response = sandbox.rest(
        "sale.order.list",
        {
            "select": ["id", "price", "payed"],
            "filter": {"payed": "Y", ">price": 1000},
            "order": {"price": "desc"},
        },
    )
    page = orders(response)
    assert [o["id"] for o in page] == expected[:50]
    assert response.json()["total"] == len(expected)
    assert all(set(o) == {"id", "price", "payed"} for o in page)
    assert all(o["payed"] == "Y" and o["price"] > 1000 for o in page)


def test_account_number_substring_search(sandbox):
    page = orders(sandbox.rest("sale.order.list", {"filter": {"%accountNumber": "5"}}))
    assert page and all("5" in o["accountNumber"] for o in page)


def test_in_and_date_filters(sandbox):
    page = orders(sandbox.rest("sale.order.list", {"filter": {"@id": [3, 9, 500]}}))
    assert [o["id"] for o in page] == [3, 9]
    tenth = orders(sandbox.rest("sale.order.list", {"filter": {"id": 10}}))[0]
    later = orders(
        sandbox.rest("sale.order.list", {"filter": {">dateInsert": tenth["dateInsert"]}})
    )
    assert later and all(o["dateInsert"] > tenth["dateInsert"] for o in later)
    assert 10 not in [o["id"] for o in later]


def test_unknown_fields_are_ignored_like_the_portal(sandbox):
    body = sandbox.rest(
        "sale.order.list", {"filter": {"noSuchField": 1}, "select": ["id", "noSuchField"]}
    ).json()
    assert body["total"] == ORDER_COUNT
    assert set(body["result"]["orders"][0]) == {"id"}


def test_form_encoded_filters_are_coerced(sandbox):
    token = sandbox.token(1)["access_token"]
    response = sandbox.http.post(
        f"{sandbox.url}/rest/sale.order.list.json",
        data={"auth": token, "filter[>=id]": "115", "select[]": "id", "order[id]": "DESC"},
    )
    assert [o["id"] for o in orders(response)] == [120, 119, 118, 117, 116, 115]


def test_store_manager_may_read(sandbox):
    assert len(orders(sandbox.rest("sale.order.list", user_id=2))) == 50
    response = sandbox.rest("sale.order.get", {"id": 4}, user_id=2)
    assert response.status_code == 200
    assert response.json()["result"]["order"]["id"] == 4


@pytest.mark.parametrize(
    ("method", "params"), [("sale.order.list", {}), ("sale.order.get", {"id": 1})]
)
def test_employee_without_store_access_is_refused(sandbox, method, params):
    response = sandbox.rest(method, params, user_id=3)
    assert response.status_code == 400
    assert response.json() == {"error": "200040300010", "error_description": "Access Denied"}


def test_get_returns_the_order_and_its_collections(sandbox):
    body = sandbox.rest("sale.order.get", {"id": 12}).json()
    order = body["result"]["order"]
    assert order["id"] == 12
    assert ORDER_KEYS <= set(order)
    assert order["basketItems"] and order["payments"] and order["shipments"]
    assert order["payments"][0]["sum"] == order["price"]
    listed = orders(sandbox.rest("sale.order.list", {"filter": {"id": 12}}))[0]
    assert {k: order[k] for k in ORDER_KEYS} == listed


def test_get_of_a_missing_order(sandbox):
    response = sandbox.rest("sale.order.get", {"id": 99999})
    assert response.status_code == 400
    assert response.json() == {
        "error": "200540400001",
        "error_description": "order does not exist",
    }


def test_get_without_id(sandbox):
    response = sandbox.rest("sale.order.get")
    assert response.status_code == 400
    assert response.json()["error"] == "100"


@pytest.fixture(scope="module")
def big_portal() -> Iterator[RunningSandbox]:
    """A separate sandbox whose portal holds 100,000 orders."""
    running = start_sandbox(
        SandboxConfig(port=0, seed=11, orders=100_000, deals=50, invoices=20, portals=1)
    )
    yield running
    running.stop()


def big_call(running: RunningSandbox, params: dict) -> dict:
    """Call sale.order.list on the big portal as its administrator."""
    with httpx.Client(verify=tls_context(), timeout=30) as http:
        token = http.post(f"{running.url}/_sandbox/token", json={"user_id": 1}).json()
        response = http.post(
            f"{running.url}/rest/sale.order.list",
            json={**params, "auth": token["access_token"]},
        )
    assert response.status_code == 200, response.text
    return response.json()


def test_large_portal_answers_filtered_and_deep_pages(big_portal):
    body = big_call(big_portal, {"filter": {">=id": 99_990}, "order": {"id": "desc"}})
    assert [o["id"] for o in body["result"]["orders"]] == list(range(100_000, 99_989, -1))
    assert body["total"] == 11

    deep = big_call(big_portal, {"start": 99_950})
    assert [o["id"] for o in deep["result"]["orders"]] == list(range(99_951, 100_001))
    assert deep["total"] == 100_000 and "next" not in deep

    prefix = big_call(big_portal, {"filter": {"=%accountNumber": "9999%"}, "start": -1})
    found = prefix["result"]["orders"]
    assert found and all(o["accountNumber"].startswith("9999") for o in found)
