"""Benchmark 1: the sandbox's list methods on a small and a large seed, side by side.

Two sandboxes run at once, one seeded with ``small_size`` rows per table and one with
``large_size``. Every call shape the app sends (a lookup by ``=id``, a seek page by ``>id``,
a substring search, and a plain page with ``start=100``) is timed on both, alternating
between them call by call so that the machine's noise falls on both sides alike. The
verdict is the ratio of the medians: a call on the large seed should stay within
``TARGET_RATIO`` of the same call on the small one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from b24sandbox.config import SandboxConfig
from b24sandbox.server import RunningSandbox, start_sandbox
from bench.plan import Plan
from bench.timing import summarize, timed

TARGET_RATIO = 2.0
# The sandbox's leaky bucket, opened wide so that it never throttles a benchmark call.
OPEN_LIMITS = {"rps": 1_000_000, "burst": 1_000_000}
# Seeding 100,000 rows per table takes seconds; a reseed would too.
SLOW_TIMEOUT = 120.0

ORDER_SELECT = ("id", "accountNumber", "price", "currency", "statusId", "dateInsert")
ITEM_SELECT = ("id", "title", "opportunity", "currencyId", "stageId")


@dataclass(frozen=True)
class ListedEntity:
    """A table the app lists: its method, base parameters, result key and search field."""

    label: str
    method: str
    base: dict[str, Any]
    rows_key: str
    search_field: str
    select: tuple[str, ...]


ENTITIES = (
    ListedEntity("orders", "sale.order.list", {}, "orders", "accountNumber", ORDER_SELECT),
    ListedEntity("deals", "crm.item.list", {"entityTypeId": 2}, "items", "title", ITEM_SELECT),
    ListedEntity(
        "smart invoices", "crm.item.list", {"entityTypeId": 31}, "items", "title", ITEM_SELECT
    ),
)


@dataclass(frozen=True)
class MiddleRow:
    """The row halfway through a table: what lookups, seeks and searches aim at."""

    id: int
    search_value: str


ParamsBuilder = Callable[[ListedEntity, MiddleRow], dict[str, Any]]


def lookup_params(entity: ListedEntity, middle: MiddleRow) -> dict[str, Any]:
    """Build a lookup of one row by ``=id``, without the COUNT (``start=-1``)."""
    return {"filter": {"=id": middle.id}, "start": -1}


def seek_params(entity: ListedEntity, middle: MiddleRow) -> dict[str, Any]:
    """Build a seek page: 50 rows after ``>id``, ordered by id, without the COUNT."""
    return {"filter": {">id": middle.id}, "order": {"id": "ASC"}, "start": -1}


def search_params(entity: ListedEntity, middle: MiddleRow) -> dict[str, Any]:
    """Build a picker search: ``%field`` contains the middle row's value, without the COUNT."""
    return {"filter": {f"%{entity.search_field}": middle.search_value}, "start": -1}


def page_params(entity: ListedEntity, middle: MiddleRow) -> dict[str, Any]:
    """Build a plain third page (``start=100``), which counts ``total``."""
    return {"start": 100}


SHAPES: tuple[tuple[str, ParamsBuilder], ...] = (
    ("=id, start=-1", lookup_params),
    (">id, start=-1", seek_params),
    ("%search, start=-1", search_params),
    ("start=100", page_params),
)


@dataclass
class SeededPortal:
    """A running sandbox seeded with ``size`` rows per table, and a token to query it."""

    size: int
    running: RunningSandbox
    http: httpx.Client
    token: str
    seed_seconds: float
    middles: dict[str, MiddleRow] = field(default_factory=dict)

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """POST one REST call (JSON, ``auth`` in the body) and return its parsed answer."""
        response = self.http.post(
            f"{self.running.url}/rest/{method}", json={**params, "auth": self.token}
        )
        if response.status_code != 200:
            raise RuntimeError(f"{method} answered {response.status_code}: {response.text[:200]}")
        answer: dict[str, Any] = response.json()
        return answer


