"""Picker pages: orders and owners, newest first, 50 a page, one Bitrix24 call each.

Pages seek by ID (``<id`` with ``start=-1``: no COUNT), so a page costs the same on a portal
with a hundred orders or a million. A search for digits also looks the number up as an id,
in the same ``batch``. A picker page that finds the portal's names missing fetches them in
that batch too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from b24app.bitrix.client import PAGE_SIZE, BatchResult, TokenSource, extract_rows
from b24app.bitrix.errors import BitrixError
from b24app.errors import BadRequest, from_bitrix
from b24app.services.catalog import (
    Catalog,
    adopt_catalog,
    catalog_commands,
    stored_catalog,
)
from b24app.services.gateway import gateway
from b24app.services.owners import OwnerKind, owner_kind
from b24app.services.permissions import truthy

Command = tuple[str, Mapping[str, Any] | None]

ORDER_FIELDS = [
    "id",
    "accountNumber",
    "dateInsert",
    "price",
    "currency",
    "statusId",
    "payed",
    "canceled",
]


@dataclass(frozen=True)
class PickerPage:
    """One page of rows and the cursor of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def order_row(raw: Mapping[str, Any], catalog: Catalog) -> dict[str, Any]:
    """Turn a ``sale.order.list`` row into the API's order row."""
    status = str(raw.get("statusId") or "")
    try:
        amount = float(raw.get("price") or 0)
    except (TypeError, ValueError):
        amount = 0.0
    return {
        "id": int(raw.get("id") or 0),
        "accountNumber": str(raw.get("accountNumber") or raw.get("id") or ""),
        "date": str(raw.get("dateInsert") or ""),
        "amount": amount,
        "currency": str(raw.get("currency") or ""),
        "statusId": status,
        "statusName": catalog.status_name(status) if status else "",
        "paid": truthy(raw.get("payed")),
        "cancelled": truthy(raw.get("canceled")),
    }


def order_list_command(filter_: Mapping[str, Any]) -> Command:
    """Return a ``sale.order.list`` call for picker rows, newest first, without counting."""
    return (
        "sale.order.list",
        {"select": ORDER_FIELDS, "filter": dict(filter_), "order": {"id": "desc"}, "start": -1},
    )


def run_with_catalog(
    source: TokenSource,
    portal_id: int,
    lang: str,
    commands: dict[str, Command],
    stored: Catalog | None,
) -> tuple[BatchResult, Catalog]:
    """Run ``commands`` in one batch, adding the catalog's commands when none is ``stored``.

    Callers pass what :func:`stored_catalog` gave them, so it is read once per request.
    """
    catalog = stored
    if catalog is None:
        commands = {**commands, **catalog_commands(lang)}
    try:
        batch = gateway().rest.batch(source, commands)
    except BitrixError as exc:
        raise from_bitrix(exc) from exc
    if catalog is None:
        catalog = adopt_catalog(portal_id, lang, batch) or Catalog()
    return batch, catalog


def rows_of(batch: BatchResult, key: str, rows_key: str | None = None) -> list[dict[str, Any]]:
    """Return the rows one batch command listed; raise its error, typed, when it failed."""
    if key in batch.errors:
        raise from_bitrix(batch.errors[key])
    if key not in batch.results:
        return []
    try:
        return [r for r in extract_rows(batch.results[key], rows_key) if isinstance(r, Mapping)]
    except BitrixError as exc:
        raise from_bitrix(exc) from exc


def cursor_id(cursor: str | None) -> int | None:
    """Read a page cursor (the last id of the previous page)."""
    if cursor is None:
        return None
    if not cursor.isdigit() or int(cursor) <= 0:
        raise BadRequest("bad_request")
    return int(cursor)


def _page(rows: list[dict[str, Any]], full: bool) -> PickerPage:
    """Wrap rows, newest first, with the cursor of the next page when this one was full."""
    return PickerPage(rows, str(rows[-1]["id"]) if full and rows else None)


def _merge(exact: list[dict[str, Any]], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put an exact id match first, then the search rows without it."""
    ids = {row["id"] for row in exact}
    return exact + [row for row in found if row["id"] not in ids]


def order_page(
    source: TokenSource, portal_id: int, lang: str, query: str, cursor: str | None
) -> PickerPage:
    """Return one page of orders matching ``query`` (id or account number) for the picker."""
    before = cursor_id(cursor)
    text = query.strip()
    base: dict[str, Any] = {} if before is None else {"<id": before}
    commands: dict[str, Command] = {
        "found": order_list_command({**base, "%accountNumber": text} if text else base)
    }
    if text.isdigit() and before is None:
        commands["exact"] = order_list_command({"=id": int(text)})
    batch, catalog = run_with_catalog(
        source, portal_id, lang, commands, stored_catalog(portal_id, lang)
    )
    found = rows_of(batch, "found", "orders")
    exact = rows_of(batch, "exact", "orders") if "exact" in commands else []
    rows = [order_row(r, catalog) for r in found]
    if before is not None and text.isdigit():
        rows = [r for r in rows if r["id"] != int(text)]
    return _page(_merge([order_row(r, catalog) for r in exact], rows), len(found) >= PAGE_SIZE)


def offered_kind(catalog: Catalog, owner_type_id: int) -> OwnerKind:
    """Return the owner kind when the portal offers the type, else refuse it (400)."""
    kind = owner_kind(owner_type_id)
    if kind is None or (catalog.owner_types and not catalog.offers(owner_type_id)):
        raise BadRequest("owner_type_not_offered")
    return kind


def owner_page(
    source: TokenSource,
    portal_id: int,
    lang: str,
    owner_type_id: int,
    query: str,
    cursor: str | None,
) -> PickerPage:
    """Return one page of deals or invoices matching ``query`` (title or id)."""
    stored = stored_catalog(portal_id, lang)
    if stored is not None:
        offered_kind(stored, owner_type_id)
    kind = owner_kind(owner_type_id)
    if kind is None:
        raise BadRequest("owner_type_not_offered")
    before = cursor_id(cursor)
    text = query.strip()
    base = {} if before is None else kind.cursor_filter(before)
    commands: dict[str, Command] = {
        "found": kind.list_command({**base, **kind.search_filter(text)} if text else base)
    }
    if text.isdigit() and before is None:
        commands["exact"] = kind.by_id(int(text))
    batch, catalog = run_with_catalog(source, portal_id, lang, commands, stored)
    # Checked again when the catalog came with this batch; the rows are then not shown.
    offered_kind(catalog, owner_type_id)
    found = rows_of(batch, "found", kind.rows_key)
    exact = rows_of(batch, "exact", kind.rows_key) if "exact" in commands else []
    rows = [kind.row(r, catalog) for r in found]
    if before is not None and text.isdigit():
        rows = [r for r in rows if r["id"] != int(text)]
    return _page(_merge([kind.row(r, catalog) for r in exact], rows), len(found) >= PAGE_SIZE)
