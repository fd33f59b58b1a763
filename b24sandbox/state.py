"""The sandbox's shared state: one SQLite database and the portals it hosts.

Everything lives in one SQLite database (in memory, or in ``--state FILE``) guarded by
one lock, so the portals served on different ports of the same process share it, and so
does the OAuth server, which must know every portal's tokens.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from b24sandbox.config import SandboxConfig


class Database:
    """One SQLite connection shared by all threads, serialised by a re-entrant lock."""

    def __init__(self, path: str | None) -> None:
        self.path = path or ":memory:"
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
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


def make_portals(config: SandboxConfig) -> list[Portal]:
    """Create the configured portals; ids start at 1, member ids derive from the seed."""
    portals = []
    for index in range(config.portals):
        port = config.portal_port(index)
        digest = hashlib.md5(f"b24sandbox:{config.seed}:{index}".encode()).hexdigest()
        portals.append(
            Portal(id=index + 1, port=port, domain=f"localhost:{port}", member_id=digest)
        )
    return portals
