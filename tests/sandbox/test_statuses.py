"""sale.status.list, sale.statusLang.list and crm.status.list over HTTP."""

from __future__ import annotations

import httpx
import pytest


def ok(response: httpx.Response) -> dict:
    """Return the body of a successful call."""
    assert response.status_code == 200, response.text
    return response.json()


# --- sale.status.list -----------------------------------------------------------------


def test_status_list_is_result_statuses_with_the_documented_fields(sandbox):
    body = ok(sandbox.rest("sale.status.list"))
    statuses = body["result"]["statuses"]
    assert body["total"] == len(statuses) == 9 and "next" not in body
    assert [s["id"] for s in statuses] == sorted(s["id"] for s in statuses)  # default: id asc
    new = next(s for s in statuses if s["id"] == "N")
    # The page's example row, key for key.
    assert new == {
        "color": "#BEEDF1",
        "id": "N",
        "notify": "Y",
        "sort": 10,
        "type": "O",
        "xmlId": None,
    }
    assert {s["id"] for s in statuses if s["type"] == "O"} == {"N", "P", "S", "S1", "F", "D"}
    assert {s["id"] for s in statuses if s["type"] == "D"} == {"DN", "DD", "DF"}


def test_status_list_select_filter_order_like_the_page_example(sandbox):
    body = ok(
        sandbox.rest(
            "sale.status.list",
            {
                "select": ["id", "type", "notify", "color", "sort", "xmlId"],
                "filter": {"id": "N"},
                "order": {"type": "asc"},
            },
        )
    )
    assert [s["id"] for s in body["result"]["statuses"]] == ["N"] and body["total"] == 1
    deliveries = ok(
        sandbox.rest(
            "sale.status.list",
            {"select": ["id", "sort"], "filter": {"type": "D"}, "order": {"sort": "desc"}},
        )
    )["result"]["statuses"]
    assert deliveries == [
        {"id": "DF", "sort": 30},
        {"id": "DD", "sort": 20},
        {"id": "DN", "sort": 10},
    ]
    in_list = ok(sandbox.rest("sale.status.list", {"filter": {"@id": ["N", "F"]}}))
    assert [s["id"] for s in in_list["result"]["statuses"]] == ["F", "N"]


def test_status_list_pages_and_start_minus_one(sandbox):
    beyond = ok(sandbox.rest("sale.status.list", {"start": 50}))
    assert beyond["result"]["statuses"] == [] and beyond["total"] == 9
    quick = ok(sandbox.rest("sale.status.list", {"start": -1}))
    assert len(quick["result"]["statuses"]) == 9 and "total" not in quick


def test_every_seeded_order_status_is_an_order_status(sandbox):
    orders = ok(sandbox.rest("sale.order.list", {"select": ["statusId"], "start": -1}))
    used = {o["statusId"] for o in orders["result"]["orders"]}
    order_statuses = {
        s["id"]
        for s in ok(sandbox.rest("sale.status.list", {"filter": {"type": "O"}}))["result"][
            "statuses"
        ]
    }
    assert used <= order_statuses and "DN" not in used


# --- sale.statusLang.list -------------------------------------------------------------


def test_status_lang_list_names_every_status_in_english_and_russian(sandbox):
    body = ok(sandbox.rest("sale.statusLang.list"))
    rows = body["result"]["statusLangs"]
    assert body["total"] == len(rows) == 18 and "next" not in body
    assert [r["statusId"] for r in rows] == sorted(r["statusId"] for r in rows)
    assert set(rows[0]) == {"description", "lid", "name", "statusId"}
    names = {(r["statusId"], r["lid"]): r["name"] for r in rows}
    assert names["N", "en"] == "Accepted, awaiting payment"
    assert names["N", "ru"] == "Принят, ожидается оплата"
    assert names["P", "ru"] == "Оплачен, формируется к отправке"
    assert names["F", "en"] == "Completed" and names["F", "ru"] == "Выполнен"
    assert names["S1", "en"] == "Awaiting pickup"
    assert {r["lid"] for r in rows} == {"en", "ru"}


