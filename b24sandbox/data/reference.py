"""The portal's reference books: store order and delivery statuses, CRM stages.

They are the same on every portal and every seed (a fresh Bitrix24 has its default set;
``S1`` stands for a status an administrator added). The seeded orders, deals and smart
invoices use only ids defined here, so ``sale.status.list`` / ``sale.statusLang.list`` and
``crm.status.list`` name every status and stage the data carries.

Sources: the default status table of ``api-reference/sale/status/index.md`` (N, S, P, D, F
for orders; DN, DD, DF for deliveries), the ``sale.status.list`` and ``sale.statusLang.list``
examples (``N``: ``#BEEDF1``, sort 10, "Accepted, awaiting payment"), and the
``crm.status.list`` example for the deal stages (ids 101..115, names, colors, semantics).
Smart-invoice stage names and colors are the sandbox's own: the docs print none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ORDER_TYPE, DELIVERY_TYPE = "O", "D"


@dataclass(frozen=True)
class SaleStatus:
    """One ``sale_status`` row with its names in English and Russian."""

    id: str
    type: str
    sort: int
    color: str
    names: dict[str, tuple[str, str]]  # lid -> (name, description)
    notify: str = "Y"
    xml_id: str | None = None


SALE_STATUSES = (
    SaleStatus(
        "N",
        ORDER_TYPE,
        10,
        "#BEEDF1",
        {
            "en": (
                "Accepted, awaiting payment",
                "Order accepted, but not yet processed (for example, the order has just been"
                " created or payment is awaited)",
            ),
            "ru": (
                "Принят, ожидается оплата",
                "Заказ принят, но пока не обрабатывается (например, заказ только что создан"
                " или ожидается оплата заказа)",
            ),
        },
    ),
    SaleStatus(
        "P",
        ORDER_TYPE,
        20,
        "#F3F7C2",
        {
            "en": ("Paid, preparing for shipment", "Order paid, being prepared for shipment"),
            "ru": ("Оплачен, формируется к отправке", "Заказ оплачен, формируется к отправке"),
        },
    ),
    SaleStatus(
        "S",
        ORDER_TYPE,
        30,
        "#D9E8F7",
        {
            "en": ("Shipped", "Order handed over to the delivery service"),
            "ru": ("Отгружен", "Заказ передан в службу доставки"),
        },
        notify="N",
    ),
    SaleStatus(
        "S1",
        ORDER_TYPE,
        40,
        "#FFD58C",
        {
            "en": ("Awaiting pickup", ""),
            "ru": ("Ожидает самовывоза", ""),
        },
        notify="N",
        xml_id="bx_5f3a2c91d7e04",
    ),
    SaleStatus(
        "F",
        ORDER_TYPE,
        100,
        "#DFF0D8",
        {
            "en": ("Completed", "Order delivered and paid"),
            "ru": ("Выполнен", "Заказ доставлен и оплачен"),
        },
    ),
    SaleStatus(
        "D",
        ORDER_TYPE,
        110,
        "#F5C6CB",
        {
            "en": ("Canceled", "Order canceled"),
            "ru": ("Отменён", "Заказ отменён"),
        },
    ),
    SaleStatus(
        "DN",
        DELIVERY_TYPE,
        10,
        "#BEEDF1",
        {
            "en": ("Awaiting processing", "Shipment accepted, awaiting processing"),
            "ru": ("Ожидает обработки", "Отгрузка принята, ожидает обработки"),
        },
    ),
    SaleStatus(
        "DD",
        DELIVERY_TYPE,
        20,
        "#F5C6CB",
        {
            "en": ("Canceled", "Shipment canceled"),
            "ru": ("Отменена", "Отгрузка отменена"),
        },
    ),
    SaleStatus(
        "DF",
        DELIVERY_TYPE,
        30,
        "#DFF0D8",
        {
            "en": ("Shipped", "Shipment handed over to the delivery service"),
            "ru": ("Отгружена", "Отгрузка передана в службу доставки"),
        },
    ),
)

# The order statuses the seeded orders carry, with the seeder's weights.
ORDER_STATUS_WEIGHTS = (("N", 30), ("P", 25), ("F", 35), ("S1", 10))
STATUS_LANGS = ("en", "ru")


@dataclass(frozen=True)
class CrmStage:
    """One ``crm.status.list`` row of a stage reference book."""

    id: int
    entity_id: str
    status_id: str
    name: str
    sort: int
    system: str
    category_id: int | None  # None: printed as null (the default deal pipeline)
    color: str
    semantics: str | None  # None (in progress), "S" or "F"
    extra_semantics: str | None  # EXTRA.SEMANTICS; None: the row has no EXTRA


# The default deal pipeline, exactly as the crm.status.list example prints it.
_DEAL_STAGE_SET = (
    # status, name, sort, system, color, semantics, extra
    ("NEW", "New", 10, "Y", "#39A8EF", None, "process"),
    ("PREPARATION", "Document preparation", 20, "N", "#2FC6F6", None, "process"),
    ("PREPAYMENT_INVOICE", "Prepayment invoice", 30, "N", "#55D0E0", None, "process"),
    ("EXECUTING", "In progress", 40, "N", "#47E4C2", None, "process"),
    ("FINAL_INVOICE", "Final invoice", 50, "N", "#FFA900", None, "process"),
    ("WON", "Deal successful", 60, "Y", "#7BD500", "S", "success"),
    ("LOSE", "Deal failed", 70, "Y", "#FF5752", "F", "failure"),
    ("APOLOGY", "Failure reason analysis", 80, "N", "#FF5752", "F", "apology"),
)

# A second deal pipeline (category 1): ENTITY_ID DEAL_STAGE_1, stage ids prefixed "C1:".
DEAL_PIPELINE_ID = 1
DEAL_PIPELINE_NAME = "Wholesale"
_WHOLESALE_STAGE_SET = (
    ("NEW", "New", 10, "Y", "#39A8EF", None, "process"),
    ("PREPARATION", "Price list sent", 20, "N", "#2FC6F6", None, "process"),
    ("EXECUTING", "Contract negotiation", 30, "N", "#47E4C2", None, "process"),
    ("WON", "Deal successful", 40, "Y", "#7BD500", "S", "success"),
    ("LOSE", "Deal failed", 50, "Y", "#FF5752", "F", "failure"),
)

# Smart invoices: category 1, ENTITY_ID SMART_INVOICE_STAGE_1, stage ids "DT31_1:<code>".
SMART_INVOICE_CATEGORY_ID = 1
_SMART_INVOICE_STAGE_SET = (
    ("N", "New", 10, "Y", "#39A8EF", None, None),
    ("S", "Sent to client", 20, "N", "#2FC6F6", None, None),
    ("P", "Paid", 30, "Y", "#7BD500", "S", None),
    ("D", "Declined", 40, "Y", "#FF5752", "F", None),
)


def stage_id(category_id: int, code: str) -> str:
    """Return a deal's STAGE_ID: ``NEW`` in the default pipeline, ``C1:NEW`` in category 1."""
    return code if category_id == 0 else f"C{category_id}:{code}"


