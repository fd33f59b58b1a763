"""The Bitrix24 client against the sandbox portal over real HTTP."""

import threading
import time

import httpx
import pytest

from b24app.bitrix.client import BitrixClient, Credentials
from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.errors import (
    AccessDenied,
    DuplicateEntry,
    InvalidClient,
    InvalidGrant,
    InvalidToken,
    NotFound,
    OperationTimeLimit,
    RateLimited,
    ServerError,
    TransportError,
    UnsafeEndpoint,
)
from b24app.bitrix.http import make_http_client
from b24app.bitrix.oauth import OAuthClient, TokenSet
from b24app.bitrix.ratelimit import RateLimiter
from b24app.bitrix.retry import RetryPolicy
from b24sandbox.config import SandboxConfig
from b24sandbox.server import start_sandbox

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total=10)
TIMEOUT = httpx.Timeout(0.5, connect=2.0)


class MemoryTokens:
    """A token source kept in memory, refreshing through the OAuth client (single-flight)."""

    def __init__(self, oauth, answer, *, expires_at=None):
        self.oauth = oauth
        self.lock = threading.Lock()
        self.creds = self._creds(answer, expires_at)
        self.moves = []
        self.refreshed = 0

    @staticmethod
    def _creds(answer, expires_at=None):
        if isinstance(answer, TokenSet):
            answer = {
                "access_token": answer.access_token,
                "refresh_token": answer.refresh_token,
                "expires": answer.expires_at,
                "client_endpoint": answer.client_endpoint,
                "member_id": answer.member_id,
                "user_id": answer.user_id,
                "scope": answer.scope,
            }
        return Credentials(
            access_token=answer["access_token"],
            refresh_token=answer["refresh_token"],
            expires_at=expires_at if expires_at is not None else float(answer["expires"]),
            client_endpoint=answer["client_endpoint"],
            member_id=answer["member_id"],
            user_id=answer["user_id"],
            scope=answer["scope"],
        )

    def current(self):
        return self.creds

    def refresh(self, stale):
        with self.lock:
            if self.creds.access_token != stale.access_token:
                return self.creds  # someone else already refreshed: adopt their pair
            self.creds = self._creds(self.oauth.refresh(self.creds.refresh_token))
            self.refreshed += 1
            return self.creds

    def moved(self, endpoint):
        self.moves.append(endpoint)
        with self.lock:
            c = self.creds
            self.creds = Credentials(
                c.access_token,
                c.refresh_token,
                c.expires_at,
                endpoint,
                c.member_id,
                c.user_id,
                c.scope,
            )


@pytest.fixture
def guard():
    return EndpointGuard(True)


@pytest.fixture
def http(guard):
    with make_http_client(guard, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def oauth(sandbox, http):
    return OAuthClient(sandbox.oauth_url, sandbox.client_id, sandbox.client_secret, http)


@pytest.fixture
def client(http, guard):
    return BitrixClient(http, endpoint_guard=guard, retry=FAST_RETRY, timeout=TIMEOUT)


def tokens_for(sandbox, oauth, user_id=1, **kwargs):
    return MemoryTokens(oauth, sandbox.token(user_id), **kwargs)


def method_calls(sandbox, method):
    return [c for c in sandbox.calls()["calls"] if c["method"] == method]


# -- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "error": "QUERY_LIMIT_EXCEEDED"},
        {"status": 500, "error": "INTERNAL_SERVER_ERROR"},
        {"error": "malformed"},
    ],
)
def test_reads_are_retried_through_injected_faults(sandbox, oauth, client, fault):
    auth = tokens_for(sandbox, oauth)
    sandbox.control("faults", {"method": "profile", "count": 2, **fault})
    result = client.call(auth, "profile")
    assert result.result["ID"] == "1"
    assert [c["status"] for c in method_calls(sandbox, "profile")][-1] == 200
    assert len(method_calls(sandbox, "profile")) == 3


