"""A portal's reference names: owner types, order status names, CRM stage names.

Pickers show names, not codes, so they need ``crm.enum.getorderownertypes``,
``sale.statusLang.list`` and ``crm.status.list``. Those answers change rarely: they travel in
the batch that opens the app (or in a picker's own batch when missing) and are kept per
portal and language in the database, where every worker finds them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from b24app.bitrix.client import BatchResult, TokenSource, extract_rows
from b24app.bitrix.errors import BitrixError
from b24app.errors import from_bitrix
from b24app.extensions import db, statement_engine
from b24app.models import PortalCatalog, utcnow
from b24app.services import prefetch
from b24app.services.gateway import gateway
from b24app.services.tokens import write_session

log = logging.getLogger(__name__)

CATALOG_TTL = timedelta(minutes=30)
# Owner types with a CRM card the app knows how to show.
DEAL, OLD_INVOICE, SMART_INVOICE = 2, 5, 31

Command = tuple[str, Mapping[str, Any] | None]


@dataclass(frozen=True)
class Catalog:
    """The names one portal uses, in one language."""

    owner_types: list[dict[str, Any]] = field(default_factory=list)
    order_statuses: dict[str, str] = field(default_factory=dict)
    # owner type id -> stage or status id -> name
    stages: dict[int, dict[str, str]] = field(default_factory=dict)

    def offers(self, owner_type_id: int) -> bool:
        """Tell whether orders may be bound to this owner type on the portal."""
        return any(t["id"] == owner_type_id for t in self.owner_types)

    def owner_type_name(self, owner_type_id: int) -> str:
        """Return the portal's name for an owner type ("Deal"), or "" when unknown."""
        for t in self.owner_types:
            if t["id"] == owner_type_id:
                return str(t["name"])
        return ""

    def status_name(self, status_id: str) -> str:
        """Return an order status's name, or its id when the name is unknown."""
        return self.order_statuses.get(status_id, status_id)

    def stage_name(self, owner_type_id: int, stage_id: str) -> str:
        """Return a deal or invoice stage's name, or its id when the name is unknown."""
        return self.stages.get(owner_type_id, {}).get(stage_id, stage_id)

    def to_json(self) -> str:
        """Serialise for the database."""
        return json.dumps(
            {
                "owner_types": self.owner_types,
                "order_statuses": self.order_statuses,
                "stages": {str(k): v for k, v in self.stages.items()},
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Catalog:
        """Read what :meth:`to_json` wrote."""
        data = json.loads(text)
        return cls(
            owner_types=list(data.get("owner_types") or []),
            order_statuses=dict(data.get("order_statuses") or {}),
            stages={int(k): dict(v) for k, v in (data.get("stages") or {}).items()},
        )


def catalog_commands(lang: str) -> dict[str, Command]:
    """Return the batch commands that fetch a catalog (keys start with ``catalog_``)."""
    return {
        "catalog_owner_types": ("crm.enum.getorderownertypes", None),
        "catalog_statuses": (
            "sale.statusLang.list",
            {"select": ["statusId", "lid", "name"], "filter": {"lid": lang}},
        ),
        "catalog_stages": ("crm.status.list", {"order": {"SORT": "ASC"}}),
        # Names come per language without their type: keep the order statuses (type O).
        "catalog_status_types": (
            "sale.status.list",
            {"select": ["id", "type"], "filter": {"type": "O"}},
        ),
    }


def _owner_types(raw: Any) -> list[dict[str, Any]]:
    """Normalise ``crm.enum.getorderownertypes`` rows."""
    rows = raw.values() if isinstance(raw, Mapping) else raw if isinstance(raw, list) else []
    return [
        {
            "id": int(row["id"]),
            "name": str(row.get("name") or ""),
            "code": str(row.get("code") or ""),
        }
        for row in rows
        if isinstance(row, Mapping) and str(row.get("id", "")).isdigit()
    ]


def _stage_owner(entity_id: str) -> int | None:
    """Map a ``crm.status.list`` ENTITY_ID to the owner type whose stages it holds."""
    if entity_id == "DEAL_STAGE" or entity_id.startswith("DEAL_STAGE_"):
        return DEAL
    if entity_id.startswith("SMART_INVOICE_STAGE_"):
        return SMART_INVOICE
    if entity_id == "INVOICE_STATUS":
        return OLD_INVOICE
    return None


def catalog_from_batch(batch: BatchResult) -> Catalog | None:
    """Build a catalog from the batch answers; None when a part failed (not cached then)."""
    keys = ("catalog_owner_types", "catalog_statuses", "catalog_stages")
    if any(key in batch.errors or key not in batch.results for key in keys):
        failed = {k: batch.errors[k].code for k in keys if k in batch.errors}
        log.info("catalog incomplete: %s", failed or "missing answers")
        return None
    try:
        order_types = None
        if "catalog_status_types" in batch.results:
            order_types = {
                str(row.get("id"))
                for row in extract_rows(batch.results["catalog_status_types"])
                if str(row.get("type", "O")) == "O"
            }
        statuses = {
            str(row.get("statusId")): str(row.get("name") or row.get("statusId"))
            for row in extract_rows(batch.results["catalog_statuses"])
            if order_types is None or str(row.get("statusId")) in order_types
        }
        stages: dict[int, dict[str, str]] = {}
        for row in extract_rows(batch.results["catalog_stages"]):
            owner = _stage_owner(str(row.get("ENTITY_ID") or ""))
            if owner is not None:
                stages.setdefault(owner, {})[str(row.get("STATUS_ID"))] = str(row.get("NAME") or "")
    except BitrixError as exc:
        log.warning("catalog answers have an unexpected shape: %r", exc)
        return None
    return Catalog(
        owner_types=_owner_types(batch.results["catalog_owner_types"]),
        order_statuses=statuses,
        stages=stages,
    )


def stored_catalog(portal_id: int, lang: str) -> Catalog | None:
    """Return the portal's fresh catalog in ``lang``, or None.

    In an API request the session check has read it already (:mod:`prefetch`).
    """
    read, row = prefetch.catalog_row(portal_id, lang)
    if not read:
        # A short session of its own: the caller goes on to call Bitrix24, and must not
        # hold a pooled connection meanwhile (see ``b24app.extensions.detached``).
        with Session(statement_engine()) as session:
            row = session.scalars(
                select(PortalCatalog).where(
                    PortalCatalog.portal_id == portal_id, PortalCatalog.lang == lang
                )
            ).one_or_none()
    if row is None or row.fetched_at < utcnow() - CATALOG_TTL:
        return None
    try:
        return Catalog.from_json(row.data)
    except (ValueError, TypeError, KeyError):
        return None


def store_catalog(portal_id: int, lang: str, catalog: Catalog) -> None:
    """Save (or replace) the portal's catalog in ``lang``."""
    dialect = db.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = {
        "portal_id": portal_id,
        "lang": lang,
        "data": catalog.to_json(),
        "fetched_at": utcnow(),
    }
    statement = insert(PortalCatalog).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["portal_id", "lang"],
        set_={"data": statement.excluded.data, "fetched_at": statement.excluded.fetched_at},
    )
    prefetch.forget()
    with write_session(db.engine) as session:
        session.execute(statement)


def forget_catalogs(portal_id: int) -> None:
    """Drop the portal's catalogs (install, uninstall: the portal's setup may differ now)."""
    prefetch.forget()
    with write_session(db.engine) as session:
        session.execute(delete(PortalCatalog).where(PortalCatalog.portal_id == portal_id))


def adopt_catalog(portal_id: int, lang: str, batch: BatchResult) -> Catalog | None:
    """Store the catalog a batch fetched, if complete, and return it."""
    catalog = catalog_from_batch(batch)
    if catalog is not None:
        store_catalog(portal_id, lang, catalog)
    return catalog


def catalog_for(portal_id: int, lang: str, source: TokenSource) -> Catalog:
    """Return the portal's catalog, fetching it with the user's token when not stored."""
    found = stored_catalog(portal_id, lang)
    if found is not None:
        return found
    try:
        batch = gateway().rest.batch(source, catalog_commands(lang))
    except BitrixError as exc:
        raise from_bitrix(exc) from exc
    fetched = adopt_catalog(portal_id, lang, batch)
    if fetched is not None:
        return fetched
    if "catalog_owner_types" in batch.errors:
        raise from_bitrix(batch.errors["catalog_owner_types"])
    # Names are a nicety: without them the screens show codes, but still work.
    return Catalog(owner_types=_owner_types(batch.results.get("catalog_owner_types")))
