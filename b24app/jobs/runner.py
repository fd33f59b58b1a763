"""Running bulk jobs: claim one with a lease, send its batches, record each, let go.

A worker claims the job served least recently (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, an
immediate transaction on SQLite), so workers never run one job at once and a big job on one
portal never holds up another portal's for longer than a slice (``JOB_SLICE_SECONDS``). Each
batch's record renews the lease: a worker that dies mid-batch leaves a lease that runs out,
and the next claim resends that batch, which is harmless (re-adding a triple answers
"already bound").
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from b24app.bitrix import errors as b24
from b24app.bitrix.client import BATCH_LIMIT, TokenSource
from b24app.errors import AppError, Busy, Forbidden, Unauthorized, from_bitrix
from b24app.extensions import db
from b24app.jobs.orders import (
    MAX_JOB_ORDERS,
    OrderFilter,
    Seen,
    current_owners,
    matching_orders,
    owner_rows,
    owners_command,
    owners_from,
    seen_from_json,
    seen_owners,
    seen_to_json,
)
from b24app.jobs.service import UNDO_BATCH, add_items, bind_batch_size
from b24app.models import (
    BindingAction,
    BindingOutcome,
    BindingRecord,
    Job,
    JobItem,
    JobItemState,
    JobState,
    utcnow,
)
from b24app.services.bindings import Triple
from b24app.services.gateway import gateway
from b24app.services.tokens import ChainDead, token_source, write_session

log = logging.getLogger(__name__)

Command = tuple[str, Any]
# Seconds a job waits after a batch failed for longer than its budget (portal busy or down).
POSTPONE = 15.0


def worker_name() -> str:
    """Name this worker uniquely (host, process, random) for leases and logs."""
    return f"{socket.gethostname()[:32]}:{uuid.uuid4().hex[:12]}"


@dataclass
class Claim:
    """A job this worker holds until ``until``."""

    job_id: int
    until: datetime


def claim(worker: str, now: datetime, lease: float) -> Claim | None:
    """Take the least recently served runnable job whose lease is free; None when idle."""
    with write_session(db.engine) as session:
        job = session.scalars(
            select(Job)
            .where(
                Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
                or_(Job.lease_until.is_(None), Job.lease_until < now),
            )
            .order_by(Job.last_run_at.is_not(None), Job.last_run_at, Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if job is None:
            return None
        if job.lease_owner is not None:
            # Its holder stopped without letting go (killed, or overran the lease): the batch
            # it was sending may have landed without being recorded.
            log.warning("job %s taken over from %s", job.id, job.lease_owner)
            job.unconfirmed = True
        until = now + timedelta(seconds=lease)
        job.lease_owner = worker
        job.lease_until = until
        if job.state == JobState.QUEUED.value:
            job.state = JobState.RUNNING.value
        if job.started_at is None:
            job.started_at = now
        return Claim(job.id, until)


def release(job_id: int, worker: str, now: datetime, **changes: Any) -> bool:
    """Give the job back (with ``changes``) if this worker still holds it."""
    with write_session(db.engine) as session:
        job = _held(session, job_id, worker)
        if job is None:
            return False
        _hand_back(job, now, **changes)
        return True


def _held(session: Session, job_id: int, worker: str) -> Job | None:
    """Return the job if this worker still holds its lease, else None (taken over)."""
    job = session.get(Job, job_id)
    return job if job is not None and job.lease_owner == worker else None


def _hand_back(job: Job, now: datetime, **changes: Any) -> None:
    """Free the job's lease (in the caller's transaction), applying ``changes``."""
    job.lease_owner = None
    job.lease_until = None
    job.last_run_at = now
    for name, value in changes.items():
        setattr(job, name, value)


def _tokens(job: Job) -> TokenSource:
    """Return the job's user's own token chain (refreshed single-flight with the web)."""
    return token_source(job.portal_id, job.user_id)


def _materialise(job: Job, source: TokenSource) -> None:
    """Read the job's filter into items (one batch call per 2,500 orders)."""
    assert job.pending_filter is not None
    order_filter = OrderFilter.from_json(json.loads(job.pending_filter))
    found = matching_orders(source, order_filter, limit=MAX_JOB_ORDERS, background=True)
    if order_filter.unbound_only and found:
        owners = current_owners(source, [i for i, _ in found], background=True)
        found = [(i, n) for i, n in found if i not in owners]
    size = bind_batch_size(len(found))
    # Unbound orders were read as such: the first batch's owners before it is sent.
    seen: Seen = {i: None for i, _ in found[:size]} if order_filter.unbound_only else {}
    with write_session(db.engine) as session:
        add_items(session, job.id, found, size)
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(pending_filter=None, total=len(found), seen_owners=seen_to_json(seen))
        )


