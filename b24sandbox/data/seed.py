"""Deterministic, realistic seed data: orders, deals, smart invoices, old invoices, bindings.

Everything derives from ``random.Random(f"{seed}:{portal_id}:<table>")``: the same seed gives
the same portal byte for byte, and one table's size never changes another table's content.
Rows are built as plain tuples and written with ``executemany`` in one transaction, so
100,000 rows per table take a few seconds.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from b24sandbox import seed_words as words
from b24sandbox.config import SandboxConfig
from b24sandbox.data import fixtures, reference, schema
from b24sandbox.filters import PORTAL_TZ, FieldMap
from b24sandbox.users import USERS

# A fixed "now" keeps seeds identical from run to run; data spans the two years before it.
ANCHOR = datetime(2025, 6, 30, 18, 0, 0, tzinfo=PORTAL_TZ).timestamp()
SPAN = 730 * 86400
_OFFSET = 3 * 3600
EMPLOYEES = tuple(USERS)
T = TypeVar("T")
# Deals, smart invoices and orders up to this id carry fixed fixtures (data/fixtures.py).
FIXTURE_IDS = 10


_DAYS: dict[int, str] = {}


def _day_text(day_number: int) -> str:
    """Return ``YYYY-MM-DD`` of a day counted from the epoch (cached: seeds reuse ~730 days)."""
    text = _DAYS.get(day_number)
    if text is None:
        text = time.strftime("%Y-%m-%d", time.gmtime(day_number * 86400))
        _DAYS[day_number] = text
    return text


def stamp(ts: float) -> str:
    """Format a Unix time as the portal's ISO datetime (``...+03:00``)."""
    seconds = int(ts) + _OFFSET
    day_number, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{_day_text(day_number)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}+03:00"


def day(ts: float) -> str:
    """Format a Unix time as a date field: midnight of that day with the portal's offset."""
    return f"{_day_text((int(ts) + _OFFSET) // 86400)}T00:00:00+03:00"


class Dice:
    """Fast draws from one ``random.Random``: the seeder makes millions of them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.random = rng.random

    def pick(self, options: Sequence[T]) -> T:
        """Pick one option uniformly."""
        return options[int(self.random() * len(options))]

    def weighted(self, options: Sequence[T], weights: Sequence[float]) -> Callable[[], T]:
        """Return a drawer that picks options with the given weights."""
        cumulative = list(itertools.accumulate(weights))
        total = cumulative[-1]
        draw = self.random
        return lambda: options[bisect.bisect_right(cumulative, draw() * total)]

    def below(self, high: int, low: int = 0) -> int:
        """Return an int in ``[low, high)``."""
        return low + int(self.random() * (high - low))

    def chance(self, share: float) -> bool:
        """Return True with probability ``share``."""
        return self.random() < share


def xml_id(dice: Dice) -> str:
    """Return a Bitrix-style external code like ``bx_65df53063d56d``."""
    return f"bx_{dice.rng.getrandbits(52):013x}"


def created_at(dice: Dice, index: int, count: int) -> float:
    """Spread ``count`` creation times over the span, growing with the id as a real log does."""
    return ANCHOR - SPAN + SPAN * (index - 1 + dice.random()) / max(count, 1)


def money(dice: Dice, low: int, high: int) -> float:
    """Return a price: mostly round numbers, sometimes with cents."""
    return dice.below(high // 10, low // 10) * 10 + dice.pick((0, 0, 0, 0.5, 0.99))


def rows_of(
    fields: FieldMap, records: Iterator[dict[str, object]], portal_id: int
) -> Iterator[tuple[object, ...]]:
    """Turn column-keyed records into tuples in the table's column order."""
    values = operator.itemgetter(*(f.column for f in fields))
    for record in records:
        yield (portal_id, *values(record))


