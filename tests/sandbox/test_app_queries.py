"""The list queries the app sends, each as the docs allow it, and the call log it reads.

Keyset paging (``order {"id": "desc"}``, ``<id``, ``start=-1``), exact and IN lookups,
substring searches, and the batches that read bindings and write after reading.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

ORDERS, DEALS, INVOICES = 120, 60, 30  # the shared test sandbox's sizes


def ok(response: httpx.Response) -> dict:
    """Return the body of a successful call."""
    assert response.status_code == 200, response.text
    return response.json()


def run_batch(sandbox, cmd, halt=0, user_id=1) -> dict:
    """Run a batch and return its ``result``."""
    return ok(sandbox.rest("batch", {"halt": halt, "cmd": cmd}, user_id=user_id))["result"]


# --- sale.order.list ------------------------------------------------------------------


def test_orders_newest_first_and_keyset_pages_without_count(sandbox):
    first = ok(
        sandbox.rest("sale.order.list", {"select": ["id"], "order": {"id": "desc"}, "start": -1})
    )
    ids = [o["id"] for o in first["result"]["orders"]]
    assert ids == list(range(ORDERS, ORDERS - 50, -1))
    assert "total" not in first and "next" not in first
    following = ok(
        sandbox.rest(
            "sale.order.list",
            {"select": ["id"], "order": {"id": "desc"}, "filter": {"<id": ids[-1]}, "start": -1},
        )
    )
    assert [o["id"] for o in following["result"]["orders"]] == list(
        range(ids[-1] - 1, ids[-1] - 51, -1)
    )


def test_orders_exact_in_and_account_number_filters(sandbox):
    one = ok(sandbox.rest("sale.order.list", {"filter": {"=id": 7}}))
    assert [o["id"] for o in one["result"]["orders"]] == [7] and one["total"] == 1
    some = ok(sandbox.rest("sale.order.list", {"filter": {"@id": [3, 1, 99]}, "select": ["id"]}))
    assert [o["id"] for o in some["result"]["orders"]] == [1, 3, 99]
    number = one["result"]["orders"][0]["accountNumber"]
    found = ok(
        sandbox.rest(
            "sale.order.list",
            {"filter": {"%accountNumber": number[1:]}, "select": ["id", "accountNumber"]},
        )
    )["result"]["orders"]
    assert 7 in [o["id"] for o in found]
    assert all(number[1:] in o["accountNumber"] for o in found)


# --- crm.item.list --------------------------------------------------------------------


@pytest.mark.parametrize(("entity_type_id", "size"), [(2, DEALS), (31, INVOICES)])
def test_items_newest_first_keyset_and_lookups(sandbox, entity_type_id, size):
    def items(params: dict) -> dict:
        return ok(sandbox.rest("crm.item.list", {"entityTypeId": entity_type_id, **params}))

    first = items({"select": ["id", "title"], "order": {"id": "desc"}, "start": -1})
    ids = [i["id"] for i in first["result"]["items"]]
    assert ids == list(range(size, max(size - 50, 0), -1))
    assert "total" not in first and "next" not in first
    older = items({"select": ["id"], "order": {"id": "desc"}, "filter": {"<id": 5}, "start": -1})
    assert [i["id"] for i in older["result"]["items"]] == [4, 3, 2, 1]
    exact = items({"filter": {"=id": 2}, "select": ["id", "title"]})
    assert [i["id"] for i in exact["result"]["items"]] == [2] and exact["total"] == 1
    assert "O'Brien" in exact["result"]["items"][0]["title"]
    some = items({"filter": {"@id": [5, 1, 3]}, "select": ["id"]})
    assert [i["id"] for i in some["result"]["items"]] == [1, 3, 5]
    search = items({"filter": {"%title": "aurora bakery"}, "select": ["id"]})
    assert [i["id"] for i in search["result"]["items"]] == [1]


def test_item_search_finds_hostile_text_literally(sandbox):
    found = ok(
        sandbox.rest(
            "crm.item.list",
            {"entityTypeId": 2, "filter": {"%title": "<script>"}, "select": ["id"]},
        )
    )["result"]["items"]
    assert [i["id"] for i in found] == [3]
    percent = ok(sandbox.rest("crm.item.list", {"entityTypeId": 2, "filter": {"%title": "%"}}))[
        "result"
    ]["items"]
    assert percent == []  # "%" is matched as a character, not as a wildcard


# --- crm.deal.list --------------------------------------------------------------------


def test_deals_by_title_substring_and_below_an_id(sandbox):
    found = ok(sandbox.rest("crm.deal.list", {"filter": {"%TITLE": "Espresso"}}))
    assert [d["ID"] for d in found["result"]] == ["1"]
    below = ok(
        sandbox.rest(
            "crm.deal.list", {"filter": {"<ID": 4}, "order": {"ID": "DESC"}, "select": ["ID"]}
        )
    )
    assert below["result"] == [{"ID": "3"}, {"ID": "2"}, {"ID": "1"}] and below["total"] == 3


# --- crm.orderentity.list -------------------------------------------------------------


def test_bindings_by_order_owner_and_keyset(sandbox):
    def bindings(params: dict) -> dict:
        return ok(sandbox.rest("crm.orderentity.list", params))

    one = bindings({"filter": {"=orderId": 4}})
    assert one["result"]["orderEntity"] == [{"orderId": 4, "ownerId": 1, "ownerTypeId": 31}]
    some = bindings({"filter": {"@orderId": [1, 3, 6]}, "order": {"orderId": "asc"}})
    assert [(r["orderId"], r["ownerId"]) for r in some["result"]["orderEntity"]] == [
        (3, 1),
        (6, 3),
    ]
    owner = bindings({"filter": {"=ownerTypeId": 2, "=ownerId": 1}, "select": ["orderId"]})
    assert {r["orderId"] for r in owner["result"]["orderEntity"]} >= {2, 3}

    newest = bindings({"order": {"orderId": "desc"}, "start": -1})
    rows = newest["result"]["orderEntity"]
    assert "total" not in newest and "next" not in newest
    assert [r["orderId"] for r in rows] == sorted((r["orderId"] for r in rows), reverse=True)
    older = bindings({"order": {"orderId": "desc"}, "filter": {"<orderId": 7}, "start": -1})[
        "result"
    ]["orderEntity"]
    assert [r["orderId"] for r in older] == [6, 4, 3, 2]


# --- batch ----------------------------------------------------------------------------


def test_batch_reads_an_owner_through_a_reference_into_the_binding_list(sandbox):
    result = run_batch(
        sandbox,
        {
            "binding": "crm.orderentity.list?" + urlencode({"filter[=orderId]": 6}),
            "deal": "crm.item.list?"
            + urlencode(
                {
                    "entityTypeId": 2,
                    "filter[=id]": "$result[binding][orderEntity][0][ownerId]",
                    "select[0]": "id",
                    "select[1]": "title",
                }
            ),
            "type": "crm.enum.ownertype",
        },
    )
    assert result["result_error"] == []
    assert result["result"]["binding"]["orderEntity"][0]["ownerId"] == 3
    assert result["result"]["deal"]["items"] == [{"id": 3, "title": "<script>alert(1)</script>"}]
    assert result["result_total"] == {"binding": 1, "deal": 1}


def test_batch_runs_a_write_after_the_read_that_precedes_it(sandbox):
    # Keys such as filter[=orderId] are URL-encoded inside a command, as http_build_query does.
    command = "crm.orderentity.add?" + urlencode(
        {
            "fields[orderId]": 5,
            "fields[ownerTypeId]": 2,
            "fields[ownerId]": "$result[owner][orderEntity][0][ownerId]",
        }
    )
    result = run_batch(
        sandbox,
        {
            "owner": "crm.orderentity.list?" + urlencode({"filter[=orderId]": 2}),
            "before": "crm.orderentity.list?" + urlencode({"filter[=orderId]": 5}),
            "add": command,
            "after": "crm.orderentity.list?" + urlencode({"filter[=orderId]": 5}),
        },
        halt=1,
    )
    assert result["result_error"] == []
    assert result["result"]["before"] == {"orderEntity": []}
    assert result["result"]["add"] == {"dealOrder": {"orderId": 5, "ownerId": 1, "ownerTypeId": 2}}
    assert result["result"]["after"]["orderEntity"] == [
        {"orderId": 5, "ownerId": 1, "ownerTypeId": 2}
    ]


# --- the call log ---------------------------------------------------------------------


def test_the_call_log_names_the_user_and_a_batch_lists_its_commands(sandbox):
    sandbox.rest("sale.order.list", {"filter": {"=id": 1}}, user_id=2)
    sandbox.rest(
        "crm.orderentity.add", {"fields": {"orderId": 1, "ownerTypeId": 2, "ownerId": 1}}, user_id=2
    )
    run_batch(
        sandbox,
        {
            "list": "crm.orderentity.list?" + urlencode({"filter[=orderId]": 5}),
            "add": "crm.orderentity.add?fields[orderId]=5&fields[ownerTypeId]=2&fields[ownerId]=1",
        },
        user_id=2,
    )
    calls = sandbox.calls()["calls"]
    assert [(c["method"], c["user_id"], c["status"], c["error"]) for c in calls] == [
        ("sale.order.list", 2, 200, None),
        ("crm.orderentity.add", 2, 400, "200040300020"),
        ("crm.orderentity.list", 2, 200, None),
        ("crm.orderentity.add", 2, 400, "200040300020"),
        ("batch", 2, 200, None),
    ]
    assert calls[-1]["commands"] == ["crm.orderentity.list", "crm.orderentity.add"]
    assert all(c.get("batch") is True for c in calls[2:4])
    assert all("commands" not in c for c in calls[:4])
    # A manager's writes were refused: nothing was bound.
    left = ok(sandbox.rest("crm.orderentity.list", {"filter": {"@orderId": [1, 5]}}))
    assert left["result"]["orderEntity"] == []


def test_a_refused_batch_still_lists_its_commands(sandbox):
    cmd = {f"c{i}": "profile" for i in range(51)}
    assert sandbox.rest("batch", {"cmd": cmd}).status_code == 400
    (call,) = sandbox.calls()["calls"]
    assert call["method"] == "batch" and call["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert call["commands"] == ["profile"] * 51