_ITEMS = JobItem.__table__


@dataclass(frozen=True)
class Pending:
    """A pending item as a batch needs it (read as plain rows: no ORM objects per batch)."""

    id: int
    batch_no: int
    order_id: int
    order_number: str | None
    previous_owner_type_id: int | None
    previous_owner_id: int | None


_PENDING_COLUMNS = [getattr(_ITEMS.c, name) for name in Pending.__dataclass_fields__]


def _next_batch(job_id: int) -> tuple[list[Pending], list[int]]:
    """Return the pending items of the job's first unfinished batch, and the order ids of
    the batch after it (whose owners are read along)."""
    with db.engine.connect() as connection:
        rows = connection.execute(
            select(*_PENDING_COLUMNS)
            .where(_ITEMS.c.job_id == job_id, _ITEMS.c.state == JobItemState.PENDING.value)
            .order_by(_ITEMS.c.batch_no, _ITEMS.c.id)
            .limit(2 * UNDO_BATCH)
        ).all()
    pending = [Pending(*row) for row in rows]
    if not pending:
        return [], []
    first = [i for i in pending if i.batch_no == pending[0].batch_no]
    rest = pending[len(first) :]
    upcoming = [i.order_id for i in rest if i.batch_no == rest[0].batch_no] if rest else []
    return first, upcoming


def _failure_code(error: b24.BitrixError) -> str:
    """Name why Bitrix24 refused one order's write, in the app's codes."""
    if isinstance(error, b24.OrderNotFound):
        return "order_not_found"
    if isinstance(error, b24.RelationNotFound):
        return "binding_changed"
    return from_bitrix(error).code


@dataclass
class Outcome:
    """What happened to one item."""

    state: JobItemState
    error_code: str | None = None
    previous: tuple[int, int] | None = None


def _bind_batch(
    job: Job, items: list[Pending], upcoming: list[int], source: TokenSource
) -> tuple[dict[int, Outcome], Seen]:
    """Bind up to 49 orders in one batch that first reads their owners.

    The batch also reads the owners of the next batch's orders and returns them as seen
    (what that batch's adds will replace, should its own answer be lost): with a read of
    their own when the batch has a command to spare (48 orders), otherwise in this batch's
    read, as far as its page of 50 goes once this batch's rows are in. So that they are,
    only orders that sort after this batch's ride along.
    """
    target = (job.owner_type_id, job.owner_id)
    own = [i.order_id for i in items]
    apart = bool(upcoming) and len(items) + 2 <= BATCH_LIMIT
    ahead = upcoming if apart else [o for o in upcoming if o > max(own)]
    commands: dict[str, Command] = {"owners": owners_command(own if apart else own + ahead)}
    if apart:
        commands["ahead"] = owners_command(ahead)
    for item in items:
        fields = Triple(item.order_id, *target).fields()
        commands[f"a{item.order_id}"] = ("crm.orderentity.add", {"fields": fields})
    batch = gateway().jobs_rest.batch(source, commands)
    # A failed read leaves no owners: the adds still count.
    rows = owner_rows(batch, "owners")
    before = owners_from(rows or [])
    # After an answer that may have been lost (or a takeover), the read can show this
    # batch's own earlier adds; the owners seen before it was first sent say what they
    # replaced.
    earlier = seen_from_json(job.seen_owners) if batch.after_lost_answer or job.unconfirmed else {}
    outcomes: dict[int, Outcome] = {}
    for item in items:
        previous = before.get(item.order_id)
        error = batch.errors.get(f"a{item.order_id}")
        if isinstance(error, b24.InvalidToken):
            raise error
        if error is not None and not isinstance(error, b24.AlreadyBound):
            outcomes[item.order_id] = Outcome(JobItemState.FAILED, _failure_code(error))
        elif error is not None or previous == target:
            seen = earlier.get(item.order_id, target)
            if seen is None:
                outcomes[item.order_id] = Outcome(JobItemState.BOUND)
            elif seen != target:
                outcomes[item.order_id] = Outcome(JobItemState.REPLACED, previous=seen)
            else:
                outcomes[item.order_id] = Outcome(JobItemState.ALREADY_BOUND)
        elif previous is not None:
            outcomes[item.order_id] = Outcome(JobItemState.REPLACED, previous=previous)
        else:
            outcomes[item.order_id] = Outcome(JobItemState.BOUND)
    ahead_rows = owner_rows(batch, "ahead") if apart else rows
    return outcomes, seen_owners(ahead, ahead_rows) if ahead_rows is not None else {}


