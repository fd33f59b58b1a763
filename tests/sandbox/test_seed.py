"""The seed data: deterministic, sized by the options, realistic, and its query helpers."""

from __future__ import annotations

import re
import time

import pytest

from b24sandbox import data
from b24sandbox.config import SandboxConfig
from b24sandbox.data import fixtures, reference
from b24sandbox.data.seed import day, stamp
from b24sandbox.state import Database

CONFIG = SandboxConfig(seed=3, orders=200, deals=70, invoices=40, owner_types=(2, 31, 5))
ORDER_STATUSES = {s.id for s in reference.SALE_STATUSES if s.type == "O"}
DEAL_STAGES = {s.status_id for s in reference.CRM_STAGES if s.entity_id.startswith("DEAL_STAGE")}
INVOICE_STAGES = {s.status_id for s in reference.smart_invoice_stages()}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00$")


def seeded(config: SandboxConfig = CONFIG, portals: tuple[int, ...] = (1,)) -> Database:
    """Return a fresh in-memory database seeded for ``portals``."""
    db = Database(None)
    data.create_schema(db)
    for portal_id in portals:
        data.seed_portal(db, portal_id, config)
    return db


def dump(db: Database, portal_id: int) -> dict[str, list[tuple]]:
    """Return every data row of one portal, table by table."""
    tables = ("sale_order", "crm_deal", "crm_smart_invoice", "crm_invoice", "crm_order_entity")
    return {
        t: [
            tuple(r)
            for r in db.query(f"SELECT * FROM {t} WHERE portal_id = ? ORDER BY 2", (portal_id,))
        ]
        for t in tables
    }


def count(db: Database, table: str, portal_id: int = 1) -> int:
    """Count one portal's rows in a table."""
    return db.query(f"SELECT COUNT(*) FROM {table} WHERE portal_id = ?", (portal_id,))[0][0]


def test_same_seed_gives_the_same_portal():
    assert dump(seeded(), 1) == dump(seeded(), 1)


def test_other_seed_or_portal_gives_other_data():
    db = seeded(portals=(1, 2))
    other = seeded(SandboxConfig(seed=4, orders=200, deals=70, invoices=40))
    assert dump(db, 1)["sale_order"] != dump(db, 2)["sale_order"]
    assert dump(db, 1)["sale_order"] != dump(other, 1)["sale_order"]


def test_sizes_follow_the_configuration():
    db = seeded()
    assert count(db, "sale_order") == 200
    assert count(db, "crm_deal") == 70
    assert count(db, "crm_smart_invoice") == 40
    assert count(db, "crm_invoice") == 40


def test_old_invoices_exist_only_when_type_5_is_enabled():
    db = seeded(SandboxConfig(orders=20, deals=5, invoices=5, owner_types=(2, 31)))
    assert count(db, "crm_invoice") == 0
    assert count(db, "crm_smart_invoice") == 5


def test_orders_look_like_sale_order_list_rows():
    db = seeded()
    orders = data.recent(db, 1, "order", limit=200)
    assert len(orders) == 200
    for order in orders:
        assert isinstance(order["id"], int)
        assert isinstance(order["accountNumber"], str) and order["accountNumber"].isdigit()
        assert order["currency"] in ("RUB", "USD", "EUR")
        assert order["statusId"] in ORDER_STATUSES
        assert order["payed"] in ("Y", "N") and order["canceled"] in ("Y", "N")
        assert order["lid"] == "s1"
        assert ISO.match(order["dateInsert"]) and order["dateUpdate"] >= order["dateInsert"]
        assert isinstance(order["price"], int | float) and order["price"] > 0
        assert order["xmlId"].startswith("bx_")
        assert order["recurringId"] == "" and order["lockedBy"] == ""
        assert order["affiliateId"] is None
    assert len({o["statusId"] for o in orders}) == 4
    assert len({o["accountNumber"] for o in orders}) == 200


def test_sale_order_get_shape_adds_collections_that_add_up():
    db = seeded()
    order = data.get_order(db, 1, 17)
    assert order is not None and order["id"] == 17
    for key in ("basketItems", "payments", "shipments", "propertyValues", "clients"):
        assert isinstance(order[key], list)
    assert isinstance(order["requisiteLink"], dict)
    item = order["basketItems"][0]
    assert isinstance(item["id"], str) and item["orderId"] == "17"
    assert order["payments"][0]["sum"] == order["price"]
    goods = sum(i["price"] * i["quantity"] for i in order["basketItems"])
    delivery = order["shipments"][0]["priceDelivery"]
    assert goods + delivery == pytest.approx(order["price"], abs=0.05)
    assert data.get_order(db, 1, 17) == order


def test_missing_records_are_none():
    db = seeded()
    assert data.get_order(db, 1, 999) is None
    assert data.get_deal(db, 1, 999) is None
    assert data.get_invoice(db, 1, 999) is None
    assert data.get_order(db, 2, 1) is None  # portal 2 was not seeded


def test_deals_and_invoices_are_crm_items():
    db = seeded()
    deal = data.get_deal(db, 1, 5)
    assert deal is not None
    assert deal["entityTypeId"] == 2 and deal["id"] == 5
    assert isinstance(deal["opportunity"], int | float) and deal["title"]
    assert deal["stageId"] in DEAL_STAGES
    invoice = data.get_invoice(db, 1, 5)
    assert invoice is not None
    assert invoice["entityTypeId"] == 31
    assert invoice["stageId"].startswith("DT31_1:") and invoice["accountNumber"] == "5"


