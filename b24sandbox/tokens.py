"""OAuth tokens and authorization codes, stored in the sandbox's SQLite database.

Access tokens live ``access_ttl`` seconds; refresh tokens rotate and are single-use: a
refresh deletes the old refresh token and the access token issued with it, so only the
newest pair of a chain ever works, as on Bitrix24's OAuth server.

Every lifetime is measured on the sandbox clock: callers pass its reading as ``now``.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

    from b24sandbox.state import Database

TOKEN_ALPHABET = string.ascii_lowercase + string.digits
TOKEN_LENGTH = 32
REFRESH_TTL = 180 * 24 * 3600  # current docs: refresh tokens live 180 days
CODE_TTL = 30  # authorization codes live 30 seconds

SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_access_tokens (
    token TEXT PRIMARY KEY,
    portal_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    scope TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_access_tokens_portal ON auth_access_tokens (portal_id);
CREATE TABLE IF NOT EXISTS auth_refresh_tokens (
    token TEXT PRIMARY KEY,
    portal_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    scope TEXT NOT NULL,
    expires_at REAL NOT NULL,
    access_token TEXT NOT NULL,
    -- the installation the chain belongs to: a reinstalled app does not revive it
    application_token TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS auth_refresh_tokens_portal ON auth_refresh_tokens (portal_id);
CREATE TABLE IF NOT EXISTS auth_codes (
    code TEXT PRIMARY KEY,
    portal_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    scope TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Grant:
    """What a token or code stands for: a user of a portal with a scope."""

    portal_id: int
    user_id: int
    scope: str
    expires_at: float

    def expired(self, now: float) -> bool:
        """Whether the token or code has outlived its lifetime at ``now``."""
        return now >= self.expires_at


@dataclass(frozen=True)
class TokenPair:
    """A freshly issued access/refresh pair and the grant behind it."""

    access_token: str
    refresh_token: str
    expires_at: float
    expires_in: int
    grant: Grant


def create_schema(db: Database) -> None:
    """Create the token tables if they do not exist."""
    with db.lock:
        db.conn.executescript(SCHEMA)


def new_token() -> str:
    """Return a random token shaped like Bitrix24's: 32 lowercase alphanumerics."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def issue_pair(
    db: Database,
    portal_id: int,
    user_id: int,
    scope: str,
    expires_in: int,
    application_token: str,
    *,
    now: float,
) -> TokenPair:
    """Issue a new token chain for a user of the app installed as ``application_token``."""
    with db.transaction() as conn:
        return _insert_pair(conn, portal_id, user_id, scope, expires_in, application_token, now)


def _insert_pair(
    conn: sqlite3.Connection,
    portal_id: int,
    user_id: int,
    scope: str,
    expires_in: int,
    application_token: str,
    now: float,
) -> TokenPair:
    """Insert an access/refresh pair issued at ``now`` inside the caller's transaction."""
    access, refresh = new_token(), new_token()
    expires_at = now + expires_in
    conn.execute(
        "INSERT INTO auth_access_tokens (token, portal_id, user_id, scope, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (access, portal_id, user_id, scope, expires_at),
    )
    conn.execute(
        "INSERT INTO auth_refresh_tokens (token, portal_id, user_id, scope, expires_at,"
        " access_token, application_token) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (refresh, portal_id, user_id, scope, now + REFRESH_TTL, access, application_token),
    )
    grant = Grant(portal_id, user_id, scope, expires_at)
    return TokenPair(access, refresh, expires_at, expires_in, grant)


def find_access(db: Database, token: str) -> Grant | None:
    """Return the grant of an access token (expired ones too), or None when unknown."""
    rows = db.query(
        "SELECT portal_id, user_id, scope, expires_at FROM auth_access_tokens WHERE token = ?",
        (token,),
    )
    if not rows:
        return None
    row = rows[0]
    return Grant(row["portal_id"], row["user_id"], row["scope"], row["expires_at"])


class RefreshRefused(Exception):
    """A refresh the OAuth server refuses, with its error code."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def rotate(db: Database, refresh_token: str, expires_in: int, *, now: float) -> TokenPair:
    """Spend a refresh token: kill it and its access token, issue the next pair.

    Raises RefreshRefused: ``invalid_grant`` when the token is unknown, used or
    expired; ``invalid_client`` when the app it was issued to is no longer installed.
    """
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT portal_id, user_id, scope, expires_at, access_token, application_token"
            " FROM auth_refresh_tokens WHERE token = ?",
            (refresh_token,),
        ).fetchone()
        if row is None:
            raise RefreshRefused("invalid_grant", "Invalid refresh token")
        conn.execute("DELETE FROM auth_refresh_tokens WHERE token = ?", (refresh_token,))
        conn.execute("DELETE FROM auth_access_tokens WHERE token = ?", (row["access_token"],))
        if now >= row["expires_at"]:
            raise RefreshRefused("invalid_grant", "The refresh token has expired")
        installed = conn.execute(
            "SELECT application_token FROM auth_installations WHERE portal_id = ?",
            (row["portal_id"],),
        ).fetchone()
        if installed is None or installed[0] != row["application_token"]:
            raise RefreshRefused("invalid_client", "The application is not installed")
        return _insert_pair(
            conn,
            row["portal_id"],
            row["user_id"],
            row["scope"],
            expires_in,
            row["application_token"],
            now,
        )


def create_code(db: Database, portal_id: int, user_id: int, scope: str, *, now: float) -> str:
    """Create a one-time authorization code that lives ``CODE_TTL`` seconds."""
    code = new_token()
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO auth_codes (code, portal_id, user_id, scope, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (code, portal_id, user_id, scope, now + CODE_TTL),
        )
    return code


def redeem_code(db: Database, code: str, *, now: float) -> Grant | None:
    """Spend an authorization code; None when unknown, used or older than 30 s at ``now``."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT portal_id, user_id, scope, expires_at FROM auth_codes WHERE code = ?",
            (code,),
        ).fetchone()
        if row is None:
            return None
        conn.execute("DELETE FROM auth_codes WHERE code = ?", (code,))
    grant = Grant(row["portal_id"], row["user_id"], row["scope"], row["expires_at"])
    return None if grant.expired(now) else grant


def revoke_access(db: Database, portal_id: int) -> None:
    """Kill a portal's access tokens and codes (uninstall).

    Refresh tokens stay, tied to the removed installation, so that using one answers
    ``invalid_client`` ("the application may not be installed") as the docs describe.
    """
    with db.transaction() as conn:
        for table in ("auth_access_tokens", "auth_codes"):
            conn.execute(f"DELETE FROM {table} WHERE portal_id = ?", (portal_id,))


def forget_portal(db: Database, portal_id: int) -> None:
    """Delete every token and code of a portal (reset)."""
    with db.transaction() as conn:
        for table in ("auth_access_tokens", "auth_refresh_tokens", "auth_codes"):
            conn.execute(f"DELETE FROM {table} WHERE portal_id = ?", (portal_id,))
