"""The portal request bucket kept in the app's database, when no Redis is configured.

Every process that talks to a portal (web workers, job workers, on any host) counts its
requests in one row per portal, so together they stay under Bitrix24's limit. A row is
read and updated in one short locked transaction (``FOR UPDATE`` on PostgreSQL, an
immediate transaction on SQLite); the wait is slept outside it. Levels drain by the
database hosts' shared idea of time: the clock of the process, which must be roughly in
sync across hosts (NTP), as any lease-based design assumes. When the database cannot be
reached the process falls back to its own bucket for a while.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from b24app.bitrix.ratelimit import StoredRateLimiter
from b24app.models import RateBucket
from b24app.services.tokens import write_session


class DatabaseRateLimiter(StoredRateLimiter):
    """The leaky bucket of :class:`RateLimiter`, shared through the ``rate_buckets`` table."""

    store_name = "database"
    store_errors = (SQLAlchemyError,)

    def __init__(
        self,
        engine: Engine,
        rate: float = 2.0,
        threshold: float = 40.0,
        *,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        """``options``: those of :class:`RateLimiter`; the clock is wall time, as hosts share it."""
        super().__init__(rate, threshold, clock=clock, **options)
        self._engine = engine

    def _reserve_stored(self, key: str, bound: float | None, top: float, background: bool) -> float:
        """Count one request for ``key`` in its row, in one short locked transaction."""
        with write_session(self._engine) as session:
            row = session.scalars(
                select(RateBucket).where(RateBucket.key == key).with_for_update()
            ).one_or_none()
            now = self._clock()
            if row is None:
                row = RateBucket(key=key, level=0.0, since=now)
                session.add(row)
            top = self._top(top, background, row.web_at, now)
            row.level, wait = self._admit(self.drain(row.level, row.since, now), top, bound)
            row.since = now
            if not background:
                row.web_at = now
        return wait

    def level(self, key: str) -> float:
        """Return the key's level in the database after draining."""
        with write_session(self._engine) as session:
            row = session.get(RateBucket, key)
            if row is None:
                return 0.0
            return self.drain(row.level, row.since, self._clock())
