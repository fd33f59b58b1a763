"""Binding orders to deals and invoices with the acting user's own token.

A bind is one ``batch``: it reads the order's current binding (and names that owner), reads
the new owner, then runs ``crm.orderentity.add``. The commands run in order, so the answer
says what the add replaced. An unbind is one ``crm.orderentity.deleteByFilter`` naming the
exact triple the user saw: when the order's owner changed meanwhile, nothing matches and
nothing is removed. Every attempt is recorded in the portal's history.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from b24app.bitrix import errors as b24
from b24app.bitrix.client import PAGE_SIZE, BatchResult, TokenSource
from b24app.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unavailable,
    from_bitrix,
)
from b24app.models import BindingAction, BindingOutcome
from b24app.services.catalog import Catalog, stored_catalog
from b24app.services.gateway import gateway
from b24app.services.history import (
    Actor,
    last_known_order_number,
    last_known_title,
    record_attempt,
)
from b24app.services.owners import OWNER_KINDS
from b24app.services.pickers import (
    cursor_id,
    offered_kind,
    order_list_command,
    order_row,
    rows_of,
    run_with_catalog,
)

log = logging.getLogger(__name__)

Command = tuple[str, Mapping[str, Any] | None]
CURRENT = "current"
_ENTITY_KEY = "orderEntity"


@dataclass(frozen=True)
class Triple:
    """One binding: an order and its owner."""

    order_id: int
    owner_type_id: int
    owner_id: int

    def fields(self) -> dict[str, int]:
        """Return the triple as ``crm.orderentity.*`` fields."""
        return {
            "orderId": self.order_id,
            "ownerTypeId": self.owner_type_id,
            "ownerId": self.owner_id,
        }


@dataclass(frozen=True)
class BindResult:
    """What a bind did: the binding now, the one it replaced, the outcome, its history id."""

    binding: dict[str, Any]
    replaced: dict[str, Any] | None
    outcome: str
    history_id: int


@dataclass(frozen=True)
class UnbindResult:
    """What an unbind removed and its history id."""

    removed: dict[str, Any]
    history_id: int


def binding_view(triple: Triple, owner: dict[str, Any] | None) -> dict[str, Any]:
    """Return the API's binding object."""
    return {
        "orderId": triple.order_id,
        "ownerTypeId": triple.owner_type_id,
        "ownerId": triple.owner_id,
        "owner": owner,
    }


def current_command(order_id: int) -> Command:
    """Return the read of an order's binding (an order has at most one)."""
    return (
        "crm.orderentity.list",
        {"select": ["orderId", "ownerTypeId", "ownerId"], "filter": {"=orderId": order_id}},
    )


def owner_of_current_commands(catalog: Catalog, current_key: str) -> dict[str, Command]:
    """Return reads of the owner a ``current`` command found, one per offered owner type.

    The owner type is only known once the binding is read, so each offered type is asked
    for the id found (``$result`` reference); the row whose type matches is the owner.
    """
    reference = f"$result[{current_key}][{_ENTITY_KEY}][0][ownerId]"
    commands: dict[str, Command] = {}
    for type_id, kind in OWNER_KINDS.items():
        if catalog.offers(type_id):
            commands[f"{current_key}_owner_{type_id}"] = kind.by_id(reference)
    return commands


def triple_from(rows: list[dict[str, Any]], order_id: int) -> Triple | None:
    """Return the order's binding from ``crm.orderentity.list`` rows, or None."""
    for row in rows:
        try:
            found = Triple(int(row["orderId"]), int(row["ownerTypeId"]), int(row["ownerId"]))
        except (KeyError, TypeError, ValueError):
            continue
        if found.order_id == order_id:
            return found
    return None


def owner_row_from(
    batch: BatchResult, key: str, owner_type_id: int, owner_id: int, catalog: Catalog
) -> dict[str, Any] | None:
    """Return the owner row a read in ``batch`` found for this id, or None."""
    kind = OWNER_KINDS.get(owner_type_id)
    if kind is None or key not in batch.results:
        return None
    try:
        rows = rows_of(batch, key, kind.rows_key)
    except AppError:
        return None
    for raw in rows:
        row = kind.row(raw, catalog)
        if row["id"] == owner_id:
            return row
    return None


