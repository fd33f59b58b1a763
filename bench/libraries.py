"""Benchmark: the two Python libraries a Bitrix24 developer would otherwise use, on the sandbox.

Both run against a sandbox portal started in this process, with only their base URLs
pointed at it. Versions are the ones installed (``requirements-dev.txt``).

**Refresh storm.** One token pair, stored in a JSON file shared by 4 processes, is issued
with a one-second access token; once it has expired (in the file and at the portal), 10
threads in each process make the same read (``crm.deal.list``) at once, each
loading the pair from the file as a request handler would. ``b24pysdk`` persists renewed
pairs through its ``oauth_token_renewed_signal``; ``fast_bitrix24`` through the
``token_func`` it calls for a token (see :mod:`bench.lib_workers`). Per run: the refreshes
the OAuth server granted, the calls of 40 that failed and why, and whether the pair left in
the file still works (its access token answers ``profile`` and its refresh token is
accepted once). The sandbox's rate limit is opened wide: only tokens are measured.

**Bulk binds at 2 requests/s, burst 50** (the portal's default limit, the same as for the
app's bulk jobs): each library binds ``N`` orders to one deal with ``crm.orderentity.add``
commands handed over at once, ``fast_bitrix24`` through ``BitrixAsync.call`` with the list
of items (its batches of 50 and its leaky bucket), ``b24pysdk`` through
``BitrixToken.call_batches`` (batches of 50 one after the other, its retries on 503). Every
run binds a fresh range of orders and starts on an empty bucket (the limits are set again,
which empties it). Reported as for the app's jobs: wall time of the call, the requests the
sandbox answered, those it refused (503 ``QUERY_LIMIT_EXCEEDED`` in its call log), the
items the library did not confirm, and the orders bound to the deal in the sandbox's
database afterwards, against the same lower bound (``bench.bulk_jobs.lower_bound``), its
round trip timed on batches of 50 adds sent straight to the sandbox before every run.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from b24sandbox.config import SandboxConfig
from b24sandbox.server import RunningSandbox, start_sandbox
from bench.bulk_jobs import BURST, DEFAULT_LIMITS, RATE, REFUSED, lower_bound, requests_of, runs_for
from bench.bulk_jobs import run_window as calls_between
from bench.lib_workers import READ_METHOD, PairStore
from bench.plan import Plan
from bench.sandbox_lists import OPEN_LIMITS
from bench.timing import summarize, timed

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("b24pysdk", "fast_bitrix24")
ADMIN = 1
PROCESSES = 4
THREADS = 10
STORM_RUNS = {"full": 9, "quick": 1}
# The stored access token's lifetime: the storm starts once it has passed.
STORM_EXPIRES_IN = 1
BATCH = 50
# Binds go to this deal; the lower bound's round trips rebind spare orders to two others.
OWNER = (2, 9)
ROUND_TRIP_OWNERS = (7, 8)
ROUND_TRIPS_PER_RUN = 2
HTTP_TIMEOUT = 60.0
WORKER_TIMEOUT = 120.0


def library_versions() -> dict[str, str]:
    """Return the installed version of each library."""
    return {name: version(name) for name in LIBRARIES}


@contextmanager
def sandbox_running(orders: int, deals: int) -> Iterator[tuple[RunningSandbox, httpx.Client]]:
    """Serve a sandbox portal with this seed until the block ends, and a client for it."""
    config = SandboxConfig(host="127.0.0.1", port=0, orders=orders, deals=deals, invoices=10)
    sandbox = start_sandbox(config)
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT) as http:
            yield sandbox, http
    finally:
        sandbox.stop()


def control(
    http: httpx.Client,
    sandbox: RunningSandbox,
    path: str,
    body: dict[str, Any] | None = None,
    method: str = "POST",
) -> dict[str, Any]:
    """Call the sandbox's control API and return its JSON."""
    response = http.request(method, f"{sandbox.url}/_sandbox/{path}", json=body)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def issue_pair(
    http: httpx.Client, sandbox: RunningSandbox, expires_in: int | None = None
) -> dict[str, Any]:
    """Issue a token pair for the admin, as the OAuth server returns it."""
    body: dict[str, Any] = {"user_id": ADMIN}
    if expires_in is not None:
        body["expires_in"] = expires_in
    return control(http, sandbox, "token", body)


