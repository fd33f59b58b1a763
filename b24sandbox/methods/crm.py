"""REST methods: crm.deal.list, crm.item.list, crm.invoice.list, crm.status.list, crm.enum.*."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from b24sandbox.data import schema
from b24sandbox.data.listing import ListQuery, run_list
from b24sandbox.data.queries import item_row
from b24sandbox.data.render import row_native, row_strings
from b24sandbox.filters import ITEM_POLICY, Field, FilterError, Policy, escape_like
from b24sandbox.registry import CallContext, Page, RestError, rest_method

DEAL, INVOICE, SMART_INVOICE = 2, 5, 31

# crm.enum.ownertype, as its reference page lists the standard types.
OWNER_TYPES = (
    (1, "Lead", "LEAD", "L"),
    (2, "Deal", "DEAL", "D"),
    (3, "Contact", "CONTACT", "C"),
    (4, "Company", "COMPANY", "CO"),
    (5, "Invoice (old version)", "INVOICE", "I"),
    (31, "Invoice", "SMART_INVOICE", "SI"),
    (7, "Estimate", "QUOTE", "Q"),
    (8, "Requisites", "REQUISITE", "RQ"),
)
# crm.enum.getorderownertypes entries (lowercase keys, as that page prints them).
ORDER_OWNER_TYPES = {
    DEAL: {"attribute": "DYN", "code": "DEAL", "id": DEAL, "name": "Deal"},
    SMART_INVOICE: {
        "attribute": "DYN",
        "code": "SMART_INVOICE",
        "id": SMART_INVOICE,
        "name": "Invoice",
    },
    INVOICE: {"attribute": "", "code": "INVOICE", "id": INVOICE, "name": "Invoice (old version)"},
}

# The old CRM methods have no NOT LIKE prefixes and ignore what they do not know.
OLD_CRM_POLICY = Policy(like=False)


def render_deal_item(row: Any, fields: list[Field]) -> dict[str, Any]:
    """Render a deal for crm.item.list (all fields add the response-only extras)."""
    if len(fields) == len(schema.DEAL_ITEM_FIELDS.fields):
        return item_row(row, schema.DEAL_ITEM_FIELDS, DEAL)
    return row_native(row, fields)


def render_invoice_item(row: Any, fields: list[Field]) -> dict[str, Any]:
    """Render a smart invoice for crm.item.list."""
    if len(fields) == len(schema.INVOICE_ITEM_FIELDS.fields):
        return item_row(row, schema.INVOICE_ITEM_FIELDS, SMART_INVOICE)
    return row_native(row, fields)


ITEM_QUERIES = {
    DEAL: ListQuery(
        "crm_deal",
        schema.DEAL_ITEM_FIELDS,
        render_deal_item,
        ITEM_POLICY,
        {"id": "ASC"},
        always_select=("id",),
    ),
    SMART_INVOICE: ListQuery(
        "crm_smart_invoice",
        schema.INVOICE_ITEM_FIELDS,
        render_invoice_item,
        ITEM_POLICY,
        {"id": "ASC"},
        always_select=("id",),
    ),
}
DEALS = ListQuery(
    "crm_deal",
    schema.DEAL_LIST_FIELDS,
    row_strings,
    OLD_CRM_POLICY,
    {"ID": "ASC"},
    always_select=("ID",),
)
OLD_INVOICES = ListQuery(
    "crm_invoice",
    schema.OLD_INVOICE_FIELDS,
    row_strings,
    OLD_CRM_POLICY,
    {"ID": "ASC"},
    always_select=("ID",),
)


def upper_params(params: dict[str, Any]) -> dict[str, Any]:
    """Read parameters case-insensitively, as the old CRM methods do (SELECT == select)."""
    return {str(key).lower(): value for key, value in params.items()}


def old_crm_list(ctx: CallContext, params: dict[str, Any], query: ListQuery) -> Page:
    """Run crm.deal.list / crm.invoice.list: a bare array of string-valued rows."""
    args = upper_params(params)
    for name in ("order", "filter"):
        value = args.get(name)
        if value not in (None, "") and not isinstance(value, Mapping | list):
            raise RestError("", f"Parameter '{name}' must be array.")
    page = run_list(
        ctx.sandbox.db,
        ctx.portal.id,
        query,
        select=args.get("select"),
        filter_=args.get("filter"),
        order=args.get("order"),
        start=args.get("start"),
    )
    return Page(page.rows, page.total, page.next)


# crm.status.list reads its filter the way the core's CCrmStatus::GetList does: plain keys in
# any case, exact matches (NAME: a substring), empty values skipped, anything else (prefixed
# keys such as "=ENTITY_ID", unknown fields) ignored. It neither selects nor pages: every
# matching row comes back, with ``total``. The REST layer sorts by SORT when no order is given.
_STATUS_EXACT = ("ID", "ENTITY_ID", "STATUS_ID", "SORT", "CATEGORY_ID", "SEMANTICS")
_STATUS_ORDER = (*_STATUS_EXACT, "NAME", "SYSTEM")


def status_where(filter_: Any) -> tuple[str, list[Any]]:
    """Translate crm.status.list's filter into SQL."""
    parts: list[str] = []
    args: list[Any] = []
    if not isinstance(filter_, Mapping):
        return "1", args
    for raw_key, value in filter_.items():
        key = str(raw_key).upper()
        if value is None or isinstance(value, Mapping | list) or str(value) == "":
            continue
        text = str(value)
        if key in ("ID", "SORT", "CATEGORY_ID"):
            # A NULL CATEGORY_ID (the default deal pipeline) equals no number, as in SQL.
            parts.append(f"{key.lower()} = ?")
            args.append(positive_or_zero(text))
        elif key in _STATUS_EXACT:
            parts.append(f"{key.lower()} = ?")
            args.append(text)
        elif key == "NAME":
            parts.append("name LIKE ? ESCAPE '\\'")
            args.append(f"%{escape_like(text)}%")
        elif key == "SYSTEM":
            parts.append("system = ?")
            args.append("Y" if text == "Y" else "N")
    return (" AND ".join(parts) or "1"), args


