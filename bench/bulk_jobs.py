"""Benchmark 3: bulk binding jobs against a portal at Bitrix24's default limit.

The sandbox portal drains 2 requests per second and refuses above 50 (its default); the
app keeps its own client-side bucket (threshold 40). A job fills it to 40 while the portal's
users are away, and to three quarters of it (30) for 30 s after any web request that
called Bitrix24, such as the POST that started the job.
A job worker runs in this process (``WorkerThread``) against the app served over HTTP.
Each job is started with ``POST /api/jobs/bind`` and polled with ``GET /api/jobs/<id>``
until it is done; its wall time runs from just before the POST to the job's
``finishedAt``. Every job binds its own range of orders, so each starts from the seed.

The lower bound of a job of ``batches`` batch requests is what an ideal client would need
on an empty bucket: the last batch cannot be sent before ``(batches - 50) / 2`` seconds
(the portal drains 2 per second beyond its burst of 50), nor before the ``batches - 1``
round trips ahead of it, and it needs one more round trip itself. A round trip is timed
on the same sandbox with its limit opened: one batch of the job's shape (an owner read
plus 49 adds) sent through the app's REST client, a few before every job.

Before each job the benchmark waits until the portal's bucket (its level computed from the
times of the requests in the sandbox's call log) is empty, or low enough that the job never
reaches its share of it: either way the job runs as it would on an empty bucket. The round
trips are timed during that wait, so next to the jobs they bound.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from b24app.bitrix.ratelimit import RateLimiter
from b24app.jobs.orders import owners_command
from b24app.jobs.service import BIND_BATCH, bind_batch_size
from b24app.jobs.worker import WorkerThread
from b24app.services.bindings import Triple
from b24app.services.tokens import token_source
from bench.plan import Plan
from bench.sandbox_lists import OPEN_LIMITS
from bench.stand import Stand, database_kind, open_client, running_stand
from bench.timing import summarize, timed

ADMIN = 1
# Bitrix24's default intensity limit: the bucket drains RATE per second, refuses above BURST.
RATE = 2.0
BURST = 50
DEFAULT_LIMITS = {"rps": RATE, "burst": BURST}
_LIMITER = RateLimiter()
# The level a job fills the portal's bucket to on a quiet portal (40), and while its users
# are active (0.75 x 40 = 30): a job starts at the latter, its POST being a web request.
JOB_THRESHOLD = _LIMITER.threshold
BUSY_JOB_THRESHOLD = _LIMITER.background_share * _LIMITER.threshold
# Every job binds its orders to this deal; the round trips alternate between two others.
OWNER = (2, 9)
ROUND_TRIP_OWNERS = (10, 11)
REFUSED = "QUERY_LIMIT_EXCEEDED"
# How often the idle worker looks for a job, and how often the bench polls a running one.
WORKER_POLL_SECONDS = 0.05
JOB_POLL_SECONDS = 0.25
FINAL_STATES = ("done", "cancelled", "paused")


def batches_for(orders: int) -> int:
    """Return the batch requests a job of ``orders`` orders sends (48 or 49 adds each)."""
    return math.ceil(orders / bind_batch_size(orders))


def runs_for(orders: int, plan: Plan) -> int:
    """Run a job that fits in one burst ``plan.bulk_runs`` times, a larger one once."""
    return plan.bulk_runs if batches_for(orders) <= BURST else 1


def orders_needed(plan: Plan) -> int:
    """Return the orders to seed: a fresh range for every job, and one batch to spare."""
    return sum(size * runs_for(size, plan) for size in plan.bulk_sizes) + BIND_BATCH


def lower_bound(batches: int, round_trip: float, threshold: float = BURST) -> float:
    """Return the seconds an ideal serial client needs for ``batches`` on an empty bucket."""
    last_sent = max(max(0, batches - threshold) / RATE, (batches - 1) * round_trip)
    return last_sent + round_trip


def bucket_level(times: Iterable[float], at: float) -> float:
    """Return a leaky bucket's level at ``at`` after one request at each of ``times``."""
    level, last = 0.0, None
    for moment in sorted(times):
        if last is not None:
            level = max(0.0, level - (moment - last) * RATE)
        level, last = level + 1.0, moment
    return 0.0 if last is None else max(0.0, level - (at - last) * RATE)


def requests_of(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the HTTP requests of a call log (commands inside a batch are logged apart)."""
    return [call for call in calls if not call.get("batch")]


def room_needed(batches: int) -> float:
    """Return the bucket level a job may start at and run exactly as on an empty bucket.

    A job that fits below its share on a busy portal with the POST's own owner read (and
    one to spare) is never held back by a partly filled bucket; a larger one needs the
    bucket empty.
    """
    needed = batches + 2
    return BUSY_JOB_THRESHOLD - needed if needed <= BUSY_JOB_THRESHOLD else 0.0


def drain_seconds(stand: Stand, batches: int) -> float:
    """Return how long the portal's bucket needs to drain enough for a job."""
    log = stand.control("calls", method="GET")["calls"]
    level = bucket_level((c["ts"] for c in requests_of(log)), time.time())
    allowed = room_needed(batches)
    # The app counts a request when it reserves it, a little before the sandbox logs it.
    return (level - allowed) / RATE + 0.25 if level > allowed else 0.0


