"""A client-side leaky bucket per portal, so the app stays under Bitrix24's own limit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from b24app.bitrix.errors import RateLimited


class QueueTooLong(RateLimited):
    """The client-side bucket would make this request wait longer than allowed (``wait`` s)."""

    def __init__(self, wait: float) -> None:
        super().__init__("CLIENT_QUERY_LIMIT", "too many queued requests for this portal", None)
        self.wait = wait


log = logging.getLogger(__name__)


class RateLimiter:
    """Leaky bucket per key (a portal's member_id), shared by all threads of the process.

    Every request adds one to the key's level; the level drains ``rate`` per second. While the
    level would exceed ``threshold`` the caller sleeps until enough has drained. Bitrix24's
    bucket for most plans drains 2 per second and blocks above 50; the default threshold of 40
    leaves room for other apps and the portal's own browser traffic.

    Background requests (bulk jobs) fill the bucket to ``threshold`` too while the portal is
    quiet, but only to ``background_share`` of it for ``quiet_after`` seconds after a web
    request: a user who starts clicking while a job runs waits at most for one request to
    drain, and then finds the rest of the room kept free for them.
    """

    def __init__(
        self,
        rate: float = 2.0,
        threshold: float = 40.0,
        *,
        max_wait: float | None = 120.0,
        background_share: float = 0.75,
        quiet_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or threshold < 1:
            raise ValueError("rate must be positive and threshold at least 1")
        if not 0 < background_share <= 1 or quiet_after < 0:
            raise ValueError("background_share must be in (0, 1] and quiet_after >= 0")
        self.rate = rate
        self.threshold = threshold
        self.max_wait = max_wait
        self.background_share = background_share
        self.quiet_after = quiet_after
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # key -> (level, time of that level)
        self._buckets: dict[str, tuple[float, float]] = {}
        # key -> time of the key's last web (not background) request
        self._web: dict[str, float] = {}

    def level(self, key: str) -> float:
        """Return the key's current level after draining."""
        with self._lock:
            return self._drained(key, self._clock())

    def _max_wait(self, max_wait: float | None) -> float | None:
        """Return the tighter of the limiter's own bound and the caller's."""
        if max_wait is None:
            return self.max_wait
        return max_wait if self.max_wait is None else min(max_wait, self.max_wait)

    def reserve(
        self,
        key: str,
        max_wait: float | None = None,
        threshold: float | None = None,
        *,
        background: bool = False,
    ) -> float:
        """Count one request for ``key`` now and return how long it must wait before sending.

        ``threshold`` (at most the limiter's own) lets a caller stop short of the bucket's
        top. A ``background`` request stops at ``background_share`` of it while a web request
        was seen in the last ``quiet_after`` seconds. Raises :class:`QueueTooLong` (without
        counting the request) when the wait would exceed ``max_wait`` or the limiter's bound.
        """
        bound = self._max_wait(max_wait)
        with self._lock:
            now = self._clock()
            top = self._top(self._threshold(threshold), background, self._web.get(key), now)
            level, wait = self._admit(self._drained(key, now), top, bound)
            self._buckets[key] = (level, now)
            if not background:
                self._web[key] = now
            if len(self._buckets) > 10_000:
                self._prune(now)
            return wait

    def _threshold(self, threshold: float | None) -> float:
        """Return the level a caller may fill the bucket to."""
        return self.threshold if threshold is None else max(1.0, min(threshold, self.threshold))

    def _top(self, top: float, background: bool, web_at: float | None, now: float) -> float:
        """Return the level a request may fill to: less for background work on a busy portal."""
        if background and web_at is not None and now - web_at < self.quiet_after:
            return max(1.0, top * self.background_share)
        return top

    def acquire(
        self,
        key: str,
        max_wait: float | None = None,
        threshold: float | None = None,
        *,
        background: bool = False,
    ) -> None:
        """Block until one request for ``key`` may be sent (at most ``max_wait`` seconds)."""
        wait = self.reserve(key, max_wait, threshold, background=background)
        if wait > 0:
            self._sleep(wait)

    def _drained(self, key: str, now: float) -> float:
        """Return the level of ``key`` at ``now`` (caller holds the lock)."""
        level, since = self._buckets.get(key, (0.0, now))
        return self.drain(level, since, now)

    def drain(self, level: float, since: float, now: float) -> float:
        """Return what a bucket at ``level`` at time ``since`` holds at ``now``."""
        return max(0.0, level - max(0.0, now - since) * self.rate)

    def _admit(self, drained: float, top: float, bound: float | None) -> tuple[float, float]:
        """Add one request to a drained level: return the new level and the wait before it.

        Raises :class:`QueueTooLong` when the wait would exceed ``bound``.
        """
        level = drained + 1.0
        wait = max(0.0, (level - top) / self.rate)
        if bound is not None and wait > bound:
            raise QueueTooLong(wait)
        return level, wait

    def _prune(self, now: float) -> None:
        """Forget keys whose bucket has drained empty and gone quiet (caller holds the lock)."""
        for key in [k for k in self._buckets if self._drained(k, now) == 0.0]:
            if now - self._web.get(key, now - self.quiet_after) >= self.quiet_after:
                del self._buckets[key]
                self._web.pop(key, None)


# One bucket per key in a Redis hash {level, since}; Redis's own clock, so every host agrees.
# Levels and waits travel as strings: Redis truncates Lua numbers to integers in replies.
_RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local background = ARGV[4] == '1'
local share = tonumber(ARGV[5])
local quiet_after = tonumber(ARGV[6])
local state = redis.call('HMGET', KEYS[1], 'level', 'since', 'web')
local level = tonumber(state[1]) or 0
local since = tonumber(state[2]) or now
local web = tonumber(state[3])
if background and web and now - web < quiet_after then
  threshold = math.max(1, threshold * share)
end
level = math.max(0, level - math.max(0, now - since) * rate) + 1
local wait = math.max(0, (level - threshold) / rate)
if max_wait >= 0 and wait > max_wait then
  return {'refused', tostring(wait)}
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'since', tostring(now))
if not background then
  web = now
  redis.call('HSET', KEYS[1], 'web', tostring(now))
