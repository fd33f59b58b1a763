"""Background requests fill a quiet portal's bucket, and step back while users are active."""

import pytest
from sqlalchemy import create_engine

from b24app.bitrix.ratelimit import RateLimiter
from b24app.extensions import configure_sqlite
from b24app.models import RateBucket
from b24app.services.buckets import DatabaseRateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["local", "database"])
def make_limiter(request, tmp_path):
    """Build a limiter of either kind on a clock the test moves."""
    engines = []

    def build(clock, **options):
        if request.param == "local":
            return RateLimiter(clock=clock, **options)
        engine = create_engine(f"sqlite:///{tmp_path / f'buckets{len(engines)}.db'}")
        configure_sqlite(engine)
        RateBucket.__table__.create(engine)
        engines.append(engine)
        return DatabaseRateLimiter(engine, clock=clock, **options)

    yield build
    for engine in engines:
        engine.dispose()


def fill(limiter, key, count, **options):
    """Reserve ``count`` requests; return the waits they were told."""
    return [limiter.reserve(key, **options) for _ in range(count)]


def test_a_job_on_a_quiet_portal_uses_the_whole_threshold(make_limiter):
    limiter = make_limiter(Clock(), rate=2.0, threshold=8.0, background_share=0.5)
    waits = fill(limiter, "portal", 9, background=True)
    assert waits[:8] == [0.0] * 8
    assert waits[8] == pytest.approx(0.5)


def test_a_job_steps_back_to_its_share_while_a_user_is_active(make_limiter):
    clock = Clock()
    limiter = make_limiter(clock, rate=2.0, threshold=8.0, background_share=0.5, quiet_after=30)
    assert limiter.reserve("portal") == 0.0  # a user's click
    waits = fill(limiter, "portal", 4, background=True)
    # One web request and three background ones reach the share (4 of 8); the fourth waits.
    assert waits[:3] == [0.0] * 3
    assert waits[3] == pytest.approx(0.5)
    # The user's next click still passes at once: the room above the share is theirs.
    assert limiter.reserve("portal") == 0.0
    # Another portal's users do not slow this portal's job, nor the other way round.
    assert fill(limiter, "other", 8, background=True) == [0.0] * 8


def test_the_job_returns_to_full_speed_once_users_are_away(make_limiter):
    clock = Clock()
    limiter = make_limiter(clock, rate=2.0, threshold=8.0, background_share=0.5, quiet_after=30)
    limiter.reserve("portal")
    clock.now += 29.0  # the bucket drained; the click is 29 s old: still busy
    assert fill(limiter, "portal", 5, background=True)[4] == pytest.approx(0.5)
    clock.now += 31.0
    assert fill(limiter, "portal", 8, background=True) == [0.0] * 8


def test_settings_out_of_range_are_refused():
    with pytest.raises(ValueError):
        RateLimiter(background_share=0)
    with pytest.raises(ValueError):
        RateLimiter(background_share=1.5)
    with pytest.raises(ValueError):
        RateLimiter(quiet_after=-1)
