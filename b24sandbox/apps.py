"""The app's footprint on each portal: its installation, placements and event handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from b24sandbox import tokens

if TYPE_CHECKING:
    from b24sandbox.state import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_installations (
    portal_id INTEGER PRIMARY KEY,
    application_token TEXT NOT NULL,
    installed INTEGER NOT NULL DEFAULT 0,
    installed_at TEXT
);
CREATE TABLE IF NOT EXISTS auth_placements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    portal_id INTEGER NOT NULL,
    placement TEXT NOT NULL,
    handler TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    group_name TEXT NOT NULL DEFAULT '',
    lang_all TEXT NOT NULL DEFAULT '{}',
    options TEXT NOT NULL DEFAULT '[]',
    user_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS auth_placements_portal ON auth_placements (portal_id, placement);
CREATE TABLE IF NOT EXISTS auth_event_handlers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    portal_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    handler TEXT NOT NULL,
    auth_type INTEGER NOT NULL DEFAULT 0,
    offline INTEGER NOT NULL DEFAULT 0,
    bound_by INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS auth_event_handlers_portal ON auth_event_handlers (portal_id, event);
"""


@dataclass(frozen=True)
class Installation:
    """The app's installation on one portal."""

    application_token: str
    installed: bool
    installed_at: str | None


def create_schema(db: Database) -> None:
    """Create the installation, placement and event handler tables."""
    with db.lock:
        db.conn.executescript(SCHEMA)


def get_installation(db: Database, portal_id: int) -> Installation | None:
    """Return the app's installation on a portal, or None when it is not there."""
    rows = db.query(
        "SELECT application_token, installed, installed_at FROM auth_installations"
        " WHERE portal_id = ?",
        (portal_id,),
    )
    if not rows:
        return None
    row = rows[0]
    return Installation(row["application_token"], bool(row["installed"]), row["installed_at"])


def begin_installation(db: Database, portal_id: int) -> Installation:
    """Create the installation record and its application token unless it exists."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO auth_installations (portal_id, application_token, installed)"
            " VALUES (?, ?, 0)",
            (portal_id, tokens.new_token()),
        )
    installation = get_installation(db, portal_id)
    assert installation is not None
    return installation


def mark_installed(db: Database, portal_id: int, now: float) -> None:
    """Record that the install finished (``BX24.installFinish``) at ``now`` (Unix time)."""
    moment = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    with db.transaction() as conn:
        conn.execute(
            "UPDATE auth_installations SET installed = 1, installed_at = COALESCE(installed_at, ?)"
            " WHERE portal_id = ?",
            (moment, portal_id),
        )


def remove_app(db: Database, portal_id: int) -> None:
    """Delete the app from a portal: installation, placements, handlers, API access."""
    with db.transaction() as conn:
        for table in ("auth_installations", "auth_placements", "auth_event_handlers"):
            conn.execute(f"DELETE FROM {table} WHERE portal_id = ?", (portal_id,))
    tokens.revoke_access(db, portal_id)


def forget_portal(db: Database, portal_id: int) -> None:
    """Remove the app and every token trace from a portal (reset)."""
    remove_app(db, portal_id)
    tokens.forget_portal(db, portal_id)


# --- placements ------------------------------------------------------------------------


def placement_exists(db: Database, portal_id: int, placement: str, handler: str) -> bool:
    """Whether the app already bound ``handler`` to ``placement`` on this portal."""
    rows = db.query(
        "SELECT 1 FROM auth_placements WHERE portal_id = ? AND placement = ? AND handler = ?",
        (portal_id, placement, handler),
    )
    return bool(rows)


def add_placement(db: Database, portal_id: int, fields: dict[str, Any]) -> None:
    """Store one placement handler (fields in placement.get's camelCase)."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO auth_placements (portal_id, placement, handler, title, description,"
            " group_name, lang_all, options, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                portal_id,
                fields["placement"],
                fields["handler"],
                fields.get("title", ""),
                fields.get("description", ""),
                fields.get("groupName", ""),
                json.dumps(fields.get("langAll") or {}),
                json.dumps(fields.get("options") or []),
                int(fields.get("userId") or 0),
            ),
        )


