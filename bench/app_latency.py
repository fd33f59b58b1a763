"""Benchmark 2: the app's latency over HTTP against the sandbox portal.

- ``POST /app`` (opening the app): cold with a token the app has never seen, which costs a
  verification call (``app.info``) to the OAuth server, and warm with the same token posted
  again, answered from the app's verification cache.
- ``GET /api/me`` with a bearer session token: warm while the portal's owner types are
  cached (no call to the portal), cold after they are forgotten (one portal call with the
  user's stored, encrypted token).
- A burst of concurrent ``GET /api/me`` on an expired token chain: how many refreshes the
  OAuth server saw (one is right: refresh is single-flight) and the burst's wall time,
  against the same burst on a fresh token.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import httpx

from b24app.services import catalog
from bench.plan import Plan
from bench.stand import Stand, database_kind, running_stand
from bench.timing import ratio, summarize, timed

ADMIN, MANAGER = 1, 2
# How long the short-lived portal token lives before the 401 burst (room for a slow open).
SHORT_TOKEN_SECONDS = 2


def count_delta(before: dict[str, int], after: dict[str, int]) -> Counter[str]:
    """Return what the sandbox answered between two snapshots of its counts."""
    delta: Counter[str] = Counter()
    for key, value in after.items():
        if value - before.get(key, 0):
            delta[key] = value - before.get(key, 0)
    return delta


def rest_calls(delta: Counter[str]) -> int:
    """Return the number of REST calls in a delta (refreshes are token calls, not REST)."""
    return sum(n for key, n in delta.items() if key != "refreshes")


def cold_and_warm(
    samples: dict[str, list[float]], calls_key: str, calls: Counter[str], runs: int
) -> dict[str, Any]:
    """Summarize cold and warm timings, their ratio and the calls each phase made per run."""
    cold, warm = summarize(samples["cold"]), summarize(samples["warm"])
    return {
        "cold": cold.as_dict(),
        "warm": warm.as_dict(),
        "cold_over_warm": ratio(cold, warm),
        calls_key: {phase: round(calls[phase] / runs, 2) for phase in ("cold", "warm")},
    }


def measure_opens(stand: Stand, plan: Plan) -> dict[str, Any]:
    """Time opening the app cold (new token, verified) and warm (same token, cached)."""
    samples: dict[str, list[float]] = {"cold": [], "warm": []}
    app_info: Counter[str] = Counter()
    for run in range(plan.warmup_runs + plan.open_runs):
        tokens = stand.token(ADMIN)
        for phase in ("cold", "warm"):
            before = stand.counts()
            seconds, response = timed(partial(stand.open, tokens))
            if response.status_code != 200:
                raise RuntimeError(f"{phase} open answered {response.status_code}")
            if run >= plan.warmup_runs:
                samples[phase].append(seconds)
                app_info[phase] += count_delta(before, stand.counts())["app.info"]
    return cold_and_warm(samples, "app_info_calls_per_open", app_info, plan.open_runs)


def measure_me(stand: Stand, plan: Plan, portal_id: int) -> dict[str, Any]:
    """Time ``GET /api/me`` warm (stored names) and cold (one portal call)."""
    session = stand.session(stand.token(ADMIN))
    samples: dict[str, list[float]] = {"cold": [], "warm": []}
    portal_calls: Counter[str] = Counter()
    for run in range(plan.warmup_runs + plan.me_runs):
        phases = ("cold", "warm") if run % 2 == 0 else ("warm", "cold")
        for phase in phases:
            if phase == "cold":
                stand.forget_names(portal_id)
            before = stand.counts()
            seconds, response = timed(lambda: stand.me(session))
            if response.status_code != 200 or response.json()["bitrix_auth"] != "ok":
                raise RuntimeError(f"{phase} /api/me answered {response.status_code}")
            if run >= plan.warmup_runs:
                samples[phase].append(seconds)
                portal_calls[phase] += rest_calls(count_delta(before, stand.counts()))
    return cold_and_warm(samples, "portal_calls_per_request", portal_calls, plan.me_runs)


@dataclass(frozen=True)
class BurstOutcome:
    """One burst: its wall time, its failed answers, and what the sandbox saw meanwhile."""

    seconds: float
    failed: int
    refreshes: int
    rest_calls: int


@contextmanager
def owner_types_uncached() -> Iterator[None]:
    """Keep the app from using stored names, so every ``/api/me`` needs the user's token.

    Forgetting the names before each concurrent call is not enough: the first answer
    stores them again and the later calls would never touch the token chain.
    """
    saved = catalog.CATALOG_TTL
    catalog.CATALOG_TTL = timedelta(seconds=-1)
    try:
        yield
    finally:
        catalog.CATALOG_TTL = saved


class Burst:
    """Fires ``size`` concurrent ``GET /api/me`` calls, released together by a barrier."""

    def __init__(self, stand: Stand, portal_id: int, size: int) -> None:
        self.stand = stand
        self.portal_id = portal_id
        self.size = size
        self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="bench-burst")

    def close(self) -> None:
        """Stop the worker threads."""
        self.pool.shutdown(wait=True)

    def _one(self, barrier: threading.Barrier, session: str) -> tuple[float, float, bool]:
        """Wait for the others, then make one call that needs the user's token."""
        barrier.wait(timeout=30)
        started = time.perf_counter()
        try:
            response = self.stand.me(session)
        except httpx.HTTPError:
            return started, time.perf_counter(), False
        finished = time.perf_counter()
        ok = response.status_code == 200 and response.json().get("bitrix_auth") == "ok"
        return started, finished, ok

    def fire(self, session: str) -> BurstOutcome:
        """Run one burst and return its outcome."""
        self.stand.forget_names(self.portal_id)
        before = self.stand.counts()
        barrier = threading.Barrier(self.size)
        futures = [self.pool.submit(self._one, barrier, session) for _ in range(self.size)]
        results = [future.result(timeout=180) for future in futures]
        delta = count_delta(before, self.stand.counts())
        wall = max(r[1] for r in results) - min(r[0] for r in results)
        failed = sum(1 for r in results if not r[2])
        return BurstOutcome(wall, failed, delta["refreshes"], rest_calls(delta))


