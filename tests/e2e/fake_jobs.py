"""The bulk-jobs API played inside the browser (Playwright routing), for screen tests.

The real jobs run in a worker against the sandbox (``test_bulk_jobs.py``); this stand-in
answers ``/api/jobs...`` in the documented shapes so that the states a worker rarely shows
(paused, failures, a refusal, a slow start) can be put on screen deterministically. Each
``GET /api/jobs/<id>`` of a running job moves it ``step`` orders on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

JOBS_URL = re.compile(r"/api/jobs(?:[/?]|$)")
PAGE = 50


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class FakeItem:
    order_id: int
    number: str
    state: str = "pending"
    replaced: dict[str, Any] | None = None
    error_code: str | None = None
    reason: str | None = None
    # What the fake does when it reaches the order.
    outcome: str = "bound"

    def view(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "orderAccountNumber": self.number,
            "state": self.state,
            "replaced": self.replaced if self.state in ("replaced", "restored") else None,
            "errorCode": self.error_code if self.state == "failed" else None,
            "reason": self.reason if self.state == "failed" else None,
        }


@dataclass
class FakeJob:
    id: int
    kind: str
    owner: dict[str, Any]
    items: list[FakeItem]
    state: str = "queued"
    paused_reason: str | None = None
    undo_of: int | None = None
    undone_by: int | None = None
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None

    def count(self, state: str) -> int:
        return sum(1 for item in self.items if item.state == state)

    def view(self, can_write: bool = True) -> dict[str, Any]:
        failed = self.count("failed")
        remaining = self.count("pending")
        finished = self.state in ("done", "cancelled")
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "pausedReason": self.paused_reason if self.state == "paused" else None,
            "owner": self.owner,
            "user": {"id": 1, "name": "Anna Admin"},
            "counts": {
                "total": len(self.items),
                "bound": self.count("bound") + self.count("restored"),
                "alreadyBound": self.count("already_bound"),
                "replaced": self.count("replaced"),
                "unbound": self.count("unbound"),
                "failed": failed,
                "remaining": remaining,
            },
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "etaSeconds": remaining // 20 if self.state == "running" else None,
            "undoOf": self.undo_of,
            "undoneBy": self.undone_by,
            "undoable": can_write
            and self.kind == "bind"
            and self.state == "done"
            and self.undone_by is None,
            "retryable": can_write and finished and failed > 0,
        }


class FakeJobsApi:
    """Answers the jobs endpoints; ``orders`` are (id, number) pairs a filter matches."""

    def __init__(
        self,
        owner: dict[str, Any],
        orders: list[tuple[int, str]],
        *,
        step: int = 30,
        replaced: dict[int, dict[str, Any]] | None = None,
        already: set[int] | None = None,
        failing: dict[int, str] | None = None,
        pause_at: int | None = None,
        paused_reason: str = "Bitrix24 no longer accepts your sign-in: reopen the app to continue.",
        refuse_writes: str | None = None,
    ) -> None:
        self.owner = owner
        self.orders = orders
        self.step = step
        self.replaced = replaced or {}
        self.already = already or set()
        self.failing = failing or {}
        self.pause_at = pause_at
        self.paused_reason = paused_reason
        self.refuse_writes = refuse_writes
        self.jobs: dict[int, FakeJob] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.polls: dict[int, int] = {}

    # -- what the tests arrange ------------------------------------------------------------

    def add_job(self, state: str = "done", **changes: Any) -> FakeJob:
        """Put a job in the list as if it had run before the page opened."""
        job = self._new_job("bind", self._items(self.orders))
        for item in job.items:
            if state == "done":
                self._settle(item)
        job.state = state
        for name, value in changes.items():
            setattr(job, name, value)
        return job

    def install(self, page: Any) -> None:
        """Answer the frame's calls to ``/api/jobs...`` from now on."""
        page.route(JOBS_URL, self.handle)

    # -- the fake --------------------------------------------------------------------------

    def _items(self, orders: list[tuple[int, str]]) -> list[FakeItem]:
        items = []
        for order_id, number in orders:
            item = FakeItem(order_id, number)
            if order_id in self.failing:
                item.outcome, item.error_code, item.reason = (
                    "failed",
                    "order_not_found",
                    self.failing[order_id],
                )
            elif order_id in self.already:
                item.outcome = "already_bound"
            elif order_id in self.replaced:
                item.outcome, item.replaced = "replaced", self.replaced[order_id]
            items.append(item)
        return items

    def _new_job(self, kind: str, items: list[FakeItem]) -> FakeJob:
        job = FakeJob(len(self.jobs) + 1, kind, dict(self.owner), items)
        self.jobs[job.id] = job
        return job

    def _settle(self, item: FakeItem) -> None:
        item.state = item.outcome

    def _advance(self, job: FakeJob) -> None:
        """One poll's worth of work."""
        if job.state == "queued":
            job.state, job.started_at = "running", _now()
            return
        if job.state != "running":
            return
        pending = [item for item in job.items if item.state == "pending"]
        for item in pending[: self.step]:
            self._settle(item)
        done = len(job.items) - len(pending[self.step :])
        if self.pause_at is not None and done >= self.pause_at and job.kind == "bind":
            self.pause_at = None
            job.state, job.paused_reason = "paused", self.paused_reason
            return
        if not pending[self.step :]:
            job.state, job.finished_at = "done", _now()

    def _answer(self, route: Any, status: int, body: Any) -> None:
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    def _error(self, route: Any, status: int, code: str, message: str) -> None:
        self._answer(route, status, {"error": {"code": code, "message": message}})

    def _body(self, route: Any) -> Any:
        data = route.request.post_data
        return json.loads(data) if data else None

    def _chosen(self, body: dict[str, Any]) -> list[tuple[int, str]]:
        if "orderIds" in body:
            wanted = set(body["orderIds"])
            known = dict(self.orders)
            return [(order_id, known.get(order_id, str(order_id))) for order_id in sorted(wanted)]
        return list(self.orders)

    def handle(self, route: Any) -> None:
        """Dispatch one request by method and path."""
        request = route.request
        parts = urlsplit(request.url)
        path = parts.path.split("/api/jobs", 1)[1].strip("/")
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        body = self._body(route) if request.method == "POST" else None
        self.requests.append((request.method, path, body))
        if request.method == "POST" and self.refuse_writes:
            self._error(route, 403, "permission_denied", self.refuse_writes)
            return
        segments = path.split("/") if path else []
        if request.method == "GET" and not segments:
            jobs = sorted(self.jobs.values(), key=lambda job: -job.id)
            self._answer(route, 200, {"items": [job.view() for job in jobs], "nextCursor": None})
        elif request.method == "POST" and segments == ["preview"]:
            chosen = self._chosen(body)
            self._answer(
                route,
                200,
                {
                    "matched": len(chosen),
                    "replacing": sum(1 for oid, _ in chosen if oid in self.replaced),
                    "alreadyThere": sum(1 for oid, _ in chosen if oid in self.already),
                    "owner": self.owner,
                    "limit": 10_000,
                },
            )
        elif request.method == "POST" and segments == ["bind"]:
            job = self._new_job("bind", self._items(self._chosen(body)))
            self._answer(route, 202, {"job": job.view()})
        elif len(segments) >= 1 and segments[0].isdigit() and int(segments[0]) in self.jobs:
            self._job_request(route, self.jobs[int(segments[0])], segments[1:], query)
        else:
            self._error(route, 404, "not_found", "No such job.")

    def _job_request(
        self, route: Any, job: FakeJob, rest: list[str], query: dict[str, str]
    ) -> None:
        method = route.request.method
        if method == "GET" and not rest:
            self.polls[job.id] = self.polls.get(job.id, 0) + 1
            self._advance(job)
            self._answer(route, 200, {"job": job.view()})
        elif method == "GET" and rest == ["items"]:
            start = int(query.get("cursor") or 0)
            page = job.items[start : start + PAGE]
            more = start + PAGE < len(job.items)
            self._answer(
                route,
                200,
                {
                    "items": [item.view() for item in page],
                    "nextCursor": str(start + PAGE) if more else None,
                },
            )
        elif method == "POST" and rest == ["cancel"]:
            job.state, job.finished_at = "cancelled", _now()
            self._answer(route, 200, {"job": job.view()})
        elif method == "POST" and rest == ["retry-failed"]:
            for item in job.items:
                if item.state == "failed":
                    item.state, item.outcome = "pending", "bound"
            job.state, job.finished_at = "queued", None
            self._answer(route, 202, {"job": job.view()})
        elif method == "POST" and rest == ["undo"]:
            items = []
            for item in job.items:
                if item.state in ("bound", "replaced"):
                    back = FakeItem(item.order_id, item.number)
                    if item.state == "replaced":
                        back.outcome, back.replaced = "restored", item.replaced
                    else:
                        back.outcome = "unbound"
                    items.append(back)
            undo = self._new_job("undo", items)
            undo.undo_of = job.id
            job.undone_by = undo.id
            self._answer(route, 202, {"job": undo.view()})
        else:
            self._error(route, 404, "not_found", "No such job.")
