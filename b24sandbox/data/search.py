"""Indexes that keep the pickers' list calls flat at 100,000 rows: substring search and totals.

**Substring search.** ``%field`` is ``LIKE '%value%'``, case-insensitive in every script (the
sandbox's LIKE function for values beyond ASCII, :func:`b24sandbox.filters.like_sql`), which no
B-tree index serves. The searched text columns also get an FTS5 index with the ``trigram``
tokenizer and ``detail=none`` (which rows hold a trigram, not where): an external-content
index over the table's rowid, kept in step by triggers, so every write reaches it in the same
transaction, whoever makes it.

The index only *narrows*. A row can contain the value only if it holds every trigram of it,
and the tokenizer folds case one character for one, as the LIKE does, so the rows holding the
value's trigrams are a superset of the matches. The LIKE stays in the query and decides, so
the rows, their order, paging and ``total`` are exactly the scan's.

Which trigrams: the cost of an FTS5 AND grows with its rarest term and with the number of
terms, so :func:`pick_terms` takes up to :data:`MAX_TERMS` of the rarest, preferring ones
that neither overlap nor are held by exactly as many rows (such trigrams come from the same
word and name the same rows). How rare a trigram is comes from the index's ``fts5vocab``
table and is remembered per database: it only chooses terms, so a figure gone stale after
writes costs time, never a row.

When not to: values shorter than three characters have no trigram, and a NUL character is
not something the LIKE reads the same way; both take the scan. So do values whose trigrams
name more than :data:`DENSE_UNCOUNTED` rows (:data:`DENSE_COUNTED` on a counted page): so many
rows match that the scan in id order finds its 50 sooner than that many lookups would (on a
counted page, the full COUNT costs about as much).

**Totals.** A page without a filter answers ``total`` from a per-portal row count kept by
triggers (``data_row_counts``) instead of a ``COUNT(*)`` over the portal's rows.

Rowids of these tables are implicit (their key is ``(portal_id, id)``). SQLite keeps them
except on ``VACUUM``, which the sandbox never runs; :func:`rebuild` puts things right after one.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from b24sandbox.filters import Condition, Field, Narrowing
from b24sandbox.state import Database

# Text columns with a trigram index: the pickers' ``%accountNumber`` on orders and ``%title``
# on deals and smart invoices (crm.deal.list's ``%TITLE`` reads the same column).
SEARCHED = (
    ("sale_order", "account_number"),
    ("crm_deal", "title"),
    ("crm_smart_invoice", "title"),
)

# Tables whose rows per portal are counted by triggers.
COUNTED = ("sale_order", "crm_deal", "crm_smart_invoice", "crm_invoice")

COUNTS_TABLE = "data_row_counts"

# Above this many candidate rows a substring search scans instead (see the module docstring).
DENSE_UNCOUNTED = 1000
DENSE_COUNTED = 2500

MAX_TERMS = 3  # trigrams per index query; each one more adds to the cost of the AND
MAX_CONSIDERED = 24  # trigrams of a long value looked at, spread over it
SHORTEST = 3  # one trigram
_MAX_REMEMBERED = 50_000  # trigram counts kept per index before starting afresh


def index_name(table: str, column: str) -> str:
    """Return the FTS5 table indexing ``table.column``."""
    return f"{table}_{column}_search"


def vocabulary_name(table: str, column: str) -> str:
    """Return the ``fts5vocab`` table giving each trigram's row count in that index."""
    return f"{table}_{column}_trigrams"


def _index_ddl(table: str, column: str) -> list[str]:
    """Return the FTS5 table, its vocabulary and the triggers keeping it in step."""
    index = index_name(table, column)
    delete = (
        f"INSERT INTO {index} ({index}, rowid, {column}) VALUES ('delete', old.rowid, old.{column})"
    )
    insert = f"INSERT INTO {index} (rowid, {column}) VALUES (new.rowid, new.{column})"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {index} USING fts5({column}, content='{table}',"
        " content_rowid='rowid', tokenize='trigram', detail='none', columnsize=0)",
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {vocabulary_name(table, column)}"
        f" USING fts5vocab({index}, 'row')",
        *_index_triggers(table, column, insert, delete),
    ]


