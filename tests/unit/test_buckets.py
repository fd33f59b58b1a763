"""The portal bucket shared through the database, as two processes would use it."""

import pytest
from sqlalchemy import create_engine

from b24app.bitrix.ratelimit import QueueTooLong
from b24app.extensions import configure_sqlite
from b24app.models import RateBucket
from b24app.services.buckets import DatabaseRateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'buckets.db'}")
    configure_sqlite(engine)
    RateBucket.__table__.create(engine)
    yield engine
    engine.dispose()


def test_two_limiters_on_one_database_fill_one_bucket(engine):
    clock = Clock()
    first = DatabaseRateLimiter(engine, rate=2.0, threshold=2.0, clock=clock)
    second = DatabaseRateLimiter(engine, rate=2.0, threshold=2.0, clock=clock)

    assert first.reserve("portal") == 0.0
    assert second.reserve("portal") == 0.0
    # The third request, from either process, waits for the shared bucket to drain.
    assert first.reserve("portal") == pytest.approx(0.5)
    assert second.level("portal") == pytest.approx(3.0)
    clock.now += 1.5
    assert second.level("portal") == pytest.approx(0.0)
    assert first.reserve("another") == 0.0


def test_a_lower_threshold_and_a_bound_on_the_wait(engine):
    clock = Clock()
    limiter = DatabaseRateLimiter(engine, rate=1.0, threshold=4.0, clock=clock)
    for _ in range(2):
        limiter.reserve("portal")

    assert limiter.reserve("portal", threshold=2.0) == pytest.approx(1.0)
    with pytest.raises(QueueTooLong) as refused:
        limiter.reserve("portal", max_wait=0.5, threshold=2.0)
    assert refused.value.wait == pytest.approx(2.0)


def test_without_its_table_the_limiter_keeps_a_local_bucket(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    clock = Clock()
    limiter = DatabaseRateLimiter(engine, rate=1.0, threshold=1.0, clock=clock)

    assert limiter.reserve("portal") == 0.0
    assert limiter.reserve("portal") == pytest.approx(1.0)
    engine.dispose()