def order_records(dice: Dice, count: int) -> Iterator[dict[str, object]]:
    """Generate online store orders shaped like sale.order.list rows."""
    number_base = dice.below(900, 100)
    # Order statuses only (type O): DN and the other D* codes are delivery statuses.
    status_of = dice.weighted(
        [s for s, _ in reference.ORDER_STATUS_WEIGHTS],
        [w for _, w in reference.ORDER_STATUS_WEIGHTS],
    )
    currency_of = dice.weighted(("RUB", "USD", "EUR"), (6, 3, 2))
    person_type_of = dice.weighted((1, 2), (3, 1))
    for order_id in range(1, count + 1):
        inserted = created_at(dice, order_id, count)
        status = status_of()
        canceled = dice.chance(0.05)
        status_changed = inserted + dice.below(3 * 86400)
        updated = status_changed + dice.below(86400)
        price = money(dice, 300, 60000)
        currency = currency_of()
        responsible = dice.pick(EMPLOYEES)
        yield {
            "account_number": str(number_base + order_id),
            "additional_info": "",
            "affiliate_id": None,
            "canceled": "Y" if canceled else "N",
            "comments": "",
            "company_id": None,
            "currency": currency,
            "date_canceled": stamp(updated) if canceled else None,
            "date_insert": stamp(inserted),
            "date_lock": None,
            "date_marked": None,
            "date_status": stamp(status_changed),
            "date_update": stamp(updated),
            "deducted": "Y" if status == "F" else "N",
            "discount_value": 0.0,
            "emp_canceled_id": responsible if canceled else None,
            "emp_marked_id": None,
            "emp_status_id": responsible,
            "external_order": "N",
            "id": order_id,
            "id1c": "",
            "lid": "s1",
            "locked_by": "",
            "marked": "N",
            "order_topic": "",
            "payed": "Y" if status in ("P", "F") and not canceled else "N",
            "person_type_id": person_type_of(),
            "person_type_xml_id": "",
            "price": price,
            "reason_canceled": dice.pick(words.CANCEL_REASONS) if canceled else "",
            "reason_marked": "",
            "recount_flag": "Y",
            "recurring_id": "",
            "responsible_id": responsible,
            "status_id": status,
            "status_xml_id": "",
            "tax_value": round(price * 20 / 120, 2) if currency == "RUB" else 0.0,
            "updated1c": "N",
            "user_description": dice.pick(words.CUSTOMER_NOTES) if dice.chance(0.15) else "",
            "user_id": dice.below(5000, 10),
            "version": dice.below(6, 1),
            "version1c": "",
            "xml_id": xml_id(dice),
        }


def deal_title(dice: Dice) -> str:
    """Return a deal title like ``Office furniture for Harbor Foods, Q3``."""
    title = f"{dice.pick(words.PRODUCTS)} for {dice.pick(words.COMPANIES)}"
    qualifier = dice.pick(words.QUALIFIERS)
    return f"{title}, {qualifier}" if qualifier else title


# (stage code, semantic, weight) per pipeline; the codes are crm.status.list's STATUS_IDs
# (prefixed "C1:" in pipeline 1), so every deal's stage has a name there.
DEAL_STAGES = (
    ("NEW", "P", 20),
    ("PREPARATION", "P", 15),
    ("PREPAYMENT_INVOICE", "P", 12),
    ("EXECUTING", "P", 15),
    ("FINAL_INVOICE", "P", 8),
    ("WON", "S", 20),
    ("LOSE", "F", 8),
    ("APOLOGY", "F", 2),
)
WHOLESALE_STAGES = (
    ("NEW", "P", 25),
    ("PREPARATION", "P", 20),
    ("EXECUTING", "P", 20),
    ("WON", "S", 25),
    ("LOSE", "F", 10),
)
WHOLESALE_SHARE = 0.15  # deals in the second pipeline (category 1)
DEAL_TYPES = ("SALE", "COMPLEX", "GOODS", "SERVICES", "SERVICE")
SOURCES = ("CALL", "EMAIL", "WEB", "ADVERTISING", "PARTNER", "RECOMMENDATION", "STORE", "OTHER")
PROBABILITIES = (None, 10, 25, 50, 75, 90)


