"""Load and soak: many store administrators using the app at once, then an audit.

Each virtual user opens the app with a fresh token set (as Bitrix24 does on every open),
searches both pickers, binds, rebinds, unbinds and undoes on its own orders, for a fixed
time. Users never share an order, so every successful answer says exactly what the order's
owner must be afterwards; the audit then reads every order's binding from the portal and the
app's whole history and checks that all three agree:

- the portal holds exactly the bindings the successful answers imply;
- the history has one entry per successful change, and each order's newest entry leaves it
  as the portal has it.

Run by hand: ``python -m tests.load.soak --users 50 --seconds 60`` (see ``--help``); the
test suite runs a shorter load through :func:`run_soak`.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from b24app.bitrix.http import tls_context
from b24sandbox.bx24 import frame_post_fields

SESSION = re.compile(r'data-session="([^"]+)"')
ADMIN = 1
# Orders 1-10 and owners 1-10 carry the sandbox's fixed fixtures; the load stays clear of them.
FIRST_ORDER = 11
FIRST_OWNER = 11
ORDERS_EACH = 2
# How often each action is picked; a user keeps doing them until the time is up.
MIX = {"open": 1, "search": 4, "bind": 3, "rebind": 2, "unbind": 2, "undo": 2}
SEARCHES = ("1", "2", "5", "A", "o", "de", "in")


class Target(Protocol):
    """Where the load goes: the app's base URL and the sandbox portal's control API."""

    app_url: str
    sandbox_url: str


@dataclass(frozen=True)
class Owner:
    """A deal (2) or smart invoice (31)."""

    type_id: int
    id: int


@dataclass
class Outcome:
    """One request the load made and how it ended."""

    action: str
    status: int
    seconds: float
    error: str | None = None


@dataclass
class UserRun:
    """One virtual user: its orders, what it believes they are bound to, what it did."""

    index: int
    orders: list[int]
    owners: dict[int, Owner | None]
    # For each order, the history entry of the last change this user made, while undoable.
    undoable: dict[int, int] = field(default_factory=dict)
    changed_orders: set[int] = field(default_factory=set)
    outcomes: list[Outcome] = field(default_factory=list)
    changes: int = 0
    session: str = ""


@dataclass
class SoakReport:
    """What the load did and what the audit found."""

    users: int
    seconds: float
    requests: Counter[str]
    errors: list[Outcome]
    changes: int
    latencies_ms: dict[str, float]
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "seconds": round(self.seconds, 1),
            "requests": dict(self.requests),
            "total_requests": sum(self.requests.values()),
            "errors": [f"{e.action} {e.status} {e.error}" for e in self.errors[:20]],
            "error_count": len(self.errors),
            "changes": self.changes,
            "median_ms": self.latencies_ms,
            "mismatches": self.mismatches[:20],
            "mismatch_count": len(self.mismatches),
        }


class Portal:
    """The sandbox portal as the load and the audit use it (control API and REST)."""

    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url = url
        self.http = http
        self._admin_token: str | None = None

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(f"{self.url}/_sandbox/{path}", json=body or {})
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def token(self) -> dict[str, Any]:
        return self.control("token", {"user_id": ADMIN})

    def binding(self, order_id: int) -> Owner | None:
        """The order's owner as the portal holds it (``crm.orderentity.list``)."""
        if self._admin_token is None:
            self._admin_token = self.token()["access_token"]
        response = self.http.post(
            f"{self.url}/rest/crm.orderentity.list",
            json={"filter": {"orderId": order_id}, "auth": self._admin_token},
        )
        response.raise_for_status()
        rows = response.json()["result"]["orderEntity"]
        if not rows:
            return None
        if len(rows) > 1:
            raise AssertionError(f"order {order_id} has {len(rows)} owners")
        return Owner(int(rows[0]["ownerTypeId"]), int(rows[0]["ownerId"]))


