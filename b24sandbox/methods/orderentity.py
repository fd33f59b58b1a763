"""REST methods: crm.orderentity.add / list / deleteByFilter / getFields.

The checks run in the order of the core's ``Crm\\Controller\\OrderEntity``: rights, then the
REST view's required fields (code ``0``, "Required fields: ownerId, ownerTypeId, orderId" in
the view's field order), then non-positive values (``2016404000x``), then the duplicate
triple, then the order itself. An order has at most one owner: binding it again replaces
the previous owner (the core deletes the order's binding row before adding the new one).
"""

from __future__ import annotations

from typing import Any

from b24sandbox.data import schema
from b24sandbox.data.listing import ListQuery, run_list
from b24sandbox.data.queries import OWNER_TABLES
from b24sandbox.data.render import row_native
from b24sandbox.methods.sale import (
    ORDER_NOT_FOUND,
    positive_int,
    require_store_read,
    require_store_write,
)
from b24sandbox.registry import CallContext, Page, RestError, rest_method

# The REST view's field order (OWNER_ID, OWNER_TYPE_ID, ORDER_ID) names missing fields.
REQUIRED = (
    ("ownerId", "201640400001", "ownerId - parameter is empty"),
    ("ownerTypeId", "201640400002", "ownerTypeId - parameter is empty"),
    ("orderId", "201640400003", "orderId - parameter is empty"),
)
DUPLICATE = "201650000001"
NOT_BOUND = "201640400004"
SAVE_ERROR = "0"

BINDINGS = ListQuery(
    table="crm_order_entity",
    fields=schema.ORDER_ENTITY_FIELDS,
    render=row_native,
    # Documented default: ascending OWNER_ID; order_id keeps pages stable within an owner.
    default_order={"ownerId": "ASC"},
    tiebreak="order_id",
)


def binding_fields(params: dict[str, Any]) -> tuple[int, int, int]:
    """Validate ``fields`` and return ``(order_id, owner_type_id, owner_id)``."""
    fields = params.get("fields")
    if not isinstance(fields, dict):
        fields = {}
    missing = [name for name, _, _ in REQUIRED if fields.get(name) is None]
    if missing:
        raise RestError(SAVE_ERROR, f"Required fields: {', '.join(missing)}")
    values = {name: positive_int(fields[name]) for name, _, _ in REQUIRED}
    for name, code, message in REQUIRED:
        if values[name] <= 0:
            raise RestError(code, message)
    return values["orderId"], values["ownerTypeId"], values["ownerId"]


def check_owner(ctx: CallContext, owner_type_id: int, owner_id: int) -> None:
    """Refuse owner types the portal does not offer and owners that do not exist.

    The core's controller leaves this to the order's save, whose failures it reports with
    code 0 ("various order saving errors"); these descriptions say what was wrong.
    """
    allowed = ctx.sandbox.config.owner_types
    if owner_type_id not in allowed:
        offered = ", ".join(str(t) for t in allowed)
        raise RestError(
            SAVE_ERROR,
            f"ownerTypeId {owner_type_id} is not an order owner type on this portal"
            f" (allowed: {offered})",
        )
    table = OWNER_TABLES[owner_type_id]
    rows = ctx.sandbox.db.query(
        f"SELECT 1 FROM {table} WHERE portal_id = ? AND id = ?", (ctx.portal.id, owner_id)
    )
    if not rows:
        raise RestError(
            SAVE_ERROR, f"CRM entity with ownerTypeId {owner_type_id} and id {owner_id} not found"
        )


@rest_method("crm.orderentity.add", "crm")
def orderentity_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Bind an order to a deal or invoice, replacing the order's previous owner."""
    require_store_write(ctx)
    order_id, owner_type_id, owner_id = binding_fields(params)
    portal_id = ctx.portal.id
    # One transaction for check-and-write: two concurrent adds cannot leave two owners
    # (and the primary key on (portal_id, order_id) forbids it anyway).
    with ctx.sandbox.db.transaction() as conn:
        current = conn.execute(
            "SELECT owner_type_id, owner_id FROM crm_order_entity"
            " WHERE portal_id = ? AND order_id = ?",
            (portal_id, order_id),
        ).fetchone()
        if current is not None and tuple(current) == (owner_type_id, owner_id):
            raise RestError(DUPLICATE, "Duplicate entry for key [ownerId, ownerTypeId, orderId]")
        order = conn.execute(
            "SELECT 1 FROM sale_order WHERE portal_id = ? AND id = ?", (portal_id, order_id)
        ).fetchone()
        if order is None:
            raise RestError(ORDER_NOT_FOUND, "order does not exist")
        check_owner(ctx, owner_type_id, owner_id)
        conn.execute(
            "INSERT OR REPLACE INTO crm_order_entity"
            " (portal_id, order_id, owner_type_id, owner_id) VALUES (?, ?, ?, ?)",
            (portal_id, order_id, owner_type_id, owner_id),
        )
    return {"dealOrder": {"orderId": order_id, "ownerId": owner_id, "ownerTypeId": owner_type_id}}


@rest_method("crm.orderentity.deleteByFilter", "crm")
def orderentity_delete_by_filter(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Remove the binding that matches the exact triple."""
    require_store_write(ctx)
    order_id, owner_type_id, owner_id = binding_fields(params)
    with ctx.sandbox.db.transaction() as conn:
        deleted = conn.execute(
            "DELETE FROM crm_order_entity WHERE portal_id = ? AND order_id = ?"
            " AND owner_type_id = ? AND owner_id = ?",
            (ctx.portal.id, order_id, owner_type_id, owner_id),
        ).rowcount
        if not deleted:
            raise RestError(NOT_BOUND, "entity relation is not exists")
    return True


@rest_method("crm.orderentity.list", "crm")
def orderentity_list(ctx: CallContext, params: dict[str, Any]) -> Page:
    """List bindings as ``result.orderEntity``.

    ``start=-1`` returns the first 50 rows without ``total``/``next``. The method's page says
    -1 selects *all* matching rows, but the core's REST manager (which serves this method)
    only switches the COUNT off and keeps the 50-row page, as for every other list method.
    """
    require_store_read(ctx)
    page = run_list(
        ctx.sandbox.db,
        ctx.portal.id,
        BINDINGS,
        select=params.get("select"),
        filter_=params.get("filter"),
        order=params.get("order"),
        start=params.get("start"),
    )
    return Page({"orderEntity": page.rows}, page.total, page.next)


@rest_method("crm.orderentity.getFields", "crm")
def orderentity_get_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Describe the binding fields."""
    require_store_read(ctx)
    info = {"isImmutable": True, "isReadOnly": False, "isRequired": True, "type": "integer"}
    return {"orderEntity": {name: dict(info) for name in ("orderId", "ownerId", "ownerTypeId")}}
