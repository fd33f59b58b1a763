"""A client-side leaky bucket per portal, so the app stays under Bitrix24's own limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from b24app.bitrix.errors import RateLimited


class RateLimiter:
    """Leaky bucket per key (a portal's member_id), shared by all threads of the process.

    Every request adds one to the key's level; the level drains ``rate`` per second. While the
    level would exceed ``threshold`` the caller sleeps until enough has drained. Bitrix24's
    bucket for most plans drains 2 per second and blocks above 50; the default threshold of 40
    leaves room for other apps and the portal's own browser traffic.
    """

    def __init__(
        self,
        rate: float = 2.0,
        threshold: float = 40.0,
        *,
        max_wait: float | None = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or threshold < 1:
            raise ValueError("rate must be positive and threshold at least 1")
        self.rate = rate
        self.threshold = threshold
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # key -> (level, time of that level)
        self._buckets: dict[str, tuple[float, float]] = {}

    def level(self, key: str) -> float:
        """Return the key's current level after draining."""
        with self._lock:
            return self._drained(key, self._clock())

    def reserve(self, key: str) -> float:
        """Count one request for ``key`` now and return how long it must wait before sending.

        Raises :class:`RateLimited` (without counting the request) when the wait would exceed
        ``max_wait``.
        """
        with self._lock:
            now = self._clock()
            level = self._drained(key, now) + 1.0
            wait = max(0.0, (level - self.threshold) / self.rate)
            if self.max_wait is not None and wait > self.max_wait:
                raise RateLimited(
                    "CLIENT_QUERY_LIMIT", "too many queued requests for this portal", None
                )
            self._buckets[key] = (level, now)
            if len(self._buckets) > 10_000:
                self._prune(now)
            return wait

    def acquire(self, key: str) -> None:
        """Block until one request for ``key`` may be sent."""
        wait = self.reserve(key)
        if wait > 0:
            self._sleep(wait)

    def _drained(self, key: str, now: float) -> float:
        """Return the level of ``key`` at ``now`` (caller holds the lock)."""
        level, since = self._buckets.get(key, (0.0, now))
        return max(0.0, level - max(0.0, now - since) * self.rate)

    def _prune(self, now: float) -> None:
        """Forget keys whose bucket has drained empty (caller holds the lock)."""
        for key in [k for k in self._buckets if self._drained(k, now) == 0.0]:
            del self._buckets[key]