def _undo_batch(job: Job, items: list[Pending], source: TokenSource) -> dict[int, Outcome]:
    """Undo up to 50 bindings: read the owners, then restore or unbind those still there."""
    target = (job.owner_type_id, job.owner_id)
    now_owned = current_owners(source, [i.order_id for i in items], background=True)
    outcomes: dict[int, Outcome] = {}
    commands: dict[str, Command] = {}
    for item in items:
        if now_owned.get(item.order_id) != target:
            outcomes[item.order_id] = Outcome(JobItemState.FAILED, "undo_conflict")
        elif item.previous_owner_type_id is not None and item.previous_owner_id is not None:
            fields = Triple(item.order_id, item.previous_owner_type_id, item.previous_owner_id)
            commands[f"r{item.order_id}"] = ("crm.orderentity.add", {"fields": fields.fields()})
        else:
            fields = Triple(item.order_id, *target)
            commands[f"u{item.order_id}"] = (
                "crm.orderentity.deleteByFilter",
                {"fields": fields.fields()},
            )
    if commands:
        batch = gateway().jobs_rest.batch(source, commands)
        for key in commands:
            order_id = int(key[1:])
            error = batch.errors.get(key)
            if error is None or (key[0] == "r" and isinstance(error, b24.AlreadyBound)):
                done = JobItemState.RESTORED if key[0] == "r" else JobItemState.UNBOUND
                outcomes[order_id] = Outcome(done)
            elif isinstance(error, b24.InvalidToken):
                raise error
            else:
                outcomes[order_id] = Outcome(JobItemState.FAILED, _failure_code(error))
    return outcomes


_HISTORY_OUTCOMES = {
    JobItemState.BOUND: (BindingAction.BIND, BindingOutcome.BOUND),
    JobItemState.ALREADY_BOUND: (BindingAction.BIND, BindingOutcome.ALREADY_BOUND),
    JobItemState.REPLACED: (BindingAction.BIND, BindingOutcome.REPLACED),
    JobItemState.RESTORED: (BindingAction.BIND, BindingOutcome.REPLACED),
    JobItemState.UNBOUND: (BindingAction.UNBIND, BindingOutcome.UNBOUND),
}