def deal_records(dice: Dice, count: int) -> Iterator[dict[str, object]]:
    """Generate CRM deals."""
    stage_of = dice.weighted(DEAL_STAGES, [w for _, _, w in DEAL_STAGES])
    wholesale_stage_of = dice.weighted(WHOLESALE_STAGES, [w for _, _, w in WHOLESALE_STAGES])
    currency_of = dice.weighted(("RUB", "USD", "EUR"), (6, 3, 2))
    for deal_id in range(1, count + 1):
        created = created_at(dice, deal_id, count)
        # The low ids that carry fixtures stay in the default pipeline.
        category = (
            reference.DEAL_PIPELINE_ID
            if deal_id > FIXTURE_IDS and dice.chance(WHOLESALE_SHARE)
            else 0
        )
        code, semantic, _ = wholesale_stage_of() if category else stage_of()
        stage = reference.stage_id(category, code)
        moved = created + dice.below(20 * 86400)
        updated = moved + dice.below(5 * 86400)
        assigned = dice.pick(EMPLOYEES)
        title = deal_title(dice)  # drawn even when a fixture replaces it: the stream stays put
        yield {
            "id": deal_id,
            "title": fixtures.DEAL_TITLES.get(deal_id, title),
            "type_id": dice.pick(DEAL_TYPES),
            "category_id": category,
            "stage_id": stage,
            "stage_semantic_id": semantic,
            "previous_stage_id": reference.stage_id(category, "NEW") if code != "NEW" else "",
            "is_new": "Y" if code == "NEW" else "N",
            "is_recurring": "N",
            "is_return_customer": "Y" if dice.chance(0.2) else "N",
            "is_repeated_approach": "N",
            "probability": dice.pick(PROBABILITIES),
            "currency_id": currency_of(),
            "opportunity": money(dice, 1000, 500000),
            "is_manual_opportunity": dice.pick(("Y", "N")),
            "tax_value": 0.0,
            "company_id": dice.below(300, 1) if dice.chance(0.6) else 0,
            "contact_id": dice.below(900, 1) if dice.chance(0.8) else None,
            "quote_id": None,
            "mycompany_id": 1,
            "begindate": day(created),
            "closedate": day(created + 30 * 86400),
            "opened": "Y",
            "closed": "N" if semantic == "P" else "Y",
            "comments": dice.pick(words.DEAL_COMMENTS) if dice.chance(0.3) else None,
            "assigned_by_id": assigned,
            "created_by": dice.pick(EMPLOYEES),
            "updated_by": assigned,
            "moved_by": assigned,
            "created_time": stamp(created),
            "updated_time": stamp(updated),
            "moved_time": stamp(moved),
            "source_id": dice.pick(SOURCES),
            "source_description": None,
            "lead_id": None,
            "additional_info": None,
            "location_id": None,
            "originator_id": None,
            "origin_id": None,
            "last_activity_time": stamp(updated),
            "last_activity_by": assigned,
        }


INVOICE_STAGES = tuple(s.status_id for s in reference.smart_invoice_stages())