def _index_triggers(table: str, column: str, insert: str, delete: str) -> list[str]:
    """Return the triggers that copy every write of ``table.column`` into its index."""
    index = index_name(table, column)
    return [
        f"CREATE TRIGGER IF NOT EXISTS {index}_insert AFTER INSERT ON {table} BEGIN {insert}; END",
        f"CREATE TRIGGER IF NOT EXISTS {index}_delete AFTER DELETE ON {table} BEGIN {delete}; END",
        f"CREATE TRIGGER IF NOT EXISTS {index}_update AFTER UPDATE ON {table}"
        f" WHEN old.rowid IS NOT new.rowid OR old.{column} IS NOT new.{column}"
        f" BEGIN {delete}; {insert}; END",
    ]


def _count_triggers(table: str) -> list[str]:
    """Return the triggers that keep ``table``'s rows per portal in :data:`COUNTS_TABLE`."""

    def step(portal: str, delta: int) -> str:
        return (
            f"INSERT INTO {COUNTS_TABLE} (table_name, portal_id, rows)"
            f" VALUES ('{table}', {portal}, {delta})"
            f" ON CONFLICT (table_name, portal_id) DO UPDATE SET rows = rows + {delta}"
        )

    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_count_insert AFTER INSERT ON {table}"
        f" BEGIN {step('new.portal_id', 1)}; END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_count_delete AFTER DELETE ON {table}"
        f" BEGIN {step('old.portal_id', -1)}; END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_count_update AFTER UPDATE OF portal_id ON {table}"
        " WHEN old.portal_id IS NOT new.portal_id"
        f" BEGIN {step('old.portal_id', -1)}; {step('new.portal_id', 1)}; END",
    ]


def _all_triggers() -> list[str]:
    """Return the CREATE statements of every trigger this module keeps."""
    statements = [
        s for table, column in SEARCHED for s in _index_ddl(table, column) if "TRIGGER" in s[:14]
    ]
    statements.extend(s for table in COUNTED for s in _count_triggers(table))
    return statements


def _trigger_name(statement: str) -> str:
    """Return the name a ``CREATE TRIGGER IF NOT EXISTS <name> ...`` statement creates."""
    return statement.split()[5]


def _missing(conn: sqlite3.Connection, statements: list[str]) -> bool:
    """Whether any of these triggers is not in the schema yet."""
    names = [_trigger_name(s) for s in statements if s.startswith("CREATE TRIGGER")]
    marks = ", ".join("?" for _ in names)
    found = conn.execute(
        f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})", names
    ).fetchone()[0]
    return bool(found != len(names))


def create(conn: sqlite3.Connection) -> None:
    """Create the indexes, counts and triggers (idempotent), filling any that are new.

    A state file written before they existed gets them filled from its rows once.
    """
    # REPLACE deletes a row without its DELETE triggers unless recursive triggers are on.
    conn.execute("PRAGMA recursive_triggers = ON")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {COUNTS_TABLE} (table_name TEXT NOT NULL,"
        " portal_id INTEGER NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (table_name, portal_id))"
    )
    for table, column in SEARCHED:
        statements = _index_ddl(table, column)
        fresh = _missing(conn, statements)
        for statement in statements:
            conn.execute(statement)
        if fresh:
            index = index_name(table, column)
            conn.execute(f"INSERT INTO {index} ({index}) VALUES ('rebuild')")
    for table in COUNTED:
        statements = _count_triggers(table)
        fresh = _missing(conn, statements)
        for statement in statements:
            conn.execute(statement)
        if fresh:
            _recount(conn, table)


def _recount(conn: sqlite3.Connection, table: str) -> None:
    """Set every portal's count of ``table`` from its rows."""
    conn.execute(f"DELETE FROM {COUNTS_TABLE} WHERE table_name = ?", (table,))
    conn.execute(
        f"INSERT INTO {COUNTS_TABLE} (table_name, portal_id, rows)"
        f" SELECT ?, portal_id, COUNT(*) FROM {table} GROUP BY portal_id",
        (table,),
    )


