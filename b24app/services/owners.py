"""The CRM records an order can be bound to, one small description per owner type.

Each kind says which list method reads it, its field names, how its search filters are
spelled and where its card opens in the Bitrix24 slider. Adding an owner type is adding
one entry to :data:`OWNER_KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from b24app.services.catalog import DEAL, OLD_INVOICE, SMART_INVOICE, Catalog

Command = tuple[str, Mapping[str, Any] | None]


@dataclass(frozen=True)
class OwnerKind:
    """How one owner type is listed, searched and shown."""

    type_id: int
    method: str
    base_params: Mapping[str, Any]
    rows_key: str | None
    id_field: str
    title_field: str
    amount_field: str
    currency_field: str
    stage_field: str
    number_field: str | None
    # Slider path template for BX24.openPath, or None when Bitrix24 does not allow one.
    path_template: str | None

    @property
    def select(self) -> list[str]:
        """Return the fields a picker row needs."""
        fields = [
            self.id_field,
            self.title_field,
            self.amount_field,
            self.currency_field,
            self.stage_field,
        ]
        if self.number_field:
            fields.append(self.number_field)
        return fields

    def list_command(self, filter_: Mapping[str, Any], *, newest_first: bool = True) -> Command:
        """Return a list call for rows matching ``filter_``, 50 a page, without counting."""
        params = {
            **self.base_params,
            "select": self.select,
            "filter": dict(filter_),
            "order": {self.id_field: "DESC" if newest_first else "ASC"},
            "start": -1,
        }
        return self.method, params

    def by_id(self, owner_id: int | str) -> Command:
        """Return a call reading one owner (``owner_id`` may be a ``$result`` reference)."""
        return self.list_command({f"={self.id_field}": owner_id})

    def search_filter(self, text: str) -> dict[str, Any]:
        """Return the filter for a title search."""
        return {f"%{self.title_field}": text}

    def cursor_filter(self, before_id: int) -> dict[str, Any]:
        """Return the filter for the rows after a cursor (newest first)."""
        return {f"<{self.id_field}": before_id}

    def path(self, owner_id: int) -> str | None:
        """Return the card's slider path."""
        return self.path_template.format(id=owner_id) if self.path_template else None

    def row(self, raw: Mapping[str, Any], catalog: Catalog) -> dict[str, Any]:
        """Turn one list row into the API's owner row."""
        owner_id = _int(raw.get(self.id_field))
        stage = str(raw.get(self.stage_field) or "")
        number = raw.get(self.number_field) if self.number_field else None
        return {
            "ownerTypeId": self.type_id,
            "id": owner_id,
            "title": str(raw.get(self.title_field) or ""),
            "accountNumber": str(number) if number not in (None, "") else None,
            "amount": _float(raw.get(self.amount_field)),
            "currency": str(raw.get(self.currency_field) or ""),
            "stageId": stage,
            "stageName": catalog.stage_name(self.type_id, stage) if stage else "",
            "path": self.path(owner_id),
        }


OWNER_KINDS: dict[int, OwnerKind] = {
    DEAL: OwnerKind(
        type_id=DEAL,
        method="crm.item.list",
        base_params={"entityTypeId": DEAL},
        rows_key="items",
        id_field="id",
        title_field="title",
        amount_field="opportunity",
        currency_field="currencyId",
        stage_field="stageId",
        number_field=None,
        path_template="/crm/deal/details/{id}/",
    ),
    SMART_INVOICE: OwnerKind(
        type_id=SMART_INVOICE,
        method="crm.item.list",
        base_params={"entityTypeId": SMART_INVOICE},
        rows_key="items",
        id_field="id",
        title_field="title",
        amount_field="opportunity",
        currency_field="currencyId",
        stage_field="stageId",
        number_field="accountNumber",
        path_template="/crm/type/31/details/{id}/",
    ),
    # Old invoices (deprecated, offered only where the portal still has them): no slider path.
    OLD_INVOICE: OwnerKind(
        type_id=OLD_INVOICE,
        method="crm.invoice.list",
        base_params={},
        rows_key=None,
        id_field="ID",
        title_field="ORDER_TOPIC",
        amount_field="PRICE",
        currency_field="CURRENCY",
        stage_field="STATUS_ID",
        number_field="ACCOUNT_NUMBER",
        path_template=None,
    ),
}


def owner_kind(owner_type_id: int) -> OwnerKind | None:
    """Return the kind the app knows for an owner type, or None."""
    return OWNER_KINDS.get(owner_type_id)


def _int(value: Any) -> int:
    """Read an id Bitrix24 may send as a number or a string."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    """Read an amount Bitrix24 may send as a number or a string."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
