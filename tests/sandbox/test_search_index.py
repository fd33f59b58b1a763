"""The search index and row counts behind list calls: same pages as the plain LIKE scan.

``b24sandbox.data.search`` narrows ``%field`` filters with an FTS5 trigram index and answers
unfiltered totals from counted rows. Every page must be the one the plain implementation
(``LIKE '%value%'`` over every row, ``COUNT(*)``) gives: these tests run both on the same
database, over seeded and hand-made rows, for thousands of generated filters.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from b24sandbox import data
from b24sandbox.config import SandboxConfig
from b24sandbox.data import schema, search, seed
from b24sandbox.data.listing import ListPage, ListQuery, run_list
from b24sandbox.filters import FilterError
from b24sandbox.methods.crm import DEALS, ITEM_QUERIES
from b24sandbox.methods.sale import ORDERS
from b24sandbox.state import Database

CONFIG = SandboxConfig(seed=5, orders=400, deals=400, invoices=300, owner_types=(2, 31))

# Characters the hand-made values are drawn from: ASCII in both cases, LIKE's wildcards and
# its escape character, quotes (FTS5 query syntax), Cyrillic in both cases, letters whose
# lower case differs in length or folds oddly (İ, ß, the Kelvin sign), an emoji.
ALPHABET = "abcABC xyzXYZ 019 %_\\\"'*:-()^ абвАБВ ёЁ жЖ шШ İıßẞK Ω 😀"

QUERIES: dict[str, ListQuery] = {
    "orders": ORDERS,
    "deals": ITEM_QUERIES[2],
    "smart invoices": ITEM_QUERIES[31],
    "crm.deal.list": DEALS,
}
SEARCH_KEY = {
    "orders": "%accountNumber",
    "deals": "%title",
    "smart invoices": "%title",
    "crm.deal.list": "%TITLE",
}
TABLE_COLUMN = {
    "orders": ("sale_order", "account_number"),
    "deals": ("crm_deal", "title"),
    "smart invoices": ("crm_smart_invoice", "title"),
    "crm.deal.list": ("crm_deal", "title"),
}


def random_text(rng: random.Random, low: int, high: int) -> str:
    """Return a string of hand-made characters."""
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(low, high)))


def add_deal(db: Database, portal_id: int, deal_id: int, title: str | None) -> None:
    """Insert a bare deal (the other columns NULL but the stage)."""
    db.execute(
        "INSERT INTO crm_deal (portal_id, id, title, stage_id, category_id, opportunity)"
        " VALUES (?, ?, ?, 'NEW', 0, ?)",
        (portal_id, deal_id, title, float(deal_id % 97)),
    )


def add_order(db: Database, portal_id: int, order_id: int, number: str | None) -> None:
    """Insert a bare order."""
    db.execute(
        "INSERT INTO sale_order (portal_id, id, account_number, status_id, price, payed)"
        " VALUES (?, ?, ?, 'N', ?, 'N')",
        (portal_id, order_id, number, float(order_id % 89)),
    )


def add_invoice(db: Database, portal_id: int, invoice_id: int, title: str | None) -> None:
    """Insert a bare smart invoice."""
    db.execute(
        "INSERT INTO crm_smart_invoice (portal_id, id, title, stage_id, category_id)"
        " VALUES (?, ?, ?, 'DT31_1:N', 1)",
        (portal_id, invoice_id, title),
    )


def build_database() -> Database:
    """Seed two portals, then add hand-made rows (also some sharing a prefix, some NULL)."""
    db = Database(None)
    data.create_schema(db)
    for portal_id in (1, 2):
        data.seed_portal(db, portal_id, CONFIG)
    rng = random.Random(11)
    for portal_id in (1, 2):
        for offset in range(1, 151):
            text = None if offset % 37 == 0 else random_text(rng, 0, 14)
            add_deal(db, portal_id, 1000 + offset, text)
            add_invoice(db, portal_id, 1000 + offset, text)
            add_order(db, portal_id, 1000 + offset, None if text is None else f"Z{text}")
        for offset in range(151, 181):
            add_deal(db, portal_id, 1000 + offset, f"Shared stem {offset % 3} ромашка Ромашка")
    return db


@pytest.fixture(scope="module")
def db() -> Database:
    """The module's database (the tests that write use their own)."""
    return build_database()