def _record(
    job: Job,
    items: list[Pending],
    outcomes: dict[int, Outcome],
    worker: str,
    now: datetime,
    renew: float | None = None,
    seen: Seen | None = None,
    more: bool = False,
) -> bool:
    """Store the batch's outcomes and history rows, once, if this worker still holds the job.

    ``seen`` are the next batch's owners as this batch read them; ``more`` says that a later
    batch had pending items when this one was read (so the job is not finished: no query).

    In the same transaction the job is finished when no item is left; otherwise its lease is
    renewed by ``renew`` seconds (True is returned: send the next batch), or the job is given
    back (None, or a cancel was asked for).
    """
    with write_session(db.engine) as session:
        stored = _held(session, job.id, worker)
        if stored is None:
            # Taken over meanwhile: the new holder sends this batch again and records it.
            return False
        changes, history = [], []
        for item in items:
            outcome = outcomes.get(item.order_id)
            if outcome is None:
                continue
            previous = outcome.previous or (item.previous_owner_type_id, item.previous_owner_id)
            changes.append(
                {
                    "item": item.id,
                    "new_state": outcome.state.value,
                    "new_error": outcome.error_code,
                    "previous_type": previous[0],
                    "previous_id": previous[1],
                }
            )
            history.append(_history_row(job, item, outcome, now))
        if changes:
            # One statement for the batch's items (executemany), not one per item.
            session.execute(_ITEM_OUTCOME, changes)
        if history:
            session.execute(BindingRecord.__table__.insert(), history)
        stored.seen_owners = job.seen_owners = seen_to_json(seen or {})
        stored.unconfirmed = job.unconfirmed = False
        if stored.cancel_requested:
            _hand_back(stored, now)
            return False
        if not more and _nothing_pending(session, job.id):
            _hand_back(stored, now, state=JobState.DONE.value, finished_at=now)
            log.info("job %s done", job.id)
            return False
        if renew is None:
            _hand_back(stored, now)
            return False
        stored.lease_until = now + timedelta(seconds=renew)
        stored.last_run_at = now
        return True


def _nothing_pending(session: Session, job_id: int) -> bool:
    """Tell whether the job has no item left to send."""
    pending = session.scalars(
        select(JobItem.id)
        .where(JobItem.job_id == job_id, JobItem.state == JobItemState.PENDING.value)
        .limit(1)
    ).first()
    return pending is None


# A pending item takes its outcome; an item already recorded (a batch resent) keeps its own.
_ITEM_OUTCOME = (
    update(_ITEMS)
    .where(_ITEMS.c.id == bindparam("item"), _ITEMS.c.state == JobItemState.PENDING.value)
    .values(
        state=bindparam("new_state"),
        error_code=bindparam("new_error"),
        previous_owner_type_id=bindparam("previous_type"),
        previous_owner_id=bindparam("previous_id"),
    )
)


