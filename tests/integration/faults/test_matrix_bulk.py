"""The fault matrix for a bulk job's batch, run by a worker."""

from __future__ import annotations

import pytest

from b24app.jobs.runner import claim, run_once
from b24app.models import utcnow
from tests.integration.faults.matrix import (
    BY_NAME,
    JOB_ORDERS,
    WORKER,
    assert_endpoint_after,
    binding_in_sandbox,
    cells,
    clear_faults,
    history,
    inject,
    job_state,
    owners_in_sandbox,
    point_portal_at,
    prepare,
    recover,
    run_worker,
    set_owners,
    stored_portals,
)

# -- bulk (a job) --------------------------------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_bulk(app, portal24, admin, monkeypatch, fault):
    started = portal24.api(
        "/api/jobs/bind",
        admin,
        method="POST",
        json={"orderIds": JOB_ORDERS, "ownerTypeId": 2, "ownerId": 2},
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job"]["id"]
    old = stored_portals(app)[0].client_endpoint if fault.name == "refused" else None
    prepare(app, portal24, monkeypatch, fault, "*")

    with app.app_context():
        assert run_once(WORKER)

    clear_faults(portal24)
    assert_endpoint_after(app, portal24, fault)
    job, items = job_state(app, job_id)
    shown = portal24.api(f"/api/jobs/{job_id}", admin)
    if fault.expect is None:
        run_worker(app)
    else:
        # Nothing is recorded for a batch that did not go through.
        assert {i.state for i in items} == {"pending"}
        assert history(app) == []
        landed = (2, 2) if fault.name == "lost-persisting" else None
        assert all(binding_in_sandbox(portal24, o) == landed for o in JOB_ORDERS)
        code = fault.expect[1]
        if code in ("reauth_required", "portal_gone", "user_access_error"):
            # Waiting does not help: the job says why and waits for the user.
            assert job.state == "paused" and job.paused_reason == code
            assert shown.json()["job"]["state"] == "paused"
            assert shown.json()["job"]["pausedReason"]
            run_worker(app, later=3600)
            assert job_state(app, job_id)[0].state == "paused"
            recover(app, portal24, fault, old)
        else:
            # Busy or down: the job is postponed (the time limit's own reset time at least).
            assert job.state == "running" and job.lease_owner is None
            wait = (job.lease_until - utcnow()).total_seconds()
            assert wait >= (500 if fault.name == "429" else 10)
            clear_faults(portal24)
            if old is not None:
                point_portal_at(app, old)
        run_worker(app, later=3600)
    job, items = job_state(app, job_id)
    assert job.state == "done"
    assert sorted(i.order_id for i in items) == JOB_ORDERS
    # After a lost answer the batch is sent again and its read finds its own adds; the
    # owners read before it was first sent (none: the orders were free) still say "bound".
    assert {i.state for i in items} == {"bound"}
    rows = history(app)
    assert sorted(r.order_id for r in rows) == JOB_ORDERS
    assert {(r.outcome, r.job_id) for r in rows} == {("bound", job_id)}
    assert all(binding_in_sandbox(portal24, o) == (2, 2) for o in JOB_ORDERS)


# -- what a batch sent again replaced --------------------------------------------------------


def job_from(portal24, admin, before: dict[int, tuple[int, int] | None]) -> int:
    """Give the orders the owners ``before`` on the portal, then start binding them to deal 2."""
    set_owners(portal24, before)
    started = portal24.api(
        "/api/jobs/bind",
        admin,
        method="POST",
        json={"orderIds": list(before), "ownerTypeId": 2, "ownerId": 2},
    )
    assert started.status_code == 202, started.text
    return started.json()["job"]["id"]


def assert_undo_restores(app, portal24, admin, job_id: int, before) -> None:
    """Undo the job and find every order back with the owner it had before."""
    undone = portal24.api(f"/api/jobs/{job_id}/undo", admin, method="POST")
    assert undone.status_code == 202, undone.text
    run_worker(app)
    assert owners_in_sandbox(portal24, list(before)) == before


def test_a_rebinding_job_whose_every_answer_is_lost_once_still_records_what_it_replaced(
    app, portal24, admin
):
    # 100 orders in three batches (48, 48, 4): a third bound to deal 3, a third free, a
    # third on deal 2 already; chosen in no particular order.
    before = {o: [(2, 3), None, (2, 2)][o % 3] for o in range(100, 0, -1)}
    job_id = job_from(portal24, admin, before)

    # Every batch's first answer is held past the timeout: the portal binds, the app sends
    # the batch again, and that read already shows the job's own adds.
    steps = 0
    while job_state(app, job_id)[0].state != "done":
        inject(portal24, BY_NAME["lost-once"], "batch")
        with app.app_context():
            assert run_once(WORKER)
        steps += 1
        assert steps <= 3
    clear_faults(portal24)

    expected = {
        (2, 3): ("replaced", (2, 3)),
        None: ("bound", None),
        (2, 2): ("already_bound", None),
    }
    _, items = job_state(app, job_id)
    for item in items:
        state, previous = expected[before[item.order_id]]
        assert item.state == state, item.order_id
        assert (item.previous_owner_type_id, item.previous_owner_id) == (previous or (None, None))
    rows = {r.order_id: r for r in history(app)}
    assert len(rows) == 100
    for order_id, row in rows.items():
        state, previous = expected[before[order_id]]
        assert row.outcome == state
        assert (row.replaced_owner_type_id, row.replaced_owner_id) == (previous or (None, None))

    assert_undo_restores(app, portal24, admin, job_id, before)


def test_a_worker_that_died_mid_batch_leaves_the_owners_seen_for_the_one_who_takes_over(
    app, portal24, admin
):
    before = {3: (2, 3), 6: (2, 3), 7: None, 9: None}
    job_id = job_from(portal24, admin, before)
    # A worker claimed the job and its batch landed, then it died before recording it.
    with app.app_context():
        assert claim("dead-worker", utcnow(), lease=60) is not None
    set_owners(portal24, dict.fromkeys(before, (2, 2)))

    run_worker(app, later=61)

    job, items = job_state(app, job_id)
    assert job.state == "done" and not job.unconfirmed
    assert {i.order_id: i.state for i in items} == {
        3: "replaced",
        6: "replaced",
        7: "bound",
        9: "bound",
    }
    assert {
        (i.previous_owner_type_id, i.previous_owner_id) for i in items if i.order_id in (3, 6)
    } == {(2, 3)}


def test_full_batches_read_the_next_batchs_owners_in_their_own_read(app, portal24, admin):
    # 98 orders go in two batches of 49 (48 would take a third): the first batch's one
    # read covers the second's orders too, so a lost answer there still knows them.
    orders = list(range(1, 99))
    before = {o: (2, 3) if o > 49 and o % 2 else None for o in orders}
    job_id = job_from(portal24, admin, before)
    with app.app_context():
        assert run_once(WORKER)
    calls = portal24.sandbox.calls()["calls"]
    assert calls[-1]["commands"].count("crm.orderentity.list") == 1
    assert len(calls[-1]["commands"]) == 50
    inject(portal24, BY_NAME["lost-once"], "batch")
    with app.app_context():
        assert run_once(WORKER)
    clear_faults(portal24)

    job, items = job_state(app, job_id)
    assert job.state == "done"
    states = {i.order_id: (i.state, i.previous_owner_id) for i in items}
    assert states == {o: ("replaced", 3) if before[o] else ("bound", None) for o in orders}
    assert_undo_restores(app, portal24, admin, job_id, before)
