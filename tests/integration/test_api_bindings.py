"""The binding API over real HTTP against the sandbox: pickers, bind, rebind, unbind, undo."""

import pytest


@pytest.fixture
def admin(app, portal24):
    """The app installed, opened by the store administrator: their session token."""
    portal24.install()
    return portal24.session(user_id=1)


def top_level_calls(portal24, since):
    """Return the Bitrix24 requests the app sent after ``since`` (batch members excluded)."""
    calls = portal24.sandbox.calls()["calls"][since:]
    return [c for c in calls if not c.get("batch")]


def call_count(portal24):
    """Return how many calls the sandbox has logged."""
    return len(portal24.sandbox.calls()["calls"])


def free_order(portal24, session):
    """Return an order without an owner, found through the picker."""
    page = portal24.api("/api/orders", session).json()
    for order in page["items"]:
        bound = portal24.api(f"/api/bindings?orderId={order['id']}", session).json()
        if bound["binding"] is None:
            return order
    raise AssertionError("no unbound order on the first page")


def first_owner(portal24, session, type_id, skip=()):
    """Return the newest deal or invoice the picker offers (not one of ``skip``)."""
    items = portal24.api(f"/api/owners?type={type_id}", session).json()["items"]
    return next(o for o in items if o["id"] not in skip)


def bind(portal24, session, order_id, type_id, owner_id):
    """POST a binding and return the answer."""
    return portal24.api(
        "/api/bindings",
        session,
        method="POST",
        json={"orderId": order_id, "ownerTypeId": type_id, "ownerId": owner_id},
    )


def owner_in_sandbox(portal24, order_id):
    """Return (ownerTypeId, ownerId) of the order's binding in the sandbox, or None."""
    token = portal24.token(1)["access_token"]
    answer = portal24.http.post(
        f"{portal24.sandbox.portal_url(0)}/rest/crm.orderentity.list",
        json={"auth": token, "filter": {"orderId": order_id}},
    ).json()
    rows = answer["result"]["orderEntity"]
    assert len(rows) <= 1
    return (rows[0]["ownerTypeId"], rows[0]["ownerId"]) if rows else None


def test_order_picker_pages_newest_first_with_status_names_in_one_call(admin, portal24):
    since = call_count(portal24)
    first = portal24.api("/api/orders", admin)

    assert first.status_code == 200
    page = first.json()
    ids = [o["id"] for o in page["items"]]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    assert page["nextCursor"] == str(ids[-1])
    order = page["items"][0]
    assert set(order) == {
        "id",
        "accountNumber",
        "date",
        "amount",
        "currency",
        "statusId",
        "statusName",
        "paid",
        "cancelled",
    }
    assert order["statusName"] and order["statusName"] != order["statusId"]
    assert [c["method"] for c in top_level_calls(portal24, since)] == ["batch"]

    second = portal24.api(f"/api/orders?cursor={page['nextCursor']}", admin).json()
    assert second["items"] and max(o["id"] for o in second["items"]) < ids[-1]


def test_order_search_matches_the_number_and_the_id(admin, portal24):
    some = portal24.api("/api/orders", admin).json()["items"][7]

    found = portal24.api(f"/api/orders?q={some['accountNumber']}", admin).json()["items"]
    assert some["id"] in [o["id"] for o in found]
    by_id = portal24.api(f"/api/orders?q={some['id']}", admin).json()["items"]
    assert by_id[0]["id"] == some["id"]


def test_owner_picker_searches_titles_and_offers_only_the_portals_types(admin, portal24):
    deal = first_owner(portal24, admin, 2)
    assert deal["path"] == f"/crm/deal/details/{deal['id']}/"
    assert deal["stageName"]
    word = deal["title"].split()[0][:4]

    found = portal24.api(f"/api/owners?type=2&q={word}", admin).json()["items"]
    assert deal["id"] in [d["id"] for d in found]
    assert all(word.lower() in d["title"].lower() for d in found)
    invoice = first_owner(portal24, admin, 31)
    assert invoice["path"] == f"/crm/type/31/details/{invoice['id']}/"

    for refused in (5, 7, 999):
        answer = portal24.api(f"/api/owners?type={refused}", admin)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "owner_type_not_offered"


def test_the_deal_search_ignores_case_in_cyrillic_too(admin, portal24):
    for typed in ("ромашка", "РОМАШКА", "Ромашка"):
        answer = portal24.api("/api/owners", admin, params={"type": 2, "q": typed})
        assert answer.status_code == 200, answer.text
        titles = {d["id"]: d["title"] for d in answer.json()["items"]}
        assert titles.get(5) == "Поставка оборудования «Ромашка»", typed


def test_bind_rebind_and_the_identical_triple(admin, portal24):
    order = free_order(portal24, admin)
    deal = first_owner(portal24, admin, 2)
    invoice = first_owner(portal24, admin, 31)

    since = call_count(portal24)
    bound = bind(portal24, admin, order["id"], 2, deal["id"])
    assert bound.status_code == 200, bound.text
    assert [c["method"] for c in top_level_calls(portal24, since)] == ["batch"]
    answer = bound.json()
    assert answer["outcome"] == "bound" and answer["replaced"] is None
    assert answer["binding"]["owner"]["title"] == deal["title"]
    assert owner_in_sandbox(portal24, order["id"]) == (2, deal["id"])

    again = bind(portal24, admin, order["id"], 2, deal["id"])
    assert again.status_code == 200
    assert again.json()["outcome"] == "already_bound"

    replaced = bind(portal24, admin, order["id"], 31, invoice["id"]).json()
    assert replaced["outcome"] == "replaced"
    assert replaced["replaced"]["ownerId"] == deal["id"]
    assert replaced["replaced"]["owner"]["title"] == deal["title"]
    assert owner_in_sandbox(portal24, order["id"]) == (31, invoice["id"])

    current = portal24.api(f"/api/bindings?orderId={order['id']}", admin).json()
    assert current["order"]["id"] == order["id"]
    assert current["binding"]["ownerTypeId"] == 31
    assert current["binding"]["owner"]["title"] == invoice["title"]


