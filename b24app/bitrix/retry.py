"""When a failed Bitrix24 call may be sent again, and how long to wait first."""

from __future__ import annotations

import enum
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


class MethodKind(enum.IntEnum):
    """What a call does, ordered from the safest to repeat to the least safe."""

    READ = 0
    # A write whose repeat cannot change the outcome (binding the same triple again).
    IDEMPOTENT_WRITE = 1
    WRITE = 2


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retries: attempts, exponential backoff with full jitter, total time.

    ``max_total`` is a call's whole budget: limiter waits, time-limit waits, backoff and
    the requests themselves. ``max_time_limit_wait`` is the longest the client waits for a
    method's time budget to come back (429 ``OPERATION_TIME_LIMIT``); a longer wait fails at
    once instead.
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

    def may_retry(self, error: BitrixError, kind: MethodKind) -> bool:
        """Tell whether ``error`` allows sending the same request again.

        Reads and idempotent writes retry on rate limits, server errors and transport
        failures. Other writes retry only when the request surely never left (a connect
        failure), because a repeat could apply twice.
        """
        repeatable = kind is not MethodKind.WRITE
        if isinstance(error, TransportError):
            return repeatable or not error.maybe_sent
        if isinstance(error, RateLimited | ServerError):
            return repeatable
        return False

    def time_limit_wait(self, error: OperationTimeLimit, now: float) -> float | None:
        """Return how long to wait for a 429 to lift, or None when it is too long or unknown."""
        if error.reset_at is None:
            return None
        wait = max(0.0, error.reset_at - now)
        if wait > self.max_time_limit_wait:
            return None
        return wait
