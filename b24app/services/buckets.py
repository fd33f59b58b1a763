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

import logging
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from b24app.bitrix.ratelimit import RateLimiter
from b24app.models import RateBucket
from b24app.services.tokens import write_session

log = logging.getLogger(__name__)

# Seconds the limiter keeps to the local bucket after the database failed.
RETRY_DATABASE_AFTER = 30.0


class DatabaseRateLimiter(RateLimiter):
    """The leaky bucket of :class:`RateLimiter`, shared through the ``rate_buckets`` table."""

    def __init__(
        self,
        engine: Engine,
        rate: float = 2.0,
        threshold: float = 40.0,
        *,
        max_wait: float | None = 120.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, threshold, max_wait=max_wait, clock=clock, sleep=sleep)
        self._engine = engine
        self._down_until = 0.0

    def reserve(
        self, key: str, max_wait: float | None = None, threshold: float | None = None
    ) -> float:
        """Count one request for ``key`` in the database; return how long to wait first."""
        if self._clock() < self._down_until:
            return super().reserve(key, max_wait, threshold)
        bound = self._max_wait(max_wait)
        top = self._threshold(threshold)
        try:
            with write_session(self._engine) as session:
                row = session.scalars(
                    select(RateBucket).where(RateBucket.key == key).with_for_update()
                ).one_or_none()
                now = self._clock()
                if row is None:
                    row = RateBucket(key=key, level=0.0, since=now)
                    session.add(row)
                row.level, wait = self._admit(self.drain(row.level, row.since, now), top, bound)
                row.since = now
        except SQLAlchemyError as exc:
            log.warning(
                "database rate limiter unavailable (%s); local bucket for %ss",
                type(exc).__name__,
                RETRY_DATABASE_AFTER,
            )
            self._down_until = self._clock() + RETRY_DATABASE_AFTER
            return super().reserve(key, max_wait, threshold)
        return wait

    def level(self, key: str) -> float:
        """Return the key's level in the database after draining."""
        with write_session(self._engine) as session:
            row = session.get(RateBucket, key)
            if row is None:
                return 0.0
            return self.drain(row.level, row.since, self._clock())