def smart_invoice_records(dice: Dice, count: int, deals: int) -> Iterator[dict[str, object]]:
    """Generate smart invoices (entityTypeId 31); about half belong to a deal."""
    stage_of = dice.weighted(INVOICE_STAGES, (30, 25, 35, 10))
    currency_of = dice.weighted(("RUB", "USD", "EUR"), (6, 3, 2))
    for invoice_id in range(1, count + 1):
        created = created_at(dice, invoice_id, count)
        stage = stage_of()
        updated = created + dice.below(10 * 86400)
        assigned = dice.pick(EMPLOYEES)
        # Most invoices keep the default title; some were renamed after what they bill.
        title = deal_title(dice) if dice.chance(0.4) else f"Invoice #{invoice_id}"
        title = fixtures.SMART_INVOICE_TITLES.get(invoice_id, title)
        yield {
            "id": invoice_id,
            "xml_id": None,
            "title": title,
            "account_number": str(invoice_id),
            "category_id": reference.SMART_INVOICE_CATEGORY_ID,
            "stage_id": stage,
            "previous_stage_id": INVOICE_STAGES[0] if stage != INVOICE_STAGES[0] else "",
            "opened": "Y",
            "opportunity": money(dice, 500, 200000),
            "is_manual_opportunity": "N",
            "tax_value": 0.0,
            "currency_id": currency_of(),
            "company_id": dice.below(300, 1) if dice.chance(0.6) else 0,
            "contact_id": dice.below(900, 1) if dice.chance(0.8) else 0,
            "mycompany_id": 1,
            "begindate": day(created),
            "closedate": day(created + 14 * 86400),
            "comments": None,
            "is_recurring": "N",
            "source_id": dice.pick(SOURCES),
            "source_description": None,
            "location_id": None,
            "assigned_by_id": assigned,
            "created_by": dice.pick(EMPLOYEES),
            "updated_by": assigned,
            "moved_by": assigned,
            "created_time": stamp(created),
            "updated_time": stamp(updated),
            "moved_time": stamp(updated),
            "last_activity_time": stamp(updated),
            "last_activity_by": assigned,
            "parent_id2": dice.below(deals + 1, 1) if deals and dice.chance(0.5) else None,
        }


def old_invoice_records(dice: Dice, count: int, deals: int) -> Iterator[dict[str, object]]:
    """Generate old-style invoices (type 5) with the crm.invoice.list field set."""
    status_of = dice.weighted(("N", "S", "P", "D"), (30, 25, 35, 10))
    currency_of = dice.weighted(("RUB", "USD", "EUR"), (6, 3, 2))
    staff = tuple(USERS.values())
    for invoice_id in range(1, count + 1):
        created = created_at(dice, invoice_id, count)
        status = status_of()
        updated = created + dice.below(10 * 86400)
        responsible = dice.pick(staff)
        paid = status == "P"
        yield {
            "id": invoice_id,
            "account_number": str(invoice_id),
            "order_topic": f"{dice.pick(words.PRODUCTS)} for {dice.pick(words.COMPANIES)}",
            "status_id": status,
            "price": money(dice, 500, 200000),
            "currency": currency_of(),
            "payed": "Y" if paid else "N",
            "person_type_id": dice.pick((1, 2)),
            "pay_system_id": dice.pick((1, 2, 3)),
            "lid": "s1",
            "is_recurring": "N",
            "xml_id": None,
            "comments": None,
            "user_description": None,
            "tax_value": 0.0,
            "created_by": responsible.id,
            "date_bill": day(created),
            "date_insert": stamp(created),
            "date_marked": None,
            "date_pay_before": day(created + 14 * 86400),
            "date_payed": stamp(updated) if paid else None,
            "date_status": stamp(updated),
            "date_update": stamp(updated),
            "emp_payed_id": responsible.id if paid else None,
            "emp_status_id": responsible.id,
            "pay_voucher_date": None,
            "pay_voucher_num": None,
            "reason_marked": None,
            "responsible_id": responsible.id,
            "responsible_login": responsible.email.split("@")[0],
            "responsible_name": responsible.name,
            "responsible_last_name": responsible.last_name,
            "responsible_second_name": "",
            "responsible_email": responsible.email,
            "responsible_work_position": responsible.position,
            "responsible_personal_photo": None,
            "uf_deal_id": dice.below(deals + 1, 1) if deals and dice.chance(0.5) else 0,
            "uf_quote_id": 0,
            "uf_company_id": dice.below(300, 1) if dice.chance(0.6) else 0,
            "uf_contact_id": dice.below(900, 1) if dice.chance(0.8) else 0,
            "uf_mycompany_id": 1,
        }


