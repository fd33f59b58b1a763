"""Bulk jobs as the web sees them: preview, start, show, cancel, retry the failed, undo.

Starting a job only writes rows; a worker (``b24app.jobs.runner``) does the Bitrix24 work.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from b24app.bitrix.client import BATCH_LIMIT, PAGE_SIZE, BatchResult, TokenSource, extract_rows
from b24app.bitrix.errors import BitrixError
from b24app.errors import BadRequest, Conflict, NotFound, from_bitrix
from b24app.extensions import db
from b24app.jobs.orders import (
    MAX_JOB_ORDERS,
    Command,
    OrderFilter,
    Seen,
    current_owners,
    matching_orders,
    numbers_commands,
    numbers_from,
    order_numbers,
    owner_rows,
    owners_command,
    seen_owners,
    seen_to_json,
)
from b24app.jobs.wakeup import announce
from b24app.models import Job, JobItem, JobItemState, JobState, utcnow
from b24app.services.bindings import owner_row_from
from b24app.services.catalog import Catalog, stored_catalog
from b24app.services.gateway import gateway
from b24app.services.history import Actor, last_known_title
from b24app.services.owners import OWNER_KINDS
from b24app.services.pickers import offered_kind
from b24app.services.tokens import write_session

# One read of the owners plus 49 adds: a batch's 50 commands.
BIND_BATCH = 49
# An undo reads first, then sends up to 50 writes.
UNDO_BATCH = 50
# Orders whose numbers are read in the owner's batch: 48 reads of 50 beside it and the
# read of the first batch's owners.
_WITH_OWNER = (BATCH_LIMIT - 2) * PAGE_SIZE
JOBS_PAGE = 20
ITEMS_PAGE = 100
FINISHED = {JobState.DONE.value, JobState.CANCELLED.value}


@dataclass(frozen=True)
class JobRequest:
    """What a user asked a job to do."""

    owner_type_id: int
    owner_id: int
    order_ids: list[int] | None
    order_filter: OrderFilter | None


def _owner(
    source: TokenSource,
    actor: Actor,
    lang: str,
    owner_type_id: int,
    owner_id: int,
    along: Mapping[str, Command] | None = None,
) -> tuple[dict[str, Any], BatchResult]:
    """Check the owner type is offered and read the owner; 404 when it does not exist.

    ``along`` are reads sent in the same batch (at most 49); the batch is returned with the
    owner so that the caller takes their rows from it.
    """
    catalog = stored_catalog(actor.portal_id, lang) or Catalog()
    kind = offered_kind(catalog, owner_type_id)
    try:
        batch = gateway().rest.batch(source, {"owner": kind.by_id(owner_id), **(along or {})})
    except BitrixError as exc:
        raise from_bitrix(exc) from exc
    if "owner" in batch.errors:
        raise from_bitrix(batch.errors["owner"])
    owner = owner_row_from(batch, "owner", owner_type_id, owner_id, catalog)
    if owner is None:
        raise NotFound("owner_not_found")
    return owner, batch


def _unique(ids: Sequence[int]) -> list[int]:
    """Drop repeated ids, keeping the first of each."""
    return list(dict.fromkeys(ids))


def _too_many(count: int) -> None:
    """Refuse more orders than one job takes."""
    if count > MAX_JOB_ORDERS:
        raise BadRequest("too_many_orders", limit=MAX_JOB_ORDERS, count=count)


def preview(source: TokenSource, actor: Actor, lang: str, request: JobRequest) -> dict[str, Any]:
    """Say what a job would do: how many orders, how many get replaced, the target."""
    owner, _ = _owner(source, actor, lang, request.owner_type_id, request.owner_id)
    if request.order_ids is not None:
        ids = _unique(request.order_ids)
        _too_many(len(ids))
    else:
        assert request.order_filter is not None
        found = matching_orders(source, request.order_filter, limit=MAX_JOB_ORDERS + 1)
        _too_many(len(found))
        ids = [i for i, _ in found]
    owners = current_owners(source, ids)
    if request.order_filter is not None and request.order_filter.unbound_only:
        ids = [i for i in ids if i not in owners]
    target = (request.owner_type_id, request.owner_id)
    there = sum(1 for i in ids if owners.get(i) == target)
    replacing = sum(1 for i in ids if i in owners and owners[i] != target)
    return {
        "matched": len(ids),
        "replacing": replacing,
        "alreadyThere": there,
        "owner": owner,
        "limit": MAX_JOB_ORDERS,
    }


def start(source: TokenSource, actor: Actor, lang: str, request: JobRequest) -> Job:
    """Queue a bind job (the worker reads a filter itself); return it.

    Chosen orders are sent in id order, as a filter's are: each batch's read of its owners
    then also covers the next batch's (see the runner).
    """
    ids = sorted(_unique(request.order_ids)) if request.order_ids is not None else None
    if ids is not None:
        _too_many(len(ids))
    # The orders' numbers (so results and history name orders by them), 50 orders a read:
    # the first 48 reads ride with the owner's, the rest go 50 a call. The first batch's
    # owners are read too, as seen before it is sent.
    number_reads = numbers_commands((ids or [])[:_WITH_OWNER])
    size = bind_batch_size(len(ids or []))
    along = {**number_reads, "seen": owners_command(ids[:size])} if ids else number_reads
    owner, batch = _owner(source, actor, lang, request.owner_type_id, request.owner_id, along)
    numbers = numbers_from(batch, number_reads)
    # A failed read leaves nothing seen, which only an answer lost later would need.
    rows = owner_rows(batch, "seen")
    seen: Seen = seen_owners(ids[:size], rows) if ids and rows is not None else {}
    if ids is not None and len(ids) > _WITH_OWNER:
        numbers.update(order_numbers(source, ids[_WITH_OWNER:]))
    with write_session(db.engine) as session:
        job = Job(
            portal_id=actor.portal_id,
            user_id=actor.user_id,
            user_name=actor.user_name[:255],
            lang=lang,
            kind="bind",
            state=JobState.QUEUED.value,
            owner_type_id=request.owner_type_id,
            owner_id=request.owner_id,
            owner_title=str(owner.get("title") or "")[:2000],
            pending_filter=(
                json.dumps(request.order_filter.to_json())
                if request.order_filter is not None
                else None
            ),
            total=len(ids) if ids is not None else 0,
            seen_owners=seen_to_json(seen),
        )
        session.add(job)
        session.flush()
        if ids is not None:
            add_items(session, job.id, [(i, numbers.get(i)) for i in ids], size)
    announce()
    return job


def bind_batch_size(count: int) -> int:
    """Return the orders per batch of a bind job of ``count`` orders.

    48 leaves each batch a command for reading the next batch's owners on their own (see
    the runner), unless it would take one batch more than 49; then the batch's one read
    takes the next batch's orders along as far as its page goes.
    """
    smaller = BIND_BATCH - 1
    return smaller if math.ceil(count / smaller) == math.ceil(count / BIND_BATCH) else BIND_BATCH


def add_items(
    session: Session,
    job_id: int,
    orders: Sequence[tuple[int, str | None]],
    batch_size: int,
    previous: dict[int, tuple[int, int] | None] | None = None,
) -> None:
    """Insert a job's items, numbered into batches."""
    rows = []
    for position, (order_id, number) in enumerate(orders):
        before = (previous or {}).get(order_id)
        rows.append(
            {
                "job_id": job_id,
                "batch_no": position // batch_size,
                "order_id": order_id,
                "order_number": number,
                "state": JobItemState.PENDING.value,
                "previous_owner_type_id": before[0] if before else None,
                "previous_owner_id": before[1] if before else None,
            }
        )
    if rows:
        session.execute(JobItem.__table__.insert(), rows)


