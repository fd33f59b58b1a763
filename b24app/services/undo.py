"""Undoing an attempt from the history: restore what it replaced, unbind, or bind again.

An undo acts only when the order is still as the attempt left it; otherwise it refuses
(409 ``undo_conflict``) and changes nothing. It is itself an attempt, linked both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from b24app.bitrix.client import TokenSource
from b24app.errors import Conflict, NotFound
from b24app.models import BindingAction, BindingOutcome
from b24app.services.bindings import Triple, bind, read_current, unbind
from b24app.services.history import Actor, find_record, is_undoable


@dataclass(frozen=True)
class UndoResult:
    """What the undo did, in the shape of the bind or unbind answer it made."""

    answer: dict[str, Any]
    history_id: int


def undo(source: TokenSource, actor: Actor, lang: str, record_id: int) -> UndoResult:
    """Revert one successful attempt of the portal's history."""
    record = find_record(actor.portal_id, record_id)
    if record is None:
        raise NotFound("history_not_found")
    if not is_undoable(record):
        raise Conflict("not_undoable")
    left = Triple(record.order_id, record.owner_type_id, record.owner_id)
    if record.action == BindingAction.BIND:
        if record.replaced_owner_type_id is None or record.replaced_owner_id is None:
            # Nothing was replaced: undoing is removing exactly this binding, which
            # deleteByFilter refuses by itself when the owner changed since.
            try:
                removed = unbind(source, actor, left, undo_of=record_id)
            except Conflict as exc:
                raise Conflict("undo_conflict") from exc
            answer = {"removed": removed.removed, "historyId": removed.history_id}
            return UndoResult(answer, removed.history_id)
        if read_current(source, record.order_id) != left:
            raise Conflict("undo_conflict")
        restore = Triple(record.order_id, record.replaced_owner_type_id, record.replaced_owner_id)
    else:
        if record.outcome != BindingOutcome.UNBOUND or read_current(source, record.order_id):
            raise Conflict("undo_conflict")
        restore = left
    # The order is as the attempt left it (checked above): bound to ``left`` after a bind,
    # unbound after an unbind.
    seen = left if record.action == BindingAction.BIND else None
    result = bind(source, actor, lang, restore, seen=seen, undo_of=record_id)
    answer = {
        "binding": result.binding,
        "replaced": result.replaced,
        "outcome": result.outcome,
        "historyId": result.history_id,
    }
    return UndoResult(answer, result.history_id)
