"""A refresh lost between the OAuth server's rotation and the app's commit.

Bitrix24 refresh tokens are single-use: once the OAuth server has rotated the pair, the old
refresh token is spent. If the app then never stores the new pair (its process is killed,
or the answer is lost on the way), the chain cannot be refreshed again. These tests put the
loss exactly there (a ``hold_ms`` fault on ``oauth.token`` rotates, then holds the answer)
and show what is left in the database, what the user sees, and that reopening the app (the
frame POST brings a fresh pair) recovers everything, including a bulk job.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from b24app.crypto import cipher
from b24app.extensions import db
from b24app.jobs.runner import run_once
from b24app.models import BindingRecord, Job, JobItem, Portal, UserToken, utcnow
from b24app.services.catalog import forget_catalogs
from tests.integration.faults.matrix import binding_in_sandbox
from tests.integration.refresh_worker import hammer
from tests.integration.test_jobs_crash import LEASE, worker_process

HOLD_MS = 60_000


def chain(app, user_id=1):
    """Return the user's stored chain: (access, refresh, expires_at, dead), decrypted."""
    with app.app_context():
        rows = list(db.session.scalars(select(UserToken).where(UserToken.user_id == user_id)))
        assert len(rows) == 1
        token = rows[0]
        return (
            cipher().decrypt(token.access_token_encrypted),
            cipher().decrypt(token.refresh_token_encrypted),
            token.expires_at,
            token.is_dead,
        )


def expire(app, user_id=1):
    """Make the stored access token look expired, so the next call refreshes first."""
    with app.app_context():
        db.session.execute(
            update(UserToken)
            .where(UserToken.user_id == user_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=5))
        )
        db.session.commit()


def portal_id(app):
    """Return the installed portal's id."""
    with app.app_context():
        return db.session.scalars(select(Portal.id)).one()


