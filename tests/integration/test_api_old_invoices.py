"""Old invoices (owner type 5) on a portal that still offers them."""

import dataclasses

import pytest

from b24sandbox.server import start_sandbox
from tests.conftest import sandbox_test_config
from tests.integration.test_api_bindings import bind, free_order, owner_in_sandbox


@pytest.fixture(scope="module")
def sandbox_server():
    """A sandbox whose portals offer deals, smart invoices and old invoices."""
    config = dataclasses.replace(sandbox_test_config(), owner_types=(2, 31, 5))
    running = start_sandbox(config)
    yield running
    running.stop()


def test_old_invoices_are_picked_and_bound_where_the_portal_offers_them(app, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    me = portal24.api("/api/me", session).json()
    assert [t["id"] for t in me["owner_types"]] == [2, 31, 5]

    page = portal24.api("/api/owners?type=5", session).json()
    invoice = page["items"][0]
    assert invoice["ownerTypeId"] == 5 and invoice["title"] and invoice["path"] is None
    assert invoice["stageId"]
    order = free_order(portal24, session)

    answer = bind(portal24, session, order["id"], 5, invoice["id"])

    assert answer.status_code == 200, answer.text
    assert answer.json()["binding"]["owner"]["title"] == invoice["title"]
    assert owner_in_sandbox(portal24, order["id"]) == (5, invoice["id"])
    found = portal24.api(f"/api/bindings?orderId={order['id']}", session).json()
    assert found["binding"]["owner"]["id"] == invoice["id"]
