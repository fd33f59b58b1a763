"""The sandbox portal's business data: orders, deals, invoices and order bindings.

The sandbox calls :func:`create_schema` once, :func:`seed_portal` per portal at start and
:func:`reset_portal` on ``/_sandbox/reset``. The portal web pages read through the query
helpers re-exported here.
"""

from __future__ import annotations

from b24sandbox.config import SandboxConfig
from b24sandbox.data import schema, search, seed
from b24sandbox.data.queries import (
    get_deal,
    get_invoice,
    get_order,
    order_owner,
    orders_of_owner,
    recent,
)
from b24sandbox.state import Database

__all__ = [
    "create_schema",
    "get_deal",
    "get_invoice",
    "get_order",
    "order_owner",
    "orders_of_owner",
    "recent",
    "reset_portal",
    "seed_portal",
]


def create_schema(db: Database) -> None:
    """Create the data tables and their indexes (safe to call again)."""
    with db.transaction() as conn:
        schema.create_tables(conn)


def seed_portal(db: Database, portal_id: int, config: SandboxConfig) -> None:
    """Fill one portal with its deterministic seed data, replacing whatever it held."""
    with db.transaction() as conn, search.bulk_writes(conn, portal_id):
        seed.clear(conn, portal_id)
        seed.fill(conn, portal_id, config)
    search.forget_counts(db)


def reset_portal(db: Database, portal_id: int, config: SandboxConfig) -> None:
    """Put one portal's data back to its seed state (bindings made since are dropped)."""
    seed_portal(db, portal_id, config)