def test_reads_are_retried_after_timeouts(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth)
    sandbox.control("faults", {"method": "profile", "count": 1, "error": "timeout"})
    assert client.call(auth, "profile").result["ID"] == "1"
    # One call timed out (504 in the log), the retry answered.
    assert [c["status"] for c in method_calls(sandbox, "profile")] == [504, 200]


def test_reads_give_up_when_the_fault_outlasts_the_retries(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth)
    sandbox.control(
        "faults", {"method": "profile", "count": 10, "status": 503, "error": "QUERY_LIMIT_EXCEEDED"}
    )
    with pytest.raises(RateLimited):
        client.call(auth, "profile")
    assert len(method_calls(sandbox, "profile")) == FAST_RETRY.max_attempts


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 503, "error": "QUERY_LIMIT_EXCEEDED"}, RateLimited),
        ({"status": 500, "error": "INTERNAL_SERVER_ERROR"}, ServerError),
        ({"error": "timeout"}, TransportError),
    ],
)
def test_plain_writes_surface_the_error_without_a_second_call(
    sandbox, oauth, client, fault, expected
):
    auth = tokens_for(sandbox, oauth)
    # One faulty answer only: a retry would go through and show up as a successful call.
    sandbox.control("faults", {"method": "event.bind", "count": 1, **fault})
    params = {"event": "ONAPPUNINSTALL", "handler": "https://app.example.com/events"}
    with pytest.raises(expected) as info:
        client.call(auth, "event.bind", params)
    if isinstance(info.value, TransportError):
        assert info.value.timeout and info.value.maybe_sent
    assert sandbox.calls()["counts"].get("event.bind", 0) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "error": "QUERY_LIMIT_EXCEEDED"},
        {"status": 500, "error": "INTERNAL_SERVER_ERROR"},
        {"error": "timeout"},
    ],
)
def test_a_binding_add_is_retried_and_binds_exactly_once(sandbox, oauth, client, fault):
    auth = tokens_for(sandbox, oauth)
    sandbox.control("faults", {"method": "crm.orderentity.add", "count": 1, **fault})
    fields = {"fields": {"orderId": 1, "ownerTypeId": 2, "ownerId": 1}}
    added = client.call(auth, "crm.orderentity.add", fields)
    assert added.result["dealOrder"] == {"orderId": 1, "ownerTypeId": 2, "ownerId": 1}
    assert sandbox.calls()["counts"]["crm.orderentity.add"] == 2
    listed = client.call(auth, "crm.orderentity.list", {"filter": {"orderId": 1}}).result
    assert [(b["ownerTypeId"], b["ownerId"]) for b in listed["orderEntity"]] == [(2, 1)]


# -- tokens --------------------------------------------------------------------------------


def test_expired_token_is_refreshed_once_and_rotated(sandbox, oauth, client):
    answer = sandbox.token(1, expires_in=0)
    # Our clock believes the token is fresh; the portal says it expired.
    auth = MemoryTokens(oauth, answer, expires_at=time.time() + 3600)
    old_refresh = auth.creds.refresh_token
    assert client.call(auth, "user.admin").result is True
    assert auth.refreshed == 1
    assert sandbox.calls()["refreshes"] == 1
    assert auth.creds.refresh_token != old_refresh
    # Refresh tokens are single-use: the old one is dead now.
    with pytest.raises(InvalidGrant):
        oauth.refresh(old_refresh)
    assert client.call(auth, "user.admin").result is True
    assert sandbox.calls()["refreshes"] == 1


def test_a_passed_expiry_refreshes_before_calling(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth, expires_at=time.time() - 1)
    assert client.call(auth, "profile").result["ID"] == "1"
    assert auth.refreshed == 1
    assert [c["status"] for c in method_calls(sandbox, "profile")] == [200]


