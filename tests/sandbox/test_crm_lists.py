"""crm.deal.list, crm.item.list, crm.invoice.list and crm.enum.* over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from b24app.bitrix.http import tls_context
from b24sandbox.config import SandboxConfig
from b24sandbox.server import RunningSandbox, start_sandbox

DEAL_COUNT, INVOICE_COUNT = 60, 30  # the shared test sandbox's --deals / --invoices


def ok(response: httpx.Response) -> dict:
    """Return the body of a successful call."""
    assert response.status_code == 200, response.text
    return response.json()


# --- crm.deal.list --------------------------------------------------------------------


def test_deal_list_is_a_bare_array_of_string_values(sandbox):
    body = ok(sandbox.rest("crm.deal.list"))
    deals = body["result"]
    assert isinstance(deals, list) and len(deals) == 50
    assert body["total"] == DEAL_COUNT and body["next"] == 50
    first = deals[0]
    assert first["ID"] == "1"
    for key in ("ID", "TITLE", "STAGE_ID", "OPPORTUNITY", "CURRENCY_ID", "DATE_CREATE"):
        assert isinstance(first[key], str), key
    assert "." in first["OPPORTUNITY"] and first["OPPORTUNITY"].count(".") == 1


def test_deal_list_accepts_upper_case_parameters_and_title_search(sandbox):
    title = ok(sandbox.rest("crm.deal.list", {"filter": {"ID": 3}}))["result"][0]["TITLE"]
    word = title.split()[0]
    body = ok(
        sandbox.rest(
            "crm.deal.list",
            {"SELECT": ["TITLE"], "FILTER": {"%TITLE": word.lower()}, "ORDER": {"ID": "DESC"}},
        )
    )
    found = body["result"]
    assert found and all(word.lower() in d["TITLE"].lower() for d in found)
    assert all(set(d) == {"ID", "TITLE"} for d in found)
    ids = [int(d["ID"]) for d in found]
    assert ids == sorted(ids, reverse=True) and 3 in ids


def test_deal_list_last_page_and_start_minus_one(sandbox):
    last = ok(sandbox.rest("crm.deal.list", {"start": 50}))
    assert [d["ID"] for d in last["result"]] == [str(i) for i in range(51, 61)]
    assert "next" not in last
    quick = ok(sandbox.rest("crm.deal.list", {"start": -1}))
    assert len(quick["result"]) == 50 and "total" not in quick


def test_deal_list_rejects_a_non_object_filter_with_an_empty_code(sandbox):
    response = sandbox.rest("crm.deal.list", {"filter": "STAGE_ID=WON"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "",
        "error_description": "Parameter 'filter' must be array.",
    }
    response = sandbox.rest("crm.deal.list", {"order": "ID"})
    assert response.json()["error_description"] == "Parameter 'order' must be array."


def test_every_user_may_read_deals(sandbox):
    assert len(ok(sandbox.rest("crm.deal.list", user_id=3))["result"]) == 50


# --- crm.item.list --------------------------------------------------------------------


def test_item_list_of_deals_is_camel_case_with_integers(sandbox):
    body = ok(sandbox.rest("crm.item.list", {"entityTypeId": 2}))
    items = body["result"]["items"]
    assert list(body["result"]) == ["items"]
    assert len(items) == 50 and body["total"] == DEAL_COUNT and body["next"] == 50
    deal = items[0]
    assert deal["id"] == 1 and deal["entityTypeId"] == 2
    assert isinstance(deal["opportunity"], int | float)
    assert isinstance(deal["assignedById"], int)
    listed = ok(sandbox.rest("crm.deal.list", {"filter": {"ID": 1}}))["result"][0]
    assert deal["title"] == listed["TITLE"] and deal["stageId"] == listed["STAGE_ID"]


def test_item_list_of_smart_invoices(sandbox):
    body = ok(sandbox.rest("crm.item.list", {"entityTypeId": "31", "order": {"id": "DESC"}}))
    items = body["result"]["items"]
    assert body["total"] == INVOICE_COUNT and "next" not in body
    assert [i["id"] for i in items] == list(range(INVOICE_COUNT, 0, -1))
    assert all(i["stageId"].startswith("DT31_") for i in items)
    assert all(isinstance(i["accountNumber"], str) for i in items)


def test_item_list_select_keeps_id_and_drops_response_only_fields(sandbox):
    items = ok(
        sandbox.rest("crm.item.list", {"entityTypeId": 31, "select": ["title", "entityTypeId"]})
    )["result"]["items"]
    assert set(items[0]) == {"id", "title"}


def test_item_list_or_groups(sandbox):
    filter_ = {"0": {"logic": "OR", "0": {"id": 2}, "1": {"id": 5}}, ">id": 1}
    items = ok(sandbox.rest("crm.item.list", {"entityTypeId": 2, "filter": filter_}))
    assert [i["id"] for i in items["result"]["items"]] == [2, 5]


def test_item_list_or_groups_from_form_keys(sandbox):
    token = sandbox.token(1)["access_token"]
    response = sandbox.http.post(
        f"{sandbox.url}/rest/crm.item.list",
        data={
            "auth": token,
            "entityTypeId": "2",
            "filter[0][logic]": "OR",
            "filter[0][0][id]": "3",
            "filter[0][1][%title]": "no such title at all",
            "filter[0][2][id]": "4",
        },
    )
    assert [i["id"] for i in ok(response)["result"]["items"]] == [3, 4]


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"filter": {"noSuch": 1}}, "Invalid filter: field 'noSuch' is not allowed in filter"),
        ({"filter": {">id": "abc"}}, "Invalid filter: field 'id' has invalid value"),
        ({"order": {"noSuch": "ASC"}}, "Invalid order: field 'noSuch' is not allowed in order"),
        (
            {"order": {"id": "UP"}},
            "Invalid order: allowed sort directions are ASC, DESC. But got 'UP' for field 'id'",
        ),
    ],
)
def test_item_list_invalid_arguments(sandbox, params, description):
    response = sandbox.rest("crm.item.list", {"entityTypeId": 2, **params})
    assert response.status_code == 400
    assert response.json() == {"error": "INVALID_ARG_VALUE", "error_description": description}


def test_item_list_unknown_and_unsupported_types(sandbox):
    response = sandbox.rest("crm.item.list", {"entityTypeId": 999})
    assert response.status_code == 400
    assert response.json()["error"] == "NOT_FOUND"
    response = sandbox.rest("crm.item.list", {"entityTypeId": 5})
    assert response.status_code == 400
    assert response.json()["error"] == "ENTITY_TYPE_NOT_SUPPORTED"
    response = sandbox.rest("crm.item.list")
    assert response.status_code == 400
    assert response.json()["error"] == "100"


# --- crm.invoice.list -----------------------------------------------------------------


def test_invoice_list_does_not_exist_without_old_invoices(sandbox):
    response = sandbox.rest("crm.invoice.list")
    assert response.status_code == 404
    assert response.json() == {
        "error": "ERROR_METHOD_NOT_FOUND",
        "error_description": "Method not found!",
    }


@pytest.fixture(scope="module")
def old_invoice_portal() -> Iterator[RunningSandbox]:
    """A small sandbox whose portal also binds orders to old invoices (type 5)."""
    running = start_sandbox(
        SandboxConfig(port=0, seed=5, orders=40, deals=10, invoices=12, owner_types=(2, 31, 5))
    )
    yield running
    running.stop()


def call(running: RunningSandbox, method: str, params: dict | None = None) -> httpx.Response:
    """Call a method on a separately started sandbox as its administrator."""
    with httpx.Client(verify=tls_context(), timeout=10) as http:
        token = http.post(f"{running.url}/_sandbox/token", json={"user_id": 1}).json()
        return http.post(
            f"{running.url}/rest/{method}", json={**(params or {}), "auth": token["access_token"]}
        )


def test_invoice_list_with_old_invoices_enabled(old_invoice_portal):
    body = ok(
        call(
            old_invoice_portal,
            "crm.invoice.list",
            {
                "order": {"DATE_INSERT": "ASC"},
                "filter": {">PRICE": 100},
                "select": ["ID", "ACCOUNT_NUMBER", "ORDER_TOPIC", "STATUS_ID", "PRICE"],
            },
        )
    )
    invoices = body["result"]
    assert body["total"] == 12 and len(invoices) == 12
    assert set(invoices[0]) == {"ID", "ACCOUNT_NUMBER", "ORDER_TOPIC", "STATUS_ID", "PRICE"}
    assert all(isinstance(v, str) for v in invoices[0].values())
    assert all(float(i["PRICE"]) > 100 for i in invoices)


def test_order_owner_types_follow_the_configuration(sandbox, old_invoice_portal):
    assert ok(sandbox.rest("crm.enum.getorderownertypes"))["result"] == [
        {"attribute": "DYN", "code": "DEAL", "id": 2, "name": "Deal"},
        {"attribute": "DYN", "code": "SMART_INVOICE", "id": 31, "name": "Invoice"},
    ]
    types = ok(call(old_invoice_portal, "crm.enum.getorderownertypes"))["result"]
    assert [t["id"] for t in types] == [2, 31, 5]
    assert all(set(t) == {"id", "name", "code", "attribute"} for t in types)


def test_owner_type_enum(sandbox):
    types = ok(sandbox.rest("crm.enum.ownertype", user_id=3))["result"]
    by_id = {t["ID"]: t for t in types}
    assert by_id[2] == {"ID": 2, "NAME": "Deal", "SYMBOL_CODE": "DEAL", "SYMBOL_CODE_SHORT": "D"}
    assert by_id[31]["SYMBOL_CODE"] == "SMART_INVOICE"
    assert by_id[5]["SYMBOL_CODE"] == "INVOICE"