def remove_placements(
    db: Database, portal_id: int, placement: str, handler: str | None, user_id: int | None
) -> int:
    """Delete matching placement handlers and return how many went."""
    sql = "DELETE FROM auth_placements WHERE portal_id = ? AND placement = ?"
    args: list[Any] = [portal_id, placement]
    if handler:
        sql += " AND handler = ?"
        args.append(handler)
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    with db.transaction() as conn:
        return conn.execute(sql, args).rowcount


def list_placements(db: Database, portal_id: int) -> list[dict[str, Any]]:
    """Return the portal's placement handlers in placement.get's shape."""
    rows = db.query(
        "SELECT placement, handler, title, description, group_name, lang_all, options, user_id"
        " FROM auth_placements WHERE portal_id = ? ORDER BY id",
        (portal_id,),
    )
    return [
        {
            "placement": row["placement"],
            "userId": row["user_id"],
            "handler": row["handler"],
            "options": json.loads(row["options"]),
            "title": row["title"],
            "description": row["description"],
            "langAll": json.loads(row["lang_all"]),
        }
        for row in rows
    ]


# --- event handlers --------------------------------------------------------------------


def handler_exists(db: Database, portal_id: int, event: str, handler: str, auth_type: int) -> bool:
    """Whether the same event handler is already bound."""
    rows = db.query(
        "SELECT 1 FROM auth_event_handlers"
        " WHERE portal_id = ? AND event = ? AND handler = ? AND auth_type = ?",
        (portal_id, event, handler, auth_type),
    )
    return bool(rows)


def add_event_handler(
    db: Database,
    portal_id: int,
    event: str,
    handler: str,
    auth_type: int,
    offline: bool,
    bound_by: int,
) -> None:
    """Store an event handler (event names are kept UPPERCASE)."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO auth_event_handlers"
            " (portal_id, event, handler, auth_type, offline, bound_by) VALUES (?, ?, ?, ?, ?, ?)",
            (portal_id, event.upper(), handler, auth_type, int(offline), bound_by),
        )


def remove_event_handlers(
    db: Database,
    portal_id: int,
    event: str | None,
    handler: str | None,
    auth_type: int | None,
    offline: bool,
    bound_by: int | None,
) -> int:
    """Delete matching event handlers and return how many went."""
    sql = "DELETE FROM auth_event_handlers WHERE portal_id = ? AND offline = ?"
    args: list[Any] = [portal_id, int(offline)]
    for column, value in (
        ("event", event.upper() if event else None),
        ("handler", handler),
        ("auth_type", auth_type),
        ("bound_by", bound_by),
    ):
        if value is not None and value != "":
            sql += f" AND {column} = ?"
            args.append(value)
    with db.transaction() as conn:
        return conn.execute(sql, args).rowcount


def list_event_handlers(
    db: Database, portal_id: int, event: str | None = None, bound_by: int | None = None
) -> list[dict[str, Any]]:
    """Return event handlers in event.get's shape (``auth_type`` a string, ``offline`` an int)."""
    sql = "SELECT event, handler, auth_type, offline FROM auth_event_handlers WHERE portal_id = ?"
    args: list[Any] = [portal_id]
    if event is not None:
        sql += " AND event = ?"
        args.append(event.upper())
    if bound_by is not None:
        sql += " AND bound_by = ?"
        args.append(bound_by)
    rows = db.query(sql + " ORDER BY id", args)
    return [
        {
            "event": row["event"],
            "handler": row["handler"],
            "auth_type": str(row["auth_type"]),
            "offline": row["offline"],
        }
        for row in rows
    ]