def wait_for(predicate, seconds=60.0):
    """Poll until ``predicate`` holds (the event, not the time, is what the test waits for)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


def rotated(portal24, before):
    """Return a predicate: the OAuth server has rotated one more pair than ``before``."""
    return lambda: portal24.sandbox.calls()["refreshes"] > before


def hold_refresh(portal24):
    """The next refresh rotates the pair and its answer never arrives in time."""
    portal24.sandbox.control("faults", {"method": "oauth.token", "hold_ms": HOLD_MS})


def kill(pid):
    """SIGKILL a process: no cleanup, no rollback, no log line."""
    os.kill(pid, signal.SIGKILL)


def test_a_process_killed_after_the_rotation_leaves_the_old_pair_and_the_user_reopens(
    app, app_config, portal24
):
    portal24.install()
    session = portal24.session(user_id=1)
    expire(app)
    old = chain(app)
    refreshes = portal24.sandbox.calls()["refreshes"]
    hold_refresh(portal24)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(1)
    out = context.Queue()
    worker = context.Process(
        target=hammer, args=(app_config, portal_id(app), 1, 1, barrier, out), daemon=True
    )
    worker.start()
    try:
        # The worker holds the row lock and waits for the OAuth server's answer.
        wait_for(rotated(portal24, refreshes))
    finally:
        kill(worker.pid)
        worker.join(timeout=30)
    assert worker.exitcode == -signal.SIGKILL
    portal24.sandbox.control("faults", {"clear": True})

    # Nothing half written: the row is the old pair exactly, and the lock is gone with the
    # process (the next request does not wait for it).
    assert chain(app) == old
    # The old refresh token is spent at the OAuth server: the next call finds the chain dead
    # and the page is told to send the user back through Bitrix24 (names not cached, so
    # /api/me asks Bitrix24 too).
    with app.app_context():
        forget_catalogs(portal_id(app))
    me = portal24.api("/api/me", session)
    assert me.status_code == 200 and me.json()["bitrix_auth"] == "reauth_required"
    orders = portal24.api("/api/orders", session)
    assert orders.status_code == 401
    assert orders.json()["error"]["code"] == "reauth_required"
    access, refresh, _, dead = chain(app)
    assert dead and (access, refresh) == old[:2]
    assert portal24.sandbox.calls()["refreshes"] == refreshes + 1

    # Reopening the app stores the fresh pair the frame POST brought; everything works.
    fresh = portal24.session(user_id=1)
    assert chain(app)[3] is False and chain(app)[:2] != old[:2]
    assert portal24.api("/api/orders", fresh).status_code == 200


def test_a_refresh_answer_lost_on_the_way_is_a_502_then_reopen(app, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    expire(app)
    old = chain(app)
    hold_refresh(portal24)

    # The app waits B24_HTTP_TIMEOUT (5 s here) for the token endpoint, then gives up.
    first = portal24.api("/api/orders", session)

    assert first.status_code == 502
    assert first.json()["error"]["code"] == "portal_unavailable"
    assert chain(app) == old
    portal24.sandbox.control("faults", {"clear": True})
    second = portal24.api("/api/orders", session)
    assert second.status_code == 401
    assert second.json()["error"]["code"] == "reauth_required"
    assert chain(app)[3] is True
    # The spent refresh token is not sent again while the chain is dead.
    refreshes = portal24.sandbox.calls()["refreshes"]
    assert portal24.api("/api/orders", session).status_code == 401
    assert portal24.sandbox.calls()["refreshes"] == refreshes
    fresh = portal24.session(user_id=1)
    assert portal24.api("/api/orders", fresh).status_code == 200


def test_a_job_worker_killed_during_a_refresh_pauses_the_job_until_the_user_reopens(
    app, app_config, portal24
):
    portal24.install()
    session = portal24.session(user_id=1)
    orders = list(range(11, 111))
    started = portal24.api(
        "/api/jobs/bind",
        session,
        method="POST",
        json={"orderIds": orders, "ownerTypeId": 2, "ownerId": 3},
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job"]["id"]
    expire(app)
    old = chain(app)
    refreshes = portal24.sandbox.calls()["refreshes"]
    hold_refresh(portal24)
    worker = worker_process(app_config)
    try:
        wait_for(rotated(portal24, refreshes))
    finally:
        kill(worker.pid)
        worker.wait(timeout=30)
    portal24.sandbox.control("faults", {"clear": True})

    assert chain(app) == old
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job.state == "running" and job.lease_owner is not None
        assert history_count(job_id) == 0
    # After the dead worker's lease, another worker finds the chain dead and pauses the job.
    later = utcnow() + timedelta(seconds=LEASE + 1)
    with app.app_context():
        assert run_once("next-worker", clock=lambda: later)
    shown = portal24.api(f"/api/jobs/{job_id}", session).json()["job"]
    assert shown["state"] == "paused" and shown["pausedReason"]
    assert chain(app)[3] is True

    # Reopening the app stores a fresh chain and queues the job again; it ends exactly once.
    portal24.session(user_id=1)
    with app.app_context():
        while run_once("next-worker", clock=lambda: later):
            pass
        job = db.session.get(Job, job_id)
        assert job.state == "done"
        states = db.session.scalars(select(JobItem.state).where(JobItem.job_id == job_id)).all()
        per_order = db.session.execute(
            select(BindingRecord.order_id, func.count())
            .where(BindingRecord.job_id == job_id)
            .group_by(BindingRecord.order_id)
        ).all()
    assert len(states) == 100 and set(states) <= {"bound", "replaced", "already_bound"}
    assert sorted(o for o, _ in per_order) == orders and {n for _, n in per_order} == {1}
    assert all(binding_in_sandbox(portal24, o) == (2, 3) for o in orders[:3] + orders[-3:])


def history_count(job_id):
    """Count the history rows of a job (inside an app context)."""
    return db.session.scalar(
        select(func.count()).select_from(BindingRecord).where(BindingRecord.job_id == job_id)
    )