def expire_in_store(stand: Stand) -> str:
    """Mark the manager's stored token expired (the app refreshes before calling)."""
    session = stand.session(stand.token(MANAGER))
    stand.expire_stored_token(MANAGER)
    return session


def expire_at_portal(stand: Stand) -> str:
    """Open with a token that dies in two seconds while the app believes it lives an hour.

    The sandbox clock then moves past those two seconds (nothing waits for them), so the
    calls meet the portal's own 401 ``expired_token`` and refresh after it.
    """
    short = stand.token(MANAGER, expires_in=SHORT_TOKEN_SECONDS)
    session = stand.session({**short, "expires_in": 3600})
    stand.control("clock", {"advance": SHORT_TOKEN_SECONDS})
    return session


def fresh_token(stand: Stand) -> str:
    """Open with a fresh token: the burst needs no refresh (the baseline)."""
    return stand.session(stand.token(MANAGER))


BURST_MODES: tuple[tuple[str, Callable[[Stand], str]], ...] = (
    ("fresh", fresh_token),
    ("expired_in_store", expire_in_store),
    ("expired_at_portal", expire_at_portal),
)


def measure_refresh(stand: Stand, plan: Plan, portal_id: int) -> dict[str, Any]:
    """Fire bursts on a fresh and on expired chains; count refreshes, time the bursts."""
    burst = Burst(stand, portal_id, plan.burst_size)
    outcomes: dict[str, list[BurstOutcome]] = {mode: [] for mode, _ in BURST_MODES}
    try:
        with owner_types_uncached():
            burst.fire(fresh_token(stand))  # warm-up: connections, threads
            for _ in range(plan.bursts):
                for mode, prepare in BURST_MODES:
                    outcomes[mode].append(burst.fire(prepare(stand)))
    finally:
        burst.close()
    fresh = summarize([o.seconds for o in outcomes["fresh"]])
    result: dict[str, Any] = {"concurrency": plan.burst_size, "bursts": plan.bursts}
    for mode, _ in BURST_MODES:
        wall = summarize([o.seconds for o in outcomes[mode]])
        result[mode] = {
            "wall": wall.as_dict(),
            "over_fresh": ratio(wall, fresh),
            "refreshes": [o.refreshes for o in outcomes[mode]],
            "portal_calls": [o.rest_calls for o in outcomes[mode]],
            "failed_requests": sum(o.failed for o in outcomes[mode]),
        }
    return result


def run_app_latency(
    plan: Plan, database_url: str | None, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Run benchmark 2 and return its JSON-ready result."""
    started = time.perf_counter()
    progress(f"starting the app on {database_kind(database_url)} with a sandbox portal")
    with running_stand(database_url) as stand:
        stand.install()
        portal_id = stand.portal_id()
        progress("timing POST /app, cold and warm")
        opens = measure_opens(stand, plan)
        progress("timing GET /api/me, cold and warm")
        me = measure_me(stand, plan, portal_id)
        progress(f"firing {plan.burst_size} concurrent GET /api/me on expired tokens")
        refresh = measure_refresh(stand, plan, portal_id)
    return {
        "database": database_kind(database_url),
        "open": opens,
        "me": me,
        "refresh": refresh,
        "seconds": round(time.perf_counter() - started, 1),
    }