def rebuild(conn: sqlite3.Connection) -> None:
    """Rebuild every index and count from the tables' rows (after a ``VACUUM``, say)."""
    for table, column in SEARCHED:
        index = index_name(table, column)
        conn.execute(f"INSERT INTO {index} ({index}) VALUES ('rebuild')")
    for table in COUNTED:
        _recount(conn, table)


@contextmanager
def bulk_writes(conn: sqlite3.Connection, portal_id: int) -> Iterator[None]:
    """Rewrite one portal's rows in bulk, then index and count them in one go.

    Row by row the index costs more than the rows: FTS5 flushes its buffer at each trigger
    statement, so seeding 100,000 rows a table would take minutes. Inside the block (run it
    within a transaction) the triggers are off and only this portal's rows may change; after
    it, the portal's rows are indexed with one statement per table, each index is merged into
    one segment (searches on a freshly seeded index of 100,000 rows were about four times
    slower before), and the rows are counted again.
    """
    for statement in _all_triggers():
        conn.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(statement)}")
    for table, column in SEARCHED:
        index = index_name(table, column)
        others = conn.execute(
            f"SELECT 1 FROM {table} WHERE portal_id <> ? LIMIT 1", (portal_id,)
        ).fetchone()
        if others is None:
            conn.execute(f"INSERT INTO {index} ({index}) VALUES ('delete-all')")
        else:
            conn.execute(
                f"INSERT INTO {index} ({index}, rowid, {column})"
                f" SELECT 'delete', rowid, {column} FROM {table} WHERE portal_id = ?",
                (portal_id,),
            )
    yield
    for table, column in SEARCHED:
        index = index_name(table, column)
        conn.execute(
            f"INSERT INTO {index} (rowid, {column})"
            f" SELECT rowid, {column} FROM {table} WHERE portal_id = ?",
            (portal_id,),
        )
        # One bulk insert leaves dozens of segments; merged, a search reads one.
        conn.execute(f"INSERT INTO {index} ({index}) VALUES ('optimize')")
    for table in COUNTED:
        conn.execute(
            f"INSERT INTO {COUNTS_TABLE} (table_name, portal_id, rows)"
            f" SELECT ?, ?, COUNT(*) FROM {table} WHERE portal_id = ?"
            " ON CONFLICT (table_name, portal_id) DO UPDATE SET rows = excluded.rows",
            (table, portal_id, portal_id),
        )
    for statement in _all_triggers():
        conn.execute(statement)


def portal_rows(db: Database, table: str, portal_id: int) -> int | None:
    """Return how many rows ``table`` holds for a portal; None when it is not counted."""
    if table not in COUNTED:
        return None
    rows = db.query(
        f"SELECT rows FROM {COUNTS_TABLE} WHERE table_name = ? AND portal_id = ?",
        (table, portal_id),
    )
    return int(rows[0][0]) if rows else 0


# --- substring search ------------------------------------------------------------------

# Rows per trigram, per database and index: estimates that only choose which terms to query.
_remembered: weakref.WeakKeyDictionary[Database, dict[str, dict[str, int]]] = (
    weakref.WeakKeyDictionary()
)


def forget_counts(db: Database) -> None:
    """Drop the remembered trigram counts of a database (its rows were replaced)."""
    _remembered.pop(db, None)


def _trigram_rows(db: Database, table: str, column: str, trigram: str) -> int:
    """Return about how many rows hold ``trigram`` (remembered after the first look-up)."""
    counts = _remembered.setdefault(db, {}).setdefault(index_name(table, column), {})
    # The index stores trigrams case-folded; lower() agrees for the letters that matter.
    folded = trigram.lower() if len(trigram.lower()) == len(trigram) else trigram
    known = counts.get(folded)
    if known is None:
        if len(counts) >= _MAX_REMEMBERED:
            counts.clear()
        found = db.query(
            f"SELECT doc FROM {vocabulary_name(table, column)} WHERE term = ?", (folded,)
        )
        known = counts[folded] = int(found[0][0]) if found else 0
    return known