def test_bind_refuses_missing_orders_and_owners_in_words(admin, portal24):
    order = free_order(portal24, admin)
    deal = first_owner(portal24, admin, 2)

    no_order = bind(portal24, admin, 9_999_999, 2, deal["id"])
    assert no_order.status_code == 404
    assert no_order.json()["error"]["code"] == "order_not_found"
    no_owner = bind(portal24, admin, order["id"], 2, 9_999_999)
    assert no_owner.status_code == 404
    assert no_owner.json()["error"]["code"] == "owner_not_found"
    not_offered = bind(portal24, admin, order["id"], 5, deal["id"])
    assert not_offered.status_code == 400
    assert not_offered.json()["error"]["code"] == "owner_type_not_offered"
    assert owner_in_sandbox(portal24, order["id"]) is None


def test_unbind_names_the_triple_and_refuses_a_changed_owner(admin, portal24):
    order = free_order(portal24, admin)
    deal = first_owner(portal24, admin, 2)
    other = first_owner(portal24, admin, 2, skip={deal["id"]})
    bind(portal24, admin, order["id"], 2, deal["id"])

    stale = portal24.api(
        f"/api/bindings/{order['id']}?ownerTypeId=2&ownerId={other['id']}", admin, method="DELETE"
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "binding_changed"
    assert owner_in_sandbox(portal24, order["id"]) == (2, deal["id"])

    since = call_count(portal24)
    removed = portal24.api(
        f"/api/bindings/{order['id']}?ownerTypeId=2&ownerId={deal['id']}", admin, method="DELETE"
    )
    assert removed.status_code == 200, removed.text
    assert [c["method"] for c in top_level_calls(portal24, since)] == [
        "crm.orderentity.deletebyfilter"
    ]
    assert removed.json()["removed"]["owner"]["title"] == deal["title"]
    assert owner_in_sandbox(portal24, order["id"]) is None


def test_history_records_attempts_and_undo_restores_the_replaced_owner(admin, portal24):
    order = free_order(portal24, admin)
    deal = first_owner(portal24, admin, 2)
    invoice = first_owner(portal24, admin, 31)
    bind(portal24, admin, order["id"], 2, deal["id"])
    rebound = bind(portal24, admin, order["id"], 31, invoice["id"]).json()
    bind(portal24, admin, 9_999_999, 2, deal["id"])

    entries = portal24.api("/api/history", admin).json()["items"]
    assert [e["outcome"] for e in entries[:3]] == ["failed", "replaced", "bound"]
    failed, replace, first = entries[:3]
    assert failed["reason"] and failed["errorCode"] == "order_not_found"
    assert not failed["undoable"]
    assert replace["replaced"]["ownerId"] == deal["id"]
    assert replace["user"] == {"id": 1, "name": "Anna Admin"}
    assert replace["orderAccountNumber"] == order["accountNumber"]
    assert replace["id"] == rebound["historyId"]

    undone = portal24.api(f"/api/history/{replace['id']}/undo", admin, method="POST")
    assert undone.status_code == 200, undone.text
    assert undone.json()["binding"]["ownerId"] == deal["id"]
    assert owner_in_sandbox(portal24, order["id"]) == (2, deal["id"])

    twice = portal24.api(f"/api/history/{replace['id']}/undo", admin, method="POST")
    assert twice.status_code == 409
    # The first bind's owner is back, but undoing it now would remove a binding made later.
    bind(portal24, admin, order["id"], 31, invoice["id"])
    conflict = portal24.api(f"/api/history/{first['id']}/undo", admin, method="POST")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "undo_conflict"
    assert owner_in_sandbox(portal24, order["id"]) == (31, invoice["id"])


def test_undo_of_an_unbind_binds_again(admin, portal24):
    order = free_order(portal24, admin)
    deal = first_owner(portal24, admin, 2)
    bind(portal24, admin, order["id"], 2, deal["id"])
    unbound = portal24.api(
        f"/api/bindings/{order['id']}?ownerTypeId=2&ownerId={deal['id']}", admin, method="DELETE"
    ).json()

    undone = portal24.api(f"/api/history/{unbound['historyId']}/undo", admin, method="POST")
    assert undone.status_code == 200, undone.text
    assert owner_in_sandbox(portal24, order["id"]) == (2, deal["id"])


def test_the_deal_lists_the_orders_bound_to_it(admin, portal24):
    deal = first_owner(portal24, admin, 2)
    orders = portal24.api("/api/orders", admin).json()["items"][:3]
    for order in orders:
        bind(portal24, admin, order["id"], 2, deal["id"])

    listed = portal24.api(f"/api/bindings?ownerTypeId=2&ownerId={deal['id']}", admin).json()
    assert listed["owner"]["title"] == deal["title"]
    listed_ids = [item["order"]["id"] for item in listed["items"]]
    assert set(o["id"] for o in orders) <= set(listed_ids)
    assert listed_ids == sorted(listed_ids, reverse=True)
