"""An API request reads its portal, token row and catalog in one query, and stays fresh."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, select, update

from b24app.extensions import db
from b24app.models import Portal, UserToken
from b24app.services.tokens import token_source
from tests.integration.test_api_bindings import free_order

_READ = re.compile(r"^\s*SELECT\b", re.IGNORECASE)
_TABLES = ("portals", "user_tokens", "portal_catalogs")


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """Collect the SQL the app sends while the block runs."""
    seen: list[str] = []

    def collect(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", collect)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", collect)


def reads_of_setup_rows(seen: list[str]) -> list[str]:
    """Return the reads that touch the portal, token or catalog tables."""
    return [
        statement
        for statement in seen
        if _READ.match(statement) and any(f"FROM {table}" in statement for table in _TABLES)
    ]


def test_a_picker_page_reads_portal_token_and_catalog_in_one_query(app, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    # The first page fetches and stores the catalog; the second finds it.
    assert portal24.api("/api/orders", session).status_code == 200
    with statements(app) as seen:
        response = portal24.api("/api/orders", session)
    assert response.status_code == 200
    assert response.json()["items"], "the picker shows orders"
    reads = reads_of_setup_rows(seen)
    assert len(reads) == 1, reads
    assert all(table in reads[0] for table in _TABLES)


def test_a_bind_reads_once_and_writes_its_history(app, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    assert portal24.api("/api/orders", session).status_code == 200
    order = free_order(portal24, session)["id"]
    with statements(app) as seen:
        response = portal24.api(
            "/api/bindings",
            session,
            method="POST",
            json={"orderId": order, "ownerTypeId": 2, "ownerId": 1},
        )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "bound"
    assert len(reads_of_setup_rows(seen)) == 1
    assert any(s.lstrip().upper().startswith("INSERT INTO BINDING_RECORDS") for s in seen), seen


def test_a_chain_marked_dead_between_requests_is_seen_at_once(app, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    assert portal24.api("/api/orders", session).status_code == 200
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(
                update(UserToken)
                .where(UserToken.user_id == 1)
                .values(invalid_grant_at=db.func.now())
            )
    response = portal24.api("/api/orders", session)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "reauth_required"


def test_a_pair_rotated_by_another_worker_is_used_by_the_next_request(app, portal24):
    portal24.install()
    session = portal24.session(user_id=1)
    assert portal24.api("/api/orders", session).status_code == 200
    # Another worker refreshed the chain meanwhile: the old access token is dead.
    with app.app_context():
        source = token_source(db.session.scalar(select(Portal.id)), 1)
        source.refresh(source.current())
    before = portal24.sandbox.calls()
    assert portal24.api("/api/orders", session).status_code == 200
    after = portal24.sandbox.calls()
    sent = [c for c in after["calls"][len(before["calls"]) :] if not c.get("batch")]
    assert [(c["method"], c["status"]) for c in sent] == [("batch", 200)]
    assert after["refreshes"] == before["refreshes"]
