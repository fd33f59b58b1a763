"""Waking idle job workers when a job is queued, rather than at their next poll.

Whatever queues a job (a new job, an undo, a retry, jobs resumed after the user reopened
the app) calls :func:`announce` once its transaction has committed.

- On PostgreSQL that sends ``NOTIFY b24app_jobs``; every idle worker, on any host, waits on
  a connection of its own that LISTENs to the channel (:class:`Wakeup`).
- On SQLite there is no such channel: workers in the same process (the dev runner, tests,
  benchmarks) are woken through an in-process condition, and workers in other processes
  find the job at their next poll.

A lost announcement (the listening connection broke, the worker was busy) costs at most one
poll interval: the poll stays the fallback, never the only way a job is found.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from b24app.extensions import db, statement_engine

log = logging.getLogger(__name__)

CHANNEL = "b24app_jobs"

_queued = threading.Condition()
_announced = 0


def _postgres(engine: Engine) -> bool:
    """Tell whether the app's database can carry notifications."""
    return engine.dialect.name == "postgresql"


def announce() -> None:
    """Say that a job is waiting (call it after the transaction that queued it committed).

    The job is stored by then: a notification that cannot be sent is logged, not raised,
    and the workers find the job at their next poll.
    """
    if _postgres(db.engine):
        try:
            _notify(statement_engine())
        except SQLAlchemyError:
            log.warning("job wake-up: NOTIFY failed; workers will find the job by polling")
        return
    _wake_local()


def _notify(engine: Engine) -> None:
    """Send ``NOTIFY`` on the channel (delivered to every listener when it commits)."""
    with engine.begin() as conn:
        conn.execute(text(f"NOTIFY {CHANNEL}"))


def _wake_local() -> None:
    """Wake every worker of this process waiting on the in-process condition."""
    global _announced
    with _queued:
        _announced += 1
        _queued.notify_all()


class Wakeup:
    """What an idle worker waits on: an announcement, or its poll interval running out."""

    def __init__(self, app: Flask) -> None:
        with app.app_context():
            self._engine = db.engine
        self._listener: Any = None
        self._seen = _announced

    def wait(self, timeout: float) -> None:
        """Return when a job was announced since the last wait, or after ``timeout`` seconds."""
        if _postgres(self._engine):
            self._wait_postgres(timeout)
            return
        with _queued:
            _queued.wait_for(lambda: _announced != self._seen, timeout)
            self._seen = _announced

    def interrupt(self) -> None:
        """Wake a waiting worker of this process now (it is being stopped)."""
        _wake_local()
        if self._listener is not None:
            # Through another connection: the listening one is busy waiting. Other workers
            # wake too, find nothing new and wait again.
            try:
                _notify(self._engine)
            except Exception:  # the waiting side ends at its poll interval anyway
                log.debug("job wake-up: could not interrupt the listener", exc_info=True)

    def _wait_postgres(self, timeout: float) -> None:
        """Wait for a notification on the worker's LISTEN connection."""
        try:
            listener = self._listen()
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                pass
        except Exception:
            # The connection broke (a database restart, say): poll this time, listen again next.
            log.warning("job wake-up: the LISTEN connection failed; polling", exc_info=True)
            self.close()
            time.sleep(timeout)

    def _listen(self) -> Any:
        """Return the worker's own LISTEN connection, opening it when needed."""
        if self._listener is None:
            pooled = self._engine.raw_connection()
            connection = pooled.driver_connection
            assert connection is not None
            # Taken out of the pool for good: it stays open as long as the worker.
            pooled.detach()
            try:
                # The pool's pre-ping may have left a transaction open.
                connection.rollback()
                connection.autocommit = True
                connection.execute(f"LISTEN {CHANNEL}")
            except Exception:
                connection.close()
                raise
            self._listener = connection
        return self._listener

    def close(self) -> None:
        """Close the LISTEN connection, if any."""
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except Exception:
                log.debug("job wake-up: closing the listener failed", exc_info=True)