# --- refresh storm -------------------------------------------------------------------


def failure_kind(error: str) -> str:
    """Name what a failed call died of: the OAuth or REST error it carries, else its class."""
    flat = error.lower().replace("_", "")
    for code in ("invalid_grant", "expired_token", "invalid_token", "NO_AUTH_FOUND"):
        if code.lower().replace("_", "") in flat:
            return code
    return error.split(":", 1)[0]


def pair_works(
    http: httpx.Client, sandbox: RunningSandbox, pair: dict[str, Any]
) -> dict[str, bool]:
    """Check a stored pair: its access token answers ``profile``; its refresh token is accepted.

    The refresh spends the stored refresh token, so this is the last use of the pair.
    """
    profile = http.post(f"{pair['client_endpoint']}profile", json={"auth": pair["access_token"]})
    refresh = http.get(
        f"{sandbox.oauth_url}/oauth/token/",
        params={
            "grant_type": "refresh_token",
            "client_id": sandbox.sandbox.config.client_id,
            "client_secret": sandbox.sandbox.config.client_secret,
            "refresh_token": pair["refresh_token"],
        },
    )
    return {
        "access_token": profile.status_code == 200,
        "refresh_token": refresh.status_code == 200 and "access_token" in refresh.json(),
    }


def start_workers(settings: dict[str, Any]) -> list[subprocess.Popen[str]]:
    """Start the storm's processes and wait until each has its threads waiting."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.lib_workers", json.dumps(settings)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline().strip()
        if line != "ready":
            for other in workers:
                other.kill()
            stderr = worker.stderr.read() if worker.stderr else ""
            raise RuntimeError(f"a storm process did not start: {line!r} {stderr[-2000:]}")
    return workers


def release_workers(workers: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Let every process's threads call at once; return every call's outcome."""
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    calls: list[dict[str, Any]] = []
    for worker in workers:
        try:
            stdout, stderr = worker.communicate(timeout=WORKER_TIMEOUT)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise RuntimeError("a storm process did not finish") from None
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if worker.returncode != 0 or not lines:
            raise RuntimeError(f"a storm process failed ({worker.returncode}): {stderr[-2000:]}")
        calls.extend(json.loads(lines[-1])["calls"])
    return calls


def storm_once(
    http: httpx.Client, sandbox: RunningSandbox, library: str, folder: Path, run: int
) -> dict[str, Any]:
    """Run one storm of one library and return what the sandbox and the callers saw."""
    pair = issue_pair(http, sandbox, STORM_EXPIRES_IN)
    issued = time.time()
    store_path = folder / f"{library}-{run}.json"
    store_path.write_text(
        json.dumps(
            {
                "access_token": pair["access_token"],
                "refresh_token": pair["refresh_token"],
                "expires": float(pair["expires"]),
                "domain": pair["client_endpoint"].split("/")[2],
                "client_endpoint": pair["client_endpoint"],
            }
        ),
        encoding="utf-8",
    )
    settings = {
        "library": library,
        "store": str(store_path),
        "threads": THREADS,
        "oauth_url": sandbox.oauth_url,
        "client_id": sandbox.sandbox.config.client_id,
        "client_secret": sandbox.sandbox.config.client_secret,
        "client_endpoint": pair["client_endpoint"],
    }
    workers = start_workers(settings)
    # Start once the access token has expired at the portal and by the stored expiry.
    expired_at = max(issued + STORM_EXPIRES_IN, float(pair["expires"])) + 0.5
    time.sleep(max(0.0, expired_at - time.time()))
    before = control(http, sandbox, "calls", method="GET")
    started = time.perf_counter()
    calls = release_workers(workers)
    seconds = time.perf_counter() - started
    after = control(http, sandbox, "calls", method="GET")
    requests = requests_of(calls_between(before, after))
    failed = [call["error"] for call in calls if not call["ok"]]
    works = pair_works(http, sandbox, PairStore(store_path).load())
    return {
        "calls": len(calls),
        "failed": len(failed),
        "failures": dict(Counter(failure_kind(error) for error in failed)),
        "errors": dict(Counter(failed).most_common(3)),
        "refreshes": after["refreshes"] - before["refreshes"],
        "portal_requests": len(requests),
        "reads_answered": sum(
            1 for c in requests if c["method"] == READ_METHOD and c["status"] == 200
        ),
        "expired_token_answers": sum(1 for c in requests if c["error"] == "expired_token"),
        "pair_valid_after": works["access_token"] and works["refresh_token"],
        "pair_after": works,
        "wall_ms": round(seconds * 1000.0, 1),
    }


