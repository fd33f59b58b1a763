"""Flask extensions, created unbound: ``init_extensions`` attaches them to an app."""

from __future__ import annotations

import weakref
from typing import Any, TypeVar

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so Alembic revisions name the same objects on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite waits this long (ms) for another writer before "database is locked": a token
# refresh holds the write lock for one round trip to the OAuth server.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution option asking SQLite to take the write lock when the transaction starts
# (BEGIN IMMEDIATE), which is how the token refresh becomes single-flight there.
SQLITE_IMMEDIATE = "sqlite_begin_immediate"


class Base(DeclarativeBase):
    """Declarative base of every model, carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()

T = TypeVar("T")


def detached(instance: T) -> T:
    """Detach a freshly read row and hand the request's connection back to the pool.

    Requests go on to call Bitrix24 and to lock their token row in a short transaction of
    its own; a request still holding its first connection would need two at once, and
    enough concurrent requests would exhaust the pool waiting on each other.
    """
    db.session.expunge(instance)
    db.session.close()
    return instance


_statement_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def statement_engine() -> Engine:
    """Return the app's engine for work of one statement: autocommit on PostgreSQL.

    A read or a lone insert in a transaction of its own costs a BEGIN and a COMMIT (or
    ROLLBACK) round trip beside the statement, and one statement is atomic and sees one
    snapshot either way. The engine shares the app's pool; SQLAlchemy restores each
    connection's transaction mode when it goes back. SQLite (whose transactions this module
    starts itself) gets the app's engine unchanged: use ``begin()`` to write through it.
    """
    engine: Engine = db.engine
    found = _statement_engines.get(engine)
    if found is None:
        found = engine
        if engine.dialect.name == "postgresql":
            found = engine.execution_options(isolation_level="AUTOCOMMIT")
        _statement_engines[engine] = found
    return found


def init_extensions(app: Flask, migrations_dir: str) -> None:
    """Bind the database and migrations to ``app`` and tune SQLite engines."""
    db.init_app(app)
    migrate.init_app(app, db, directory=migrations_dir, render_as_batch=True)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                configure_sqlite(engine)


def configure_sqlite(engine: Engine) -> None:
    """Give SQLite real transactions, a busy timeout, foreign keys and WAL."""
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        """Take transaction control away from the driver and set pragmas."""
        # pysqlite's own implicit BEGIN cannot be made IMMEDIATE; SQLAlchemy emits it below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            # Readers keep reading while a refresh holds the write lock.
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        """Start the transaction, taking the write lock at once when asked to."""
        if connection.get_execution_options().get(SQLITE_IMMEDIATE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