class Client:
    """One virtual user's HTTP conversation with the app."""

    def __init__(self, app_url: str, portal: Portal, http: httpx.Client) -> None:
        self.app_url = app_url
        self.portal = portal
        self.http = http
        self.domain = portal.url.split("://", 1)[1]

    def open(self) -> tuple[httpx.Response, str | None]:
        query, form = frame_post_fields(self.portal.token(), domain=self.domain)
        response = self.http.post(f"{self.app_url}/app?{urlencode(query)}", data=form)
        match = SESSION.search(response.text) if response.status_code == 200 else None
        return response, match.group(1) if match else None

    def api(
        self,
        method: str,
        path: str,
        session: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        return self.http.request(
            method,
            f"{self.app_url}/api{path}",
            params=params,
            json=json,
            headers={"Authorization": f"Bearer {session}"},
        )


def owner_of(binding: dict[str, Any] | None) -> Owner | None:
    if not binding:
        return None
    return Owner(int(binding["ownerTypeId"]), int(binding["ownerId"]))


class VirtualUser:
    """Picks actions at random (seeded) and keeps its own account of its orders."""

    def __init__(self, run: UserRun, client: Client, owners: list[Owner], seed: int) -> None:
        self.run = run
        self.client = client
        self.owners = owners
        self.random = random.Random(seed)

    def record(self, action: str, started: float, response: httpx.Response, ok: bool) -> bool:
        error = None
        if not ok:
            try:
                error = response.json().get("error", {}).get("code")
            except ValueError:
                error = response.text[:80]
        self.run.outcomes.append(
            Outcome(action, response.status_code, time.perf_counter() - started, error)
        )
        return ok

    def open(self) -> None:
        started = time.perf_counter()
        response, session = self.client.open()
        if self.record("open", started, response, session is not None) and session:
            self.run.session = session

    def search(self) -> None:
        started = time.perf_counter()
        if self.random.random() < 0.5:
            params: dict[str, Any] = {"q": self.random.choice(SEARCHES)}
            response = self.client.api("GET", "/orders", self.run.session, params=params)
        else:
            owner_type = self.random.choice((2, 31))
            params = {"type": owner_type, "q": self.random.choice(SEARCHES)}
            response = self.client.api("GET", "/owners", self.run.session, params=params)
        self.record("search", started, response, response.status_code == 200)

    def other_owner(self, current: Owner | None) -> Owner:
        while True:
            owner = self.random.choice(self.owners)
            if owner != current:
                return owner

    def bind(self, order: int, action: str) -> None:
        current = self.run.owners[order]
        owner = self.other_owner(current)
        body = {"orderId": order, "ownerTypeId": owner.type_id, "ownerId": owner.id}
        started = time.perf_counter()
        response = self.client.api("POST", "/bindings", self.run.session, json=body)
        expected = "replaced" if current else "bound"
        ok = response.status_code == 200 and response.json()["outcome"] == expected
        if self.record(action, started, response, ok):
            answer = response.json()
            self.changed(order, owner_of(answer["binding"]), answer["historyId"])

    def unbind(self, order: int) -> None:
        current = self.run.owners[order]
        assert current is not None
        params = {"ownerTypeId": current.type_id, "ownerId": current.id}
        started = time.perf_counter()
        response = self.client.api("DELETE", f"/bindings/{order}", self.run.session, params=params)
        if self.record("unbind", started, response, response.status_code == 200):
            self.changed(order, None, response.json()["historyId"])

    def undo(self, order: int) -> None:
        record_id = self.run.undoable.pop(order)
        started = time.perf_counter()
        response = self.client.api("POST", f"/history/{record_id}/undo", self.run.session)
        if self.record("undo", started, response, response.status_code == 200):
            answer = response.json()
            owner = None if "removed" in answer and answer["removed"] else answer.get("binding")
            self.changed(order, owner_of(owner), answer["historyId"], undoable=False)

    def changed(
        self, order: int, owner: Owner | None, history_id: int, *, undoable: bool = True
    ) -> None:
        self.run.owners[order] = owner
        self.run.changes += 1
        self.run.changed_orders.add(order)
        if undoable:
            self.run.undoable[order] = history_id

    def step(self) -> None:
        if not self.run.session:
            self.open()
            return
        action = self.random.choices(list(MIX), weights=list(MIX.values()))[0]
        bound = [o for o in self.run.orders if self.run.owners[o] is not None]
        free = [o for o in self.run.orders if self.run.owners[o] is None]
        if action == "open":
            self.open()
        elif action == "bind" and free:
            self.bind(self.random.choice(free), "bind")
        elif action == "rebind" and bound:
            self.bind(self.random.choice(bound), "rebind")
        elif action == "unbind" and bound:
            self.unbind(self.random.choice(bound))
        elif action == "undo" and self.run.undoable:
            self.undo(self.random.choice(sorted(self.run.undoable)))
        else:
            self.search()


def history_entries(client: Client, session: str) -> list[dict[str, Any]]:
    """The app's whole history, newest first, page by page."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"cursor": cursor} if cursor else None
        response = client.api("GET", "/history", session, params=params)
        response.raise_for_status()
        page = response.json()
        entries.extend(page["items"])
        cursor = page["nextCursor"]
        if not cursor:
            return entries


def entry_leaves(entry: dict[str, Any]) -> Owner | None:
    """The owner a successful history entry left its order with."""
    if entry["outcome"] == "unbound":
        return None
    return Owner(int(entry["owner"]["ownerTypeId"]), int(entry["owner"]["ownerId"]))


def audit(
    runs: list[UserRun], portal: Portal, client: Client, history_before: set[int]
) -> list[str]:
    """Compare the users' accounts with the portal and the history; return the differences."""
    mismatches: list[str] = []
    expected = {order: owner for run in runs for order, owner in run.owners.items()}
    for order, owner in sorted(expected.items()):
        held = portal.binding(order)
        if held != owner:
            mismatches.append(f"order {order}: portal has {held}, answers imply {owner}")
    _, session = client.open()
    assert session, "the audit could not open the app"
    entries = [e for e in history_entries(client, session) if e["id"] not in history_before]
    changes = [e for e in entries if e["outcome"] != "failed"]
    made = sum(run.changes for run in runs)
    if len(changes) != made:
        mismatches.append(f"history has {len(changes)} changes, the answers report {made}")
    newest: dict[int, dict[str, Any]] = {}
    for entry in changes:  # newest first: the first entry seen per order is its last
        newest.setdefault(int(entry["orderId"]), entry)
    for order, owner in sorted(expected.items()):
        entry = newest.get(order)
        if entry is not None and entry_leaves(entry) != owner:
            mismatches.append(f"order {order}: newest history entry leaves {entry_leaves(entry)}")
        if entry is None and any(order in run.changed_orders for run in runs):
            mismatches.append(f"order {order}: changed but missing from the history")
    return mismatches


def initial_runs(portal: Portal, users: int, orders_each: int) -> list[UserRun]:
    runs = []
    for index in range(users):
        first = FIRST_ORDER + index * orders_each
        orders = list(range(first, first + orders_each))
        runs.append(UserRun(index, orders, {o: portal.binding(o) for o in orders}))
    return runs


def run_soak(
    target: Target,
    *,
    users: int = 50,
    seconds: float = 60.0,
    orders_each: int = ORDERS_EACH,
    deals: int = 60,
    invoices: int = 25,
    seed: int = 1,
    progress: Callable[[str], None] | None = None,
) -> SoakReport:
    """Drive ``users`` concurrent users for ``seconds``, then audit portal and history.

    The portal needs ``FIRST_ORDER + users * orders_each`` orders and ``FIRST_OWNER +
    deals`` deals and ``FIRST_OWNER + invoices`` smart invoices, and must not refuse
    requests for the rate limit (open its limits): the load measures the app, not the
    portal's bucket.
    """
    limits = httpx.Limits(max_connections=users + 4, max_keepalive_connections=users + 4)
    with httpx.Client(verify=tls_context(), timeout=30, limits=limits) as http:
        portal = Portal(target.sandbox_url, http)
        client = Client(target.app_url, portal, http)
        owners = [Owner(2, FIRST_OWNER + i) for i in range(deals)] + [
            Owner(31, FIRST_OWNER + i) for i in range(invoices)
        ]
        runs = initial_runs(portal, users, orders_each)
        _, session = client.open()
        assert session, "the app did not open"
        history_before = {e["id"] for e in history_entries(client, session)}
        deadline = time.monotonic() + seconds
        barrier = threading.Barrier(users)

        def work(run: UserRun) -> None:
            user = VirtualUser(run, client, owners, seed * 1000 + run.index)
            barrier.wait()
            while time.monotonic() < deadline:
                try:
                    user.step()
                except httpx.HTTPError as exc:
                    run.outcomes.append(Outcome("transport", 0, 0.0, type(exc).__name__))

        started = time.monotonic()
        threads = [threading.Thread(target=work, args=(run,), daemon=True) for run in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        if progress:
            progress(f"load done in {elapsed:.1f} s; auditing")
        outcomes = [o for run in runs for o in run.outcomes]
        errors = [o for o in outcomes if o.error is not None or not 200 <= o.status < 300]
        by_action: dict[str, list[float]] = {}
        for outcome in outcomes:
            by_action.setdefault(outcome.action, []).append(outcome.seconds)
        medians = {
            action: round(sorted(times)[len(times) // 2] * 1000, 1)
            for action, times in by_action.items()
        }
        mismatches = audit(runs, portal, client, history_before)
        return SoakReport(
            users=users,
            seconds=elapsed,
            requests=Counter(o.action for o in outcomes),
            errors=errors,
            changes=sum(run.changes for run in runs),
            latencies_ms=medians,
            mismatches=mismatches,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the soak on gunicorn and PostgreSQL and print its report as JSON."""
    import argparse
    import json

    from bench.gunicorn_stand import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, gunicorn_stand

    parser = argparse.ArgumentParser(prog="python -m tests.load.soak", description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", help="also write the report here (JSON)")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 500 or args.seconds <= 0:
        parser.error("--users must be 1 to 500 and --seconds positive")
    orders = max(120, FIRST_ORDER + args.users * ORDERS_EACH)
    with gunicorn_stand(args.database_url, args.redis_url, orders=orders) as stand:
        report = run_soak(
            stand, users=args.users, seconds=args.seconds, seed=args.seed, progress=print
        )
        record = {"stand": "gunicorn -w 4, PostgreSQL, Redis", **report.as_dict()}
    text = json.dumps(record, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