@contextmanager
def plain_scan() -> Iterator[None]:
    """Run list calls without the index and the counts: the implementation before them."""
    saved = search.narrowing, search.portal_rows
    search.narrowing = lambda *args, **kwargs: None
    search.portal_rows = lambda *args, **kwargs: None
    try:
        yield
    finally:
        search.narrowing, search.portal_rows = saved


class Narrowed:
    """Counts how often the index served a ``%`` filter, and how often it declined."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.served = 0
        self.declined = 0
        original = search.narrowing

        def counting(*args: Any, **kwargs: Any) -> Any:
            hook = original(*args, **kwargs)
            if hook is None:
                return None

            def narrow(field: Any, text: str) -> Any:
                condition = hook(field, text)
                if condition is None:
                    self.declined += 1
                else:
                    self.served += 1
                return condition

            return narrow

        monkeypatch.setattr(search, "narrowing", counting)


def page(db: Database, name: str, portal_id: int = 1, **params: Any) -> ListPage | str:
    """Return a page, or the filter error's message."""
    if "filter" in params:
        params["filter_"] = params.pop("filter")
    try:
        return run_list(db, portal_id, QUERIES[name], **params)
    except FilterError as exc:
        return f"FilterError: {exc.message}"


def same_as_scan(db: Database, name: str, portal_id: int = 1, **params: Any) -> ListPage | str:
    """Return the page, after checking it equals the plain scan's page."""
    indexed = page(db, name, portal_id, **dict(params))
    with plain_scan():
        scanned = page(db, name, portal_id, **dict(params))
    assert indexed == scanned, (name, portal_id, params)
    return indexed