def test_concurrent_expired_calls_refresh_once(sandbox, oauth, client):
    answer = sandbox.token(1, expires_in=0)
    auth = MemoryTokens(oauth, answer, expires_at=time.time() + 3600)
    errors = []

    def work():
        try:
            assert client.call(auth, "user.admin").result is True
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sandbox.calls()["refreshes"] == 1


def test_verify_confirms_portal_and_app(sandbox, oauth):
    answer = sandbox.token(2)
    verified = oauth.verify(answer["access_token"])
    assert verified.client_id == oauth.client_id
    assert verified.member_id == answer["member_id"]
    assert answer["client_endpoint"].startswith(f"http://{verified.domain}/")
    with pytest.raises(InvalidToken):
        oauth.verify("not-a-token")


def test_refresh_with_a_wrong_secret_is_invalid_client(sandbox, http, oauth):
    answer = sandbox.token(1)
    wrong = OAuthClient(sandbox.oauth_url, oauth.client_id, "wrong-secret", http)
    with pytest.raises(InvalidClient):
        wrong.refresh(answer["refresh_token"])


# -- moved portal, limits ------------------------------------------------------------------


def test_moved_portal_is_followed_and_reported(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth)
    port = httpx.URL(auth.creds.client_endpoint).port
    new_endpoint = f"http://127.0.0.1:{port}/rest/"
    sandbox.control(
        "faults", {"method": "profile", "count": 1, "status": 302, "location": new_endpoint}
    )
    assert client.call(auth, "profile").result["ID"] == "1"
    assert auth.moves == [new_endpoint]
    assert auth.creds.client_endpoint == new_endpoint


def test_redirect_to_metadata_address_is_not_followed(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth)
    sandbox.control(
        "faults",
        {
            "method": "profile",
            "count": 1,
            "status": 302,
            "location": "http://169.254.169.254/rest/",
        },
    )
    with pytest.raises(UnsafeEndpoint):
        client.call(auth, "profile")
    assert auth.moves == []


def test_client_side_bucket_keeps_under_the_portal_limit(sandbox, oauth, http, guard):
    sandbox.control("limits", {"rps": 10, "burst": 3})
    auth = tokens_for(sandbox, oauth)
    no_retry = RetryPolicy(max_attempts=1)
    unthrottled = BitrixClient(http, endpoint_guard=guard, retry=no_retry, timeout=TIMEOUT)
    with pytest.raises(RateLimited):
        for _ in range(8):
            unthrottled.call(auth, "profile")
    sandbox.advance_clock(0.6)  # let the portal's bucket drain
    # The limiter reads the sandbox clock and waits by moving it, so each pause it takes
    # drains the portal's bucket just as much, and nothing waits on the wall clock.
    limiter = RateLimiter(
        rate=8,
        threshold=2,
        clock=sandbox.running.sandbox.clock.monotonic,
        sleep=sandbox.advance_clock,
    )
    throttled = BitrixClient(
        http, endpoint_guard=guard, retry=no_retry, timeout=TIMEOUT, limiter=limiter
    )
    for _ in range(8):
        throttled.call(auth, "profile")


# -- batch and lists -----------------------------------------------------------------------


def test_batch_over_fifty_commands_is_chunked(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth)
    first = client.call(auth, "sale.order.list", {"select": ["id"], "order": {"id": "asc"}})
    ids = [row["id"] for row in first.result["orders"]][:30]
    commands = {f"o{i}": ("sale.order.get", {"id": order_id}) for i, order_id in enumerate(ids)}
    commands.update({f"d{i}": ("profile", None) for i in range(40)})
    commands["missing"] = ("sale.order.get", {"id": 999_999_999})
    result = client.batch(auth, commands)
    assert sandbox.calls()["counts"]["batch"] == 2
    assert [result.results[f"o{i}"]["order"]["id"] for i in range(len(ids))] == ids
    assert all(result.results[f"d{i}"]["ID"] == "1" for i in range(40))
    assert isinstance(result.errors["missing"], NotFound)


