"""The fault matrix for unbind (DELETE /api/bindings) and undo (POST /api/history/<id>/undo)."""

from __future__ import annotations

import pytest

from tests.integration.faults.matrix import (
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

# -- unbind --------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_unbind(app, portal24, admin, monkeypatch, fault):
    assert bind(portal24, admin, 1, 2).status_code == 200
    old = stored_portals(app)[0].client_endpoint if fault.name == "refused" else None
    prepare(app, portal24, monkeypatch, fault, "*")

    response = portal24.api("/api/bindings/1?ownerTypeId=2&ownerId=2", admin, method="DELETE")

    clear_faults(portal24)
    assert_endpoint_after(app, portal24, fault)
    rows = history(app)
    assert len(rows) == 2
    row = rows[1]
    assert (row.action, row.order_id, row.owner_id) == ("unbind", 1, 2)
    # Every lost answer is a removal that happened: the repeat finds the binding gone
    # (201640400004, which is answered), and that is the success the first answer was.
    expect = None if fault.name == "lost-persisting" else write_expect(fault)
    if expect is None:
        assert response.status_code == 200, response.text
        assert response.json()["historyId"] == row.id
        assert row.outcome == "unbound"
        assert binding_in_sandbox(portal24, 1) is None
    else:
        assert_error_json(response, expect)
        assert (row.outcome, row.error_code) == ("failed", expect[1])
        assert binding_in_sandbox(portal24, 1) == (2, 2)
        session = recover(app, portal24, fault, old)
        again = portal24.api("/api/bindings/1?ownerTypeId=2&ownerId=2", session, method="DELETE")
        assert again.status_code == 200, again.text
        assert binding_in_sandbox(portal24, 1) is None


# -- undo (POST /api/history/<id>/undo) ----------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_undo(app, portal24, admin, monkeypatch, fault):
    rebound = bind(portal24, admin, 2, 2).json()
    assert rebound["outcome"] == "replaced"
    old = stored_portals(app)[0].client_endpoint if fault.name == "refused" else None
    prepare(app, portal24, monkeypatch, fault, "*")

    response = portal24.api(f"/api/history/{rebound['historyId']}/undo", admin, method="POST")

    clear_faults(portal24)
    assert_endpoint_after(app, portal24, fault)
    rows = history(app)
    original = rows[0]
    if fault.expect is None:
        assert response.status_code == 200, response.text
        assert len(rows) == 2
        undo_row = rows[1]
        assert (undo_row.owner_id, undo_row.outcome) == (1, "replaced")
        assert undo_row.undo_of_id == original.id and original.undone_by_id == undo_row.id
        assert binding_in_sandbox(portal24, 2) == (2, 1)
    else:
        assert_error_json(response, fault.expect)
        assert binding_in_sandbox(portal24, 2) == (2, 2)
        # A failed undo leaves the attempt undoable; any row it left says it failed.
        assert original.undone_by_id is None
        assert all(r.outcome == "failed" for r in rows[1:])
        session = recover(app, portal24, fault, old)
        again = portal24.api(f"/api/history/{rebound['historyId']}/undo", session, method="POST")
        assert again.status_code == 200, again.text
        assert binding_in_sandbox(portal24, 2) == (2, 1)
