"""The sandbox's shared state: one SQLite database and the portals it hosts.

Everything lives in one SQLite database (in memory, or in ``--state FILE``) guarded by
one lock, so the portals served on different ports of the same process share it, and so
does the OAuth server, which must know every portal's tokens.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import current_app

from b24sandbox import apps, tokens
from b24sandbox.apps import Installation
from b24sandbox.clock import SandboxClock
from b24sandbox.config import SandboxConfig
from b24sandbox.faults import FaultBook
from b24sandbox.filters import register_like
from b24sandbox.limits import RateLimiter
from b24sandbox.users import USERS


class Database:
    """One SQLite connection shared by all threads, serialised by a re-entrant lock."""

    def __init__(self, path: str | None) -> None:
        self.path = path or ":memory:"
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        register_like(self.conn)
        self.conn.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            self.conn.execute("PRAGMA journal_mode = WAL")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block atomically: BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        """Return all rows of a read query."""
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    def execute(self, sql: str, args: tuple | list = ()) -> int:
        """Run one write statement on its own (autocommit) and return the affected rows."""
        with self.lock:
            return self.conn.execute(sql, args).rowcount

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()


@dataclass
class Portal:
    """One hosted portal: its own port, domain and ``member_id``."""

    id: int
    port: int
    domain: str
    member_id: str
    scheme: str = "http"

    @property
    def base_url(self) -> str:
        """The portal's origin, e.g. ``http://localhost:5001``."""
        return f"{self.scheme}://{self.domain}"

    @property
    def client_endpoint(self) -> str:
        """The REST base URL the docs call ``client_endpoint``."""
        return f"{self.base_url}/rest/"


def make_portals(config: SandboxConfig, ports: list[int] | None = None) -> list[Portal]:
    """Create the configured portals; ids start at 1, member ids derive from the seed.

    ``ports`` gives the ports actually bound (``--port 0`` lets the OS choose them);
    without it portal ``i`` uses ``config.port + i``.
    """
    portals = []
    for index in range(config.portals):
        port = ports[index] if ports is not None else config.portal_port(index)
        digest = hashlib.md5(f"b24sandbox:{config.seed}:{index}".encode()).hexdigest()
        portals.append(
            Portal(id=index + 1, port=port, domain=f"localhost:{port}", member_id=digest)
        )
    return portals


# The largest database whose seeded state a reset keeps a copy of (in memory): the test
# sandbox's is about 1 MiB; a benchmark's 100,000 rows a table are reseeded instead.
PRISTINE_MAX_BYTES = 64 * 1024 * 1024

