"""A job worker process killed with SIGKILL mid-job: the job is taken over and ends exactly once."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from b24app.extensions import db
from b24app.jobs.runner import run_once
from b24app.models import BindingRecord, Job, JobItem, utcnow
from tests.integration.faults.matrix import owners_in_sandbox
from tests.integration.test_jobs_large import bound_to, sandbox_server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
LEASE = 6


def worker_process(app_config):
    """Start ``flask jobs worker`` in its own process on the test's database."""
    env = {
        **os.environ,
        **{k: str(v) for k, v in app_config.items() if isinstance(v, str | int | bool)},
        "TOKEN_KEYS": ",".join(app_config["TOKEN_KEYS"]),
        "DATABASE_URL": app_config["DATABASE_URL"],
        "ALLOW_HTTP_PORTALS": "1",
        "JOB_LEASE_SECONDS": str(LEASE),
        "JOB_BATCH_BUDGET": "5",
        "B24_RETRY_BASE_DELAY": "0.01",
    }
    env.pop("TESTING", None)
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "jobs", "worker", "--poll", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def done_items(app, job_id):
    """Count the job's finished items."""
    with app.app_context():
        return db.session.scalar(
            select(func.count())
            .select_from(JobItem)
            .where(JobItem.job_id == job_id, JobItem.state != "pending")
        )


def test_a_killed_worker_loses_nothing_and_doubles_nothing(app, app_config, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    before = owners_in_sandbox(portal24, list(range(1, 501)))
    # Every batch answers slowly, so the kill lands in the middle of the job.
    portal24.sandbox.control("faults", {"method": "batch", "count": 100, "latency_ms": 400})
    started = portal24.api(
        "/api/jobs/bind",
        session,
        method="POST",
        json={"orderIds": list(range(1, 501)), "ownerTypeId": 2, "ownerId": 8},
    )
    job_id = started.json()["job"]["id"]
    worker = worker_process(app_config)
    try:
        deadline = time.monotonic() + 60
        while done_items(app, job_id) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 0 < done_items(app, job_id) < 500
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    interrupted_at = done_items(app, job_id)

    # The lease the killed worker held runs out; this worker takes over and finishes.
    later = utcnow() + timedelta(seconds=LEASE + 1)
    with app.app_context():
        while run_once("taking-over", clock=lambda: later):
            pass

    assert done_items(app, job_id) == 500 > interrupted_at
    assert bound_to(portal24, 2, 8, up_to=500) == 500
    with app.app_context():
        rows = db.session.execute(
            select(BindingRecord.order_id, func.count())
            .where(BindingRecord.job_id == job_id)
            .group_by(BindingRecord.order_id)
        ).all()
    assert len(rows) == 500 and {n for _, n in rows} == {1}
    # The job itself ended once: done, its lease let go, one item per order.
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job.state == "done" and job.lease_owner is None and job.finished_at is not None
        items = db.session.scalars(select(JobItem.order_id).where(JobItem.job_id == job_id)).all()
    assert sorted(items) == list(range(1, 501))
    # Each order's outcome is what the job did to it, the batch the killed worker sent
    # included: its owners were read before it went.
    with app.app_context():
        outcomes = db.session.execute(
            select(JobItem.order_id, JobItem.state, JobItem.previous_owner_id).where(
                JobItem.job_id == job_id
            )
        ).all()
    for order_id, state, previous in outcomes:
        owner = before[order_id]
        if owner is None:
            assert (state, previous) == ("bound", None), order_id
        elif owner == (2, 8):
            assert state == "already_bound", order_id
        else:
            assert (state, previous) == ("replaced", owner[1]), order_id