def binding_rows(
    dice: Dice, portal_id: int, config: SandboxConfig
) -> Iterator[tuple[int, int, int, int]]:
    """Bind some orders to owners, as orders created from deals and invoices are.

    Orders up to ``FIXTURE_IDS`` get the fixed bindings of :mod:`fixtures` (where the owner
    exists and its type is allowed). Of the others, about a quarter belong to a deal, a few to
    an invoice, and only to owner types the portal allows.
    """
    sizes = {2: config.deals, 31: config.invoices}
    for order_id, (owner_type, owner_id) in sorted(fixtures.BINDINGS.items()):
        if (
            order_id <= config.orders
            and owner_type in config.owner_types
            and owner_id <= sizes[owner_type]
        ):
            yield (portal_id, order_id, owner_type, owner_id)
    owners: list[tuple[int, int, float]] = []  # (type, how many exist, share of orders)
    if 2 in config.owner_types and config.deals:
        owners.append((2, config.deals, 0.25))
    if 31 in config.owner_types and config.invoices:
        owners.append((31, config.invoices, 0.05))
    if 5 in config.owner_types and config.invoices:
        owners.append((5, config.invoices, 0.03))
    for order_id in range(FIXTURE_IDS + 1, config.orders + 1):
        roll = dice.random()
        for owner_type, count, share in owners:
            if roll < share:
                yield (portal_id, order_id, owner_type, dice.below(count + 1, 1))
                break
            roll -= share


PORTAL_TABLES = (
    "sale_order",
    "crm_deal",
    "crm_smart_invoice",
    "crm_invoice",
    "crm_order_entity",
    "sale_status",
    "sale_status_lang",
    "crm_status",
)


def clear(conn: sqlite3.Connection, portal_id: int) -> None:
    """Delete every data row of one portal."""
    for table in PORTAL_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE portal_id = ?", (portal_id,))


def fill(conn: sqlite3.Connection, portal_id: int, config: SandboxConfig) -> None:
    """Insert one portal's seed rows (the tables must be empty for it)."""

    def rng(table: str) -> Dice:
        """Return the table's own deterministic generator."""
        return Dice(random.Random(f"{config.seed}:{portal_id}:{table}"))

    def insert(table: str, fields: FieldMap, records: Iterator[dict[str, object]]) -> None:
        """Write generated records into ``table``."""
        conn.executemany(schema.insert_sql(table, fields), rows_of(fields, records, portal_id))

    conn.executemany(
        schema.insert_sql("sale_status", schema.SALE_STATUS_FIELDS),
        reference.sale_status_rows(portal_id),
    )
    conn.executemany(
        "INSERT INTO sale_status_lang (portal_id, description, lid, name, status_id)"
        " VALUES (?, ?, ?, ?, ?)",
        reference.sale_status_lang_rows(portal_id),
    )
    conn.executemany(
        "INSERT INTO crm_status (portal_id, id, entity_id, status_id, name, name_init, sort,"
        " system, category_id, color, semantics, extra_semantics)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        reference.crm_status_rows(portal_id),
    )
    insert("sale_order", schema.ORDER_FIELDS, order_records(rng("orders"), config.orders))
    insert("crm_deal", schema.DEAL_ITEM_FIELDS, deal_records(rng("deals"), config.deals))
    insert(
        "crm_smart_invoice",
        schema.INVOICE_ITEM_FIELDS,
        smart_invoice_records(rng("smart_invoices"), config.invoices, config.deals),
    )
    if 5 in config.owner_types:
        insert(
            "crm_invoice",
            schema.OLD_INVOICE_FIELDS,
            old_invoice_records(rng("invoices"), config.invoices, config.deals),
        )
    conn.executemany(
        "INSERT INTO crm_order_entity (portal_id, order_id, owner_type_id, owner_id)"
        " VALUES (?, ?, ?, ?)",
        binding_rows(rng("bindings"), portal_id, config),
    )
