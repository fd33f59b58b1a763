import pytest

from b24app.bitrix.errors import (
    AccessDenied,
    DuplicateEntry,
    ExpiredToken,
    OperationTimeLimit,
    Overloaded,
    RateLimited,
    ServerError,
    TransportError,
)
from b24app.bitrix.retry import MethodKind, RetryPolicy


def test_backoff_is_full_jitter_under_an_exponential_ceiling():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.backoff(3, lambda: 0.0) == 0.0
    assert policy.backoff(3, lambda: 0.25) == 0.5


@pytest.mark.parametrize(
    "error",
    [
        RateLimited("QUERY_LIMIT_EXCEEDED", "", 503),
        ServerError("INTERNAL_SERVER_ERROR", "", 500),
        TransportError("TIMEOUT", "", timeout=True, maybe_sent=True),
        TransportError("CONNECT_ERROR", "", maybe_sent=False),
    ],
)
def test_reads_retry_on_limits_server_errors_and_transport_failures(error):
    assert RetryPolicy().may_retry(error, MethodKind.READ)


@pytest.mark.parametrize(
    "error",
    [
        AccessDenied("200040300010", "", 400),
        DuplicateEntry("201650000001", "", 400),
        Overloaded("OVERLOAD_LIMIT", "", 503),
        ExpiredToken("expired_token", "", 401),
    ],
)
def test_errors_that_a_retry_cannot_fix_are_never_retried(error):
    policy = RetryPolicy()
    for kind in MethodKind:
        assert not policy.may_retry(error, kind)


def test_writes_retry_only_when_the_request_never_left_or_a_repeat_is_harmless():
    policy = RetryPolicy()
    timeout = TransportError("TIMEOUT", "", timeout=True, maybe_sent=True)
    refused = TransportError("CONNECT_ERROR", "", maybe_sent=False)
    limited = RateLimited("QUERY_LIMIT_EXCEEDED", "", 503)
    failed = ServerError("INTERNAL_SERVER_ERROR", "", 500)
    assert policy.may_retry(refused, MethodKind.WRITE)
    for error in (timeout, limited, failed):
        assert not policy.may_retry(error, MethodKind.WRITE)
        assert policy.may_retry(error, MethodKind.IDEMPOTENT_WRITE)


def test_time_limit_waits_only_within_the_bound():
    policy = RetryPolicy(max_time_limit_wait=20)
    error = OperationTimeLimit("OPERATION_TIME_LIMIT", "", 429, reset_at=1015.0)
    assert policy.time_limit_wait(error, now=1000.0) == 15.0
    assert policy.time_limit_wait(error, now=1020.0) == 0.0
    assert policy.time_limit_wait(error, now=990.0) is None
    unknown = OperationTimeLimit("OPERATION_TIME_LIMIT", "", 429)
    assert policy.time_limit_wait(unknown, now=1000.0) is None
