"""A 1,000-order job against a portal of Bitrix24's default limits (2 requests/s, burst 50)."""

import dataclasses

import pytest
from sqlalchemy import select

from b24app.extensions import db
from b24app.jobs.runner import run_until_idle
from b24app.models import JobItem
from b24sandbox.server import start_sandbox
from tests.conftest import sandbox_test_config
from tests.integration.test_api_bindings import call_count


@pytest.fixture(scope="module")
def sandbox_server():
    """A sandbox portal with 1,100 orders and the default request limit."""
    config = dataclasses.replace(sandbox_test_config(), orders=1100, rps=2.0, burst=50)
    running = start_sandbox(config)
    yield running
    running.stop()


def bound_to(portal24, owner_type_id, owner_id, up_to=1000):
    """Count the sandbox's bindings of orders 1..``up_to`` to one owner (one counted call)."""
    token = portal24.token(1)["access_token"]
    owner = {"ownerTypeId": owner_type_id, "ownerId": owner_id, "<=orderId": up_to}
    answer = portal24.http.post(
        f"{portal24.sandbox.portal_url(0)}/rest/crm.orderentity.list",
        json={"auth": token, "filter": owner},
    ).json()
    return answer["total"]


def test_a_thousand_orders_bind_in_21_batches_without_hitting_the_limit(app, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    since = call_count(portal24)

    started = portal24.api(
        "/api/jobs/bind",
        session,
        method="POST",
        json={"orderIds": list(range(1, 1001)), "ownerTypeId": 2, "ownerId": 9},
    )
    assert started.status_code == 202, started.text
    run_until_idle(app)

    job = portal24.api(f"/api/jobs/{started.json()['job']['id']}", session).json()["job"]
    assert job["state"] == "done" and job["counts"]["failed"] == 0
    assert bound_to(portal24, 2, 9) == 1000
    calls = portal24.sandbox.calls()["calls"][since:]
    batches = [c for c in calls if c["method"] == "batch" and c["user_id"] == 1]
    writes = [b for b in batches if "crm.orderentity.add" in (b.get("commands") or [])]
    assert len(writes) <= 21
    # Starting it read the owner and the 1,000 numbers in one call: 22 requests in all.
    assert len(batches) - len(writes) == 1
    assert not [c for c in calls if c.get("error") == "QUERY_LIMIT_EXCEEDED"]


def test_starting_a_job_reads_the_owner_the_first_2400_numbers_and_the_first_owners(app, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    missing = list(range(5001, 6501))
    # 2,600 orders, 52 reads of 50 numbers: 48 ride with the owner's read and the read of
    # the first batch's owners, 4 follow.
    order_ids = missing + list(range(1, 1101))
    since = call_count(portal24)

    started = portal24.api(
        "/api/jobs/bind",
        session,
        method="POST",
        json={"orderIds": order_ids, "ownerTypeId": 2, "ownerId": 9},
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job"]["id"]
    cancelled = portal24.api(f"/api/jobs/{job_id}/cancel", session, method="POST")
    assert cancelled.status_code == 200, cancelled.text

    calls = portal24.sandbox.calls()["calls"][since:]
    reads = [c["commands"] for c in calls if c["method"] == "batch" and c["user_id"] == 1]
    assert [len(r) for r in reads] == [50, 4]
    assert reads[0].count("sale.order.list") == 48 and reads[1].count("sale.order.list") == 4
    assert reads[0].count("crm.orderentity.list") == 1
    with app.app_context():
        numbers = dict(
            db.session.execute(
                select(JobItem.order_id, JobItem.order_number).where(JobItem.job_id == job_id)
            ).all()
        )
    assert len(numbers) == 2600
    assert all(numbers[i] for i in range(1, 1101))
    assert not any(numbers[i] for i in missing)
