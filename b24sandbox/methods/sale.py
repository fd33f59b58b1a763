"""REST methods: sale.order.list / get, sale.status.list, sale.statusLang.list, and the
online store rights they share.

Error codes are sent as JSON strings (``"200040300010"``), even where the sale pages print
numbers: the current core keeps a REST error code in a ``string``-typed property, so every
code (numeric or not) reaches the wire as a string, which is also what the error reference
(``error-info.md``) and the orderentity examples show.
"""

from __future__ import annotations

from typing import Any

from b24sandbox.data import get_order, schema
from b24sandbox.data.listing import ListQuery, run_list
from b24sandbox.data.render import row_native
from b24sandbox.filters import coerce
from b24sandbox.registry import CallContext, Page, RestError, rest_method
from b24sandbox.users import USERS

READ_DENIED = "200040300010"
WRITE_DENIED = "200040300020"
ORDER_NOT_FOUND = "200540400001"
MISSING_PARAMETER = "100"

ORDERS = ListQuery(
    table="sale_order",
    fields=schema.ORDER_FIELDS,
    render=row_native,
    # The core's sale controller sorts by ID ascending when no order is given.
    default_order={"id": "ASC"},
)


# The core's sale Status / StatusLang controllers sort by ID / STATUS_ID when no order is given.
STATUSES = ListQuery(
    table="sale_status",
    fields=schema.SALE_STATUS_FIELDS,
    render=row_native,
    default_order={"id": "ASC"},
)
STATUS_LANGS = ListQuery(
    table="sale_status_lang",
    fields=schema.SALE_STATUS_LANG_FIELDS,
    render=row_native,
    default_order={"statusId": "ASC"},
    tiebreak="lid",
)


def require_store_read(ctx: CallContext) -> None:
    """Refuse users whose sale module right is D (no store access)."""
    user = USERS.get(ctx.user_id)
    if user is None or not user.can_read_store:
        raise RestError(READ_DENIED, "Access Denied")


def require_store_write(ctx: CallContext) -> None:
    """Refuse users below the sale module right W (store administrator)."""
    user = USERS.get(ctx.user_id)
    if user is None or not user.can_write_store:
        raise RestError(WRITE_DENIED, "Access Denied")


def positive_int(value: Any) -> int:
    """Cast a parameter like PHP's ``(int)`` does; 0 for anything unusable."""
    try:
        number = coerce(value, "int", strict=False)
    except Exception:  # noqa: BLE001 - arrays and objects cast to 0 here, as in PHP
        return 0
    return number if isinstance(number, int) and number > 0 else 0


@rest_method("sale.order.list", "sale")
def sale_order_list(ctx: CallContext, params: dict[str, Any]) -> Page:
    """List orders: ``result.orders``, 50 per page; unknown fields are skipped, not errors."""
    return sale_list(ctx, params, ORDERS, "orders")


def sale_list(ctx: CallContext, params: dict[str, Any], query: ListQuery, key: str) -> Page:
    """Run a sale list method: ``result.<key>``, 50 per page, unknown fields skipped."""
    require_store_read(ctx)
    page = run_list(
        ctx.sandbox.db,
        ctx.portal.id,
        query,
        select=params.get("select"),
        filter_=params.get("filter"),
        order=params.get("order"),
        start=params.get("start"),
    )
    return Page({key: page.rows}, page.total, page.next)


@rest_method("sale.status.list", "sale")
def sale_status_list(ctx: CallContext, params: dict[str, Any]) -> Page:
    """List order (type O) and delivery (type D) statuses: ``result.statuses``."""
    return sale_list(ctx, params, STATUSES, "statuses")


@rest_method("sale.statusLang.list", "sale")
def sale_status_lang_list(ctx: CallContext, params: dict[str, Any]) -> Page:
    """List the statuses' names per language: ``result.statusLangs``."""
    return sale_list(ctx, params, STATUS_LANGS, "statusLangs")


@rest_method("sale.order.get", "sale")
def sale_order_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Return one order with its basket, payments, shipments and properties."""
    require_store_read(ctx)
    if params.get("id") in (None, ""):
        raise RestError(MISSING_PARAMETER, "Could not find value for parameter {id}")
    order_id = positive_int(params["id"])
    order = get_order(ctx.sandbox.db, ctx.portal.id, order_id) if order_id else None
    if order is None:
        # The sale page's example; its table also names 201240400001 "Order not found",
        # which the core's order loader does not raise.
        raise RestError(ORDER_NOT_FOUND, "order does not exist")
    return {"order": order}