def _spread(count: int, most: int) -> list[int]:
    """Return up to ``most`` indexes of ``range(count)``, evenly spread, first and last kept."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def trigrams(text: str) -> dict[str, int]:
    """Return the distinct trigrams of ``text`` and where each first occurs."""
    found: dict[str, int] = {}
    for position in range(len(text) - 2):
        found.setdefault(text[position : position + 3], position)
    return found


def pick_terms(found: dict[str, int], rows: dict[str, int], most: int) -> list[str]:
    """Choose up to ``most`` trigrams to query: the rarest, and unlike each other.

    ``found`` maps each trigram to its position in the value, ``rows`` to how many rows hold
    it. Trigrams that overlap, or that are held by exactly as many rows, tend to come from
    the same word and name the same rows, so each pass prefers ones unlike those already
    taken: first neither overlapping nor equally common, then not overlapping, then any.
    """
    ranked = sorted(found, key=lambda t: (rows[t], found[t]))
    chosen: list[str] = []

    def apart(trigram: str) -> bool:
        return all(abs(found[trigram] - found[other]) >= 3 for other in chosen)

    def uncommon(trigram: str) -> bool:
        return all(rows[trigram] != rows[other] for other in chosen)

    passes = (lambda t: apart(t) and uncommon(t), apart, lambda t: True)
    for suits in passes:
        for trigram in ranked:
            if len(chosen) == most:
                return chosen
            if trigram not in chosen and suits(trigram):
                chosen.append(trigram)
    return chosen


def match_query(terms: list[str]) -> str:
    """Return the FTS5 query for rows holding every one of these trigrams.

    Each term is a quoted three-character string (inside double quotes only ``"`` is special,
    doubled), which the trigram tokenizer reads as exactly one token: no phrase, so
    ``detail=none`` serves it.
    """
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def id_list(ids: list[Any]) -> Condition:
    """Return ``id IN (?, ...)`` for these ids, the list padded to a power of two.

    Bound values, not a subquery: SQLite then knows how few they are and looks them up by
    primary key even beside a range such as ``id < ?`` (the pickers' next pages), which it
    would otherwise walk. Padding (repeating the last id) keeps the statements few.
    """
    size = 1 << (len(ids) - 1).bit_length()
    padded = [*ids, *[ids[-1]] * (size - len(ids))]
    return Condition(f"id IN ({', '.join('?' for _ in padded)})", padded)


def narrowing(db: Database, table: str, *, counted: bool) -> Narrowing | None:
    """Return the hook that narrows ``%`` filters on ``table``'s indexed column, if it has one.

    The condition it gives is ``id IN (ids of the rows the index names)``, whatever their
    portal (:func:`id_list`): beside the list's ``portal_id = ?`` that is a set of primary-key
    lookups, taken in id order. Run the list under ``db.lock`` so that no write comes in
    between.
    """
    column = next((c for t, c in SEARCHED if t == table), None)
    if column is None:
        return None
    dense = DENSE_COUNTED if counted else DENSE_UNCOUNTED

    def narrow(field: Field, text: str) -> Condition | None:
        if field.column != column or len(text) < SHORTEST or "\x00" in text:
            return None
        found = trigrams(text)
        considered = list(found)
        considered = [considered[i] for i in _spread(len(considered), MAX_CONSIDERED)]
        positions = {t: found[t] for t in considered}
        rows = {t: _trigram_rows(db, table, column, t) for t in considered}
        index = index_name(table, column)
        terms = pick_terms(positions, rows, MAX_TERMS)
        # The rowids as one string (a JSON array once bracketed): no row objects to build.
        count, rowids = db.query(
            f"SELECT COUNT(*), group_concat(found) FROM"
            f" (SELECT rowid AS found FROM {index} WHERE {index} MATCH ? LIMIT ?)",
            (match_query(terms), dense + 1),
        )[0]
        if count > dense:
            return None
        if not count:
            return Condition("0", [])
        found_ids = db.query(
            f"SELECT id FROM {table} WHERE rowid IN (SELECT value FROM json_each(?))",
            (f"[{rowids}]",),
        )
        if not found_ids:
            return Condition("0", [])
        if any(row[0] is None for row in found_ids):
            return None  # a row without an id: only the scan finds it
        return id_list(list(dict.fromkeys(row[0] for row in found_ids)))

    return narrow
