"""One page of a list method: filter, order, select and paging over a portal's table."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from b24sandbox.data import search
from b24sandbox.filters import (
    LENIENT,
    PAGE_SIZE,
    Field,
    FieldMap,
    Policy,
    build_order,
    build_select,
    build_where,
    page_offset,
)
from b24sandbox.state import Database

Renderer = Callable[[sqlite3.Row, list[Field]], dict[str, Any]]


@dataclass
class ListPage:
    """The rows of one page plus ``total``/``next`` (None when not counted or no more rows)."""

    rows: list[dict[str, Any]]
    total: int | None
    next: int | None


@dataclass(frozen=True)
class ListQuery:
    """What a list method reads: its table, fields, rules and default sort."""

    table: str
    fields: FieldMap
    render: Renderer
    policy: Policy = LENIENT
    default_order: Mapping[str, str] | None = None
    tiebreak: str = "id"
    always_select: tuple[str, ...] = ()


def run_list(
    db: Database,
    portal_id: int,
    query: ListQuery,
    *,
    select: Any = None,
    filter_: Any = None,
    order: Any = None,
    start: Any = None,
) -> ListPage:
    """Return one page of ``query.table`` for a portal, as the list methods page it.

    ``start=-1`` skips the COUNT and gives no ``total``/``next``; otherwise ``next`` appears
    only while rows remain after this page. Substring filters and unfiltered totals use the
    indexes of :mod:`b24sandbox.data.search` where they help; the rows are the same.
    """
    offset, count_total = page_offset(start)
    # One snapshot: the search index's candidates, the page and its total.
    with db.lock:
        narrow = search.narrowing(db, query.table, counted=count_total)
        where = build_where(filter_, query.fields, query.policy, narrow=narrow)
        order_by = build_order(
            order if order else query.default_order,
            query.fields,
            query.policy,
            tiebreak=query.tiebreak,
        )
        chosen = build_select(select, query.fields, always=query.always_select)
        sql_where = f"portal_id = ? AND ({where.sql})"
        args = [portal_id, *where.args]
        rows = db.query(
            f"SELECT * FROM {query.table} WHERE {sql_where} ORDER BY {order_by} LIMIT ? OFFSET ?",
            [*args, PAGE_SIZE, offset],
        )
        total = None
        if count_total and where.sql == "1":
            total = search.portal_rows(db, query.table, portal_id)
        if count_total and total is None:
            total = db.query(f"SELECT COUNT(*) FROM {query.table} WHERE {sql_where}", args)[0][0]
    rendered = [query.render(row, chosen) for row in rows]
    if total is None:
        return ListPage(rendered, None, None)
    following = offset + len(rendered)
    return ListPage(rendered, total, following if following < total else None)