def stored_values(db: Database, name: str) -> list[str]:
    """Return the searched column's values of both portals."""
    table, column = TABLE_COLUMN[name]
    return [r[0] for r in db.query(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")]


def flip_case(rng: random.Random, text: str) -> str:
    """Change the case of some letters (ASCII and other scripts alike)."""
    return "".join(c.swapcase() if rng.random() < 0.3 else c for c in text)


def search_value(rng: random.Random, values: list[str]) -> Any:
    """Return a value for a ``%`` filter: mostly a piece of a stored value, sometimes not."""
    roll = rng.random()
    if roll < 0.6:
        text = rng.choice(values)
        start = rng.randrange(len(text) + 1)
        piece = text[start : start + rng.choice((1, 2, 3, 4, 5, 8, 12, 40))]
        return flip_case(rng, piece) if rng.random() < 0.4 else piece
    if roll < 0.85:
        return random_text(rng, 0, 6)
    return rng.choice(("", "%", "_", "%%", "\\", '"', "'", "50%", "a_b", 105, 7.0, "Ромашка"))


def other_filters(rng: random.Random, name: str, values: list[str]) -> dict[str, Any]:
    """Return a few more filter keys to AND with the search."""
    upper = name == "crm.deal.list"
    id_key = "ID" if upper else "id"
    options: list[tuple[str, Any]] = [
        (f">{id_key}", rng.randint(0, 1200)),
        (f"<={id_key}", rng.randint(0, 1200)),
        (f"!{id_key}", rng.randint(1, 400)),
    ]
    if name == "orders":
        options += [("@statusId", ["N", "P"]), ("=payed", "Y"), (">price", rng.randint(0, 50))]
        options += [("!%accountNumber", search_value(rng, values))]
    elif name == "crm.deal.list":
        options += [("STAGE_ID", "NEW"), (">OPPORTUNITY", rng.randint(0, 90))]
    else:
        options += [("@stageId", ["NEW", "WON", "DT31_1:N"]), (">opportunity", rng.randint(0, 90))]
        options += [("!%title", search_value(rng, values)), ("=categoryId", rng.choice((0, 1)))]
    chosen = rng.sample(options, rng.randint(0, 2))
    return dict(chosen)


def orders_of(rng: random.Random, name: str) -> Any:
    """Return an ``order`` parameter."""
    keys: tuple[str, ...]
    if name == "orders":
        keys = ("id", "accountNumber", "price", "dateInsert")
    elif name == "crm.deal.list":
        keys = ("ID", "TITLE", "OPPORTUNITY")
    else:
        keys = ("id", "title", "opportunity", "stageId")
    if rng.random() < 0.3:
        return None
    return {rng.choice(keys): rng.choice(("ASC", "DESC", "desc"))}


def random_params(rng: random.Random, name: str, values: list[str]) -> dict[str, Any]:
    """Return list parameters with one or two searches on the indexed column."""
    key = SEARCH_KEY[name]
    filter_: dict[str, Any] = {key: search_value(rng, values)}
    filter_.update(other_filters(rng, name, values))
    if name in ("deals", "smart invoices") and rng.random() < 0.25:
        # A group: either of two searches (crm.item.list takes nested OR groups).
        filter_["0"] = {
            "logic": "OR",
            "1": {key: search_value(rng, values)},
            "2": {key: search_value(rng, values), "<id": rng.randint(0, 1200)},
        }
    return {
        "filter": filter_,
        "order": orders_of(rng, name),
        "start": rng.choice((-1, -1, -1, 0, None, 50, 100, 149, rng.randint(0, 600))),
        "select": rng.choice((None, ["id", "title", "accountNumber"], ["ID", "TITLE"])),
    }


@pytest.mark.parametrize("dense", [None, 4])
@pytest.mark.parametrize("name", list(QUERIES))
def test_random_filters_give_the_scans_pages(db, monkeypatch, name, dense):
    """Generated searches (with other keys, groups, orders, starts) page as the scan does.

    ``dense=4`` makes the index give up above four candidates, so the fallbacks (the scan,
    the second try with more trigrams) run too.
    """
    if dense is not None:
        monkeypatch.setattr(search, "DENSE_UNCOUNTED", dense)
        monkeypatch.setattr(search, "DENSE_COUNTED", dense)
    narrowed = Narrowed(monkeypatch)
    rng = random.Random(f"{name}:{dense}")
    values = stored_values(db, name)
    matched = 0
    for _ in range(350):
        params = random_params(rng, name, values)
        result = same_as_scan(db, name, rng.choice((1, 1, 2)), **params)
        if isinstance(result, ListPage) and result.rows:
            matched += 1
    # The comparisons meant something: many pages had rows, and both paths were taken.
    assert matched > 100
    assert narrowed.served > 50
    if dense is not None:
        assert narrowed.declined > 20


def test_searches_served_by_the_index_use_primary_key_lookups(db):
    """A selective search reads rows by key: the query plan has no scan of the table."""
    narrow = search.narrowing(db, "crm_deal", counted=False)
    assert narrow is not None
    field = ITEM_QUERIES[2].fields.get("title")
    assert field is not None
    condition = narrow(field, "Aurora Bakery")
    assert condition is not None
    plan = " / ".join(
        str(row[3])
        for row in db.query(
            f"EXPLAIN QUERY PLAN SELECT * FROM crm_deal WHERE portal_id = ? AND ({condition.sql})"
            " ORDER BY id DESC LIMIT 50",
            [1, *condition.args],
        )
    )
    assert "(portal_id=? AND id=?)" in plan, plan
    assert "SCAN crm_deal" not in plan, plan


def test_short_empty_and_nul_values_take_the_scan(db):
    """Values without a trigram (or with NUL) are left to the LIKE; their pages are the same."""
    narrow = search.narrowing(db, "crm_deal", counted=True)
    assert narrow is not None
    field = ITEM_QUERIES[2].fields.get("title")
    assert field is not None
    for text in ("", "a", "fo", "%", "_%", "ab\x00cd"):
        assert narrow(field, text) is None
        result = same_as_scan(db, "deals", filter={"%title": text}, start=0)
        assert isinstance(result, ListPage)
    everything = same_as_scan(db, "deals", filter={"%title": ""}, start=0)
    assert isinstance(everything, ListPage)
    not_null = db.query("SELECT COUNT(*) FROM crm_deal WHERE portal_id = 1 AND title IS NOT NULL")
    assert everything.total == not_null[0][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ромашка", {5, 1151, 1152, 1153, 1154}),  # the fixture, and the shared stems
        ("aurora bakery", {1}),  # ASCII letters match in any case
        ("'Big' deal", set()),
        ('"Big" deal for O\'Brien', {2}),
        ("<script>", {3}),
    ],
)
def test_known_titles(db, text, expected):
    """Searches over the seed's fixtures and the hand-made rows find exactly what LIKE finds."""
    result = same_as_scan(db, "deals", filter={"%title": text, "<=id": 1154}, start=-1)
    assert isinstance(result, ListPage)
    assert {row["id"] for row in result.rows} == expected


def test_every_scripts_letters_match_in_any_case(db):
    """``ромашка`` and ``РОМАШКА`` find ``Ромашка``, as Bitrix24's MySQL collation does.

    SQLite's own LIKE folds ASCII letters only; a value with other letters goes through the
    sandbox's LIKE function, which folds them as the trigram index does.
    """
    found = {}
    for text in ("ромашка", "РОМАШКА", "рОмАшКа", "Ромашка"):
        page = same_as_scan(db, "deals", filter={"%title": text}, start=0)
        assert isinstance(page, ListPage)
        found[text] = (sorted(row["id"] for row in page.rows), page.total)
    expected = (sorted({5, *range(1151, 1181)}), 31)
    assert all(answer == expected for answer in found.values()), found
    # The NOT LIKE prefix folds the same way.
    others = same_as_scan(db, "deals", filter={"!%title": "ромашка", "<=id": 10}, start=0)
    assert isinstance(others, ListPage)
    assert 5 not in {row["id"] for row in others.rows} and others.rows


def test_wildcards_in_the_value_are_literal(db):
    """``%`` and ``_`` in a searched value match themselves only."""
    fresh = build_database()
    add_deal(fresh, 1, 5001, "Discount 50% on chairs")
    add_deal(fresh, 1, 5002, "Discount 50 on chairs")
    add_deal(fresh, 1, 5003, "key_value store")
    add_deal(fresh, 1, 5004, "keyXvalue store")
    add_deal(fresh, 1, 5005, "back\\slash")
    for text, expected in (
        ("50% on", {5001}),
        ("0% o", {5001}),
        ("key_val", {5003}),
        ("y_v", {5003}),
        ("k\\s", {5005}),
    ):
        result = same_as_scan(fresh, "deals", filter={"%title": text, ">id": 5000}, start=0)
        assert isinstance(result, ListPage)
        assert {row["id"] for row in result.rows} == expected, text
        assert result.total == len(expected)


def test_writes_are_searchable_at_once(monkeypatch):
    """Inserted, updated, moved and deleted rows show up in the index's answers immediately."""
    fresh = build_database()
    narrowed = Narrowed(monkeypatch)

    def found(text: str, name: str = "deals", portal_id: int = 1) -> set[int]:
        result = same_as_scan(fresh, name, portal_id, filter={SEARCH_KEY[name]: text}, start=0)
        assert isinstance(result, ListPage)
        return {int(row["id"] if "id" in row else row["ID"]) for row in result.rows}

    assert found("Quokka logistics") == set()
    add_deal(fresh, 1, 7001, "Quokka logistics, Perth")
    assert found("Quokka logistics") == {7001}
    assert found("quokka LOGISTICS", "crm.deal.list") == {7001}
    fresh.execute("UPDATE crm_deal SET title = 'Wombat freight' WHERE portal_id = 1 AND id = 7001")
    assert found("Quokka logistics") == set()
    assert found("Wombat freight") == {7001}
    fresh.execute("UPDATE crm_deal SET opportunity = 5 WHERE portal_id = 1 AND id = 7001")
    assert found("Wombat freight") == {7001}
    fresh.execute("UPDATE crm_deal SET portal_id = 2 WHERE portal_id = 1 AND id = 7001")
    assert found("Wombat freight") == set()
    assert found("Wombat freight", portal_id=2) == {7001}
    fresh.execute(
        "INSERT OR REPLACE INTO crm_deal (portal_id, id, title) VALUES (2, 7001, 'Numbat rail')"
    )
    assert found("Wombat freight", portal_id=2) == set()
    assert found("Numbat rail", portal_id=2) == {7001}
    fresh.execute("DELETE FROM crm_deal WHERE portal_id = 2 AND id = 7001")
    assert found("Numbat rail", portal_id=2) == set()
    add_order(fresh, 1, 7002, "QX-77-Ж")
    assert found("QX-77-Ж", "orders") == {7002}
    add_invoice(fresh, 1, 7003, "Счёт Quokka")
    assert found("Счёт Quokka", "smart invoices") == {7003}
    assert narrowed.served >= 12


def test_totals_follow_every_write():
    """The counted rows equal ``COUNT(*)`` per table and portal after random writes."""
    fresh = build_database()
    rng = random.Random(3)
    next_id = 9000
    for _ in range(400):
        table = rng.choice(search.COUNTED)
        portal_id = rng.choice((1, 2, 3))
        action = rng.random()
        if action < 0.45:
            next_id += 1
            fresh.execute(
                f"INSERT INTO {table} (portal_id, id) VALUES (?, ?)", (portal_id, next_id)
            )
        elif action < 0.7:
            fresh.execute(
                f"DELETE FROM {table} WHERE portal_id = ? AND id ="
                f" (SELECT id FROM {table} WHERE portal_id = ? ORDER BY random() LIMIT 1)",
                (portal_id, portal_id),
            )
        elif action < 0.85:
            fresh.execute(
                f"UPDATE OR IGNORE {table} SET portal_id = ? WHERE portal_id = ? AND id ="
                f" (SELECT id FROM {table} WHERE portal_id = ? ORDER BY random() LIMIT 1)",
                (rng.choice((1, 2, 3)), portal_id, portal_id),
            )
        else:
            fresh.execute(
                f"INSERT OR REPLACE INTO {table} (portal_id, id) SELECT portal_id, id"
                f" FROM {table} WHERE portal_id = ? ORDER BY random() LIMIT 1",
                (portal_id,),
            )
    for table in search.COUNTED:
        for portal_id in (1, 2, 3, 4):
            counted = fresh.query(
                f"SELECT COUNT(*) FROM {table} WHERE portal_id = ?", (portal_id,)
            )[0][0]
            assert search.portal_rows(fresh, table, portal_id) == counted, (table, portal_id)
    for name in ("orders", "deals", "smart invoices", "crm.deal.list"):
        for start in (0, 100, 500, 5000):
            for portal_id in (1, 2, 3):
                same_as_scan(fresh, name, portal_id, start=start)


def test_reseeding_one_portal_keeps_the_others_searchable():
    """A reset rewrites one portal's index entries and counts; the other portal's stay."""
    fresh = build_database()
    add_deal(fresh, 2, 8001, "Platypus works")
    data.reset_portal(fresh, 1, CONFIG)
    for portal_id in (1, 2):
        for text in ("Platypus works", "Espresso machines", "Shared stem", "for"):
            same_as_scan(fresh, "deals", portal_id, filter={"%title": text}, start=0)
            same_as_scan(fresh, "deals", portal_id, filter={"%title": text}, start=-1)
    result = same_as_scan(fresh, "deals", 2, filter={"%title": "Platypus"}, start=0)
    assert isinstance(result, ListPage) and [row["id"] for row in result.rows] == [8001]
    assert search.portal_rows(fresh, "crm_deal", 1) == CONFIG.deals
    assert search.portal_rows(fresh, "crm_deal", 2) == CONFIG.deals + 181


def test_a_state_file_from_before_the_index_gets_it_filled(tmp_path):
    """Tables written without the index and counts get both from their rows on start."""
    path = str(tmp_path / "state.db")
    old = Database(path)
    with old.transaction() as conn:
        for table, fields in schema.TABLES.items():
            conn.execute(schema.table_ddl(table, fields))
        conn.execute(schema.ORDER_ENTITY_DDL)
        conn.execute(schema.SALE_STATUS_LANG_DDL)
        conn.execute(schema.CRM_STATUS_DDL)
        seed.fill(conn, 1, CONFIG)
    old.close()
    reopened = Database(path)
    data.create_schema(reopened)
    assert search.portal_rows(reopened, "sale_order", 1) == CONFIG.orders
    narrowed = search.narrowing(reopened, "crm_deal", counted=True)
    assert narrowed is not None
    for text in ("Espresso machines", "Aurora", "for Harbor"):
        result = same_as_scan(reopened, "deals", filter={"%title": text}, start=0)
        assert isinstance(result, ListPage)
    result = same_as_scan(reopened, "deals", filter={"%title": "Aurora Bakery"}, start=0)
    assert isinstance(result, ListPage) and [row["id"] for row in result.rows] == [1]
    reopened.close()


def test_integrity_after_reseeds_and_writes():
    """FTS5's own integrity check passes on every index after reseeds and row writes."""
    fresh = build_database()
    data.reset_portal(fresh, 2, CONFIG)
    add_deal(fresh, 1, 8101, "Echidna")
    fresh.execute("UPDATE crm_deal SET title = NULL WHERE portal_id = 1 AND id = 8101")
    fresh.execute("DELETE FROM sale_order WHERE portal_id = 2 AND id < 50")
    data.reset_portal(fresh, 1, CONFIG)
    for table, column in search.SEARCHED:
        index = search.index_name(table, column)
        fresh.execute(f"INSERT INTO {index} ({index}, rank) VALUES ('integrity-check', 1)")


def test_picker_searches_over_http(sandbox):
    """The app's picker calls, newest first without a count, find seeded and added rows."""
    db = sandbox.running.sandbox.db
    add_deal(db, 1, 61, "Kookaburra supplies")
    body = sandbox.rest(
        "crm.item.list",
        {
            "entityTypeId": 2,
            "select": ["id", "title"],
            "filter": {"%title": "kookaburra"},
            "order": {"id": "desc"},
            "start": -1,
        },
    ).json()
    assert [item["id"] for item in body["result"]["items"]] == [61]
    assert "total" not in body
    number = db.query("SELECT account_number FROM sale_order WHERE portal_id = 1 AND id = 77")[0][0]
    orders = sandbox.rest(
        "sale.order.list",
        {"select": ["id", "accountNumber"], "filter": {"%accountNumber": number}, "start": 0},
    ).json()
    assert 77 in [order["id"] for order in orders["result"]["orders"]]
    assert orders["total"] == len(orders["result"]["orders"])
    plain = sandbox.rest("crm.item.list", {"entityTypeId": 2, "start": 50}).json()
    assert plain["total"] == 61 and "next" not in plain


def test_a_row_without_an_id_is_still_found():
    """A NULL id (possible in SQLite's composite keys) cannot be listed by id: the scan runs."""
    fresh = build_database()
    add_deal(fresh, 1, 8201, "Bilby transport")
    fresh.execute(
        "INSERT INTO crm_deal (portal_id, id, title) VALUES (1, NULL, 'Bilby transport, too')"
    )
    for start in (-1, 0):
        result = same_as_scan(fresh, "deals", filter={"%title": "Bilby transport"}, start=start)
        assert isinstance(result, ListPage) and len(result.rows) == 2
