"""The portal's history of bind, rebind and unbind attempts, as the app recorded them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from b24app.extensions import SQLITE_IMMEDIATE, db, statement_engine
from b24app.models import BindingAction, BindingOutcome, BindingRecord
from b24app.services.owners import OWNER_KINDS

if TYPE_CHECKING:
    from b24app.services.bindings import Triple

HISTORY_PAGE = 50
# Long titles are kept whole in Bitrix24; the history needs enough to recognise one.
TITLE_LIMIT = 2000


@dataclass(frozen=True)
class Actor:
    """Who acts: the portal and the Bitrix24 user whose token the app uses."""

    portal_id: int
    user_id: int
    user_name: str


def _clip(title: str | None) -> str | None:
    """Keep a title to a size the history can hold."""
    return None if title is None else title[:TITLE_LIMIT]


def record_attempt(
    actor: Actor,
    action: BindingAction,
    triple: Triple,
    outcome: BindingOutcome,
    error_code: str | None,
    *,
    owner_title: str | None = None,
    order_number: str | None = None,
    replaced: Triple | None = None,
    replaced_title: str | None = None,
    undo_of: int | None = None,
) -> int:
    """Store one attempt (and link an undo to what it undid); return its id.

    A plain attempt is one INSERT ... RETURNING, committed on its own; an undo also marks
    the attempt it undid, in the same transaction.
    """
    row = {
        "portal_id": actor.portal_id,
        "user_id": actor.user_id,
        "user_name": actor.user_name[:255],
        "order_id": triple.order_id,
        "owner_type_id": triple.owner_type_id,
        "owner_id": triple.owner_id,
        "action": action.value,
        "outcome": outcome.value,
        "error_code": error_code,
        "owner_title": _clip(owner_title),
        "order_number": order_number[:100] if order_number else None,
        "replaced_owner_type_id": replaced.owner_type_id if replaced else None,
        "replaced_owner_id": replaced.owner_id if replaced else None,
        "replaced_owner_title": _clip(replaced_title),
        "undo_of_id": undo_of,
    }
    links = undo_of is not None and outcome is not BindingOutcome.FAILED
    engine = db.engine if links else statement_engine()
    with engine.connect() as conn, conn.execution_options(**{SQLITE_IMMEDIATE: True}).begin():
        record_id: int = conn.execute(_INSERT_RECORD, row).scalar_one()
        if links:
            conn.execute(
                update(_RECORDS)
                .where(_RECORDS.c.id == undo_of, _RECORDS.c.portal_id == actor.portal_id)
                .values(undone_by_id=record_id)
            )
    return record_id


_RECORDS = BindingRecord.__table__
_INSERT_RECORD = insert(_RECORDS).returning(_RECORDS.c.id)


def _newest(column: Any, *conditions: Any) -> str | None:
    """Return the newest non-empty ``column`` of the attempts matching ``conditions``."""
    with Session(statement_engine()) as session:
        value: str | None = session.scalars(
            select(column)
            .where(*conditions, column.is_not(None))
            .order_by(BindingRecord.id.desc())
            .limit(1)
        ).first()
    return value


def last_known_title(portal_id: int, owner_type_id: int, owner_id: int) -> str | None:
    """Return the newest title the history saw for an owner (no Bitrix24 call)."""
    return _newest(
        BindingRecord.owner_title,
        BindingRecord.portal_id == portal_id,
        BindingRecord.owner_type_id == owner_type_id,
        BindingRecord.owner_id == owner_id,
    )


def last_known_order_number(portal_id: int, order_id: int) -> str | None:
    """Return the order's number as the history last saw it (no Bitrix24 call)."""
    return _newest(
        BindingRecord.order_number,
        BindingRecord.portal_id == portal_id,
        BindingRecord.order_id == order_id,
    )


def find_record(portal_id: int, record_id: int) -> BindingRecord | None:
    """Return one of the portal's attempts."""
    # Read and let go of the connection: an undo calls Bitrix24 next.
    with Session(db.engine, expire_on_commit=False) as session:
        record = session.get(BindingRecord, record_id)
    if record is None or record.portal_id != portal_id:
        return None
    return record


def is_undoable(record: BindingRecord) -> bool:
    """Tell whether undoing the attempt would change something."""
    return (
        record.outcome in {BindingOutcome.BOUND, BindingOutcome.REPLACED, BindingOutcome.UNBOUND}
        and record.undone_by_id is None
    )


def _owner(type_id: int | None, owner_id: int | None, title: str | None) -> dict[str, Any] | None:
    """Return an owner reference for a history entry."""
    if type_id is None or owner_id is None:
        return None
    kind = OWNER_KINDS.get(type_id)
    return {
        "ownerTypeId": type_id,
        "ownerId": owner_id,
        "title": title,
        "path": kind.path(owner_id) if kind else None,
    }


def entry_view(record: BindingRecord, *, can_undo: bool, reason: str | None) -> dict[str, Any]:
    """Return the API's history entry."""
    replaced = None
    if record.action == BindingAction.BIND:
        replaced = _owner(
            record.replaced_owner_type_id, record.replaced_owner_id, record.replaced_owner_title
        )
    return {
        "id": record.id,
        "createdAt": record.created_at.isoformat(),
        "user": {"id": record.user_id, "name": record.user_name},
        "action": record.action,
        "orderId": record.order_id,
        "orderAccountNumber": record.order_number,
        "owner": _owner(record.owner_type_id, record.owner_id, record.owner_title),
        "replaced": replaced,
        "outcome": record.outcome,
        "errorCode": record.error_code,
        "reason": reason,
        "undoOf": record.undo_of_id,
        "undoneBy": record.undone_by_id,
        "jobId": record.job_id,
        "undoable": can_undo and is_undoable(record),
    }


def history_page(portal_id: int, cursor: int | None) -> tuple[list[BindingRecord], int | None]:
    """Return one page of the portal's attempts, newest first, and the next cursor."""
    query = select(BindingRecord).where(BindingRecord.portal_id == portal_id)
    if cursor is not None:
        query = query.where(BindingRecord.id < cursor)
    rows = list(db.session.scalars(query.order_by(BindingRecord.id.desc()).limit(HISTORY_PAGE + 1)))
    more = len(rows) > HISTORY_PAGE
    rows = rows[:HISTORY_PAGE]
    return rows, rows[-1].id if more and rows else None