def test_status_lang_list_filter_like_the_page_example(sandbox):
    body = ok(
        sandbox.rest(
            "sale.statusLang.list",
            {
                "select": ["statusId", "lid", "name", "description"],
                "filter": {"statusId": "N", "lid": "ru"},
                "order": {"statusId": "asc"},
            },
        )
    )
    assert body["total"] == 1
    (row,) = body["result"]["statusLangs"]
    assert row["lid"] == "ru" and row["statusId"] == "N" and row["description"]
    english = ok(
        sandbox.rest(
            "sale.statusLang.list",
            {"select": ["name"], "filter": {"lid": "en", "=statusId": ["P", "F"]}},
        )
    )["result"]["statusLangs"]
    assert english == [{"name": "Completed"}, {"name": "Paid, preparing for shipment"}]


@pytest.mark.parametrize("method", ["sale.status.list", "sale.statusLang.list"])
def test_store_manager_reads_statuses_and_employee_is_refused(sandbox, method):
    assert ok(sandbox.rest(method, user_id=2))["total"] > 0
    refused = sandbox.rest(method, user_id=3)
    assert refused.status_code == 400
    assert refused.json() == {"error": "200040300010", "error_description": "Access Denied"}


def test_status_methods_need_the_sale_scope(sandbox):
    token = sandbox.control("token", {"user_id": 1, "scope": "crm"})
    answer = sandbox.rest("sale.status.list", token=token)
    assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"


def test_status_methods_are_case_insensitive_and_batchable(sandbox):
    assert ok(sandbox.rest("sale.statuslang.list"))["total"] == 18
    body = ok(
        sandbox.rest(
            "batch",
            {
                "cmd": {
                    "s": "sale.status.list?filter[type]=O",
                    "l": "sale.statusLang.list?filter[lid]=ru&select[]=statusId&select[]=name",
                }
            },
        )
    )["result"]
    assert len(body["result"]["s"]["statuses"]) == 6
    assert body["result_total"] == {"s": 6, "l": 9}


# --- crm.status.list ------------------------------------------------------------------

DEAL_STAGE_EXAMPLE = [
    # ID, STATUS_ID, NAME, NAME_INIT, SORT, SYSTEM, COLOR, SEMANTICS, EXTRA.SEMANTICS
    ("101", "NEW", "New", "New", "10", "Y", "#39A8EF", None, "process"),
    ("103", "PREPARATION", "Document preparation", "", "20", "N", "#2FC6F6", None, "process"),
    ("105", "PREPAYMENT_INVOICE", "Prepayment invoice", "", "30", "N", "#55D0E0", None, "process"),
    ("107", "EXECUTING", "In progress", "", "40", "N", "#47E4C2", None, "process"),
    ("109", "FINAL_INVOICE", "Final invoice", "", "50", "N", "#FFA900", None, "process"),
    ("111", "WON", "Deal successful", "Deal successful", "60", "Y", "#7BD500", "S", "success"),
    ("113", "LOSE", "Deal failed", "Deal failed", "70", "Y", "#FF5752", "F", "failure"),
    ("115", "APOLOGY", "Failure reason analysis", "", "80", "N", "#FF5752", "F", "apology"),
]


def test_deal_stages_are_the_documented_example(sandbox):
    body = ok(
        sandbox.rest(
            "crm.status.list", {"order": {"SORT": "ASC"}, "filter": {"ENTITY_ID": "DEAL_STAGE"}}
        )
    )
    assert body["total"] == 8 and "next" not in body
    expected = [
        {
            "ID": id_,
            "ENTITY_ID": "DEAL_STAGE",
            "STATUS_ID": status,
            "NAME": name,
            "NAME_INIT": name_init,
            "SORT": sort,
            "SYSTEM": system,
            "CATEGORY_ID": None,
            "COLOR": color,
            "SEMANTICS": semantics,
            "EXTRA": {"SEMANTICS": extra, "COLOR": color},
        }
        for (id_, status, name, name_init, sort, system, color, semantics, extra) in (
            DEAL_STAGE_EXAMPLE
        )
    ]
    assert body["result"] == expected
    assert [list(row) for row in body["result"]] == [list(row) for row in expected]  # key order


