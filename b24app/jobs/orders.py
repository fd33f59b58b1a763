"""Reading many orders and their owners in few Bitrix24 calls, for bulk jobs.

A filter is read in ID order with chained list commands inside one ``batch``: each page's
``>id`` is a ``$result`` reference to the last id of the page before, so one call reads up
to 50 pages (2,500 orders). Owners are read 50 orders a command (``@orderId``), 50 commands
a call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from b24app.bitrix.client import BATCH_LIMIT, PAGE_SIZE, BatchResult, TokenSource
from b24app.bitrix.errors import BitrixError
from b24app.errors import AppError, from_bitrix
from b24app.services.gateway import gateway
from b24app.services.pickers import rows_of

Command = tuple[str, Mapping[str, Any] | None]

MAX_JOB_ORDERS = 10_000


@dataclass(frozen=True)
class OrderFilter:
    """Which orders a job binds, as the user chose them."""

    created_from: date | None = None
    created_to: date | None = None
    status_id: str | None = None
    paid: bool | None = None
    unbound_only: bool = False
    account_number: str | None = None

    def as_bitrix(self) -> dict[str, Any]:
        """Return the ``sale.order.list`` filter (the unbound test happens afterwards)."""
        found: dict[str, Any] = {}
        if self.created_from is not None:
            found[">=dateInsert"] = f"{self.created_from.isoformat()}T00:00:00"
        if self.created_to is not None:
            found["<dateInsert"] = f"{(self.created_to + timedelta(days=1)).isoformat()}T00:00:00"
        if self.status_id:
            found["=statusId"] = self.status_id
        if self.paid is not None:
            found["=payed"] = "Y" if self.paid else "N"
        if self.account_number:
            found["%accountNumber"] = self.account_number
        return found

    def to_json(self) -> dict[str, Any]:
        """Return the filter as stored with a job."""
        return {
            "createdFrom": self.created_from.isoformat() if self.created_from else None,
            "createdTo": self.created_to.isoformat() if self.created_to else None,
            "statusId": self.status_id,
            "paid": self.paid,
            "unboundOnly": self.unbound_only,
            "accountNumber": self.account_number,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrderFilter:
        """Read a stored (or validated) filter."""

        def day(value: Any) -> date | None:
            if value in (None, ""):
                return None
            return value if isinstance(value, date) else date.fromisoformat(str(value))

        return cls(
            created_from=day(data.get("createdFrom")),
            created_to=day(data.get("createdTo")),
            status_id=data.get("statusId") or None,
            paid=data.get("paid"),
            unbound_only=bool(data.get("unboundOnly")),
            account_number=data.get("accountNumber") or None,
        )


def _run(source: TokenSource, commands: dict[str, Command], *, background: bool) -> Any:
    """Send one batch with the web or the background client."""
    client = gateway().jobs_rest if background else gateway().rest
    try:
        return client.batch(source, commands)
    except BitrixError as exc:
        raise from_bitrix(exc) from exc


def matching_orders(
    source: TokenSource, order_filter: OrderFilter, *, limit: int, background: bool = False
) -> list[tuple[int, str]]:
    """Return up to ``limit`` orders (id, number) matching the filter, oldest first."""
    base = order_filter.as_bitrix()
    found: list[tuple[int, str]] = []
    after: int | None = None
    while len(found) < limit:
        commands: dict[str, Command] = {}
        for page in range(BATCH_LIMIT):
            cursor: Any = (
                after if page == 0 else f"$result[p{page - 1}][orders][{PAGE_SIZE - 1}][id]"
            )
            filter_ = dict(base)
            if cursor is not None:
                filter_[">id"] = cursor
            commands[f"p{page}"] = (
                "sale.order.list",
                {
                    "select": ["id", "accountNumber"],
                    "filter": filter_,
                    "order": {"id": "asc"},
                    "start": -1,
                },
            )
        batch = _run(source, commands, background=background)
        last_full = False
        for page in range(BATCH_LIMIT):
            rows = rows_of(batch, f"p{page}", "orders")
            found.extend((int(r["id"]), str(r.get("accountNumber") or r["id"])) for r in rows)
            last_full = len(rows) >= PAGE_SIZE
            # A page short of 50 is the end: later pages' references point nowhere.
            if not last_full:
                break
        if not last_full or not found:
            break
        after = found[-1][0]
    # The same order can appear twice only if pages overlapped; keep the first.
    unique: dict[int, str] = {}
    for order_id, number in found:
        unique.setdefault(order_id, number)
    return list(unique.items())[:limit]


def current_owners(
    source: TokenSource, order_ids: list[int], *, background: bool = False
) -> dict[int, tuple[int, int]]:
    """Return each bound order's owner (ownerTypeId, ownerId); unbound orders are absent."""
    owners: dict[int, tuple[int, int]] = {}
    chunks = [order_ids[i : i + PAGE_SIZE] for i in range(0, len(order_ids), PAGE_SIZE)]
    for start in range(0, len(chunks), BATCH_LIMIT):
        commands: dict[str, Command] = {
            f"o{n}": owners_command(chunk)
            for n, chunk in enumerate(chunks[start : start + BATCH_LIMIT])
        }
        batch = _run(source, commands, background=background)
        for key in commands:
            owners.update(owners_from(rows_of(batch, key, "orderEntity")))
    return owners