def test_some_orders_start_bound_and_only_to_existing_allowed_owners():
    db = seeded()
    rows = db.query("SELECT order_id, owner_type_id, owner_id FROM crm_order_entity")
    assert 20 <= len(rows) <= 100
    assert {r[1] for r in rows} <= {2, 31, 5}
    assert 2 in {r[1] for r in rows}
    for order_id, owner_type_id, owner_id in rows:
        owner = data.get_deal(db, 1, owner_id) if owner_type_id == 2 else None
        if owner_type_id == 2:
            assert owner is not None
        assert data.order_owner(db, 1, order_id) == {
            "orderId": order_id,
            "ownerId": owner_id,
            "ownerTypeId": owner_type_id,
        }


def test_bindings_respect_a_portal_without_deals_as_owners():
    db = seeded(SandboxConfig(orders=300, deals=20, invoices=20, owner_types=(31,)))
    types = {r[0] for r in db.query("SELECT owner_type_id FROM crm_order_entity")}
    assert types == {31}


def test_orders_of_owner_lists_the_bound_orders():
    db = seeded()
    order_id, owner_id = db.query(
        "SELECT order_id, owner_id FROM crm_order_entity WHERE owner_type_id = 2 LIMIT 1"
    )[0]
    bound = data.orders_of_owner(db, 1, 2, owner_id)
    assert order_id in [o["id"] for o in bound]
    assert all(data.order_owner(db, 1, o["id"])["ownerId"] == owner_id for o in bound)
    assert data.orders_of_owner(db, 1, 2, 10_000) == []


def test_recent_is_newest_first_and_validates_kind():
    db = seeded()
    assert [d["id"] for d in data.recent(db, 1, "deal", limit=3)] == [70, 69, 68]
    assert [i["id"] for i in data.recent(db, 1, "invoice", limit=2)] == [40, 39]
    with pytest.raises(ValueError):
        data.recent(db, 1, "lead")


def test_reset_drops_new_bindings_and_keeps_other_portals():
    db = seeded(portals=(1, 2))
    before = dump(db, 1)
    other = dump(db, 2)
    db.execute("DELETE FROM crm_order_entity WHERE portal_id = 1")
    db.execute("UPDATE sale_order SET price = 1 WHERE portal_id = 1")
    data.reset_portal(db, 1, CONFIG)
    assert dump(db, 1) == before
    assert dump(db, 2) == other


def test_schema_creation_is_idempotent():
    db = seeded()
    data.create_schema(db)
    assert count(db, "sale_order") == 200


@pytest.mark.parametrize("ts", [0, 1_700_000_000, 1_719_759_599.9, 1_735_678_800])
def test_seed_dates_are_portal_time_iso(ts):
    expected = time.strftime("%Y-%m-%dT%H:%M:%S+03:00", time.gmtime(int(ts) + 3 * 3600))
    assert stamp(ts) == expected
    assert day(ts) == expected[:10] + "T00:00:00+03:00"


def test_every_seeded_status_and_stage_is_in_its_reference_book():
    db = seeded()
    order_statuses = {
        r[0] for r in db.query("SELECT id FROM sale_status WHERE portal_id = 1 AND type = 'O'")
    }
    used = {r[0] for r in db.query("SELECT DISTINCT status_id FROM sale_order")}
    assert used <= order_statuses and "DN" not in used
    books = {
        (r[0], r[1])
        for r in db.query("SELECT entity_id, status_id FROM crm_status WHERE portal_id = 1")
    }
    for category, stage in db.query("SELECT DISTINCT category_id, stage_id FROM crm_deal"):
        entity = "DEAL_STAGE" if category == 0 else f"DEAL_STAGE_{category}"
        assert (entity, stage) in books
    assert {r[0] for r in db.query("SELECT DISTINCT category_id FROM crm_deal")} == {0, 1}
    for category, stage in db.query("SELECT DISTINCT category_id, stage_id FROM crm_smart_invoice"):
        assert (f"SMART_INVOICE_STAGE_{category}", stage) in books
    assert {r[0] for r in db.query("SELECT DISTINCT stage_id FROM crm_smart_invoice")} == (
        INVOICE_STAGES
    )


def test_fixtures_are_the_same_for_every_seed_and_follow_the_sizes():
    for seed in (3, 4):
        db = seeded(SandboxConfig(seed=seed, orders=200, deals=70, invoices=40))
        deals = dict(db.query("SELECT id, title FROM crm_deal WHERE id <= 7 ORDER BY id"))
        assert deals == fixtures.DEAL_TITLES
        invoices = dict(db.query("SELECT id, title FROM crm_smart_invoice WHERE id <= 7"))
        assert invoices == fixtures.SMART_INVOICE_TITLES
        bound = {
            r[0]: (r[1], r[2])
            for r in db.query(
                "SELECT order_id, owner_type_id, owner_id FROM crm_order_entity"
                " WHERE order_id <= 10"
            )
        }
        assert bound == fixtures.BINDINGS
        low = db.query("SELECT DISTINCT category_id FROM crm_deal WHERE id <= 10")
        assert [tuple(r) for r in low] == [(0,)]
    small = seeded(SandboxConfig(orders=8, deals=3, invoices=2, owner_types=(2,)))
    rows = small.query("SELECT order_id, owner_type_id, owner_id FROM crm_order_entity")
    assert {r[0]: (r[1], r[2]) for r in rows} == {2: (2, 1), 3: (2, 1), 6: (2, 3)}
    assert count(small, "crm_deal") == 3