def test_other_pipelines_and_smart_invoice_stages(sandbox):
    wholesale = ok(sandbox.rest("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE_1"}}))
    ids = [s["STATUS_ID"] for s in wholesale["result"]]
    assert ids == ["C1:NEW", "C1:PREPARATION", "C1:EXECUTING", "C1:WON", "C1:LOSE"]
    assert {s["CATEGORY_ID"] for s in wholesale["result"]} == {"1"}
    invoices = ok(
        sandbox.rest("crm.status.list", {"filter": {"ENTITY_ID": "SMART_INVOICE_STAGE_1"}})
    )["result"]
    assert [(s["STATUS_ID"], s["NAME"], s["SEMANTICS"]) for s in invoices] == [
        ("DT31_1:N", "New", None),
        ("DT31_1:S", "Sent to client", None),
        ("DT31_1:P", "Paid", "S"),
        ("DT31_1:D", "Declined", "F"),
    ]
    assert all(s["CATEGORY_ID"] == "1" and "EXTRA" not in s for s in invoices)


def test_every_seeded_deal_and_invoice_stage_has_a_name(sandbox):
    books: dict[str, set[str]] = {}
    for row in ok(sandbox.rest("crm.status.list"))["result"]:
        books.setdefault(row["ENTITY_ID"], set()).add(row["STATUS_ID"])
    deals = ok(
        sandbox.rest("crm.item.list", {"entityTypeId": 2, "select": ["categoryId", "stageId"]})
    )["result"]["items"]
    deals += ok(
        sandbox.rest(
            "crm.item.list",
            {"entityTypeId": 2, "select": ["categoryId", "stageId"], "start": 50},
        )
    )["result"]["items"]
    for deal in deals:
        entity = "DEAL_STAGE" if deal["categoryId"] == 0 else f"DEAL_STAGE_{deal['categoryId']}"
        assert deal["stageId"] in books[entity], deal
    invoices = ok(sandbox.rest("crm.item.list", {"entityTypeId": 31, "select": ["stageId"]}))
    for invoice in invoices["result"]["items"]:
        assert invoice["stageId"] in books["SMART_INVOICE_STAGE_1"]


def test_crm_status_filter_reads_plain_keys_in_any_case(sandbox):
    won = ok(sandbox.rest("crm.status.list", {"filter": {"status_id": "WON"}}))["result"]
    assert [s["ID"] for s in won] == ["111"]
    by_name = ok(sandbox.rest("crm.status.list", {"filter": {"NAME": "invoice"}}))["result"]
    assert {s["STATUS_ID"] for s in by_name} == {"PREPAYMENT_INVOICE", "FINAL_INVOICE"}
    failures = ok(
        sandbox.rest("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE", "SEMANTICS": "F"}})
    )["result"]
    assert [s["STATUS_ID"] for s in failures] == ["LOSE", "APOLOGY"]
    # Prefixed keys mean nothing to this method, and empty values are skipped.
    everything = ok(sandbox.rest("crm.status.list"))["total"]
    assert (
        ok(sandbox.rest("crm.status.list", {"filter": {"=ENTITY_ID": "X"}}))["total"] == everything
    )
    assert ok(sandbox.rest("crm.status.list", {"filter": {"ENTITY_ID": ""}}))["total"] == everything


def test_crm_status_order_and_no_paging(sandbox):
    body = ok(sandbox.rest("crm.status.list", {"order": {"id": "desc"}, "start": 50}))
    ids = [int(s["ID"]) for s in body["result"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == body["total"] == 17
    assert "next" not in body
    by_sort = ok(sandbox.rest("crm.status.list"))["result"]  # default: SORT ascending
    sorts = [int(s["SORT"]) for s in by_sort]
    assert sorts == sorted(sorts)


def test_crm_status_list_is_for_every_crm_user_and_rejects_non_object_filters(sandbox):
    assert ok(sandbox.rest("crm.status.list", user_id=3))["total"] == 17
    answer = sandbox.rest("crm.status.list", {"filter": "DEAL_STAGE"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "", "error_description": "Parameter 'filter' must be array."}
