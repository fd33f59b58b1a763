"""The fault matrix for a bulk job's batch, run by a worker."""

from __future__ import annotations

import pytest

from b24app.jobs.runner import run_once
from b24app.models import utcnow
from tests.integration.faults.matrix import (
    JOB_ORDERS,
    WORKER,
    assert_endpoint_after,
    binding_in_sandbox,
    cells,
    clear_faults,
    history,
    job_state,
    point_portal_at,
    prepare,
    recover,
    run_worker,
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
    # After a lost answer the batch is sent again and finds its own adds: "already bound".
    done = "already_bound" if fault.name.startswith("lost") else "bound"
    assert {i.state for i in items} == {done}
    rows = history(app)
    assert sorted(r.order_id for r in rows) == JOB_ORDERS
    assert {(r.outcome, r.job_id) for r in rows} == {(done, job_id)}
    assert all(binding_in_sandbox(portal24, o) == (2, 2) for o in JOB_ORDERS)
