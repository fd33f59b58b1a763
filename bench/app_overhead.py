"""The app as deployed: gunicorn, 4 workers, PostgreSQL and Redis, against a sandbox process.

Measured on :func:`bench.gunicorn_stand.gunicorn_stand`, by a bounded load client (a fixed
number of client threads, each with its own keep-alive ``httpx`` client):

- **Overhead**: for each action (open, picker page, bind) the app's request and the
  identical upstream call(s) sent straight to the sandbox by the same client, one pair
  after the other (alternating which goes first), one action at a time.
  The app's added latency is the app's percentile minus the sandbox's, per round; the
  figure is the median over rounds. Warm-up pairs are discarded.
- **Calls and CPU**: each action alone for a window of requests: the upstream HTTP
  requests per action from the sandbox's call log, and the CPU (user + system) the
  gunicorn workers used per request from ``/proc/<pid>/stat``.
- **Refresh storm**: 100 concurrent picker requests of one user on an expired token
  chain (expired in the app's store, or at the portal only): refreshes the OAuth server
  answered, failed requests, and whether the stored pair works afterwards.
- **Search at scale**: picker pages and searches on the seeded orders and deals, through
  the app against the sandbox's own time for the same batch, every list ``start=-1``.
- **Memory**: each worker's RSS after the warm-up and after every checkpoint of requests.
"""

from __future__ import annotations

import math
import queue
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from b24app.bitrix.encoding import batch_command
from b24app.services.bindings import (
    CURRENT,
    Triple,
    current_command,
    owner_of_current_commands,
)
from b24app.services.catalog import Catalog
from b24app.services.owners import owner_kind
from b24app.services.permissions import PROBE_COMMANDS
from b24app.services.pickers import Command, order_list_command
from bench.bulk_jobs import requests_of, run_window
from bench.gunicorn_stand import (
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    WORKERS,
    GunicornStand,
    StandUnavailable,
    check_services,
    gunicorn_stand,
)
from bench.plan import Plan
from bench.stand import HTTP_TIMEOUT
from bench.timing import timed

ADMIN, MANAGER = 1, 2
DEAL = 2
# Offered by the sandbox's default portal (deals and smart invoices).
CATALOG = Catalog(owner_types=[{"id": 2, "name": "Deal"}, {"id": 31, "name": "Invoice"}])
TARGETS = {"added_p50_ms": 3.0, "added_p99_ms": 15.0}
CALL_TARGETS = {"open": 2.0, "picker page": 1.0, "bind": 1.0, "unbind": 1.0}
BULK_CALL_TARGET = 1.05  # requests per 50 orders
# RSS growth per worker between the last two checkpoints that still counts as noise.
RSS_NOISE_KIB = 2048
SHORT_TOKEN_SECONDS = 2

