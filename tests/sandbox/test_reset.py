"""A reset copies back the seeded state it kept: the same data, searchable, ids unrepeated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from b24sandbox import state as state_module
from b24sandbox.data import search
from b24sandbox.state import Sandbox
from tests.conftest import sandbox_test_config

TABLES = ("sale_order", "crm_deal", "crm_smart_invoice", "crm_order_entity", "crm_status")


@pytest.fixture
def portal_state() -> Iterator[Sandbox]:
    """A sandbox of its own (no servers): the test's resets touch nothing else."""
    sandbox = Sandbox(sandbox_test_config())
    yield sandbox
    sandbox.close()


def dump(sandbox: Sandbox) -> dict[str, list[tuple]]:
    """Every data row of every portal, table by table, in a stable order."""
    return {
        table: [tuple(row) for row in sandbox.db.query(f"SELECT * FROM {table} ORDER BY 1, 2")]
        for table in TABLES
    }


def change_everything(sandbox: Sandbox) -> None:
    """Install the app, bind a placement, drop a binding and rename a deal."""
    portal = sandbox.portals[0]
    sandbox.issue_tokens(portal, 1)
    sandbox.db.execute(
        "INSERT INTO auth_placements (portal_id, placement, handler) VALUES (1, 'X', 'h')"
    )
    sandbox.db.execute("DELETE FROM crm_order_entity WHERE portal_id = 1")
    sandbox.db.execute("UPDATE crm_deal SET title = 'Renamed' WHERE portal_id = 1")


def search_deals(sandbox: Sandbox, text: str) -> list[int]:
    """The rows the deal title index finds holding every trigram of ``text``."""
    rows = sandbox.db.query(
        "SELECT rowid FROM crm_deal_title_search WHERE crm_deal_title_search MATCH ?",
        (search.match_query(list(search.trigrams(text))),),
    )
    return sorted(int(r[0]) for r in rows)


def test_a_second_reset_gives_back_exactly_what_the_first_one_seeded(portal_state):
    portal_state.reset()
    seeded = dump(portal_state)
    title = portal_state.db.query("SELECT title FROM crm_deal WHERE portal_id = 1 LIMIT 1")[0][0]
    found = search_deals(portal_state, title)

    change_everything(portal_state)
    assert dump(portal_state) != seeded
    portal_state.reset()

    assert dump(portal_state) == seeded
    assert search_deals(portal_state, title) == found != []
    assert search_deals(portal_state, "Renamed") == []
    assert portal_state.db.query("SELECT COUNT(*) FROM auth_placements")[0][0] == 0
    assert portal_state.db.query("SELECT COUNT(*) FROM auth_refresh_tokens")[0][0] == 0


def test_ids_made_before_a_reset_are_not_handed_out_again(portal_state):
    portal_state.reset()
    change_everything(portal_state)
    first = portal_state.db.query("SELECT MAX(id) FROM auth_placements")[0][0]

    portal_state.reset()
    change_everything(portal_state)

    assert portal_state.db.query("SELECT MAX(id) FROM auth_placements")[0][0] > first


def test_a_large_database_is_reseeded_instead_of_copied(portal_state, monkeypatch):
    monkeypatch.setattr(state_module, "PRISTINE_MAX_BYTES", 0)
    portal_state.reset()
    seeded = dump(portal_state)
    change_everything(portal_state)

    portal_state.reset()

    assert portal_state._pristine is None
    assert dump(portal_state) == seeded