def numbers_commands(order_ids: list[int]) -> dict[str, Command]:
    """Return the reads of the orders' account numbers, 50 orders a command (``n0``...)."""
    chunks = [order_ids[i : i + PAGE_SIZE] for i in range(0, len(order_ids), PAGE_SIZE)]
    return {
        f"n{n}": (
            "sale.order.list",
            {"select": ["id", "accountNumber"], "filter": {"@id": chunk}, "start": -1},
        )
        for n, chunk in enumerate(chunks)
    }


def numbers_from(batch: BatchResult, keys: Iterable[str]) -> dict[int, str]:
    """Map the rows of the number reads ``keys`` of a batch to {order: account number}."""
    numbers: dict[int, str] = {}
    for key in keys:
        for row in rows_of(batch, key, "orders"):
            numbers[int(row["id"])] = str(row.get("accountNumber") or row["id"])
    return numbers


def order_numbers(
    source: TokenSource, order_ids: list[int], *, background: bool = False
) -> dict[int, str]:
    """Return the account numbers of the orders that exist, 50 a command, 50 commands a call."""
    commands = list(numbers_commands(order_ids).items())
    numbers: dict[int, str] = {}
    for start in range(0, len(commands), BATCH_LIMIT):
        chunk = dict(commands[start : start + BATCH_LIMIT])
        numbers.update(numbers_from(_run(source, chunk, background=background), chunk))
    return numbers


def owners_command(order_ids: list[int]) -> Command:
    """Return the read of the orders' bindings: one page of 50, lowest order id first."""
    return (
        "crm.orderentity.list",
        {
            "select": ["orderId", "ownerTypeId", "ownerId"],
            "filter": {"@orderId": order_ids},
            "order": {"orderId": "asc"},
            "start": -1,
        },
    )


def owner_rows(batch: BatchResult, key: str) -> list[dict[str, Any]] | None:
    """Return the rows of a batch's owners read ``key``.

    None when that read failed or went unanswered: nothing was read, which is not the same
    as no order being bound.
    """
    if key not in batch.results:
        return None
    try:
        return rows_of(batch, key, "orderEntity")
    except AppError:
        return None


Seen = dict[int, tuple[int, int] | None]


def seen_owners(order_ids: Iterable[int], rows: list[dict[str, Any]]) -> Seen:
    """Say what a read of ``owners_command`` showed of each order: its owner, or None.

    A full page may have left out the orders after its last row (it is sorted by order id):
    those are absent from the answer, as not read.
    """
    owners = owners_from(rows)
    ids = list(order_ids)
    if len(rows) >= PAGE_SIZE:
        last = max(owners, default=0)
        ids = [i for i in ids if i <= last]
    return {i: owners.get(i) for i in ids}


def seen_to_json(seen: Seen) -> str | None:
    """Store owners as read (``Job.seen_owners``); None when nothing was read."""
    if not seen:
        return None
    return json.dumps({str(i): list(owner) if owner else None for i, owner in seen.items()})


def seen_from_json(text: str | None) -> Seen:
    """Read stored owners back (see :func:`seen_to_json`)."""
    if not text:
        return {}
    seen: Seen = {}
    for key, owner in json.loads(text).items():
        seen[int(key)] = (int(owner[0]), int(owner[1])) if owner else None
    return seen


def owners_from(rows: list[dict[str, Any]]) -> dict[int, tuple[int, int]]:
    """Map ``crm.orderentity.list`` rows to {order: (ownerTypeId, ownerId)}."""
    found: dict[int, tuple[int, int]] = {}
    for row in rows:
        try:
            found[int(row["orderId"])] = (int(row["ownerTypeId"]), int(row["ownerId"]))
        except (KeyError, TypeError, ValueError):
            continue
    return found