def smart_invoice_stage_id(code: str, category_id: int = SMART_INVOICE_CATEGORY_ID) -> str:
    """Return a smart invoice's stageId, e.g. ``DT31_1:N``."""
    return f"DT31_{category_id}:{code}"


def _build_stages() -> tuple[CrmStage, ...]:
    """Number the stage rows as a portal would (odd ids, in creation order)."""
    books: list[tuple[str, int | None, list[tuple[Any, ...]]]] = [
        ("DEAL_STAGE", None, [(stage_id(0, s), *rest) for s, *rest in _DEAL_STAGE_SET]),
        (
            f"SMART_INVOICE_STAGE_{SMART_INVOICE_CATEGORY_ID}",
            SMART_INVOICE_CATEGORY_ID,
            [(smart_invoice_stage_id(s), *rest) for s, *rest in _SMART_INVOICE_STAGE_SET],
        ),
        (
            f"DEAL_STAGE_{DEAL_PIPELINE_ID}",
            DEAL_PIPELINE_ID,
            [(stage_id(DEAL_PIPELINE_ID, s), *rest) for s, *rest in _WHOLESALE_STAGE_SET],
        ),
    ]
    rows: list[CrmStage] = []
    next_id = 101
    for entity_id, category_id, stages in books:
        for status, name, sort, system, color, semantics, extra in stages:
            rows.append(
                CrmStage(
                    next_id,
                    entity_id,
                    status,
                    name,
                    sort,
                    system,
                    category_id,
                    color,
                    semantics,
                    extra,
                )
            )
            next_id += 2
    return tuple(rows)


CRM_STAGES = _build_stages()


def deal_stages(category_id: int) -> list[CrmStage]:
    """Return the stages of one deal pipeline, in SORT order."""
    entity = "DEAL_STAGE" if category_id == 0 else f"DEAL_STAGE_{category_id}"
    return [s for s in CRM_STAGES if s.entity_id == entity]


def smart_invoice_stages() -> list[CrmStage]:
    """Return the smart-invoice stages, in SORT order."""
    entity = f"SMART_INVOICE_STAGE_{SMART_INVOICE_CATEGORY_ID}"
    return [s for s in CRM_STAGES if s.entity_id == entity]


def sale_status_rows(portal_id: int) -> list[tuple[object, ...]]:
    """Rows of ``sale_status`` (column order of schema.SALE_STATUS_FIELDS)."""
    return [(portal_id, s.color, s.id, s.notify, s.sort, s.type, s.xml_id) for s in SALE_STATUSES]


def sale_status_lang_rows(portal_id: int) -> list[tuple[object, ...]]:
    """Rows of ``sale_status_lang`` (column order of schema.SALE_STATUS_LANG_FIELDS)."""
    return [
        (portal_id, s.names[lid][1], lid, s.names[lid][0], s.id)
        for s in SALE_STATUSES
        for lid in STATUS_LANGS
        if lid in s.names
    ]


def crm_status_rows(portal_id: int) -> list[tuple[object, ...]]:
    """Rows of ``crm_status`` (schema.CRM_STATUS_COLUMNS)."""
    return [
        (
            portal_id,
            s.id,
            s.entity_id,
            s.status_id,
            s.name,
            s.name if s.system == "Y" else "",  # NAME_INIT: the system stages' original name
            s.sort,
            s.system,
            s.category_id,
            s.color,
            s.semantics,
            s.extra_semantics,
        )
        for s in CRM_STAGES
    ]