Post = tuple[str, dict[str, Any]]
AppCall = Callable[[httpx.Client, int], httpx.Response]


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile (``share`` of 1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def batch_post(stand: GunicornStand, token: str, commands: Mapping[str, Command]) -> Post:
    """Return the ``batch`` request the app sends for ``commands`` with ``token``."""
    cmd = {key: batch_command(method, params) for key, (method, params) in commands.items()}
    return f"{stand.sandbox_url}/rest/batch", {"halt": 0, "cmd": cmd, "auth": token}


def app_info_post(stand: GunicornStand, token: str) -> Post:
    """Return the ``app.info`` request the app sends to verify a posted token."""
    return f"{stand.oauth_url}/rest/app.info", {"auth": token}


def send_direct(http: httpx.Client, posts: list[Post]) -> None:
    """Send the upstream requests straight to the sandbox; fail on any error answer."""
    for url, body in posts:
        response = http.post(url, json=body)
        answer = response.json()
        if response.status_code != 200 or "error" in answer or answer.get("result_error"):
            raise RuntimeError(f"direct {url.rsplit('/', 1)[1]} failed: {response.text[:300]}")


@dataclass(frozen=True)
class Case:
    """One action: the app's request and the identical upstream requests, by sample index."""

    name: str
    app: AppCall
    upstream: Callable[[int], list[Post]]
    ok: Callable[[httpx.Response], bool] = lambda response: response.status_code == 200


class Pool:
    """A fixed number of client threads, each with its own keep-alive ``httpx`` client."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.clients = [httpx.Client(timeout=HTTP_TIMEOUT) for _ in range(size)]

    def close(self) -> None:
        """Close every client."""
        for client in self.clients:
            client.close()

    def run(self, tasks: list[Any], work: Callable[[httpx.Client, Any], None]) -> float:
        """Run ``work(client, task)`` for every task, in order, on the pool; return the wall."""
        pending: queue.Queue[Any] = queue.Queue()
        for task in tasks:
            pending.put(task)
        errors: list[BaseException] = []

        def loop(client: httpx.Client) -> None:
            while not errors:
                try:
                    task = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    work(client, task)
                except BaseException as exc:  # reported below, in the caller's thread
                    errors.append(exc)

        threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in self.clients]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return time.perf_counter() - started


def measure_pairs(
    pool: Pool, cases: list[Case], pairs: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    """Time app/sandbox pairs of every case, one case at a time; return the kept samples (s).

    The sandbox serves one request at a time, so a request of one client thread may wait for
    the other thread's. Within a case the pairs alternate which side goes first, so while one
    thread sends its app request the other sends its twin, and both sides meet the same
    load. With the pairs of all cases in one queue, the threads fell into step with one
    thread on the picker page while the other opened the app: in some runs every picker
    request met an open's sandbox calls and its twin never did (11 ms "added" against 3).
    """
    samples: dict[str, dict[str, list[float]]] = {
        case.name: {"app": [], "sandbox": []} for case in cases
    }
    lock = threading.Lock()

    def pair(client: httpx.Client, task: tuple[Case, int]) -> None:
        case, index = task
        posts = case.upstream(index)
        app_first = index % 2 == 0
        if not app_first:
            direct, _ = timed(lambda: send_direct(client, posts))
        app, response = timed(lambda: case.app(client, index))
        if not case.ok(response):
            raise RuntimeError(f"{case.name}: the app answered {response.status_code}")
        if app_first:
            direct, _ = timed(lambda: send_direct(client, posts))
        if index >= warmup:
            with lock:
                samples[case.name]["app"].append(app)
                samples[case.name]["sandbox"].append(direct)

    for case in cases:
        pool.run([(case, i) for i in range(warmup + pairs)], pair)
    return samples


def round_figures(app: list[float], sandbox: list[float]) -> dict[str, float]:
    """Return one round's percentiles in ms: the app, the sandbox, and the difference."""
    figures: dict[str, float] = {}
    for name, share in (("p50", 0.5), ("p99", 0.99)):
        app_ms, sandbox_ms = percentile(app, share) * 1000, percentile(sandbox, share) * 1000
        figures[f"app_{name}_ms"] = round(app_ms, 3)
        figures[f"sandbox_{name}_ms"] = round(sandbox_ms, 3)
        figures[f"added_{name}_ms"] = round(app_ms - sandbox_ms, 3)
    return figures


class Actions:
    """The app requests of the benchmark and their upstream twins, on one stand."""

    def __init__(self, stand: GunicornStand) -> None:
        self.stand = stand
        admin = stand.token(ADMIN)
        self.session = stand.session(admin)
        # The token the upstream twins are sent with (the app uses the stored one).
        self.direct_token = stand.token(ADMIN)["access_token"]
        self.open_tokens: dict[int, dict[str, Any]] = {}

    def issue_open_tokens(self, count: int) -> None:
        """Issue a fresh token for every open about to be timed (outside the timing)."""
        self.open_tokens = {i: self.stand.token(ADMIN) for i in range(count)}

    def auth(self) -> dict[str, str]:
        """Return the bearer header of the admin's session."""
        return {"Authorization": f"Bearer {self.session}"}

    def open(self, client: httpx.Client, index: int) -> httpx.Response:
        """Open the app with a token it has never seen (verified with ``app.info``)."""
        stand = self.stand
        query, form = stand.frame_fields(self.open_tokens[index])
        return client.post(f"{stand.app_url}/app?{urlencode(query)}", data=form)

    def open_upstream(self, index: int) -> list[Post]:
        """Return ``app.info`` and the probe batch of one open, with that open's token."""
        token = self.open_tokens[index]["access_token"]
        return [app_info_post(self.stand, token), batch_post(self.stand, token, PROBE_COMMANDS)]

    def orders(self, client: httpx.Client, query: str = "") -> httpx.Response:
        """Ask the app for the first page of the order picker."""
        params = {"q": query} if query else {}
        return client.get(f"{self.stand.app_url}/api/orders", params=params, headers=self.auth())

    def owners(self, client: httpx.Client, query: str = "") -> httpx.Response:
        """Ask the app for the first page of the deal picker."""
        params: dict[str, Any] = {"type": DEAL, **({"q": query} if query else {})}
        return client.get(f"{self.stand.app_url}/api/owners", params=params, headers=self.auth())

    def orders_upstream(self, query: str = "") -> list[Post]:
        """Return the batch of one order picker page, as the app builds it."""
        text = query.strip()
        commands: dict[str, Command] = {
            "found": order_list_command({"%accountNumber": text} if text else {})
        }
        if text.isdigit():
            commands["exact"] = order_list_command({"=id": int(text)})
        return [batch_post(self.stand, self.direct_token, commands)]

    def owners_upstream(self, query: str = "") -> list[Post]:
        """Return the batch of one deal picker page, as the app builds it."""
        kind = owner_kind(DEAL)
        assert kind is not None
        text = query.strip()
        commands: dict[str, Command] = {
            "found": kind.list_command(kind.search_filter(text) if text else {})
        }
        if text.isdigit():
            commands["exact"] = kind.by_id(int(text))
        return [batch_post(self.stand, self.direct_token, commands)]

    @staticmethod
    def bind_triple(index: int, offset: int) -> Triple:
        """Return the triple of sample ``index``: every bind replaces the order's owner."""
        return Triple(1 + index % 100, DEAL, 1 + offset + index % 2)

    def bind(self, client: httpx.Client, index: int) -> httpx.Response:
        """Bind an order to a deal through the app."""
        triple = self.bind_triple(index, 0)
        body = {"orderId": triple.order_id, "ownerTypeId": DEAL, "ownerId": triple.owner_id}
        return client.post(f"{self.stand.app_url}/api/bindings", json=body, headers=self.auth())

    def bind_upstream(self, index: int) -> list[Post]:
        """Return the app's bind batch for the same order and another deal."""
        triple = self.bind_triple(index, 2)
        kind = owner_kind(DEAL)
        assert kind is not None
        commands: dict[str, Command] = {
            "order": order_list_command({"=id": triple.order_id}),
            CURRENT: current_command(triple.order_id),
            **owner_of_current_commands(CATALOG, CURRENT),
            "owner": kind.by_id(triple.owner_id),
            "add": ("crm.orderentity.add", {"fields": triple.fields()}),
        }
        return [batch_post(self.stand, self.direct_token, commands)]

    def unbind(self, client: httpx.Client, triple: Triple) -> httpx.Response:
        """Unbind an order from the deal it is bound to."""
        return client.delete(
            f"{self.stand.app_url}/api/bindings/{triple.order_id}",
            params={"ownerTypeId": triple.owner_type_id, "ownerId": triple.owner_id},
            headers=self.auth(),
        )


def bound(response: httpx.Response) -> bool:
    """Tell whether a bind answer is a success."""
    return response.status_code == 200 and response.json().get("outcome") in (
        "bound",
        "replaced",
        "already_bound",
    )


def overhead_cases(actions: Actions) -> list[Case]:
    """Return benchmark 1's actions: open, picker page, bind."""
    return [
        Case("open", actions.open, actions.open_upstream),
        Case("picker page", lambda c, i: actions.orders(c), lambda i: actions.orders_upstream()),
        Case("bind", actions.bind, actions.bind_upstream, ok=bound),
    ]


def summarise_rounds(
    per_round: list[dict[str, float]], samples: int, targets: dict[str, float] | None
) -> dict[str, Any]:
    """Return the median over rounds of every figure, the rounds, and the verdict."""
    summary: dict[str, Any] = {
        key: round(statistics.median(r[key] for r in per_round), 3) for key in per_round[0]
    }
    summary["rounds"] = per_round
    summary["samples_per_round"] = samples
    if targets is not None:
        summary["within_target"] = (
            summary["added_p50_ms"] <= targets["added_p50_ms"]
            and summary["added_p99_ms"] <= targets["added_p99_ms"]
        )
    return summary


def overhead_rounds(
    pool: Pool,
    cases: list[Case],
    plan: Plan,
    targeted: set[str],
    before_round: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Measure ``plan.gunicorn_rounds`` rounds of pairs; summarise each case."""
    collected: dict[str, list[dict[str, float]]] = {case.name: [] for case in cases}
    for _ in range(plan.gunicorn_rounds):
        if before_round is not None:
            before_round(plan.warmup_runs + plan.gunicorn_pairs)
        samples = measure_pairs(pool, cases, plan.gunicorn_pairs, plan.warmup_runs)
        for case in cases:
            collected[case.name].append(round_figures(**samples[case.name]))
    return {
        case.name: summarise_rounds(
            collected[case.name],
            plan.gunicorn_pairs,
            TARGETS if case.name in targeted else None,
        )
        for case in cases
    }


def measure_overhead(
    stand: GunicornStand, actions: Actions, pool: Pool, plan: Plan
) -> dict[str, Any]:
    """Benchmark 1: the latency the app adds per open, picker page and bind."""
    figures = overhead_rounds(
        pool,
        overhead_cases(actions),
        plan,
        {"picker page", "bind"},
        actions.issue_open_tokens,
    )
    return {"clients": pool.size, "targets": TARGETS, "actions": figures}


def cpu_total(stand: GunicornStand) -> tuple[float, float]:
    """Return the CPU seconds used so far by all gunicorn workers, and by the sandbox."""
    from bench.gunicorn_stand import cpu_seconds

    return sum(stand.worker_cpu().values()), cpu_seconds(stand.sandbox_pid)


def measure_window(
    stand: GunicornStand,
    pool: Pool,
    requests: list[Any],
    send: Callable[[httpx.Client, Any], httpx.Response],
    ok: Callable[[httpx.Response], bool],
    target: float | None,
) -> dict[str, Any]:
    """Send ``requests`` through the app alone: upstream requests and CPU per request."""
    before = stand.control("calls", method="GET")
    workers_before, sandbox_before = cpu_total(stand)
    failed: list[int] = []

    def one(client: httpx.Client, task: Any) -> None:
        response = send(client, task)
        if not ok(response):
            failed.append(response.status_code)

    wall = pool.run(requests, one)
    workers_after, sandbox_after = cpu_total(stand)
    calls = requests_of(run_window(before, stand.control("calls", method="GET")))
    count = len(requests)
    if failed:
        raise RuntimeError(f"{len(failed)} of {count} requests failed: {sorted(set(failed))}")
    per_request = round(len(calls) / count, 3)
    result: dict[str, Any] = {
        "requests": count,
        "upstream_per_request": per_request,
        "upstream_by_method": {
            method: round(n / count, 3)
            for method, n in sorted(Counter(c["method"] for c in calls).items())
        },
        "app_cpu_ms_per_request": round((workers_after - workers_before) * 1000 / count, 2),
        "sandbox_cpu_ms_per_request": round((sandbox_after - sandbox_before) * 1000 / count, 2),
        "requests_per_second": round(count / wall, 1),
    }
    if target is not None:
        result["target"] = target
        result["within_target"] = per_request <= target
    return result


def measure_calls(stand: GunicornStand, actions: Actions, pool: Pool, plan: Plan) -> dict[str, Any]:
    """Benchmark 2 (and the CPU of benchmark 1): each action alone over a window."""
    n = plan.window_requests
    result: dict[str, Any] = {}
    actions.issue_open_tokens(n)
    result["open"] = measure_window(
        stand, pool, list(range(n)), actions.open, lambda r: r.status_code == 200, 2.0
    )
    result["picker page"] = measure_window(
        stand,
        pool,
        list(range(n)),
        lambda c, i: actions.orders(c),
        lambda r: r.status_code == 200,
        1.0,
    )
    result["bind"] = measure_window(stand, pool, list(range(n)), actions.bind, bound, 1.0)
    # Orders bound to one deal each, then unbound from exactly that deal.
    triples = [Triple(1 + i, DEAL, 9) for i in range(n)]
    for triple in triples:
        response = actions.stand.api(
            "POST",
            "/bindings",
            actions.session,
            {"orderId": triple.order_id, "ownerTypeId": DEAL, "ownerId": triple.owner_id},
        )
        if not bound(response):
            raise RuntimeError(f"binding before the unbind window answered {response.status_code}")
    result["unbind"] = measure_window(
        stand, pool, triples, actions.unbind, lambda r: r.status_code == 200, 1.0
    )
    return result


@dataclass(frozen=True)
class StormOutcome:
    """One storm: its wall time, failed answers, refreshes, and the stored pair after it."""

    seconds: float
    failed: int
    refreshes: int
    access_valid: bool
    refresh_valid: bool


def fire_storm(stand: GunicornStand, session: str, size: int) -> tuple[float, int, int]:
    """Send ``size`` picker requests at once; return the wall time, failures, refreshes."""
    before = stand.counts()["refreshes"]
    barrier = threading.Barrier(size)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    headers = {"Authorization": f"Bearer {session}"}
    with httpx.Client(timeout=HTTP_TIMEOUT, limits=limits) as client:

        def one(_: int) -> tuple[float, float, bool]:
            barrier.wait(timeout=60)
            started = time.perf_counter()
            try:
                response = client.get(f"{stand.app_url}/api/orders", headers=headers)
            except httpx.HTTPError:
                return started, time.perf_counter(), False
            return started, time.perf_counter(), response.status_code == 200

        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="bench-storm") as threads:
            results = list(threads.map(one, range(size)))
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    failed = sum(1 for r in results if not r[2])
    return wall, failed, stand.counts()["refreshes"] - before


def pair_still_works(stand: GunicornStand, session: str) -> tuple[bool, bool]:
    """Check the stored pair after a storm: its access token, then its refresh token.

    A picker page must be answered without a refresh; then, with the stored expiry set in
    the past, the next one must refresh exactly once with the stored refresh token.
    """
    before = stand.counts()["refreshes"]
    access = stand.api("GET", "/orders", session).status_code == 200
    access = access and stand.counts()["refreshes"] == before
    stand.expire_stored_token(MANAGER)
    refreshed = stand.api("GET", "/orders", session).status_code == 200
    return access, refreshed and stand.counts()["refreshes"] == before + 1


def expired_in_store(stand: GunicornStand) -> str:
    """Open as the manager and mark the stored token expired: the app refreshes first."""
    session = stand.session(stand.token(MANAGER))
    stand.expire_stored_token(MANAGER)
    return session


def expired_at_portal(stand: GunicornStand) -> str:
    """Open with a token that dies in two seconds while the app is told it lives an hour."""
    short = stand.token(MANAGER, expires_in=SHORT_TOKEN_SECONDS)
    issued = time.monotonic()
    session = stand.session({**short, "expires_in": 3600})
    time.sleep(max(0.0, issued + SHORT_TOKEN_SECONDS + 0.2 - time.monotonic()))
    return session


def fresh_chain(stand: GunicornStand) -> str:
    """Open as the manager with a fresh token: the storm needs no refresh (the baseline)."""
    return stand.session(stand.token(MANAGER))


STORM_MODES: tuple[tuple[str, Callable[[GunicornStand], str]], ...] = (
    ("fresh", fresh_chain),
    ("expired_in_store", expired_in_store),
    ("expired_at_portal", expired_at_portal),
)


def measure_storms(stand: GunicornStand, plan: Plan) -> dict[str, Any]:
    """Benchmark 3, the app's side: concurrent requests of one user on an expired chain."""
    fire_storm(stand, fresh_chain(stand), plan.storm_size)  # warm-up: connections
    outcomes: dict[str, list[StormOutcome]] = {mode: [] for mode, _ in STORM_MODES}
    for _ in range(plan.storms):
        for mode, prepare in STORM_MODES:
            session = prepare(stand)
            wall, failed, refreshes = fire_storm(stand, session, plan.storm_size)
            access, refresh = pair_still_works(stand, session)
            outcomes[mode].append(StormOutcome(wall, failed, refreshes, access, refresh))
    result: dict[str, Any] = {"concurrency": plan.storm_size, "storms": plan.storms}
    for mode, _ in STORM_MODES:
        runs = outcomes[mode]
        expected = 0 if mode == "fresh" else 1
        result[mode] = {
            "wall_ms": round(statistics.median(o.seconds for o in runs) * 1000, 1),
            "wall_max_ms": round(max(o.seconds for o in runs) * 1000, 1),
            "refreshes": [o.refreshes for o in runs],
            "failed_requests": sum(o.failed for o in runs),
            "stored_pair_valid": all(o.access_valid and o.refresh_valid for o in runs),
            "within_target": all(
                o.refreshes == expected and o.failed == 0 and o.access_valid and o.refresh_valid
                for o in runs
            ),
        }
    return result


def middle_values(stand: GunicornStand, token: str, size: int) -> tuple[str, str]:
    """Return the middle order's account number and the middle deal's title."""
    middle = max(1, size // 2)
    answer = stand.http.post(
        f"{stand.sandbox_url}/rest/batch",
        json={
            "halt": 0,
            "cmd": {
                "order": batch_command(
                    "sale.order.list",
                    {"select": ["id", "accountNumber"], "filter": {"=id": middle}},
                ),
                "deal": batch_command(
                    "crm.item.list",
                    {"entityTypeId": DEAL, "select": ["id", "title"], "filter": {"=id": middle}},
                ),
            },
            "auth": token,
        },
    ).json()["result"]["result"]
    return str(answer["order"]["orders"][0]["accountNumber"]), str(
        answer["deal"]["items"][0]["title"]
    )


def counts_nothing(posts: list[Post]) -> bool:
    """Tell whether every list command of these batches asks for ``start=-1`` (no COUNT)."""
    for _, body in posts:
        for command in body.get("cmd", {}).values():
            if ".list?" in command and "start=-1" not in command:
                return False
    return True


def measure_scale(stand: GunicornStand, actions: Actions, pool: Pool, plan: Plan) -> dict[str, Any]:
    """Benchmark 5: picker pages and searches on the seeded tables, app against sandbox."""
    number, title = middle_values(stand, actions.direct_token, plan.gunicorn_seed)
    cases = [
        Case("orders page", lambda c, i: actions.orders(c), lambda i: actions.orders_upstream()),
        Case(
            "orders search",
            lambda c, i: actions.orders(c, number),
            lambda i: actions.orders_upstream(number),
        ),
        Case("deals page", lambda c, i: actions.owners(c), lambda i: actions.owners_upstream()),
        Case(
            "deals search",
            lambda c, i: actions.owners(c, title),
            lambda i: actions.owners_upstream(title),
        ),
    ]
    figures = overhead_rounds(pool, cases, plan, set())
    for case in cases:
        figures[case.name]["no_count"] = counts_nothing(case.upstream(0))
    return {
        "orders": plan.gunicorn_seed,
        "deals": plan.gunicorn_seed,
        "queries": {"orders search": number, "deals search": title},
        "cases": figures,
    }


def measure_memory(stand: GunicornStand, actions: Actions, plan: Plan) -> dict[str, Any]:
    """Benchmark 6: each worker's RSS after the warm-up and after every checkpoint."""

    def one(client: httpx.Client, index: int) -> None:
        if index % 2:
            response = actions.orders(client)
        else:
            response = client.get(f"{stand.app_url}/api/me", headers=actions.auth())
        if response.status_code != 200:
            raise RuntimeError(f"a memory request answered {response.status_code}")

    pool = Pool(WORKERS)  # one client per worker: the requests come as fast as served
    try:
        return rss_checkpoints(stand, pool, plan, one)
    finally:
        pool.close()


def rss_checkpoints(
    stand: GunicornStand, pool: Pool, plan: Plan, one: Callable[[httpx.Client, int], None]
) -> dict[str, Any]:
    """Warm up, then read every worker's RSS before the load and at each checkpoint."""
    pool.run(list(range(plan.memory_warmup)), one)
    workers = stand.workers()
    rss: list[dict[int, int]] = [stand.worker_rss()]
    walls: list[float] = [0.0]
    sent = 0
    for target in plan.memory_checkpoints:
        walls.append(pool.run(list(range(sent, target)), one))
        rss.append(stand.worker_rss())
        sent = target
    if stand.workers() != workers:
        raise RuntimeError("a gunicorn worker was replaced during the memory benchmark")
    growth = {str(pid): rss[-1][pid] - rss[-2][pid] for pid in workers}
    return {
        "workers": len(workers),
        "noise_kib": RSS_NOISE_KIB,
        "checkpoints": [
            {
                "requests": requests,
                "rss_kib": {str(pid): kib for pid, kib in point.items()},
                "seconds": round(wall, 1),
            }
            for requests, point, wall in zip((0, *plan.memory_checkpoints), rss, walls, strict=True)
        ],
        "growth_last_kib": growth,
        "within_target": max(growth.values()) <= RSS_NOISE_KIB,
    }


def run_app_overhead(
    plan: Plan,
    progress: Callable[[str], None],
    postgres_url: str = DEFAULT_POSTGRES_URL,
    redis_url: str = DEFAULT_REDIS_URL,
    worker_class: str = "sync",
) -> dict[str, Any]:
    """Run benchmarks 1, 2, 3, 5 and 6 on the gunicorn stand; their JSON-ready result."""
    started = time.perf_counter()
    try:
        check_services(postgres_url, redis_url)
    except StandUnavailable as exc:
        progress(f"gunicorn stand skipped: {exc}")
        return {"skipped": str(exc)}
    progress(
        f"starting gunicorn ({worker_class}, 4 workers) on PostgreSQL and Redis with a sandbox "
        f"of {plan.gunicorn_seed:,} orders and deals"
    )
    with gunicorn_stand(
        postgres_url,
        redis_url,
        orders=plan.gunicorn_seed,
        deals=plan.gunicorn_seed,
        worker_class=worker_class,
    ) as stand:
        stand_seconds = time.perf_counter() - started
        actions = Actions(stand)
        pool = Pool(plan.gunicorn_clients)
        try:
            progress("timing open, picker page and bind against the sandbox's own time")
            overhead = measure_overhead(stand, actions, pool, plan)
            progress("counting upstream calls and CPU per action")
            calls = measure_calls(stand, actions, pool, plan)
            progress(f"refresh storms of {plan.storm_size} concurrent requests")
            storms = measure_storms(stand, plan)
            progress(f"picker search on {plan.gunicorn_seed:,} orders and deals")
            scale = measure_scale(stand, actions, pool, plan)
            progress(f"RSS per worker over {plan.memory_checkpoints[-1]:,} requests")
            memory = measure_memory(stand, actions, plan)
        finally:
            pool.close()
        return {
            "server": {
                "workers": len(stand.workers()),
                "worker_class": stand.worker_class,
                "database": "postgresql",
                "rate_limit_store": "redis",
                "versions": stand.versions,
            },
            "stand_seconds": round(stand_seconds, 1),
            "overhead": overhead,
            "calls": calls,
            "storm": storms,
            "scale": scale,
            "memory": memory,
            "seconds": round(time.perf_counter() - started, 1),
        }


def _ms(value: float) -> str:
    """Format milliseconds."""
    return f"{value:.2f}"


def _verdict(flag: bool | None) -> str:
    """Format a target verdict."""
    return "" if flag is None else ("met" if flag else "NOT MET")


def render_gunicorn(result: dict[str, Any]) -> str:
    """Render benchmarks 1, 2, 3, 5 and 6 of the gunicorn stand as tables."""
    from bench.report import table

    if "skipped" in result:
        return f"Gunicorn stand: skipped ({result['skipped']})"
    server, overhead, calls = result["server"], result["overhead"], result["calls"]
    versions = server["versions"]
    head = (
        f"App under gunicorn ({server['workers']} {server['worker_class']} workers, "
        f"PostgreSQL {versions['postgresql']}, Redis {versions['redis']}), "
        f"{overhead['clients']} client threads"
    )
    latency_header = [
        "action",
        "app p50",
        "sandbox p50",
        "added p50",
        "app p99",
        "sandbox p99",
        "added p99",
    ]

    def latency_row(name: str, figures: dict[str, Any]) -> list[str]:
        return [
            name,
            *(
                _ms(figures[key])
                for key in (
                    "app_p50_ms",
                    "sandbox_p50_ms",
                    "added_p50_ms",
                    "app_p99_ms",
                    "sandbox_p99_ms",
                    "added_p99_ms",
                )
            ),
        ]

    actions = overhead["actions"]
    samples = next(iter(actions.values()))
    targets = overhead["targets"]
    parts = [
        head,
        f"1. Added latency, ms: median over {len(samples['rounds'])} round(s) of "
        f"{samples['samples_per_round']} pairs per action; target added p50 <= "
        f"{targets['added_p50_ms']:g} and p99 <= {targets['added_p99_ms']:g} "
        "(picker page, bind)",
        table(
            [*latency_header, "app CPU/req", "target"],
            [
                [
                    *latency_row(name, figures),
                    _ms(calls[name]["app_cpu_ms_per_request"]),
                    _verdict(figures.get("within_target")),
                ]
                for name, figures in actions.items()
            ],
            text_columns=1,
        ),
        "",
        f"2. Upstream requests per action (sandbox call log, {calls['open']['requests']} "
        "requests each)",
        table(
            ["action", "per request", "by method", "target", "verdict"],
            [
                [
                    name,
                    f"{window['upstream_per_request']:g}",
                    ", ".join(f"{m} {n:g}" for m, n in window["upstream_by_method"].items()),
                    f"<= {window['target']:g}",
                    _verdict(window["within_target"]),
                ]
                for name, window in calls.items()
            ],
            text_columns=1,
        ),
    ]
    storm = result["storm"]
    parts += [
        "",
        f"3. Refresh storm: {storm['concurrency']} concurrent picker requests of one user, "
        f"{storm['storms']} storm(s) per chain state",
        table(
            ["token chain", "wall ms", "max ms", "refreshes", "failed", "pair valid", "target"],
            [
                [
                    mode.replace("_", " "),
                    f"{storm[mode]['wall_ms']:.1f}",
                    f"{storm[mode]['wall_max_ms']:.1f}",
                    ",".join(str(n) for n in storm[mode]["refreshes"]),
                    str(storm[mode]["failed_requests"]),
                    "yes" if storm[mode]["stored_pair_valid"] else "NO",
                    _verdict(storm[mode]["within_target"]),
                ]
                for mode in ("fresh", "expired_in_store", "expired_at_portal")
            ],
            text_columns=1,
        ),
    ]
    scale = result["scale"]
    parts += [
        "",
        f"5. Pickers on {scale['orders']:,} orders and {scale['deals']:,} deals, ms",
        table(
            [*latency_header, "start=-1"],
            [
                [*latency_row(name, figures), "yes" if figures["no_count"] else "NO"]
                for name, figures in scale["cases"].items()
            ],
            text_columns=1,
        ),
    ]
    memory = result["memory"]
    points = memory["checkpoints"]
    parts += [
        "",
        f"6. RSS per worker, MiB (target: growth over the last "
        f"{points[-1]['requests'] - points[-2]['requests']:,} requests <= "
        f"{memory['noise_kib'] / 1024:g} MiB): {_verdict(memory['within_target'])}",
        table(
            ["worker", *(f"after {p['requests']:,}" for p in points), "growth KiB"],
            [
                [
                    pid,
                    *(f"{p['rss_kib'][pid] / 1024:.1f}" for p in points),
                    str(memory["growth_last_kib"][pid]),
                ]
                for pid in points[0]["rss_kib"]
            ],
            text_columns=1,
        ),
    ]
    return "\n".join(parts)