def run_window(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the calls the sandbox logged between two snapshots of its call log."""
    logged = sum(after["counts"].values()) - sum(before["counts"].values())
    calls = after["calls"]
    if logged > len(calls):
        raise RuntimeError("the sandbox's call log dropped calls of this run")
    return calls[len(calls) - logged :] if logged else []


def bindings(stand: Stand, first: int, last: int) -> int:
    """Count the orders ``first..last`` the sandbox has bound to ``OWNER``."""
    sandbox = stand.sandbox.sandbox
    rows = sandbox.db.query(
        "SELECT COUNT(*) FROM crm_order_entity WHERE portal_id = ? AND owner_type_id = ?"
        " AND owner_id = ? AND order_id BETWEEN ? AND ?",
        (sandbox.portals[0].id, *OWNER, first, last),
    )
    return int(rows[0][0])


@dataclass(frozen=True)
class JobRun:
    """One job from the POST to ``done``, and what the sandbox answered meanwhile."""

    orders: int
    first_order: int
    seconds: float
    post_seconds: float
    drained_seconds: float
    state: str
    counts: dict[str, Any]
    bindings: int
    requests: int
    batch_requests: int
    refused: int
    other_errors: int
    by_method: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready values (times in milliseconds)."""
        return {
            "orders": self.orders,
            "first_order": self.first_order,
            "wall_ms": round(self.seconds * 1000.0, 1),
            "post_ms": round(self.post_seconds * 1000.0, 1),
            "waited_for_bucket_ms": round(self.drained_seconds * 1000.0, 1),
            "state": self.state,
            "counts": self.counts,
            "bindings": self.bindings,
            "requests": self.requests,
            "batch_requests": self.batch_requests,
            "refused": self.refused,
            "other_errors": self.other_errors,
            "requests_by_method": self.by_method,
        }


def wait_for_job(stand: Stand, session: str, job_id: int, timeout: float) -> dict[str, Any]:
    """Poll the job until it is done (or stops otherwise); return its last view."""
    deadline = time.monotonic() + timeout
    while True:
        response = stand.api("GET", f"/jobs/{job_id}", session)
        if response.status_code != 200:
            raise RuntimeError(f"GET /api/jobs/{job_id} answered {response.status_code}")
        job: dict[str, Any] = response.json()["job"]
        if job["state"] in FINAL_STATES:
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} still {job['state']} after {timeout:.0f} s")
        time.sleep(JOB_POLL_SECONDS)


def run_job(stand: Stand, session: str, first: int, size: int, drained: float) -> JobRun:
    """Start one job on orders ``first..first+size-1`` and follow it to the end."""
    before = stand.control("calls", method="GET")
    body: dict[str, Any] = {
        "orderIds": list(range(first, first + size)),
        "ownerTypeId": OWNER[0],
        "ownerId": OWNER[1],
    }
    sent = datetime.now(UTC)
    post_seconds, response = timed(lambda: stand.api("POST", "/jobs/bind", session, body))
    if response.status_code != 202:
        raise RuntimeError(f"POST /api/jobs/bind answered {response.status_code}")
    job_id = response.json()["job"]["id"]
    timeout = 60.0 + 3 * lower_bound(batches_for(size), 0.5)
    job = wait_for_job(stand, session, job_id, timeout)
    after = stand.control("calls", method="GET")
    if job["state"] != "done" or not job["finishedAt"]:
        raise RuntimeError(f"job {job_id} ended {job['state']} ({job.get('pausedReason')})")
    finished = datetime.fromisoformat(job["finishedAt"])
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)
    requests = requests_of(run_window(before, after))
    refused = sum(1 for c in requests if c["error"] == REFUSED)
    return JobRun(
        orders=size,
        first_order=first,
        seconds=(finished - sent).total_seconds(),
        post_seconds=post_seconds,
        drained_seconds=drained,
        state=job["state"],
        counts=job["counts"],
        bindings=bindings(stand, first, first + size - 1),
        requests=len(requests),
        batch_requests=after["counts"].get("batch", 0) - before["counts"].get("batch", 0),
        refused=refused,
        other_errors=sum(1 for c in requests if c["status"] != 200) - refused,
        by_method=dict(Counter(c["method"] for c in requests)),
    )


