"""Read helpers: one record in its wire shape, bindings, and recent records for the pages."""

from __future__ import annotations

import sqlite3
from typing import Any

from b24sandbox.data import schema
from b24sandbox.data.order_detail import order_collections
from b24sandbox.data.render import row_native
from b24sandbox.filters import FieldMap
from b24sandbox.state import Database

DEAL_TYPE_ID = 2
SMART_INVOICE_TYPE_ID = 31
OLD_INVOICE_TYPE_ID = 5


def order_row(order: sqlite3.Row) -> dict[str, Any]:
    """Render an order row as sale.order.list prints it."""
    return row_native(order, schema.ORDER_FIELDS)


def item_row(row: sqlite3.Row, fields: FieldMap, entity_type_id: int) -> dict[str, Any]:
    """Render a deal or smart invoice row as crm.item.get / crm.item.list (select *) print it."""
    item = row_native(row, fields)
    item["entityTypeId"] = entity_type_id
    contact = item.get("contactId")
    item["contactIds"] = [contact] if contact else []
    item["observers"] = []
    return item


def _one(db: Database, table: str, portal_id: int, record_id: int) -> sqlite3.Row | None:
    """Fetch one row of ``table`` by id."""
    rows = db.query(f"SELECT * FROM {table} WHERE portal_id = ? AND id = ?", (portal_id, record_id))
    return rows[0] if rows else None


def get_order(db: Database, portal_id: int, order_id: int) -> dict[str, Any] | None:
    """Return an order with its collections, as sale.order.get's ``result.order``."""
    row = _one(db, "sale_order", portal_id, order_id)
    if row is None:
        return None
    order = order_row(row)
    order.update(order_collections(order))
    return dict(sorted(order.items()))


def get_deal(db: Database, portal_id: int, deal_id: int) -> dict[str, Any] | None:
    """Return a deal in crm.item's camelCase shape."""
    row = _one(db, "crm_deal", portal_id, deal_id)
    return None if row is None else item_row(row, schema.DEAL_ITEM_FIELDS, DEAL_TYPE_ID)


def get_invoice(db: Database, portal_id: int, invoice_id: int) -> dict[str, Any] | None:
    """Return a smart invoice (entityTypeId 31) in crm.item's camelCase shape."""
    row = _one(db, "crm_smart_invoice", portal_id, invoice_id)
    if row is None:
        return None
    return item_row(row, schema.INVOICE_ITEM_FIELDS, SMART_INVOICE_TYPE_ID)


def owner_exists(db: Database, portal_id: int, owner_type_id: int, owner_id: int) -> bool:
    """Whether a deal / smart invoice / old invoice with that id exists on the portal."""
    table = OWNER_TABLES.get(owner_type_id)
    return table is not None and _one(db, table, portal_id, owner_id) is not None


OWNER_TABLES = {
    DEAL_TYPE_ID: "crm_deal",
    SMART_INVOICE_TYPE_ID: "crm_smart_invoice",
    OLD_INVOICE_TYPE_ID: "crm_invoice",
}


def order_owner(db: Database, portal_id: int, order_id: int) -> dict[str, int] | None:
    """Return the binding of an order as ``{orderId, ownerId, ownerTypeId}``, or None."""
    rows = db.query(
        "SELECT order_id, owner_id, owner_type_id FROM crm_order_entity"
        " WHERE portal_id = ? AND order_id = ?",
        (portal_id, order_id),
    )
    if not rows:
        return None
    row = rows[0]
    return {"orderId": row[0], "ownerId": row[1], "ownerTypeId": row[2]}


def orders_of_owner(
    db: Database, portal_id: int, owner_type_id: int, owner_id: int
) -> list[dict[str, Any]]:
    """Return the orders bound to one owner (sale.order.list shape), oldest first."""
    rows = db.query(
        "SELECT o.* FROM crm_order_entity b JOIN sale_order o"
        " ON o.portal_id = b.portal_id AND o.id = b.order_id"
        " WHERE b.portal_id = ? AND b.owner_type_id = ? AND b.owner_id = ? ORDER BY o.id",
        (portal_id, owner_type_id, owner_id),
    )
    return [order_row(r) for r in rows]


def recent(db: Database, portal_id: int, kind: str, limit: int = 10) -> list[dict[str, Any]]:
    """Return the newest orders, deals or (smart) invoices, newest first."""
    if kind == "order":
        table = "sale_order"
    elif kind == "deal":
        table = "crm_deal"
    elif kind == "invoice":
        table = "crm_smart_invoice"
    else:
        raise ValueError(f"unknown kind {kind!r}: use order, deal or invoice")
    rows = db.query(
        f"SELECT * FROM {table} WHERE portal_id = ? ORDER BY id DESC LIMIT ?",
        (portal_id, max(int(limit), 0)),
    )
    if kind == "order":
        return [order_row(r) for r in rows]
    if kind == "deal":
        return [item_row(r, schema.DEAL_ITEM_FIELDS, DEAL_TYPE_ID) for r in rows]
    return [item_row(r, schema.INVOICE_ITEM_FIELDS, SMART_INVOICE_TYPE_ID) for r in rows]