def test_batch_reports_permission_errors_per_command(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth, user_id=3)
    result = client.batch(auth, {"me": ("profile", None), "orders": ("sale.order.list", {})})
    assert result.results["me"]["ID"] == "3"
    assert isinstance(result.errors["orders"], AccessDenied)
    assert result.errors["orders"].write is False


@pytest.fixture(scope="module")
def large_portal():
    """A separate one-portal sandbox with a few hundred orders (the shared one is small)."""
    running = start_sandbox(
        SandboxConfig(port=0, app_url="http://127.0.0.1:9", orders=430, deals=10, invoices=5)
    )
    yield running
    running.stop()


def test_list_by_id_reads_every_row_in_id_order(large_portal, http, client):
    issued = httpx.post(f"{large_portal.url}/_sandbox/token", json={"user_id": 1}, timeout=5)
    auth = MemoryTokens(None, issued.json())
    total = client.call(auth, "sale.order.list", {"select": ["id"]}).total
    rows = list(
        client.list_by_id(
            auth,
            "sale.order.list",
            {"select": ["id", "accountNumber"]},
            id_field="id",
            key="orders",
        )
    )
    ids = [row["id"] for row in rows]
    assert total == 430
    assert ids == sorted(ids) and len(set(ids)) == total
    assert all(row["accountNumber"] for row in rows)
    paged = client.list_all(
        auth, "sale.order.list", {"select": ["id"], "order": {"id": "asc"}}, key="orders"
    )
    assert [row["id"] for row in paged] == ids
    log = httpx.get(f"{large_portal.url}/_sandbox/calls", timeout=5).json()
    # 1 count + 9 seek pages (the last one short) + 9 offset pages.
    assert log["counts"]["sale.order.list"] == 1 + 9 + 9


def test_batch_with_halt_stops_at_the_first_error(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth)
    commands = {
        "first": ("profile", None),
        "broken": ("sale.order.get", {"id": 999_999_999}),
        "after": ("profile", None),
    }
    result = client.batch(auth, commands, halt=True)
    assert set(result.results) == {"first"}
    assert isinstance(result.errors["broken"], NotFound)
    assert result.skipped == ["after"]


def test_time_limit_far_away_fails_at_once_with_its_reset_time(sandbox, oauth, client):
    auth = tokens_for(sandbox, oauth)
    sandbox.control("faults", {"method": "profile", "count": 1, "status": 429})
    started = time.time()
    with pytest.raises(OperationTimeLimit) as info:
        client.call(auth, "profile")
    # The portal names a reset minutes away: beyond the wait bound, so no sleeping, no retry.
    assert info.value.reset_at is not None and info.value.reset_at > started + 60
    assert [c["status"] for c in method_calls(sandbox, "profile")] == [429]


def test_binding_twice_is_a_typed_duplicate_and_other_users_are_denied(sandbox, oauth, client):
    admin = tokens_for(sandbox, oauth, user_id=1)
    manager = tokens_for(sandbox, oauth, user_id=2)
    order = client.call(admin, "sale.order.list", {"select": ["id"]}).result["orders"][0]["id"]
    deal = client.call(admin, "crm.deal.list", {"select": ["ID"]}).result[0]["ID"]
    fields = {"fields": {"orderId": order, "ownerTypeId": 2, "ownerId": int(deal)}}
    added = client.call(admin, "crm.orderentity.add", fields)
    assert added.result["dealOrder"]["orderId"] == order
    with pytest.raises(DuplicateEntry):
        client.call(admin, "crm.orderentity.add", fields)
    with pytest.raises(AccessDenied) as denied:
        client.call(manager, "crm.orderentity.deleteByFilter", fields)
    assert denied.value.write is True
    assert client.call(admin, "crm.orderentity.deleteByFilter", fields).result is True
    with pytest.raises(NotFound):
        client.call(admin, "crm.orderentity.deleteByFilter", fields)
