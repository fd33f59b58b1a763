"""Bulk jobs over real HTTP against the sandbox, driven by a worker run in the test."""

import time
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from b24app.extensions import db
from b24app.jobs import runner
from b24app.jobs.runner import claim, run_once, run_until_idle
from b24app.models import Job, utcnow
from tests.integration.conftest import POSTGRES
from tests.integration.test_api_bindings import call_count, owner_in_sandbox


@pytest.fixture
def admin(app, portal24):
    """The app installed and opened by the store administrator."""
    portal24.install()
    return portal24.session(user_id=1)


def start(portal24, session, **body):
    """POST a bind job and return the answer."""
    return portal24.api("/api/jobs/bind", session, method="POST", json=body)


def job_of(portal24, session, job_id):
    """Return a job as the API shows it."""
    return portal24.api(f"/api/jobs/{job_id}", session).json()["job"]


def newest_orders(portal24, session, count):
    """Return the ids of the newest orders, through the picker."""
    ids, cursor = [], None
    while len(ids) < count:
        path = "/api/orders" + (f"?cursor={cursor}" if cursor else "")
        page = portal24.api(path, session).json()
        ids += [o["id"] for o in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    return ids[:count]


def batch_calls(portal24, since):
    """Return the batch requests the sandbox answered after ``since``."""
    return [c for c in portal24.sandbox.calls()["calls"][since:] if c["method"] == "batch"]


def test_a_job_binds_every_order_in_three_batches_and_records_history(app, admin, portal24):
    orders = newest_orders(portal24, admin, 100)
    started = start(portal24, admin, orderIds=orders, ownerTypeId=2, ownerId=1)
    assert started.status_code == 202, started.text
    job = started.json()["job"]
    assert job["state"] == "queued" and job["counts"]["total"] == 100
    since = call_count(portal24)

    run_until_idle(app)

    done = job_of(portal24, admin, job["id"])
    assert done["state"] == "done"
    counts = done["counts"]
    assert counts["remaining"] == 0 and counts["failed"] == 0
    assert counts["bound"] + counts["replaced"] + counts["alreadyBound"] == 100
    # 48, 48 and 4: each batch of 48 keeps a command for the next batch's owners, as 49
    # would take three batches too.
    sent = batch_calls(portal24, since)
    assert [len(c["commands"]) for c in sent] == [50, 50, 5]
    assert all(owner_in_sandbox(portal24, o) == (2, 1) for o in orders[:5] + orders[-5:])
    entries = []
    cursor = None
    while True:
        page = portal24.api("/api/history" + (f"?cursor={cursor}" if cursor else ""), admin).json()
        entries += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(e["orderId"] for e in entries) == sorted(orders)
    items = portal24.api(f"/api/jobs/{job['id']}/items", admin).json()["items"]
    assert {i["state"] for i in items} <= {"bound", "replaced", "already_bound"}
    assert all(i["orderAccountNumber"] for i in items)
    assert {e["jobId"] for e in entries} == {job["id"]}


def test_a_filter_job_reads_its_orders_once_and_skips_bound_ones_when_asked(app, admin, portal24):
    body = {"filter": {"unboundOnly": True}, "ownerTypeId": 31, "ownerId": 1}
    preview = portal24.api("/api/jobs/preview", admin, method="POST", json=body)
    assert preview.status_code == 200, preview.text
    expected = preview.json()
    assert expected["replacing"] == 0 and expected["owner"]["id"] == 1
    job = start(portal24, admin, **body).json()["job"]

    run_until_idle(app)

    done = job_of(portal24, admin, job["id"])
    assert done["state"] == "done"
    assert done["counts"]["total"] == expected["matched"]
    assert done["counts"]["bound"] == expected["matched"]
    # Orders 2 and 3 of the seed were bound to deal 1 and stay there.
    assert owner_in_sandbox(portal24, 2) == (2, 1)


def test_preview_counts_replacements_and_the_limit_is_a_clear_400(admin, portal24):
    body = {"orderIds": [2, 3, 4, 1], "ownerTypeId": 2, "ownerId": 1}
    preview = portal24.api("/api/jobs/preview", admin, method="POST", json=body).json()
    assert (preview["matched"], preview["alreadyThere"], preview["replacing"]) == (4, 2, 1)

    too_many = start(portal24, admin, orderIds=list(range(1, 10_002)), ownerTypeId=2, ownerId=1)
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "too_many_orders"
    neither = start(portal24, admin, ownerTypeId=2, ownerId=1)
    assert neither.status_code == 400
    missing = start(portal24, admin, orderIds=[1], ownerTypeId=2, ownerId=9_999_999)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "owner_not_found"


def test_per_order_failures_are_recorded_and_do_not_stop_the_job(app, admin, portal24):
    job = start(portal24, admin, orderIds=[9_999_999, 1, 5], ownerTypeId=2, ownerId=2).json()["job"]

    run_until_idle(app)

    done = job_of(portal24, admin, job["id"])
    assert done["state"] == "done"
    assert done["counts"]["failed"] == 1 and done["counts"]["bound"] == 2
    assert done["retryable"] is True
    items = {
        i["orderId"]: i for i in portal24.api(f"/api/jobs/{job['id']}/items", admin).json()["items"]
    }
    assert items[9_999_999]["errorCode"] == "order_not_found" and items[9_999_999]["reason"]
    assert owner_in_sandbox(portal24, 1) == (2, 2)

    retried = portal24.api(f"/api/jobs/{job['id']}/retry-failed", admin, method="POST")
    assert retried.status_code == 202
    run_until_idle(app)
    assert job_of(portal24, admin, job["id"])["counts"]["failed"] == 1


def test_undoing_a_job_restores_replaced_owners_and_unbinds_the_rest(app, admin, portal24):
    job = start(portal24, admin, orderIds=[2, 3, 1], ownerTypeId=31, ownerId=2).json()["job"]
    run_until_idle(app)
    assert owner_in_sandbox(portal24, 2) == (31, 2)
    assert job_of(portal24, admin, job["id"])["undoable"]
    results = portal24.api(f"/api/jobs/{job['id']}/items", admin).json()["items"]
    replaced = {i["orderId"]: i["replaced"] for i in results if i["state"] == "replaced"}
    assert replaced[2]["ownerId"] == 1 and replaced[2]["title"]

    undo = portal24.api(f"/api/jobs/{job['id']}/undo", admin, method="POST")
    assert undo.status_code == 202, undo.text
    run_until_idle(app)

    undone = job_of(portal24, admin, undo.json()["job"]["id"])
    assert undone["state"] == "done" and undone["undoOf"] == job["id"]
    assert owner_in_sandbox(portal24, 2) == (2, 1)
    assert owner_in_sandbox(portal24, 3) == (2, 1)
    assert owner_in_sandbox(portal24, 1) is None
    again = portal24.api(f"/api/jobs/{job['id']}/undo", admin, method="POST")
    assert again.status_code == 409


def test_a_cancelled_job_stops_at_a_batch_boundary(app, admin, portal24):
    orders = newest_orders(portal24, admin, 100)
    job = start(portal24, admin, orderIds=orders, ownerTypeId=2, ownerId=3).json()["job"]
    with app.app_context():
        assert run_once("worker-a")  # the first batch of 48
    cancelled = portal24.api(f"/api/jobs/{job['id']}/cancel", admin, method="POST")
    assert cancelled.status_code == 200

    run_until_idle(app)

    done = job_of(portal24, admin, job["id"])
    assert done["state"] == "cancelled"
    assert done["counts"]["remaining"] == 52
    # Orders go in id order: the highest was in a batch never sent.
    assert owner_in_sandbox(portal24, max(orders)) != (2, 3)


def test_one_claim_sends_batch_after_batch_for_its_slice_renewing_the_lease(
    app, admin, portal24, monkeypatch
):
    orders = newest_orders(portal24, admin, 100)
    job = start(portal24, admin, orderIds=orders, ownerTypeId=2, ownerId=6).json()["job"]
    leases = []
    send = runner._bind_batch

    def watched(held, items, upcoming, source):
        with Session(db.engine) as session:
            stored = session.get(Job, held.id)
            leases.append((stored.lease_owner, stored.lease_until))
        return send(held, items, upcoming, source)

    monkeypatch.setattr(runner, "_bind_batch", watched)
    since = call_count(portal24)
    with app.app_context():
        assert run_once("worker-a", slice_seconds=60)
        # One claim sent all three batches (48, 48, 4), and the job is done.
        assert job_of(portal24, admin, job["id"])["state"] == "done"
        assert run_once("worker-a", slice_seconds=60) is False
    assert len(leases) == 3
    assert len(batch_calls(portal24, since)) == 3
    # Each batch's record renewed the lease: no other worker could take the job meanwhile.
    assert {owner for owner, _ in leases} == {"worker-a"}
    assert [until for _, until in leases] == sorted({until for _, until in leases})


def test_a_cancel_asked_for_mid_slice_stops_the_slice_at_the_batch_boundary(
    app, admin, portal24, monkeypatch
):
    orders = newest_orders(portal24, admin, 100)
    job = start(portal24, admin, orderIds=orders, ownerTypeId=2, ownerId=7).json()["job"]
    send = runner._bind_batch

    def cancel_during_the_first(held, items, upcoming, source):
        outcomes = send(held, items, upcoming, source)
        portal24.api(f"/api/jobs/{job['id']}/cancel", admin, method="POST")
        return outcomes

    monkeypatch.setattr(runner, "_bind_batch", cancel_during_the_first)
    with app.app_context():
        assert run_once("worker-a", slice_seconds=60)
        assert run_once("worker-a", slice_seconds=60)  # the next claim ends it

    done = job_of(portal24, admin, job["id"])
    assert done["state"] == "cancelled"
    assert done["counts"]["remaining"] == 52
    assert owner_in_sandbox(portal24, max(orders)) != (2, 7)


def test_a_job_whose_worker_died_is_taken_over_after_its_lease(app, admin, portal24):
    orders = newest_orders(portal24, admin, 60)
    job = start(portal24, admin, orderIds=orders, ownerTypeId=2, ownerId=4).json()["job"]
    with app.app_context():
        # Worker A claims the job and dies before sending anything.
        assert claim("worker-a", utcnow(), lease=150) is not None
        assert run_once("worker-b") is False  # the lease holds
        later = utcnow() + timedelta(seconds=151)
        while run_once("worker-b", clock=lambda: later):
            pass

    done = job_of(portal24, admin, job["id"])
    assert done["state"] == "done" and done["counts"]["remaining"] == 0
    history = portal24.api("/api/history", admin).json()["items"]
    # The newest row (the highest order id, sent last): one row, not one per attempt.
    assert len([e for e in history if e["orderId"] == max(orders)]) == 1


def test_a_dead_token_chain_pauses_the_job_and_reopening_resumes_it(app, admin, portal24):
    job = start(portal24, admin, orderIds=[1, 5], ownerTypeId=2, ownerId=5).json()["job"]
    with app.app_context():
        from sqlalchemy import update

        from b24app.extensions import db
        from b24app.models import UserToken

        db.session.execute(
            update(UserToken).where(UserToken.user_id == 1).values(invalid_grant_at=utcnow())
        )
        db.session.commit()
    run_until_idle(app)
    paused = job_of(portal24, admin, job["id"])
    assert paused["state"] == "paused" and paused["pausedReason"]

    fresh = portal24.session(user_id=1)
    run_until_idle(app)

    assert job_of(portal24, fresh, job["id"])["state"] == "done"
    assert owner_in_sandbox(portal24, 5) == (2, 5)


def test_managers_see_jobs_but_cannot_start_or_cancel(app, admin, portal24):
    job = start(portal24, admin, orderIds=[1], ownerTypeId=2, ownerId=1).json()["job"]
    manager = portal24.session(user_id=2)
    since = call_count(portal24)

    assert portal24.api("/api/jobs", manager).status_code == 200
    assert portal24.api(f"/api/jobs/{job['id']}", manager).json()["job"]["undoable"] is False
    for path, body in (
        ("/api/jobs/bind", {"orderIds": [1], "ownerTypeId": 2, "ownerId": 1}),
        (f"/api/jobs/{job['id']}/cancel", None),
        (f"/api/jobs/{job['id']}/undo", None),
    ):
        answer = portal24.api(path, manager, method="POST", json=body)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "permission_denied"
    employee = portal24.session(user_id=3)
    assert portal24.api("/api/jobs", employee).json()["error"]["code"] == "no_store_access"
    writes = [
        c
        for c in portal24.sandbox.calls()["calls"][since:]
        if c["method"].startswith("crm.orderentity.add")
    ]
    assert writes == []


def test_two_workers_serve_two_portals_side_by_side_and_no_job_runs_twice(app, portal24):
    from sqlalchemy import func, select

    from b24app.extensions import db
    from b24app.jobs.worker import WorkerThread
    from b24app.models import BindingRecord, Job

    portal24.install(portal=1)
    portal24.install(portal=2)
    sessions = [portal24.session(user_id=1, portal=p) for p in (1, 2)]
    jobs = [
        start(portal24, s, orderIds=list(range(1, 121)), ownerTypeId=2, ownerId=6).json()["job"]
        for s in sessions
    ]
    workers = [WorkerThread(app, poll_interval=0.05).start() for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [
                job_of(portal24, s, j["id"])["state"] for s, j in zip(sessions, jobs, strict=True)
            ]
            if states == ["done", "done"]:
                break
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.stop()

    assert states == ["done", "done"]
    with app.app_context():
        started = sorted(
            db.session.execute(select(Job.started_at, Job.finished_at)).all(), key=lambda r: r[0]
        )
        # The second job started before the first finished: the portals took turns.
        assert started[1][0] < started[0][1]
        doubled = db.session.execute(
            select(BindingRecord.job_id, BindingRecord.order_id)
            .where(BindingRecord.job_id.is_not(None))
            .group_by(BindingRecord.job_id, BindingRecord.order_id)
            .having(func.count() > 1)
        ).all()
    assert doubled == []


def test_an_idle_worker_starts_a_queued_job_at_once_not_at_its_next_poll(app, admin, portal24):
    from b24app.jobs.worker import WorkerThread

    # A worker that would look for work once a minute, started (and idle) before the job.
    worker = WorkerThread(app, poll_interval=60).start()
    try:
        time.sleep(0.2)
        job = start(portal24, admin, orderIds=[1, 2, 3], ownerTypeId=2, ownerId=8).json()["job"]
        deadline = time.monotonic() + 20
        while job_of(portal24, admin, job["id"])["state"] != "done":
            assert time.monotonic() < deadline, "the worker waited for its poll"
            time.sleep(0.05)
    finally:
        stopped_at = time.monotonic()
        worker.stop(timeout=20)
    # Stopping wakes it too, rather than leaving it asleep for the minute.
    assert not worker._thread.is_alive()
    assert time.monotonic() - stopped_at < 20


@pytest.mark.skipif(not POSTGRES, reason="LISTEN/NOTIFY is PostgreSQL's")
def test_a_broken_listen_connection_falls_back_to_polling_and_listens_again(app, admin, portal24):
    from sqlalchemy import text

    from b24app.jobs.wakeup import CHANNEL
    from b24app.jobs.worker import WorkerThread

    listening = text(
        "SELECT pid FROM pg_stat_activity WHERE query = :listen AND pid <> pg_backend_pid()"
    )

    def listeners():
        with app.app_context(), db.engine.connect() as conn:
            return [row[0] for row in conn.execute(listening, {"listen": f"LISTEN {CHANNEL}"})]

    worker = WorkerThread(app, poll_interval=0.5).start()
    try:
        deadline = time.monotonic() + 20
        while not listeners():
            assert time.monotonic() < deadline, "the worker never listened"
            time.sleep(0.05)
        # The database drops the worker's connection (a restart, an administrator).
        with app.app_context(), db.engine.connect() as conn:
            for pid in listeners():
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for owner_id in (9, 10):
            job = start(portal24, admin, orderIds=[4, 5], ownerTypeId=2, ownerId=owner_id)
            job_id = job.json()["job"]["id"]
            while job_of(portal24, admin, job_id)["state"] != "done":
                assert time.monotonic() < deadline, "the job was never run"
                time.sleep(0.05)
        # It listens again on a connection of its own.
        assert listeners()
    finally:
        worker.stop(timeout=20)


def test_searches_keep_their_share_of_the_bucket_while_a_job_runs(app, admin, portal24):
    from b24app.jobs.worker import WorkerThread

    job = start(portal24, admin, orderIds=list(range(1, 121)), ownerTypeId=2, ownerId=7).json()[
        "job"
    ]
    worker = WorkerThread(app, poll_interval=0.05).start()
    answers = []
    try:
        for text in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"):
            answers.append(portal24.api(f"/api/orders?q={text}", admin).status_code)
            answers.append(portal24.api(f"/api/owners?type=2&q={text}", admin).status_code)
        deadline = time.monotonic() + 60
        while job_of(portal24, admin, job["id"])["state"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        worker.stop()

    assert answers == [200] * len(answers)
    refused = [
        c for c in portal24.sandbox.calls()["calls"] if c.get("error") == "QUERY_LIMIT_EXCEEDED"
    ]
    assert refused == []