def _current_with_owner(
    batch: BatchResult, order_id: int, catalog: Catalog, key: str = CURRENT
) -> tuple[Triple | None, dict[str, Any] | None]:
    """Read the order's binding and its owner row from a batch."""
    triple = triple_from(rows_of(batch, key, _ENTITY_KEY), order_id)
    if triple is None:
        return None, None
    owner = owner_row_from(
        batch, f"{key}_owner_{triple.owner_type_id}", triple.owner_type_id, triple.owner_id, catalog
    )
    return triple, owner


def order_binding(source: TokenSource, portal_id: int, lang: str, order_id: int) -> dict[str, Any]:
    """Return the order (or None) and its binding (or None), in one batch."""
    stored = stored_catalog(portal_id, lang)
    commands: dict[str, Command] = {
        "order": order_list_command({"=id": order_id}),
        CURRENT: current_command(order_id),
        **owner_of_current_commands(stored or Catalog(), CURRENT),
    }
    batch, catalog = run_with_catalog(source, portal_id, lang, commands, stored)
    orders = [order_row(r, catalog) for r in rows_of(batch, "order", "orders")]
    order = next((o for o in orders if o["id"] == order_id), None)
    triple, owner = _current_with_owner(batch, order_id, catalog)
    return {"order": order, "binding": binding_view(triple, owner) if triple else None}


