"""A short load of concurrent administrators, then the audit of portal and history.

The full soak (50 users for 60 s on gunicorn and PostgreSQL) is ``make soak``; this runs the
same load and audit for a few seconds so that every change to the app meets concurrency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from bench.stand import running_stand
from tests.load.soak import Client, Owner, Portal, UserRun, audit, run_soak

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL") if os.environ.get("B24_TEST_POSTGRES") else None


@dataclass(frozen=True)
class Target:
    app_url: str
    sandbox_url: str


@pytest.fixture(scope="module")
def stand():
    with running_stand(POSTGRES_URL) as running:
        running.install()
        yield running


def test_concurrent_users_leave_portal_and_history_in_agreement(stand):
    report = run_soak(Target(stand.app_url, stand.sandbox.url), users=12, seconds=6)

    assert report.errors == []
    assert report.mismatches == []
    # Every kind of change happened, so the audit compared something real.
    assert {"bind", "rebind", "unbind", "undo", "search", "open"} <= set(report.requests)
    assert report.changes > 20


def test_the_audit_sees_a_binding_the_answers_do_not_explain(stand):
    report = run_soak(Target(stand.app_url, stand.sandbox.url), users=2, seconds=1, seed=7)
    assert report.ok
    # Someone binds behind the load's back: the audit must notice.
    portal = Portal(stand.sandbox.url, stand.http)
    order = 11
    held = portal.binding(order)
    other = Owner(2, 70) if held != Owner(2, 70) else Owner(2, 71)
    token = portal.token()["access_token"]
    rest = f"{stand.sandbox.url}/rest"
    if held is not None:
        stand.http.post(
            f"{rest}/crm.orderentity.deleteByFilter",
            json={
                "fields": {"orderId": order, "ownerTypeId": held.type_id, "ownerId": held.id},
                "auth": token,
            },
        ).raise_for_status()
    stand.http.post(
        f"{rest}/crm.orderentity.add",
        json={
            "fields": {"orderId": order, "ownerTypeId": other.type_id, "ownerId": other.id},
            "auth": token,
        },
    ).raise_for_status()

    client = Client(stand.app_url, portal, stand.http)
    run = UserRun(0, [order], {order: held})
    mismatches = audit([run], portal, client, history_before=set())

    assert any(f"order {order}: portal has {other}" in m for m in mismatches)