def _history_row(job: Job, item: Pending, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """Return the history row of one item's attempt."""
    action, result = _HISTORY_OUTCOMES.get(
        outcome.state,
        (BindingAction.BIND if job.kind == "bind" else BindingAction.UNBIND, BindingOutcome.FAILED),
    )
    owner = (job.owner_type_id, job.owner_id)
    replaced = outcome.previous
    if outcome.state == JobItemState.RESTORED:
        # Restoring the previous owner replaces the job's owner.
        owner = (item.previous_owner_type_id or 0, item.previous_owner_id or 0)
        replaced = (job.owner_type_id, job.owner_id)
    if outcome.state == JobItemState.UNBOUND:
        replaced = owner
    return {
        "portal_id": job.portal_id,
        "user_id": job.user_id,
        "user_name": job.user_name,
        "order_id": item.order_id,
        "order_number": item.order_number,
        "owner_type_id": owner[0],
        "owner_id": owner[1],
        "owner_title": job.owner_title if owner == (job.owner_type_id, job.owner_id) else None,
        "replaced_owner_type_id": replaced[0] if replaced else None,
        "replaced_owner_id": replaced[1] if replaced else None,
        "replaced_owner_title": job.owner_title
        if replaced == (job.owner_type_id, job.owner_id)
        else None,
        "action": action.value,
        "outcome": result.value,
        "error_code": outcome.error_code,
        "created_at": now,
        "job_id": job.id,
    }


def run_once(
    worker: str, clock: Callable[[], datetime] = utcnow, *, slice_seconds: float = 0.0
) -> bool:
    """Claim a job and run its steps (read the filter, or send batches); False when idle.

    One batch with ``slice_seconds`` 0; otherwise batch after batch until that much time
    has passed, each batch's record renewing the lease, so the claim is paid once a slice.
    """
    lease = float(current_app.config["JOB_LEASE_SECONDS"])
    held = claim(worker, clock(), lease)
    if held is None:
        return False
    with Session(db.engine, expire_on_commit=False) as session:
        job = session.get(Job, held.job_id)
    assert job is not None
    if job.cancel_requested:
        release(job.id, worker, clock(), state=JobState.CANCELLED.value, finished_at=clock())
        log.info("job %s cancelled", job.id)
        return True
    source = _tokens(job)
    ends = time.monotonic() + slice_seconds
    while _step(job, source, worker, clock, lease, ends):
        pass
    return True


def _step(
    job: Job,
    source: TokenSource,
    worker: str,
    clock: Callable[[], datetime],
    lease: float,
    ends: float,
) -> bool:
    """Run one step of a held job; True when it renewed the lease for another (before ``ends``)."""
    try:
        if job.pending_filter is not None:
            _materialise(job, source)
            release(job.id, worker, clock())
            return False
        items, upcoming = _next_batch(job.id)
        if not items:
            release(job.id, worker, clock(), state=JobState.DONE.value, finished_at=clock())
            log.info("job %s done", job.id)
            return False
        seen: Seen = {}
        if job.kind == "bind":
            outcomes, seen = _bind_batch(job, items, upcoming, source)
        else:
            outcomes = _undo_batch(job, items, source)
    except (ChainDead, b24.InvalidToken, b24.InvalidGrant) as exc:
        release(
            job.id,
            worker,
            clock(),
            state=JobState.PAUSED.value,
            paused_reason="reauth_required",
            unconfirmed=job.unconfirmed or _maybe_applied(exc),
        )
        log.info("job %s paused: the user's token chain is dead", job.id)
        return False
    except (AppError, b24.BitrixError) as exc:
        problem = exc if isinstance(exc, AppError) else from_bitrix(exc)
        if isinstance(problem, Unauthorized | Forbidden):
            # Waiting does not help (the portal is gone, the user lost access, a refreshed
            # token is still refused): the job waits for the user to reopen the app.
            release(
                job.id,
                worker,
                clock(),
                state=JobState.PAUSED.value,
                paused_reason=problem.code,
                unconfirmed=job.unconfirmed or _maybe_applied(exc),
            )
            log.info("job %s paused (%s)", job.id, problem.code)
            return False
        # Busy or unavailable for longer than a batch's budget: try again at the next claim,
        # and not before a method's time limit lifts.
        wait = POSTPONE
        if isinstance(problem, Busy) and problem.retry_after > wait:
            wait = float(problem.retry_after)
        log.warning("job %s: batch postponed %.0f s (%s)", job.id, wait, problem.code)
        release(
            job.id,
            worker,
            clock(),
            lease_until=clock() + timedelta(seconds=wait),
            unconfirmed=job.unconfirmed or _maybe_applied(exc),
        )
        return False
    renew = lease if time.monotonic() < ends else None
    return _record(job, items, outcomes, worker, clock(), renew, seen, bool(upcoming))


def _maybe_applied(exc: BaseException) -> bool:
    """Tell whether a batch that failed may have been applied (an answer lost on the way)."""
    cause = exc if isinstance(exc, b24.BitrixError) else exc.__cause__
    return isinstance(cause, b24.BitrixError) and cause.maybe_applied


def run_until_idle(app: Flask, worker: str | None = None, max_steps: int = 100_000) -> int:
    """Run job steps until none is left (tests and one-shot runs); return the steps run."""
    name = worker or worker_name()
    steps = 0
    with app.app_context():
        slice_seconds = float(app.config["JOB_SLICE_SECONDS"])
        while steps < max_steps and run_once(name, slice_seconds=slice_seconds):
            steps += 1
    return steps