def positive_or_zero(text: str) -> int:
    """Cast like PHP's ``(int)``: leading digits, else 0."""
    digits = ""
    for char in text.strip():
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else 0


def status_order(order: Any) -> str:
    """Translate crm.status.list's order ({FIELD: ASC|DESC}; anything but ASC is DESC)."""
    terms: list[str] = []
    if isinstance(order, Mapping):
        for raw_key, raw_direction in order.items():
            key = str(raw_key).upper()
            if key in _STATUS_ORDER and key.lower() not in [t.split()[0] for t in terms]:
                direction = "ASC" if str(raw_direction).upper() == "ASC" else "DESC"
                terms.append(f"{key.lower()} {direction}")
    if not terms:
        terms.append("sort ASC")
    terms.append("id ASC")  # the portal's database leaves ties unordered; keep them stable
    return ", ".join(terms)


def render_status(row: Any) -> dict[str, Any]:
    """Render one reference-book row: strings, null CATEGORY_ID / SEMANTICS, EXTRA if any."""
    item = row_strings(row, schema.CRM_STATUS_FIELDS)
    if row["extra_semantics"] is not None:
        item["EXTRA"] = {"SEMANTICS": row["extra_semantics"], "COLOR": row["color"]}
    return item


@rest_method("crm.status.list", "crm")
def crm_status_list(ctx: CallContext, params: dict[str, Any]) -> Page:
    """List reference-book items (deal and smart-invoice stages) as a bare array."""
    args = upper_params(params)
    for name in ("order", "filter"):
        value = args.get(name)
        if value not in (None, "") and not isinstance(value, Mapping | list):
            raise RestError("", f"Parameter '{name}' must be array.")
    where, values = status_where(args.get("filter"))
    rows = ctx.sandbox.db.query(
        f"SELECT * FROM crm_status WHERE portal_id = ? AND ({where})"
        f" ORDER BY {status_order(args.get('order'))}",
        [ctx.portal.id, *values],
    )
    items = [render_status(r) for r in rows]
    return Page(items, len(items), None)


@rest_method("crm.deal.list", "crm")
def crm_deal_list(ctx: CallContext, params: dict[str, Any]) -> Page:
    """List deals with UPPER_CASE fields and string values."""
    return old_crm_list(ctx, params, DEALS)


@rest_method("crm.invoice.list", "crm")
def crm_invoice_list(ctx: CallContext, params: dict[str, Any]) -> Page:
    """List old invoices (type 5); on portals without them the method does not exist."""
    if INVOICE not in ctx.sandbox.config.owner_types:
        # What Bitrix24 answers for a method that is not available on the portal.
        raise RestError("ERROR_METHOD_NOT_FOUND", "Method not found!", status=404)
    return old_crm_list(ctx, params, OLD_INVOICES)


@rest_method("crm.item.list", "crm")
def crm_item_list(ctx: CallContext, params: dict[str, Any]) -> Page:
    """List deals (entityTypeId 2) or smart invoices (31) in camelCase, ``result.items``."""
    raw_type = params.get("entityTypeId")
    if raw_type in (None, ""):
        raise RestError("100", "Could not find value for parameter {entityTypeId}")
    try:
        entity_type_id = int(str(raw_type).strip())
    except ValueError:
        entity_type_id = 0
    if entity_type_id == INVOICE:
        raise RestError("ENTITY_TYPE_NOT_SUPPORTED", "Entity type INVOICE is not supported")
    query = ITEM_QUERIES.get(entity_type_id)
    if query is None:
        raise RestError("NOT_FOUND", "SPA not found")
    select = params.get("select")
    try:
        page = run_list(
            ctx.sandbox.db,
            ctx.portal.id,
            query,
            select=select,
            filter_=params.get("filter"),
            order=params.get("order"),
            start=params.get("start"),
        )
    except FilterError as error:
        raise RestError("INVALID_ARG_VALUE", error.message) from None
    return Page({"items": page.rows}, page.total, page.next)


@rest_method("crm.enum.getorderownertypes", "crm")
def crm_enum_order_owner_types(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Return exactly the owner types this portal lets orders be bound to."""
    return [
        dict(ORDER_OWNER_TYPES[t]) for t in ctx.sandbox.config.owner_types if t in ORDER_OWNER_TYPES
    ]


@rest_method("crm.enum.ownertype", "crm")
def crm_enum_owner_type(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the CRM object types with their ids and symbol codes."""
    return [
        {"ID": type_id, "NAME": name, "SYMBOL_CODE": code, "SYMBOL_CODE_SHORT": short}
        for type_id, name, code, short in OWNER_TYPES
    ]
