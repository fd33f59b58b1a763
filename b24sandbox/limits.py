"""The portal's request-intensity limit: a leaky bucket per portal.

Every REST request pours one unit in; the bucket drains ``rps`` units per second. A request
that would overflow ``burst`` is refused with 503 ``QUERY_LIMIT_EXCEEDED`` and not counted,
which is how Bitrix24 describes its limit (2 req/s, threshold 50 on most plans).

The buckets drain by the sandbox clock's monotonic reading, so advancing the clock by ``S``
seconds drains every bucket by ``rps * S``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LeakyBucket:
    """One portal's bucket."""

    def __init__(self, rps: float, burst: int, now: float) -> None:
        self.rps = rps
        self.burst = burst
        self.level = 0.0
        self.updated = now

    def admit(self, now: float) -> bool:
        """Pour one request in at ``now``; False when it would overflow."""
        self.level = max(0.0, self.level - max(0.0, now - self.updated) * self.rps)
        self.updated = max(self.updated, now)
        if self.level + 1 > self.burst:
            return False
        self.level += 1
        return True


class RateLimiter:
    """Buckets for every portal, sharing one setting."""

    def __init__(self, rps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rps = rps
        self.burst = burst
        self._clock = clock
        self._buckets: dict[int, LeakyBucket] = {}
        self._lock = threading.Lock()

    def configure(self, rps: float, burst: int) -> None:
        """Change the drain rate and threshold; buckets start empty again."""
        with self._lock:
            self.rps = rps
            self.burst = burst
            self._buckets.clear()

    def admit(self, portal_id: int) -> bool:
        """Count one request against a portal; False when it is over the limit."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(portal_id)
            if bucket is None:
                bucket = self._buckets[portal_id] = LeakyBucket(self.rps, self.burst, now)
            return bucket.admit(now)

    def reset(self) -> None:
        """Empty every bucket."""
        with self._lock:
            self._buckets.clear()

    def describe(self) -> dict[str, float]:
        """Return the current setting as the control API shows it."""
        return {"rps": self.rps, "burst": self.burst}