PORTALS_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_portals (
    id INTEGER PRIMARY KEY,
    member_id TEXT NOT NULL,
    seeded_at REAL NOT NULL
);
"""


class CallLog:
    """Every REST call the portals answered, for ``GET /_sandbox/calls`` (never tokens)."""

    MAX_CALLS = 20000  # keep memory bounded during benchmarks; counts keep counting

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._calls: deque[dict[str, Any]] = deque(maxlen=self.MAX_CALLS)
        self._counts: Counter[str] = Counter()
        self._refreshes: Counter[int] = Counter()
        self._lock = threading.Lock()

    def record(
        self,
        method: str,
        user_id: int | None,
        status: int,
        error: str | None,
        portal_id: int,
        in_batch: bool = False,
        commands: list[str] | None = None,
    ) -> None:
        """Log one call under its canonical lowercase method name.

        ``commands`` (a batch call's own entry) lists its commands' methods in ``cmd`` order.
        """
        entry: dict[str, Any] = {
            "method": method,
            "user_id": user_id,
            "status": status,
            "error": error,
            "portal": portal_id,
            "ts": self._clock(),
        }
        if in_batch:
            entry["batch"] = True
        if commands is not None:
            entry["commands"] = commands
        with self._lock:
            self._calls.append(entry)
            self._counts[method] += 1

    def record_refresh(self, portal_id: int) -> None:
        """Count one successful refresh_token grant."""
        with self._lock:
            self._refreshes[portal_id] += 1

    def snapshot(self, portal_id: int | None = None) -> dict[str, Any]:
        """Return the log as the control API shows it, optionally for one portal."""
        with self._lock:
            calls = [c for c in self._calls if portal_id is None or c["portal"] == portal_id]
            refreshes = (
                sum(self._refreshes.values()) if portal_id is None else self._refreshes[portal_id]
            )
            counts = self._counts if portal_id is None else Counter(c["method"] for c in calls)
            return {"calls": calls, "counts": dict(counts), "refreshes": refreshes}

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._calls.clear()
            self._counts.clear()
            self._refreshes.clear()


class Sandbox:
    """One sandbox process: its configuration, database, portals and test controls."""

    def __init__(self, config: SandboxConfig, ports: list[int] | None = None) -> None:
        self.config = config
        self.db = Database(config.state_file)
        self.portals: list[Portal] = make_portals(config, ports)
        # Real time plus an offset tests move: every expiry, drain and timestamp reads it.
        self.clock = SandboxClock()
        self.calls = CallLog(self.clock.time)
        self.limits = RateLimiter(config.rps, config.burst, self.clock.monotonic)
        self.faults = FaultBook()
        # The database as the first reset left it, copied back by the later ones.
        self._pristine: sqlite3.Connection | None = None
        # Set when the servers stop, so that deliberately hanging answers end at once.
        self.stopping = threading.Event()
        from b24sandbox import data  # imported late: the data module imports this one

        with self.db.lock:
            self.db.conn.executescript(PORTALS_SCHEMA)
        tokens.create_schema(self.db)
        apps.create_schema(self.db)
        data.create_schema(self.db)
        for portal in self.portals:
            self._seed_once(portal)

    def _seed_once(self, portal: Portal) -> None:
        """Seed a portal's data unless the state file already holds it."""
        from b24sandbox import data

        if self.db.query("SELECT 1 FROM auth_portals WHERE id = ?", (portal.id,)):
            return
        data.seed_portal(self.db, portal.id, self.config)
        self.db.execute(
            "INSERT INTO auth_portals (id, member_id, seeded_at) VALUES (?, ?, ?)",
            (portal.id, portal.member_id, self.clock.time()),
        )

    # --- portals ---------------------------------------------------------------------

    @property
    def oauth_portal(self) -> Portal:
        """The portal whose origin also serves as the OAuth server."""
        return self.portals[0]

    @property
    def oauth_url(self) -> str:
        """The OAuth server's origin, e.g. ``http://localhost:5001``."""
        return self.oauth_portal.base_url

    @property
    def server_endpoint(self) -> str:
        """The OAuth server's REST base, sent as ``server_endpoint``."""
        return f"{self.oauth_url}/rest/"

    def portal(self, portal_id: int) -> Portal:
        """Return the portal with this id; KeyError when there is none."""
        for portal in self.portals:
            if portal.id == portal_id:
                return portal
        raise KeyError(portal_id)

    def portal_by_domain(self, domain: str) -> Portal | None:
        """Return the portal serving ``domain`` (host:port), if any."""
        domain = domain.lower()
        return next((p for p in self.portals if p.domain == domain), None)

    def portal_by_member_id(self, member_id: str) -> Portal | None:
        """Return the portal with this ``member_id``, if any."""
        return next((p for p in self.portals if p.member_id == member_id), None)

    def reset(self, app_url: str | None = None) -> None:
        """Return every portal to its freshly seeded state, app not installed, real time.

        The first reset reseeds every portal and, for a database of at most
        ``PRISTINE_MAX_BYTES``, keeps a copy of the result; later resets copy it back, which
        is the same state in a fraction of the time (the test suite resets before every
        test). Row ids still never repeat: the copy keeps each table's highest id so far.
        """
        from b24sandbox import data

        if app_url:
            self.config.app_url = app_url.rstrip("/")
        if self._pristine is not None:
            self._restore_pristine()
        else:
            for portal in self.portals:
                apps.forget_portal(self.db, portal.id)
                data.reset_portal(self.db, portal.id, self.config)
            self._pristine = self._copy_if_small()
        self.calls.clear()
        self.faults.clear()
        self.clock.reset()
        self.limits.configure(self.config.rps, self.config.burst)

    def _copy_if_small(self) -> sqlite3.Connection | None:
        """Copy the database into memory, unless it is too large to keep a second time."""
        with self.db.lock:
            pages = self.db.conn.execute("PRAGMA page_count").fetchone()[0]
            size = self.db.conn.execute("PRAGMA page_size").fetchone()[0]
            if pages * size > PRISTINE_MAX_BYTES:
                return None
            copy = sqlite3.connect(":memory:", check_same_thread=False)
            self.db.conn.backup(copy)
            return copy

    def _restore_pristine(self) -> None:
        """Copy the kept seeded state back over the database, keeping the id counters."""
        from b24sandbox.data import search

        assert self._pristine is not None
        with self.db.lock:
            # Counters only grow, so the ones in use are never below the copy's: put them back.
            counters = self.db.conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
            self._pristine.backup(self.db.conn)
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM sqlite_sequence")
                conn.executemany("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", counters)
        search.forget_counts(self.db)

    # --- tokens ----------------------------------------------------------------------

    def issue_tokens(
        self, portal: Portal, user_id: int, expires_in: int | None = None, scope: str | None = None
    ) -> dict[str, Any]:
        """Issue a token pair for a portal user, as ``/oauth/token/`` answers it.

        Tokens only exist for an app present on the portal, so this begins the
        installation when there is none yet (without finishing it). ``scope`` narrows
        the token below the app's scope (for testing ``insufficient_scope``).
        """
        if user_id not in USERS:
            raise KeyError(user_id)
        installation = self.begin_install(portal)
        ttl = self.config.access_ttl if expires_in is None else int(expires_in)
        granted = self.config.scope if scope is None else scope
        pair = tokens.issue_pair(
            self.db,
            portal.id,
            user_id,
            granted,
            ttl,
            installation.application_token,
            now=self.clock.time(),
        )
        return self.token_response(portal, pair)

    def token_response(self, portal: Portal, pair: tokens.TokenPair) -> dict[str, Any]:
        """Render a token pair with every documented field of the token endpoint."""
        return {
            "access_token": pair.access_token,
            "expires": int(pair.expires_at),
            "expires_in": pair.expires_in,
            "scope": pair.grant.scope,
            "domain": self.oauth_portal.domain,
            "server_endpoint": self.server_endpoint,
            "status": self.app_status,
            "client_endpoint": portal.client_endpoint,
            "member_id": portal.member_id,
            "user_id": pair.grant.user_id,
            "refresh_token": pair.refresh_token,
        }

    @property
    def app_status(self) -> str:
        """The app's status letter (app.info ``STATUS``): ``L`` for a local app."""
        return "L" if self.config.client_id.startswith("local.") else "F"

    # --- the app on a portal ---------------------------------------------------------

    def installation(self, portal: Portal) -> Installation | None:
        """Return the app's installation on the portal, or None."""
        return apps.get_installation(self.db, portal.id)

    def begin_install(self, portal: Portal) -> Installation:
        """Create the installation and its application token if none (not yet finished)."""
        return apps.begin_installation(self.db, portal.id)

    def finish_install(self, portal: Portal) -> None:
        """Mark the app installed (``installFinish``) and deliver ONAPPINSTALL."""
        from b24sandbox import events

        events.finish_install(self, portal)

    def placements(self, portal: Portal) -> list[dict[str, Any]]:
        """Return the app's placement handlers on the portal (placement.get's shape)."""
        return apps.list_placements(self.db, portal.id)

    def event_handlers(self, portal: Portal) -> list[dict[str, Any]]:
        """Return the app's event handlers on the portal (event.get's shape)."""
        return apps.list_event_handlers(self.db, portal.id)

    def close(self) -> None:
        """Release the database (and the seeded copy a reset kept)."""
        if self._pristine is not None:
            self._pristine.close()
            self._pristine = None
        self.stopping.set()
        self.db.close()


def current_sandbox() -> Sandbox:
    """Return the sandbox behind the Flask app handling this request."""
    return current_app.extensions["b24sandbox"]["sandbox"]


def current_portal() -> Portal:
    """Return the portal whose origin this request came to."""
    return current_app.extensions["b24sandbox"]["portal"]
