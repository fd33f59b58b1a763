"""The fault matrix for bind and rebind (POST /api/bindings), and lost answers of a rebind."""

from __future__ import annotations

import pytest

from tests.integration.faults.matrix import (
    FAULTS_BY_NAME,
    assert_endpoint_after,
    assert_error_json,
    bind,
    binding_in_sandbox,
    cells,
    clear_faults,
    history,
    prepare,
    recover,
    stored_portals,
    write_expect,
)

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