def find_job(portal_id: int, job_id: int) -> Job:
    """Return one of the portal's jobs, or 404."""
    with Session(db.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
    if job is None or job.portal_id != portal_id:
        raise NotFound("job_not_found")
    return job


def counts(job_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Count the items of several jobs by state, in one query (a page of jobs at once)."""
    by_job: dict[int, dict[str, int]] = {job_id: {} for job_id in job_ids}
    if not by_job:
        return by_job
    with Session(db.engine) as session:
        rows = session.execute(
            select(JobItem.job_id, JobItem.state, func.count())
            .where(JobItem.job_id.in_(by_job))
            .group_by(JobItem.job_id, JobItem.state)
        ).all()
    for job_id, state, n in rows:
        by_job[int(job_id)][str(state)] = int(n)
    return by_job


def _eta(job: Job, done: int, remaining: int, now: datetime) -> int | None:
    """Estimate the seconds left from the pace so far."""
    if job.state != JobState.RUNNING.value or job.started_at is None or done == 0:
        return None
    elapsed = (now - job.started_at).total_seconds()
    return max(0, math.ceil(elapsed / done * remaining)) if remaining else 0


def job_view(
    job: Job, *, can_write: bool, reason: str | None, by_state: dict[str, int] | None = None
) -> dict[str, Any]:
    """Return the API's job object; ``by_state`` are its item counts when already read."""
    if by_state is None:
        by_state = counts([job.id])[job.id]
    pending = by_state.get(JobItemState.PENDING.value, 0)
    total = max(job.total, sum(by_state.values()))
    done = total - pending
    failed = by_state.get(JobItemState.FAILED.value, 0)
    kind = OWNER_KINDS.get(job.owner_type_id)
    finished = job.state in FINISHED
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "pausedReason": reason,
        "owner": {
            "ownerTypeId": job.owner_type_id,
            "ownerId": job.owner_id,
            "title": job.owner_title,
            "path": kind.path(job.owner_id) if kind else None,
        },
        "user": {"id": job.user_id, "name": job.user_name},
        "counts": {
            "total": total,
            "bound": by_state.get(JobItemState.BOUND.value, 0)
            + by_state.get(JobItemState.RESTORED.value, 0),
            "alreadyBound": by_state.get(JobItemState.ALREADY_BOUND.value, 0),
            "replaced": by_state.get(JobItemState.REPLACED.value, 0),
            "unbound": by_state.get(JobItemState.UNBOUND.value, 0),
            "failed": failed,
            "remaining": pending if job.pending_filter is None else None,
        },
        "createdAt": job.created_at.isoformat(),
        "startedAt": job.started_at.isoformat() if job.started_at else None,
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
        "etaSeconds": _eta(job, done, pending, utcnow()),
        "undoOf": job.undo_of_id,
        "undoneBy": job.undone_by_id,
        "undoable": can_write
        and job.kind == "bind"
        and job.state == JobState.DONE.value
        and job.undone_by_id is None,
        "retryable": can_write and finished and failed > 0,
    }


def job_page(portal_id: int, cursor: int | None) -> tuple[list[Job], int | None]:
    """Return one page of the portal's jobs, newest first."""
    query = select(Job).where(Job.portal_id == portal_id)
    if cursor is not None:
        query = query.where(Job.id < cursor)
    with Session(db.engine, expire_on_commit=False) as session:
        jobs = list(session.scalars(query.order_by(Job.id.desc()).limit(JOBS_PAGE + 1)))
    more = len(jobs) > JOBS_PAGE
    jobs = jobs[:JOBS_PAGE]
    return jobs, jobs[-1].id if more and jobs else None


def item_page(job_id: int, cursor: int | None) -> tuple[list[JobItem], int | None]:
    """Return one page of a job's items in their order."""
    query = select(JobItem).where(JobItem.job_id == job_id)
    if cursor is not None:
        query = query.where(JobItem.id > cursor)
    with Session(db.engine, expire_on_commit=False) as session:
        items = list(session.scalars(query.order_by(JobItem.id).limit(ITEMS_PAGE + 1)))
    more = len(items) > ITEMS_PAGE
    items = items[:ITEMS_PAGE]
    return items, items[-1].id if more and items else None


def cancel(portal_id: int, job_id: int) -> Job:
    """Ask a job to stop at its next batch boundary (at once when no worker holds it)."""
    find_job(portal_id, job_id)
    with write_session(db.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        if job.state in FINISHED:
            raise Conflict("job_finished")
        job.cancel_requested = True
        if job.state in (JobState.QUEUED.value, JobState.PAUSED.value) and job.lease_owner is None:
            job.state = JobState.CANCELLED.value
            job.finished_at = utcnow()
    return find_job(portal_id, job_id)


def retry_failed(portal_id: int, job_id: int) -> Job:
    """Queue a finished job's failed orders again."""
    find_job(portal_id, job_id)
    with write_session(db.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        if job.state not in FINISHED:
            raise Conflict("job_running")
        moved = session.execute(  # type: ignore[attr-defined]
            update(JobItem)
            .where(JobItem.job_id == job_id, JobItem.state == JobItemState.FAILED.value)
            .values(state=JobItemState.PENDING.value, error_code=None)
        ).rowcount
        if not moved:
            raise Conflict("nothing_to_retry")
        job.state = JobState.QUEUED.value
        job.cancel_requested = False
        job.finished_at = None
        job.seen_owners = None  # read long ago: the retried batches have nothing seen
    announce()
    return find_job(portal_id, job_id)


def undo(actor: Actor, job_id: int) -> Job:
    """Queue the undo of a finished bind job: restore replaced owners, unbind the rest."""
    original = find_job(actor.portal_id, job_id)
    if original.kind != "bind" or original.state != JobState.DONE.value:
        raise Conflict("not_undoable")
    if original.undone_by_id is not None:
        raise Conflict("not_undoable")
    with Session(db.engine) as session:
        done = list(
            session.execute(
                select(
                    JobItem.order_id,
                    JobItem.order_number,
                    JobItem.state,
                    JobItem.previous_owner_type_id,
                    JobItem.previous_owner_id,
                )
                .where(
                    JobItem.job_id == job_id,
                    JobItem.state.in_([JobItemState.BOUND.value, JobItemState.REPLACED.value]),
                )
                .order_by(JobItem.id)
            )
        )
    if not done:
        raise Conflict("not_undoable")
    with write_session(db.engine) as session:
        job = Job(
            portal_id=actor.portal_id,
            user_id=actor.user_id,
            user_name=actor.user_name[:255],
            lang=original.lang,
            kind="undo",
            state=JobState.QUEUED.value,
            owner_type_id=original.owner_type_id,
            owner_id=original.owner_id,
            owner_title=original.owner_title,
            total=len(done),
            undo_of_id=original.id,
        )
        session.add(job)
        session.flush()
        previous: dict[int, tuple[int, int] | None] = {
            row.order_id: (
                (row.previous_owner_type_id, row.previous_owner_id)
                if row.state == JobItemState.REPLACED.value
                and row.previous_owner_type_id is not None
                and row.previous_owner_id is not None
                else None
            )
            for row in done
        }
        add_items(
            session,
            job.id,
            [(row.order_id, row.order_number) for row in done],
            UNDO_BATCH,
            previous,
        )
        stored = session.get(Job, original.id)
        assert stored is not None
        stored.undone_by_id = job.id
    announce()
    return job


def resume_paused(portal_id: int, user_id: int) -> int:
    """Queue again the user's jobs paused for a dead token chain (they reopened the app)."""
    with write_session(db.engine) as session:
        resumed: int = session.execute(  # type: ignore[attr-defined]
            update(Job)
            .where(
                Job.portal_id == portal_id,
                Job.user_id == user_id,
                Job.state == JobState.PAUSED.value,
            )
            .values(state=JobState.QUEUED.value, paused_reason=None)
        ).rowcount
    if resumed:
        announce()
    return resumed


def owner_titles(
    source: TokenSource, portal_id: int, lang: str, owners: set[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    """Return the titles of some deals and invoices: from the history, else one batch."""
    titles: dict[tuple[int, int], str] = {}
    missing: dict[int, list[int]] = {}
    for type_id, owner_id in owners:
        known = last_known_title(portal_id, type_id, owner_id)
        if known is not None:
            titles[(type_id, owner_id)] = known
        elif type_id in OWNER_KINDS:
            missing.setdefault(type_id, []).append(owner_id)
    if not missing:
        return titles
    catalog = stored_catalog(portal_id, lang) or Catalog()
    commands = {
        f"t{type_id}": OWNER_KINDS[type_id].list_command(
            {f"@{OWNER_KINDS[type_id].id_field}": ids[:50]}
        )
        for type_id, ids in missing.items()
    }
    try:
        batch = gateway().rest.batch(source, commands)
    except BitrixError:
        return titles  # titles are a nicety: the ids still show
    for type_id in missing:
        kind = OWNER_KINDS[type_id]
        if f"t{type_id}" in batch.errors or f"t{type_id}" not in batch.results:
            continue
        for raw in extract_rows(batch.results[f"t{type_id}"], kind.rows_key):
            row = kind.row(raw, catalog)
            titles[(type_id, row["id"])] = row["title"]
    return titles