def summarize_storm(library: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Summarize one library's storms: medians of refreshes and failed calls."""
    kinds: Counter[str] = Counter()
    for run in runs:
        kinds.update(run["failures"])
    return {
        "library": library,
        "runs": len(runs),
        "calls_per_run": PROCESSES * THREADS,
        "refreshes_median": statistics.median(r["refreshes"] for r in runs),
        "failed_median": statistics.median(r["failed"] for r in runs),
        "failed_range": [min(r["failed"] for r in runs), max(r["failed"] for r in runs)],
        "valid_after": sum(1 for r in runs if r["pair_valid_after"]),
        "failures": dict(kinds),
        "per_run": runs,
    }


def run_storms(plan: Plan, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run the refresh storms of both libraries, alternating runs between them."""
    count = STORM_RUNS.get(plan.mode, 1)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in LIBRARIES}
    with (
        sandbox_running(orders=20, deals=10) as (sandbox, http),
        tempfile.TemporaryDirectory(prefix="b24bench-pairs-") as folder,
    ):
        control(http, sandbox, "limits", OPEN_LIMITS)
        for run in range(count):
            for library in LIBRARIES:
                progress(
                    f"refresh storm of {library} ({run + 1} of {count}): "
                    f"{PROCESSES} processes x {THREADS} threads, one expired stored pair"
                )
                runs[library].append(storm_once(http, sandbox, library, Path(folder), run))
    return [summarize_storm(name, runs[name]) for name in LIBRARIES]


# --- bulk binds ----------------------------------------------------------------------


def bind_fields(order_id: int, owner: tuple[int, int] = OWNER) -> dict[str, int]:
    """Return the documented fields of one binding."""
    return {"orderId": order_id, "ownerTypeId": owner[0], "ownerId": owner[1]}


def bound_to_owner(sandbox: RunningSandbox, first: int, last: int) -> list[int]:
    """Return the orders ``first..last`` the sandbox has bound to ``OWNER``."""
    state = sandbox.sandbox
    rows = state.db.query(
        "SELECT order_id FROM crm_order_entity WHERE portal_id = ? AND owner_type_id = ?"
        " AND owner_id = ? AND order_id BETWEEN ? AND ? ORDER BY order_id",
        (state.portals[0].id, *OWNER, first, last),
    )
    return [int(row[0]) for row in rows]


def batch_body(token: str, method: str, items: list[dict[str, int]]) -> dict[str, Any]:
    """Return a ``batch`` body of one command per binding, keys encoded as PHP expects."""
    cmd = {
        f"c{i}": f"{method}?{urlencode({f'fields[{k}]': v for k, v in fields.items()})}"
        for i, fields in enumerate(items)
    }
    return {"halt": 0, "cmd": cmd, "auth": token}


def send_batches(
    http: httpx.Client,
    sandbox: RunningSandbox,
    token: str,
    method: str,
    items: list[dict[str, int]],
    check: bool = True,
) -> None:
    """Send commands in batches of 50 straight to the sandbox; fail on any error if ``check``."""
    for start in range(0, len(items), BATCH):
        body = batch_body(token, method, items[start : start + BATCH])
        answer = http.post(f"{sandbox.url}/rest/batch.json", json=body)
        answer.raise_for_status()
        if check and answer.json()["result"]["result_error"]:
            raise RuntimeError(f"{method} failed: {str(answer.json())[:300]}")


def unbind_seeded(
    http: httpx.Client, sandbox: RunningSandbox, token: str, first: int, last: int
) -> int:
    """Unbind the orders of a range the seed already bound to ``OWNER``.

    A second add of the same triple is refused as a duplicate; removing them first lets
    every library bind all of its orders. Sent with the limit opened, before the run.
    """
    seeded = bound_to_owner(sandbox, first, last)
    items = [bind_fields(order_id) for order_id in seeded]
    send_batches(http, sandbox, token, "crm.orderentity.deleteByFilter", items)
    return len(seeded)


class RoundTrips:
    """Times batches of 50 adds with the limit opened, for the lower bound's round trip.

    A few are taken before every run, while its range is prepared, so that they see the
    machine as the runs do. The spare orders are rebound between two deals, so every add
    replaces a binding; the first batch (not timed) may meet a seed binding to the first
    deal, a duplicate.
    """

    def __init__(self, http: httpx.Client, sandbox: RunningSandbox, spare: list[int]) -> None:
        self.http = http
        self.sandbox = sandbox
        self.spare = spare
        self.sent = 0
        self.samples: list[float] = []

    def _one(self, token: str) -> float:
        owner = ROUND_TRIP_OWNERS[self.sent % 2]
        items = [bind_fields(order_id, (OWNER[0], owner)) for order_id in self.spare]
        check = self.sent > 0
        self.sent += 1
        seconds, _ = timed(
            lambda: send_batches(
                self.http, self.sandbox, token, "crm.orderentity.add", items, check
            )
        )
        return seconds

    def sample(self, token: str, count: int) -> None:
        """Time ``count`` batches (after the warm-up one, the first time)."""
        if self.sent == 0:
            self._one(token)
        self.samples.extend(self._one(token) for _ in range(count))


@contextmanager
def b24pysdk_pointed_at(sandbox: RunningSandbox) -> Iterator[None]:
    """Point b24pysdk's portal and OAuth base URLs at the sandbox for the block."""
    from b24pysdk.api.callers.call_method import _MethodCaller
    from b24pysdk.api.requesters.bitrix_oauth_requester import BitrixOAuthRequester

    saved = (
        _MethodCaller.__dict__["_base_url"],
        BitrixOAuthRequester._OAUTH_TOKEN_URL,
        BitrixOAuthRequester._APP_INFO_URL,
    )
    _MethodCaller._base_url = property(lambda self: f"http://{self._domain}/rest")  # type: ignore[method-assign,assignment]
    BitrixOAuthRequester._OAUTH_TOKEN_URL = f"{sandbox.oauth_url}/oauth/token/"  # type: ignore[misc]
    BitrixOAuthRequester._APP_INFO_URL = f"{sandbox.oauth_url}/rest/app.info/"  # type: ignore[misc]
    try:
        yield
    finally:
        _MethodCaller._base_url = saved[0]  # type: ignore[method-assign]
        BitrixOAuthRequester._OAUTH_TOKEN_URL = saved[1]  # type: ignore[misc]
        BitrixOAuthRequester._APP_INFO_URL = saved[2]  # type: ignore[misc]


def bind_with_b24pysdk(sandbox: RunningSandbox, pair: dict[str, Any], order_ids: list[int]) -> int:
    """Bind through ``BitrixToken.call_batches``; return the items it did not confirm."""
    from b24pysdk import BitrixApp, BitrixToken

    config = sandbox.sandbox.config
    token = BitrixToken(
        domain=pair["client_endpoint"].split("/")[2],
        auth_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        expires_in=pair["expires_in"],
        bitrix_app=BitrixApp(client_id=config.client_id, client_secret=config.client_secret),
    )
    methods = {
        f"a{order_id}": ("crm.orderentity.add", {"fields": bind_fields(order_id)})
        for order_id in order_ids
    }
    with b24pysdk_pointed_at(sandbox):
        answer = token.call_batches(methods)
    done = answer["result"]["result"]
    return len(order_ids) - len(done) if isinstance(done, dict) else len(order_ids)


def bind_with_fast_bitrix24(pair: dict[str, Any], order_ids: list[int]) -> int:
    """Bind through ``BitrixAsync.call`` with the list of items; return those not confirmed.

    When the library gives up it raises one error (reported by the caller) and leaves the
    tasks of its other batches behind, each failed the same way; asyncio would print every
    one of them ("Task exception was never retrieved") whenever they are collected, up to
    the interpreter's exit. The run's loop keeps those quiet.
    """
    import asyncio

    from fast_bitrix24 import BitrixAsync

    async def token_func() -> str:
        return str(pair["access_token"])

    def quiet_left_tasks(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != "Task exception was never retrieved":
            loop.default_exception_handler(context)

    async def bind() -> Any:
        asyncio.get_running_loop().set_exception_handler(quiet_left_tasks)
        client = BitrixAsync(pair["client_endpoint"], token_func=token_func, verbose=False)
        items = [{"fields": bind_fields(order_id)} for order_id in order_ids]
        return await client.call("crm.orderentity.add", items)

    results = asyncio.run(bind())
    answered = results if isinstance(results, tuple | list) else (results,)
    return len(order_ids) - sum(1 for result in answered if result)


def bulk_once(
    http: httpx.Client,
    sandbox: RunningSandbox,
    library: str,
    first: int,
    size: int,
    trips: RoundTrips,
) -> dict[str, Any]:
    """Bind orders ``first..first+size-1`` with one library at the default limit."""
    last = first + size - 1
    pair = issue_pair(http, sandbox)
    control(http, sandbox, "limits", OPEN_LIMITS)
    unbound = unbind_seeded(http, sandbox, pair["access_token"], first, last)
    trips.sample(pair["access_token"], ROUND_TRIPS_PER_RUN)
    # Setting the limits again empties the portal's bucket: every run starts on an empty one.
    control(http, sandbox, "limits", DEFAULT_LIMITS)
    before = control(http, sandbox, "calls", method="GET")
    order_ids = list(range(first, last + 1))
    error = None
    started = time.perf_counter()
    try:
        if library == "b24pysdk":
            not_confirmed = bind_with_b24pysdk(sandbox, pair, order_ids)
        else:
            not_confirmed = bind_with_fast_bitrix24(pair, order_ids)
    except Exception as failure:  # the library gave up: reported, and its items counted
        error = f"{type(failure).__name__}: {' '.join(str(failure).split())[:200]}"
        not_confirmed = size
    seconds = time.perf_counter() - started
    after = control(http, sandbox, "calls", method="GET")
    requests = requests_of(calls_between(before, after))
    refused = sum(1 for c in requests if c["error"] == REFUSED)
    return {
        "orders": size,
        "first_order": first,
        "wall_ms": round(seconds * 1000.0, 1),
        "requests": len(requests),
        "batch_requests": sum(1 for c in requests if c["method"] == "batch"),
        "refused": refused,
        "other_errors": sum(1 for c in requests if c["status"] != 200) - refused,
        "failures": not_confirmed,
        "error": error,
        "bindings": len(bound_to_owner(sandbox, first, last)),
        "unbound_before": unbound,
        "requests_by_method": dict(Counter(c["method"] for c in requests)),
    }


def summarize_bulk(
    library: str, size: int, runs: list[dict[str, Any]], round_trip: float
) -> dict[str, Any]:
    """Summarize one library's runs of one size, in the fields of the app's bulk jobs."""
    batches = math.ceil(size / BATCH)
    wall = summarize([r["wall_ms"] / 1000.0 for r in runs])
    bound = lower_bound(batches, round_trip)
    median_run = sorted(runs, key=lambda r: r["wall_ms"])[(len(runs) - 1) // 2]
    return {
        "library": library,
        "orders": size,
        "batches": batches,
        "runs": len(runs),
        "wall": wall.as_dict(),
        "bound_ms": round(bound * 1000.0, 1),
        "over_bound": round(wall.median_ms / (bound * 1000.0), 2),
        "requests": median_run["requests"],
        "batch_requests": median_run["batch_requests"],
        "refused": median_run["refused"],
        "refused_total": sum(r["refused"] for r in runs),
        "failures": median_run["failures"],
        "bindings": median_run["bindings"],
        "all_bound": all(r["bindings"] == r["orders"] for r in runs),
        "errors": sorted({r["error"] for r in runs if r["error"]}),
        "per_run": runs,
    }


def run_bulk(plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    """Run the bulk binds of both libraries, alternating runs between them."""
    per_library = sum(size * runs_for(size, plan) for size in plan.bulk_sizes)
    seed = len(LIBRARIES) * per_library + BATCH
    progress(f"starting a sandbox with {seed:,} orders for the libraries' bulk binds")
    # Imported before any run is timed, so that no run pays for it.
    for name in LIBRARIES:
        import_module(name)
    with sandbox_running(orders=seed, deals=10) as (sandbox, http):
        trips = RoundTrips(http, sandbox, list(range(seed - BATCH + 1, seed + 1)))
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        first = 1
        for size in plan.bulk_sizes:
            count = runs_for(size, plan)
            for run in range(count):
                for library in LIBRARIES:
                    progress(
                        f"{library}: {size:,} binds ({run + 1} of {count}) at {RATE:g} "
                        f"requests/s and burst {BURST}"
                    )
                    runs.setdefault((library, size), []).append(
                        bulk_once(http, sandbox, library, first, size, trips)
                    )
                    first += size
    trip = summarize(trips.samples)
    round_trip = trip.median_ms / 1000.0
    return {
        "limits": DEFAULT_LIMITS,
        "batch_size": BATCH,
        "seeded_orders": seed,
        "round_trip": trip.as_dict(),
        "sizes": [
            summarize_bulk(library, size, runs[(library, size)], round_trip)
            for size in plan.bulk_sizes
            for library in LIBRARIES
        ],
    }


def run_libraries(plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    """Run both benchmarks of the libraries and return the JSON-ready result."""
    started = time.perf_counter()
    storm = run_storms(plan, progress)
    bulk = run_bulk(plan, progress)
    return {
        "versions": library_versions(),
        "storm": {
            "processes": PROCESSES,
            "threads": THREADS,
            "read": READ_METHOD,
            "expires_in": STORM_EXPIRES_IN,
            "libraries": storm,
        },
        "bulk": bulk,
        "seconds": round(time.perf_counter() - started, 1),
    }


# --- rendering -----------------------------------------------------------------------


def markdown_table(header: list[str], rows: list[list[str]], text_last: bool = False) -> str:
    """Lay out a markdown table: text in the first (and last) column, numbers right-aligned."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    if text_last:
        align[-1] = "---"
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def render_libraries(result: dict[str, Any]) -> str:
    """Render the libraries' benchmarks as two markdown tables with their notes."""
    versions, storm, bulk = result["versions"], result["storm"], result["bulk"]
    calls = storm["processes"] * storm["threads"]
    storm_rows = [
        [
            f"{lib['library']} {versions[lib['library']]}",
            str(lib["runs"]),
            f"{lib['refreshes_median']:g}",
            f"{lib['failed_median']:g} of {calls}",
            "{} to {}".format(*lib["failed_range"]),
            f"{lib['valid_after']} of {lib['runs']}",
            ", ".join(f"{kind} {n}" for kind, n in sorted(lib["failures"].items())) or "none",
        ]
        for lib in storm["libraries"]
    ]
    bulk_rows = [
        [
            f"{row['library']} {versions[row['library']]}",
            f"{row['orders']:,}",
            str(row["runs"]),
            f"{row['wall']['median_ms'] / 1000.0:.2f}",
            f"{row['bound_ms'] / 1000.0:.2f}",
            f"{row['over_bound']:.2f}",
            str(row["requests"]),
            str(row["refused"]),
            str(row["failures"]),
            f"{row['bindings']:,}",
        ]
        for row in bulk["sizes"]
    ]
    errors = sorted({error for row in bulk["sizes"] for error in row["errors"]})
    limits = bulk["limits"]
    parts = [
        f"Refresh storm: {storm['processes']} processes x {storm['threads']} threads, one "
        f"stored pair expired, `{storm['read']}` at once (medians over runs)",
        "",
        markdown_table(
            [
                "library",
                "runs",
                "refreshes",
                "failed calls",
                "failed range",
                "pair valid after",
                "failures",
            ],
            storm_rows,
            text_last=True,
        ),
        "",
        f"Bulk binds (`crm.orderentity.add`) at {limits['rps']:g} requests/s, burst "
        f"{limits['burst']}: median run; requests, refused ({REFUSED}), failures (items "
        "not confirmed by the library) and bindings (in the sandbox) of that run",
        "",
        markdown_table(
            [
                "library",
                "orders",
                "runs",
                "wall s",
                "bound s",
                "vs bound",
                "requests",
                "refused",
                "failures",
                "bindings",
            ],
            bulk_rows,
        ),
        "",
        f"Round trip of one batch of {bulk['batch_size']} adds: "
        f"{bulk['round_trip']['median_ms']:.2f} ms (median of {bulk['round_trip']['runs']}).",
    ]
    if errors:
        parts.append("Errors: " + "; ".join(errors))
    return "\n".join(parts)