end
local keep = level / rate
if web then
  keep = math.max(keep, quiet_after - (now - web))
end
redis.call('PEXPIRE', KEYS[1], math.ceil(keep * 1000) + 1000)
return {'ok', tostring(wait)}
"""


class StoredRateLimiter(RateLimiter):
    """The leaky bucket kept in a store every process shares, the local bucket as fallback.

    When the store cannot be reached the limiter keeps to the process-local bucket for
    ``retry_after`` seconds, rather than failing the call or paying the store's timeout on
    every call. Subclasses count one request in the store (:meth:`_reserve_stored`).
    """

    store_name = "shared"
    store_errors: tuple[type[Exception], ...] = (Exception,)
    retry_after = 30.0
    # Until when (the limiter's clock) the store is given up for the local bucket.
    _down_until = 0.0

    def reserve(
        self,
        key: str,
        max_wait: float | None = None,
        threshold: float | None = None,
        *,
        background: bool = False,
    ) -> float:
        """Count one request for ``key`` in the store and return how long to wait first."""
        if self._clock() < self._down_until:
            return super().reserve(key, max_wait, threshold, background=background)
        try:
            return self._reserve_stored(
                key, self._max_wait(max_wait), self._threshold(threshold), background
            )
        except QueueTooLong:
            raise
        except self.store_errors as exc:
            log.warning(
                "%s rate limiter unavailable (%s); local bucket for %ss",
                self.store_name,
                type(exc).__name__,
                self.retry_after,
            )
            self._down_until = self._clock() + self.retry_after
            return super().reserve(key, max_wait, threshold, background=background)

    def _reserve_stored(self, key: str, bound: float | None, top: float, background: bool) -> float:
        """Count one request in the store; return the wait, or raise QueueTooLong.

        ``top`` is the caller's threshold; a ``background`` request on a busy portal stops at
        ``background_share`` of it (the store keeps the time of the last web request).
        """
        raise NotImplementedError


class SharedRateLimiter(StoredRateLimiter):
    """The same leaky bucket kept in Redis, so every worker process and host shares it.

    Several gunicorn workers each with their own bucket would together exceed the portal's
    limit; one bucket per portal in Redis keeps them all under it. When Redis cannot be
    reached the limiter falls back to the process-local bucket rather than failing the call.
    """

    def __init__(
        self,
        redis_client: Any,
        rate: float = 2.0,
        threshold: float = 40.0,
        *,
        prefix: str = "b24app:bucket:",
        **options: Any,
    ) -> None:
        """``options``: those of :class:`RateLimiter` (max_wait, background_share, ...)."""
        super().__init__(rate, threshold, **options)
        self._redis = redis_client
        self._prefix = prefix
        self._script = redis_client.register_script(_RESERVE_SCRIPT)

    def _reserve_stored(self, key: str, bound: float | None, top: float, background: bool) -> float:
        """Count one request for ``key`` in Redis (any Redis failure: the local bucket)."""
        lua_bound = -1.0 if bound is None else bound
        args = [self.rate, top, lua_bound, int(background), self.background_share, self.quiet_after]
        verdict, wait = self._script(keys=[self._prefix + key], args=args)
        if _text(verdict) == "refused":
            raise QueueTooLong(float(_text(wait)))
        return float(_text(wait))

    def level(self, key: str) -> float:
        """Return the key's current level in Redis after draining."""
        level, since = self._redis.hmget(self._prefix + key, ["level", "since"])
        if level is None or since is None:
            return 0.0
        seconds, micros = self._redis.time()
        elapsed = max(0.0, seconds + micros / 1_000_000 - float(_text(since)))
        return max(0.0, float(_text(level)) - elapsed * self.rate)


def _text(value: Any) -> str:
    """Return a Redis reply as text (bytes unless the client decodes responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)