def start_seeded(size: int, http: httpx.Client) -> SeededPortal:
    """Start a sandbox with ``size`` orders, deals and smart invoices; open its rate limit."""
    config = SandboxConfig(
        host="127.0.0.1", port=0, orders=size, deals=size, invoices=size, owner_types=(2, 31)
    )
    seed_seconds, running = timed(lambda: start_sandbox(config))
    try:
        control = f"{running.url}/_sandbox"
        http.post(f"{control}/limits", json=OPEN_LIMITS).raise_for_status()
        token = http.post(f"{control}/token", json={"user_id": 1}).raise_for_status().json()
        portal = SeededPortal(size, running, http, token["access_token"], seed_seconds)
        for entity in ENTITIES:
            portal.middles[entity.label] = find_middle(portal, entity)
    except BaseException:
        running.stop()
        raise
    return portal


def rows_of(entity: ListedEntity, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rows of a list answer."""
    rows: list[dict[str, Any]] = answer["result"][entity.rows_key]
    return rows


def find_middle(portal: SeededPortal, entity: ListedEntity) -> MiddleRow:
    """Read the row halfway through the entity's table."""
    middle_id = max(1, portal.size // 2)
    answer = portal.call(
        entity.method,
        {
            **entity.base,
            "select": ["id", entity.search_field],
            "filter": {"=id": middle_id},
            "start": -1,
        },
    )
    rows = rows_of(entity, answer)
    if not rows:
        raise RuntimeError(f"{entity.label}: row {middle_id} is missing from the seed")
    return MiddleRow(middle_id, str(rows[0][entity.search_field]))


def request_params(
    portal: SeededPortal, entity: ListedEntity, build: ParamsBuilder
) -> dict[str, Any]:
    """Return the full parameters of one call shape on one portal."""
    shape = build(entity, portal.middles[entity.label])
    return {**entity.base, "select": list(entity.select), **shape}


def measure_case(
    entity: ListedEntity,
    shape: str,
    build: ParamsBuilder,
    small: SeededPortal,
    large: SeededPortal,
    plan: Plan,
) -> dict[str, Any]:
    """Time one call shape on both seeds, interleaved, and compare the medians."""
    params = {portal.size: request_params(portal, entity, build) for portal in (small, large)}
    rows: dict[int, int] = {}
    for portal in (small, large):
        for _ in range(plan.warmup_runs):
            rows[portal.size] = len(
                rows_of(entity, portal.call(entity.method, params[portal.size]))
            )
    samples: dict[int, list[float]] = {small.size: [], large.size: []}
    for run in range(plan.list_runs):
        order = (small, large) if run % 2 == 0 else (large, small)
        for portal in order:
            seconds, _ = timed(partial(portal.call, entity.method, params[portal.size]))
            samples[portal.size].append(seconds)
    small_summary, large_summary = summarize(samples[small.size]), summarize(samples[large.size])
    case_ratio = round(large_summary.median_ms / small_summary.median_ms, 2)
    return {
        "entity": entity.label,
        "method": entity.method,
        "shape": shape,
        "params": params[large.size],
        "small": {**small_summary.as_dict(), "rows": rows[small.size]},
        "large": {**large_summary.as_dict(), "rows": rows[large.size]},
        "ratio": case_ratio,
        "within_target": case_ratio <= TARGET_RATIO,
    }


def run_sandbox_lists(plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    """Run benchmark 1 and return its JSON-ready result."""
    started = time.perf_counter()
    portals: list[SeededPortal] = []
    with httpx.Client(timeout=SLOW_TIMEOUT) as http:
        try:
            for size in (plan.small_size, plan.large_size):
                progress(f"seeding a sandbox with {size:,} rows per table")
                portals.append(start_seeded(size, http))
            small, large = portals
            cases = []
            for entity in ENTITIES:
                for shape, build in SHAPES:
                    progress(f"timing {entity.method} ({entity.label}) {shape}")
                    cases.append(measure_case(entity, shape, build, small, large, plan))
        finally:
            for portal in portals:
                portal.running.stop()
    return {
        "sizes": {"small": plan.small_size, "large": plan.large_size},
        "seed_seconds": {str(p.size): round(p.seed_seconds, 2) for p in portals},
        "target_ratio": TARGET_RATIO,
        "cases": cases,
        "target_met": all(case["within_target"] for case in cases),
        "seconds": round(time.perf_counter() - started, 1),
    }
