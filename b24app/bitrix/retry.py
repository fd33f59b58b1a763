"""When a failed Bitrix24 call may be sent again, and how long to wait first."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from b24app.bitrix.errors import (
    BitrixError,
    OperationTimeLimit,
    RateLimited,
    ServerError,
    TransportError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retries: attempts, exponential backoff with full jitter, total time.

    ``max_time_limit_wait`` is the longest the client waits for a method's time budget to
    come back (429 ``OPERATION_TIME_LIMIT``); a longer wait fails at once instead.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_total: float = 30.0
    max_time_limit_wait: float = 30.0

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Return the pause before retry ``retry_number`` (1 = first retry), full jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return rand() * ceiling

    def may_retry(self, error: BitrixError, *, write: bool, idempotent: bool) -> bool:
        """Tell whether ``error`` allows sending the same request again.

        Reads retry on rate limits, server errors and transport failures. Writes retry only
        when the request surely never left (a connect failure), or when the caller declared
        the write idempotent, because a retried write could apply twice.
        """
        if isinstance(error, TransportError):
            return not write or idempotent or not error.maybe_sent
        if isinstance(error, RateLimited | ServerError):
            return not write or idempotent
        return False

    def time_limit_wait(self, error: OperationTimeLimit, now: float) -> float | None:
        """Return how long to wait for a 429 to lift, or None when it is too long or unknown."""
        if error.reset_at is None:
            return None
        wait = max(0.0, error.reset_at - now)
        if wait > self.max_time_limit_wait:
            return None
        return wait