def owner_orders(
    source: TokenSource,
    portal_id: int,
    lang: str,
    owner_type_id: int,
    owner_id: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Return the owner and one page of the orders bound to it, newest order first."""
    kind = OWNER_KINDS.get(owner_type_id)
    if kind is None:
        raise BadRequest("owner_type_not_offered")
    before = cursor_id(cursor)
    filter_: dict[str, Any] = {"=ownerTypeId": owner_type_id, "=ownerId": owner_id}
    if before is not None:
        filter_["<orderId"] = before
    listing: dict[str, Command] = {
        "bound": (
            "crm.orderentity.list",
            {
                "select": ["orderId", "ownerTypeId", "ownerId"],
                "filter": filter_,
                "order": {"orderId": "desc"},
                "start": -1,
            },
        ),
        "owner": kind.by_id(owner_id),
    }
    batch, catalog = run_with_catalog(
        source, portal_id, lang, listing, stored_catalog(portal_id, lang)
    )
    offered_kind(catalog, owner_type_id)
    owner = owner_row_from(batch, "owner", owner_type_id, owner_id, catalog)
    bound = rows_of(batch, "bound", _ENTITY_KEY)
    triples = [t for t in (triple_from([row], int(row.get("orderId") or 0)) for row in bound) if t]
    if not triples:
        return {"owner": owner, "items": [], "nextCursor": None}
    ids = [t.order_id for t in triples]
    # The names came with the first batch (or are stored): this one only reads the orders.
    orders_batch, _ = run_with_catalog(
        source, portal_id, lang, {"orders": order_list_command({"@id": ids})}, catalog
    )
    orders = {
        o["id"]: o
        for o in (order_row(r, catalog) for r in rows_of(orders_batch, "orders", "orders"))
    }
    items = [
        {"order": orders.get(t.order_id), "binding": binding_view(t, owner)}
        for t in triples
        if t.order_id in orders
    ]
    full = len(bound) >= PAGE_SIZE
    return {
        "owner": owner,
        "items": items,
        "nextCursor": str(triples[-1].order_id) if full else None,
    }


def _order_number(batch: BatchResult, order_id: int) -> str | None:
    """Return the order's account number a batch read, if it did."""
    try:
        rows = rows_of(batch, "order", "orders")
    except AppError:
        return None
    for row in rows:
        if str(row.get("id")) == str(order_id):
            return str(row.get("accountNumber") or order_id)
    return None


def _write_failure(error: b24.BitrixError) -> AppError:
    """Say why a bind or unbind call failed as a whole.

    A write whose last attempt may have reached Bitrix24 without an answer coming back (a
    timeout, a broken answer) may have been applied: the user and the history are told
    that it is not known, never that it failed.
    """
    if isinstance(error, b24.TransportError) and error.maybe_sent:
        return Unavailable("change_unconfirmed")
    return from_bitrix(error)


def _bind_failure(
    error: b24.BitrixError, batch: BatchResult, triple: Triple, catalog: Catalog
) -> AppError:
    """Say, in the app's terms, why Bitrix24 refused an add."""
    if isinstance(error, b24.AccessDenied):
        return Forbidden("permission_denied")
    if isinstance(error, b24.OrderNotFound):
        return NotFound("order_not_found")
    kind = OWNER_KINDS[triple.owner_type_id]
    owner_read = "owner" in batch.results and owner_row_from(
        batch, "owner", triple.owner_type_id, triple.owner_id, catalog
    )
    if "owner" in batch.results and not owner_read:
        return NotFound("owner_not_found")
    log.warning("add refused for %s on owner type %s: %r", triple, kind.type_id, error)
    return from_bitrix(error)


class Unseen:
    """The caller does not say which owner it saw the order with."""


UNSEEN = Unseen()


def bind(
    source: TokenSource,
    actor: Actor,
    lang: str,
    triple: Triple,
    *,
    seen: Triple | None | Unseen = UNSEEN,
    undo_of: int | None = None,
) -> BindResult:
    """Bind the order to the owner in one batch; record the attempt; say what it replaced.

    ``seen`` is the binding the user saw before asking (None: the order was unbound). It
    is used only when the batch had to be sent again after an attempt whose answer was lost:
    the repeat then reads the order after that attempt's own work, so what the attempt
    replaced is known only from what the user saw.
    """
    catalog = stored_catalog(actor.portal_id, lang) or Catalog()
    kind = offered_kind(catalog, triple.owner_type_id)
    commands: dict[str, Command] = {
        "order": order_list_command({"=id": triple.order_id}),
        CURRENT: current_command(triple.order_id),
        **owner_of_current_commands(catalog, CURRENT),
        "owner": kind.by_id(triple.owner_id),
        "add": ("crm.orderentity.add", {"fields": triple.fields()}),
    }
    try:
        batch = gateway().rest.batch(source, commands)
    except b24.BitrixError as exc:
        problem = _write_failure(exc)
        record_attempt(
            actor,
            BindingAction.BIND,
            triple,
            BindingOutcome.FAILED,
            problem.code,
            order_number=last_known_order_number(actor.portal_id, triple.order_id),
            undo_of=undo_of,
        )
        raise problem from exc
    owner = owner_row_from(batch, "owner", triple.owner_type_id, triple.owner_id, catalog)
    number = _order_number(batch, triple.order_id)
    try:
        previous, previous_owner = _current_with_owner(batch, triple.order_id, catalog)
    except AppError:
        previous, previous_owner = None, None
    title = owner["title"] if owner else None
    error = batch.errors.get("add")
    if error is not None and not isinstance(error, b24.AlreadyBound):
        problem = _bind_failure(error, batch, triple, catalog)
        record_attempt(
            actor,
            BindingAction.BIND,
            triple,
            BindingOutcome.FAILED,
            problem.code,
            owner_title=title,
            order_number=number,
            undo_of=undo_of,
        )
        raise problem
    if (error is not None or previous == triple) and batch.after_lost_answer:
        previous, previous_owner = _replaced_by_lost_attempt(actor, triple, seen)
        if previous is not None:
            outcome = BindingOutcome.REPLACED
        elif seen is None:
            outcome = BindingOutcome.BOUND
        else:  # not said, or the user saw it bound to this owner already
            outcome = BindingOutcome.ALREADY_BOUND
    elif error is not None or previous == triple:
        outcome = BindingOutcome.ALREADY_BOUND
        previous, previous_owner = None, None
    elif previous is not None:
        outcome = BindingOutcome.REPLACED
    else:
        outcome = BindingOutcome.BOUND
    history_id = record_attempt(
        actor,
        BindingAction.BIND,
        triple,
        outcome,
        None,
        owner_title=title,
        order_number=number,
        replaced=previous,
        replaced_title=previous_owner["title"] if previous_owner else None,
        undo_of=undo_of,
    )
    log.info(
        "user %s bound order %s to %s:%s on portal %s (%s)",
        actor.user_id,
        triple.order_id,
        triple.owner_type_id,
        triple.owner_id,
        actor.portal_id,
        outcome,
    )
    return BindResult(
        binding=binding_view(triple, owner),
        replaced=binding_view(previous, previous_owner) if previous else None,
        outcome=outcome.value,
        history_id=history_id,
    )


def unbind(
    source: TokenSource, actor: Actor, triple: Triple, *, undo_of: int | None = None
) -> UnbindResult:
    """Remove exactly this binding; 409 when the order's owner is no longer this one."""
    if triple.owner_type_id not in OWNER_KINDS:
        raise NotFound("owner_not_found")
    title = last_known_title(actor.portal_id, triple.owner_type_id, triple.owner_id)
    number = last_known_order_number(actor.portal_id, triple.order_id)
    try:
        gateway().rest.call(source, "crm.orderentity.deleteByFilter", {"fields": triple.fields()})
    except b24.BitrixError as exc:
        problem: AppError
        if isinstance(exc, b24.RelationNotFound):
            # Only a first attempt lands here (a repeat that finds nothing is "already gone").
            problem = Conflict("binding_changed")
        elif isinstance(exc, b24.OrderNotFound):
            problem = NotFound("order_not_found")
        else:
            problem = _write_failure(exc)
        record_attempt(
            actor,
            BindingAction.UNBIND,
            triple,
            BindingOutcome.FAILED,
            problem.code,
            owner_title=title,
            order_number=number,
            undo_of=undo_of,
        )
        raise problem from exc
    history_id = record_attempt(
        actor,
        BindingAction.UNBIND,
        triple,
        BindingOutcome.UNBOUND,
        None,
        owner_title=title,
        order_number=number,
        replaced=triple,
        replaced_title=title,
        undo_of=undo_of,
    )
    log.info(
        "user %s unbound order %s from %s:%s on portal %s",
        actor.user_id,
        triple.order_id,
        triple.owner_type_id,
        triple.owner_id,
        actor.portal_id,
    )
    return UnbindResult(
        removed=binding_view(triple, _owner_stub(triple, title)), history_id=history_id
    )


def _replaced_by_lost_attempt(
    actor: Actor, triple: Triple, seen: Triple | None | Unseen
) -> tuple[Triple | None, dict[str, Any] | None]:
    """What a bind whose first answer was lost replaced: the binding the user saw, if other."""
    if isinstance(seen, Unseen) or seen is None or seen == triple:
        return None, None
    title = last_known_title(actor.portal_id, seen.owner_type_id, seen.owner_id)
    return seen, _owner_stub(seen, title)


def _owner_stub(triple: Triple, title: str | None) -> dict[str, Any]:
    """Return an owner row from what the app remembers (no Bitrix24 call)."""
    kind = OWNER_KINDS[triple.owner_type_id]
    return {
        "ownerTypeId": triple.owner_type_id,
        "id": triple.owner_id,
        "title": title or "",
        "accountNumber": None,
        "amount": None,
        "currency": None,
        "stageId": None,
        "stageName": None,
        "path": kind.path(triple.owner_id),
    }


def read_current(source: TokenSource, order_id: int) -> Triple | None:
    """Return the order's binding now (one call)."""
    try:
        result = gateway().rest.call(source, *current_command(order_id))
    except b24.BitrixError as exc:
        raise from_bitrix(exc) from exc
    rows = result.result.get(_ENTITY_KEY) if isinstance(result.result, Mapping) else None
    return triple_from(list(rows or []), order_id)
