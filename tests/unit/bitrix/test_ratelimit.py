import threading

import pytest

from b24app.bitrix.errors import RateLimited
from b24app.bitrix.ratelimit import RateLimiter


class FakeTime:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_burst_up_to_threshold_passes_without_waiting():
    t = FakeTime()
    limiter = RateLimiter(rate=2, threshold=40, clock=t.clock, sleep=t.sleep)
    for _ in range(40):
        limiter.acquire("portal-a")
    assert t.sleeps == []
    assert limiter.level("portal-a") == 40


def test_beyond_threshold_each_request_waits_one_drain_interval():
    t = FakeTime()
    limiter = RateLimiter(rate=2, threshold=40, clock=t.clock, sleep=t.sleep)
    for _ in range(40):
        limiter.acquire("portal-a")
    limiter.acquire("portal-a")
    assert t.sleeps == [pytest.approx(0.5)]
    limiter.acquire("portal-a")
    assert t.sleeps[-1] == pytest.approx(0.5)
    # Sustained throughput settles at the drain rate: 10 more requests take 5 seconds.
    start = t.now
    for _ in range(10):
        limiter.acquire("portal-a")
    assert t.now - start == pytest.approx(5.0)


def test_bucket_drains_over_time():
    t = FakeTime()
    limiter = RateLimiter(rate=2, threshold=10, clock=t.clock, sleep=t.sleep)
    for _ in range(10):
        limiter.acquire("p")
    t.now += 3.0
    assert limiter.level("p") == pytest.approx(4.0)
    t.now += 100
    assert limiter.level("p") == 0.0
    for _ in range(10):
        limiter.acquire("p")
    assert t.sleeps == []


def test_portals_have_separate_buckets():
    t = FakeTime()
    limiter = RateLimiter(rate=2, threshold=5, clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        limiter.acquire("a")
    for _ in range(5):
        limiter.acquire("b")
    assert t.sleeps == []
    limiter.acquire("a")
    assert len(t.sleeps) == 1


def test_too_long_a_queue_fails_fast_without_counting():
    t = FakeTime()
    limiter = RateLimiter(rate=1, threshold=2, max_wait=1.5, clock=t.clock, sleep=t.sleep)
    limiter.reserve("p")
    limiter.reserve("p")
    assert limiter.reserve("p") == pytest.approx(1.0)
    with pytest.raises(RateLimited):
        limiter.reserve("p")
    assert limiter.level("p") == pytest.approx(3.0)


def test_concurrent_threads_reserve_distinct_slots():
    now = [0.0]
    limiter = RateLimiter(rate=2, threshold=10, max_wait=None, clock=lambda: now[0])
    waits = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            wait = limiter.reserve("p")
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 80 requests at a frozen clock: the first 10 are free, then each waits 0.5 s longer.
    assert sorted(waits) == [0.0] * 10 + [pytest.approx(0.5 * i) for i in range(1, 71)]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        RateLimiter(rate=0)
    with pytest.raises(ValueError):
        RateLimiter(threshold=0)
