"""The fixed records on known ids (hostile titles, pre-bound orders), over HTTP."""

from __future__ import annotations

import httpx

from b24sandbox.data import fixtures


def ok(response: httpx.Response) -> dict:
    """Return the body of a successful call."""
    assert response.status_code == 200, response.text
    return response.json()


def titles(sandbox, entity_type_id: int) -> dict[int, str]:
    """Return the titles of the first 50 items of a type, by id."""
    body = ok(sandbox.rest("crm.item.list", {"entityTypeId": entity_type_id, "select": ["title"]}))
    return {item["id"]: item["title"] for item in body["result"]["items"]}


def test_deals_carry_the_hostile_titles_on_their_known_ids(sandbox):
    deals = titles(sandbox, 2)
    assert deals[1] == "Espresso machines for Aurora Bakery"
    assert deals[2] == '"Big" deal for O\'Brien & Sons'
    assert deals[3] == "<script>alert(1)</script>"
    assert deals[4] == "<img src=x onerror=alert(1)>"
    assert deals[5] == "Поставка оборудования «Ромашка»"
    assert deals[6].startswith("\u200f") and "صفقة" in deals[6]
    assert len(deals[7]) == 10_000 and deals[7].endswith("END")
    # The old method prints the same strings.
    old = ok(sandbox.rest("crm.deal.list", {"filter": {"<=ID": 7}, "select": ["TITLE"]}))
    assert [d["TITLE"] for d in old["result"]] == [deals[i] for i in range(1, 8)]


def test_smart_invoices_carry_the_hostile_titles_on_their_known_ids(sandbox):
    invoices = titles(sandbox, 31)
    assert invoices == {**invoices, **fixtures.SMART_INVOICE_TITLES}
    assert invoices[6].startswith("\u200f") and "חשבונית" in invoices[6]
    assert len(invoices[7]) == 10_000


def test_deal_one_is_found_by_a_plain_title_search(sandbox):
    found = ok(sandbox.rest("crm.deal.list", {"filter": {"%TITLE": "aurora"}, "select": ["ID"]}))
    assert found["result"] == [{"ID": "1"}] and found["total"] == 1
    items = ok(
        sandbox.rest(
            "crm.item.list", {"entityTypeId": 31, "filter": {"%title": "Aurora"}, "select": ["id"]}
        )
    )
    assert items["result"]["items"] == [{"id": 1}]
    cyrillic = ok(sandbox.rest("crm.deal.list", {"filter": {"%TITLE": "Ромашка"}}))
    assert [d["ID"] for d in cyrillic["result"]] == ["5"]
    quoted = ok(sandbox.rest("crm.deal.list", {"filter": {"%TITLE": "O'Brien"}}))
    assert [d["ID"] for d in quoted["result"]] == ["2"]


def test_the_fixture_orders_start_bound_as_documented(sandbox):
    body = ok(
        sandbox.rest(
            "crm.orderentity.list",
            {"filter": {"@orderId": list(range(1, 11))}, "order": {"orderId": "asc"}},
        )
    )
    bound = {
        row["orderId"]: (row["ownerTypeId"], row["ownerId"])
        for row in body["result"]["orderEntity"]
    }
    assert bound == fixtures.BINDINGS
    assert not set(bound) & set(fixtures.UNBOUND_ORDERS)
    deal_one = ok(
        sandbox.rest(
            "crm.orderentity.list",
            {"filter": {"=ownerTypeId": 2, "=ownerId": 1}, "select": ["orderId"]},
        )
    )
    assert {r["orderId"] for r in deal_one["result"]["orderEntity"]} >= {2, 3}