class RoundTrips:
    """Times batches of a job's shape (owner read + 49 adds) with the limit opened wide.

    They go through a REST client of the app's own connection pool whose bucket never
    throttles, on orders no job binds, so they leave the app's bucket as it was; the
    portal's limit is set back to the default afterwards, which empties its bucket.
    """

    def __init__(self, stand: Stand, plan: Plan, portal_id: int, first_order: int) -> None:
        self.stand = stand
        self.warmup = plan.warmup_runs
        self.portal_id = portal_id
        self.ids = list(range(first_order, first_order + BIND_BATCH))
        self.client = open_client(stand.app)
        self.sent = 0
        self.samples: list[float] = []

    def _one(self, source: Any) -> float:
        """Send one batch that rebinds every spare order; return its wall time."""
        # Alternate owners so that every add rebinds, as a job's first pass does.
        owner = ROUND_TRIP_OWNERS[self.sent % 2]
        self.sent += 1
        commands: dict[str, tuple[str, Any]] = {"owners": owners_command(self.ids)}
        for order_id in self.ids:
            fields = Triple(order_id, OWNER[0], owner).fields()
            commands[f"a{order_id}"] = ("crm.orderentity.add", {"fields": fields})
        seconds, answer = timed(lambda: self.client.batch(source, commands))
        if answer.errors:
            raise RuntimeError(f"a round-trip batch failed: {sorted(answer.errors)[:3]}")
        return seconds

    def sample(self, count: int) -> None:
        """Time ``count`` batches (after the warm-up ones, the first time)."""
        self.stand.control("limits", OPEN_LIMITS)
        try:
            with self.stand.app.app_context():
                source = token_source(self.portal_id, ADMIN)
                while self.sent < self.warmup:
                    self._one(source)
                self.samples.extend(self._one(source) for _ in range(count))
        finally:
            self.stand.control("limits", DEFAULT_LIMITS)


def pause_before_job(stand: Stand, batches: int, round_trips: RoundTrips, count: int) -> float:
    """Wait for the bucket to drain for the next job, timing round trips meanwhile.

    Return the seconds the bucket needed (the pause is longer if the round trips are).
    """
    wait = drain_seconds(stand, batches)
    deadline = time.monotonic() + wait
    round_trips.sample(count)
    time.sleep(max(0.0, deadline - time.monotonic()))
    return wait


def summarize_size(size: int, runs: list[JobRun], round_trip: float) -> dict[str, Any]:
    """Summarize the runs of one job size against its lower bound."""
    batches = batches_for(size)
    wall = summarize([r.seconds for r in runs])
    bound = lower_bound(batches, round_trip)
    share_bound = lower_bound(batches, round_trip, JOB_THRESHOLD)
    median_run = sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]
    return {
        "orders": size,
        "batches": batches,
        "runs": len(runs),
        "wall": wall.as_dict(),
        "bound_ms": round(bound * 1000.0, 1),
        "over_bound": round(wall.median_ms / (bound * 1000.0), 2),
        "job_share_bound_ms": round(share_bound * 1000.0, 1),
        "over_job_share_bound": round(wall.median_ms / (share_bound * 1000.0), 2),
        "requests": median_run.requests,
        "requests_per_50_orders": round(median_run.requests / (size / 50), 3),
        "batch_requests": median_run.batch_requests,
        "refused": sum(r.refused for r in runs),
        "all_bound": all(r.bindings == r.orders and r.counts["failed"] == 0 for r in runs),
        "per_run": [r.as_dict() for r in runs],
    }


def run_bulk_jobs(
    plan: Plan, database_url: str | None, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Run benchmark 3 and return its JSON-ready result."""
    started = time.perf_counter()
    seed = orders_needed(plan)
    progress(f"starting the app on {database_kind(database_url)} with {seed:,} sandbox orders")
    seed_started = time.perf_counter()
    with running_stand(database_url, orders=seed, client_limit=True) as stand:
        seed_seconds = time.perf_counter() - seed_started
        stand.install()
        portal_id = stand.portal_id()
        session = stand.session(stand.token(ADMIN))
        stand.control("limits", DEFAULT_LIMITS)
        worker = WorkerThread(stand.app, poll_interval=WORKER_POLL_SECONDS).start()
        round_trips = RoundTrips(stand, plan, portal_id, seed - BIND_BATCH + 1)
        runs: dict[int, list[JobRun]] = {}
        first = 1
        try:
            for size in plan.bulk_sizes:
                count = runs_for(size, plan)
                for run in range(count):
                    progress(
                        f"bulk job of {size:,} orders ({run + 1} of {count}), "
                        f"at {RATE:g} requests/s and burst {BURST}"
                    )
                    drained = pause_before_job(
                        stand, batches_for(size), round_trips, plan.round_trips_per_job
                    )
                    runs.setdefault(size, []).append(run_job(stand, session, first, size, drained))
                    first += size
        finally:
            worker.stop()
    round_trip_summary = summarize(round_trips.samples)
    round_trip = round_trip_summary.median_ms / 1000.0
    return {
        "database": database_kind(database_url),
        "limits": DEFAULT_LIMITS,
        "job_threshold": JOB_THRESHOLD,
        "batch_size": BIND_BATCH,
        "seeded_orders": seed,
        "stand_seconds": round(seed_seconds, 1),
        "round_trip": round_trip_summary.as_dict(),
        "sizes": [summarize_size(size, runs[size], round_trip) for size in plan.bulk_sizes],
        "seconds": round(time.perf_counter() - started, 1),
    }
