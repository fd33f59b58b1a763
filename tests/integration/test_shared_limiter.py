"""The per-portal leaky bucket shared through Redis by every worker process."""

import logging
import os
import secrets
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select

from b24app.bitrix.errors import RateLimited
from b24app.bitrix.ratelimit import SharedRateLimiter
from b24app.extensions import db
from b24app.models import Portal
from b24app.services.gateway import gateway
from b24app.services.tokens import installer_token_source

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url():
    """A reachable Redis, or skip: the shared limiter needs one."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix(redis_url):
    """A key prefix of this test alone; its keys are removed afterwards."""
    name = f"b24app-test:{secrets.token_hex(6)}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{name}*"):
        client.delete(key)
    client.close()


def worker(redis_url, prefix, **options):
    """A limiter with its own connection, as each gunicorn worker would have."""
    return SharedRateLimiter(redis.Redis.from_url(redis_url), prefix=prefix, **options)


# The buckets drain on Redis's own clock, which a test cannot stop: the tests that read a
# wait drain one request per 100 s, so that a slow moment of the machine leaks nothing
# they could notice.
SLOW = 0.01


def test_workers_share_one_bucket_per_portal(redis_url, prefix):
    workers = [worker(redis_url, prefix, rate=SLOW, threshold=6) for _ in range(3)]

    waits = [workers[i % 3].reserve("member-a") for i in range(6)]
    over = workers[0].reserve("member-a")

    assert waits == [0.0] * 6
    # The seventh request, from any worker, waits about one drain interval.
    assert 99 < over <= 100
    assert workers[1].level("member-a") == pytest.approx(7, abs=0.05)
    # Another portal's bucket is untouched.
    assert workers[2].reserve("member-b") == 0.0


def test_a_wait_beyond_the_bound_is_refused_and_not_counted(redis_url, prefix):
    limiter = worker(redis_url, prefix, rate=SLOW, threshold=2, max_wait=150)
    for _ in range(3):
        limiter.reserve("member-a")

    with pytest.raises(RateLimited):
        limiter.reserve("member-a")
    assert limiter.level("member-a") == pytest.approx(3, abs=0.05)


class Down:
    """A Redis that refuses every script, counting the attempts."""

    def __init__(self):
        self.attempts = 0

    def register_script(self, _source):
        def run(**_kwargs):
            self.attempts += 1
            raise redis.ConnectionError("Connection refused")

        return run


def test_an_unreachable_redis_falls_back_to_the_local_bucket_for_a_while(caplog):
    now = [0.0]
    down = Down()
    limiter = SharedRateLimiter(down, rate=1, threshold=2, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="b24app")

    waits = [limiter.reserve("member-a") for _ in range(3)]

    assert waits == [0.0, 0.0, 1.0]
    assert down.attempts == 1
    warnings = [r for r in caplog.records if "rate limiter unavailable" in r.getMessage()]
    assert len(warnings) == 1
    now[0] += 31
    limiter.reserve("member-a")
    assert down.attempts == 2


def test_a_real_refused_connection_falls_back_quickly(redis_url):
    down = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    limiter = SharedRateLimiter(down, rate=1, threshold=2)

    assert limiter.reserve("member-a") == 0.0


def test_app_with_redis_url_counts_portal_calls_in_redis(make_app, portal24, redis_url):
    app = make_app(REDIS_URL=redis_url)
    portal24.install()
    with app.app_context():
        portal = db.session.scalars(select(Portal)).one()
        limiter = gateway().rest._limiter
        assert isinstance(limiter, SharedRateLimiter)
        started = time.monotonic()
        before = limiter.level(portal.member_id)
        gateway().rest.call(installer_token_source(portal), "user.admin")
        after = limiter.level(portal.member_id)
        elapsed = time.monotonic() - started

    # One more request in the bucket, less what drained (2 a second) while it was sent.
    assert before + 1 - 2 * elapsed - 0.01 <= after <= before + 1 + 0.01


def test_a_job_steps_back_after_a_click_seen_by_another_worker(redis_url, prefix):
    options = {"rate": SLOW, "threshold": 4, "background_share": 0.5, "quiet_after": 60}
    web, job = worker(redis_url, prefix, **options), worker(redis_url, prefix, **options)
    # A quiet portal: the job fills the whole threshold before it waits.
    waits = [job.reserve("quiet", background=True) for _ in range(5)]
    assert waits[:4] == [0.0] * 4
    assert waits[4] == pytest.approx(100, abs=1)
    # A user clicked on the other portal (in another worker): the job stops at half.
    assert web.reserve("busy") == 0.0
    waits = [job.reserve("busy", background=True) for _ in range(2)]
    assert waits[0] == 0.0
    assert waits[1] == pytest.approx(100, abs=1)
    # The click's room is still there for the next click.
    assert web.reserve("busy") == 0.0


def test_with_no_quiet_period_a_job_never_steps_back(redis_url, prefix):
    limiter = worker(redis_url, prefix, rate=1, threshold=4, background_share=0.5, quiet_after=0)
    limiter.reserve("portal")
    waits = [limiter.reserve("portal", background=True) for _ in range(3)]
    assert waits == [0.0] * 3
