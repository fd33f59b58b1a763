import json
from urllib.parse import parse_qsl

import httpx
import pytest

from b24app.bitrix.client import BitrixClient, Credentials, RetryPolicy
from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.errors import (
    AccessDenied,
    AlreadyBound,
    BitrixError,
    BudgetExceeded,
    ExpiredToken,
    InvalidGrant,
    InvalidToken,
    OperationTimeLimit,
    PortalMoved,
    RateLimited,
    ServerError,
    TransportError,
    UnsafeEndpoint,
)
from b24app.bitrix.ratelimit import RateLimiter

PORTAL = "https://portal.example.com/rest/"
HOSTS = {
    "portal.example.com": ["93.184.216.34"],
    "moved.example.com": ["93.184.216.35"],
    "evil.example.com": ["10.0.0.1"],
}


class FakeAuth:
    """A token source that hands out numbered tokens and records what the client asked."""

    def __init__(self, expires_at=10_000.0, refresh_error=None):
        self.creds = Credentials("token-1", "refresh-1", expires_at, PORTAL, "member", 1, "crm")
        self.refreshes = []
        self.moves = []
        self.refresh_error = refresh_error

    def current(self):
        return self.creds

    def refresh(self, stale):
        self.refreshes.append(stale.access_token)
        if self.refresh_error:
            raise self.refresh_error
        n = len(self.refreshes) + 1
        self.creds = Credentials(
            f"token-{n}", f"refresh-{n}", 20_000.0, self.creds.client_endpoint, "member", 1, "crm"
        )
        return self.creds

    def moved(self, endpoint):
        self.moves.append(endpoint)
        self.creds = Credentials(
            self.creds.access_token,
            self.creds.refresh_token,
            self.creds.expires_at,
            endpoint,
            "member",
            1,
            "crm",
        )


class Portal:
    """Answers queued responses (or a callable) and records every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer):
            return answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self):
        return [json.loads(r.content) for r in self.requests]


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def ok(result, **extra):
    return httpx.Response(200, json={"result": result, "time": {"start": 1.0}, **extra})


def err(status, code, description="", **extra):
    return httpx.Response(status, json={"error": code, "error_description": description, **extra})


def make_client(portal, clock=None, **kwargs):
    clock = clock or Clock()
    http = httpx.Client(transport=httpx.MockTransport(portal))
    guard = EndpointGuard(False, resolver=lambda host, port: HOSTS[host])
    return BitrixClient(
        http, endpoint_guard=guard, sleep=clock.sleep, clock=clock.time, rand=lambda: 1.0, **kwargs
    )


def test_call_posts_json_with_auth_to_the_client_endpoint():
    portal = Portal(ok([{"ID": "1"}], total=1))
    result = make_client(portal).call(FakeAuth(), "crm.deal.list", {"filter": {">ID": 0}})
    request = portal.requests[0]
    assert request.method == "POST"
    assert str(request.url) == PORTAL + "crm.deal.list"
    assert json.loads(request.content) == {"filter": {">ID": 0}, "auth": "token-1"}
    assert (result.result, result.total, result.next, result.time) == (
        [{"ID": "1"}],
        1,
        None,
        {"start": 1.0},
    )


def test_expired_token_refreshes_once_and_retries_with_the_new_token():
    portal = Portal(err(401, "expired_token"), ok(True))
    auth = FakeAuth()
    assert make_client(portal).call(auth, "user.admin").result is True
    assert auth.refreshes == ["token-1"]
    assert [b["auth"] for b in portal.bodies()] == ["token-1", "token-2"]


def test_a_second_expired_token_is_raised_not_looped():
    portal = Portal(err(401, "expired_token"))
    auth = FakeAuth()
    with pytest.raises(ExpiredToken):
        make_client(portal).call(auth, "user.admin")
    assert len(auth.refreshes) == 1
    assert len(portal.requests) == 2


def test_passed_expiry_refreshes_before_the_first_request():
    portal = Portal(ok(True))
    auth = FakeAuth(expires_at=999.0)
    make_client(portal).call(auth, "user.admin")
    assert auth.refreshes == ["token-1"]
    assert portal.bodies()[0]["auth"] == "token-2"


def test_refresh_errors_propagate():
    portal = Portal(err(401, "expired_token"))
    auth = FakeAuth(refresh_error=InvalidGrant("invalid_grant", "", 400))
    with pytest.raises(InvalidGrant):
        make_client(portal).call(auth, "user.admin")


@pytest.mark.parametrize(
    "failure",
    [
        err(503, "QUERY_LIMIT_EXCEEDED", "Too many requests"),
        err(500, "INTERNAL_SERVER_ERROR"),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.Response(200, text='{"result": {"orders": [{"id": 1,'),
    ],
)
def test_reads_are_retried_with_backoff_until_they_succeed(failure):
    portal = Portal(failure, failure, ok(["row"]))
    clock = Clock()
    result = make_client(portal, clock).call(FakeAuth(), "sale.order.list")
    assert result.result == ["row"]
    assert len(portal.requests) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_reads_give_up_after_max_attempts():
    portal = Portal(err(503, "QUERY_LIMIT_EXCEEDED"))
    clock = Clock()
    client = make_client(portal, clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(RateLimited):
        client.call(FakeAuth(), "crm.deal.list")
    assert len(portal.requests) == 3


def test_reads_give_up_when_the_total_time_budget_is_spent():
    portal = Portal(err(500, "INTERNAL_SERVER_ERROR"))
    clock = Clock()
    client = make_client(
        portal, clock, retry=RetryPolicy(max_attempts=10, base_delay=2, max_delay=100, max_total=5)
    )
    with pytest.raises(ServerError):
        client.call(FakeAuth(), "crm.deal.list")
    assert sum(clock.sleeps) <= 5
    assert len(portal.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        err(503, "QUERY_LIMIT_EXCEEDED"),
        err(500, "INTERNAL_SERVER_ERROR"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("closed"),
    ],
)
def test_writes_that_may_have_arrived_are_sent_once(failure):
    portal = Portal(failure, ok(True))
    with pytest.raises((RateLimited, ServerError, TransportError)) as info:
        make_client(portal).call(FakeAuth(), "placement.bind", {"PLACEMENT": "X"})
    assert len(portal.requests) == 1
    if isinstance(info.value, TransportError):
        assert info.value.maybe_sent


def test_writes_retry_when_the_connection_never_opened():
    portal = Portal(httpx.ConnectError("refused"), ok(True))
    result = make_client(portal).call(FakeAuth(), "placement.bind", {})
    assert result.result is True
    assert len(portal.requests) == 2


def test_a_batch_with_one_plain_write_is_not_retried_as_a_read():
    portal = Portal(httpx.ReadTimeout("slow"), ok({"result": {}}))
    cmd = {"a": "crm.deal.list?filter[ID]=1", "b": "event.bind?event=X&handler=h"}
    with pytest.raises(TransportError):
        make_client(portal).call(FakeAuth(), "batch", {"halt": 0, "cmd": cmd})
    assert len(portal.requests) == 1


def test_a_binding_add_is_retried_and_its_duplicate_answer_confirms_the_lost_success():
    fields = {"orderId": 5, "ownerTypeId": 2, "ownerId": 7}
    duplicate = err(400, "201650000001", "Duplicate entry for key [ownerId, ownerTypeId, orderId]")
    portal = Portal(httpx.ReadTimeout("slow"), duplicate)
    result = make_client(portal).call(FakeAuth(), "crm.orderentity.add", {"fields": fields})
    assert result.replayed is True
    assert result.result == {"dealOrder": fields}
    assert len(portal.requests) == 2


@pytest.mark.parametrize(
    ("first", "lost"),
    [
        (httpx.ReadTimeout("slow"), True),  # may have run: the answer describes its work
        (httpx.Response(200, content=b"<html>"), True),  # ran, its answer broken
        (err(503, "QUERY_LIMIT_EXCEEDED"), False),  # refused before it ran
        (httpx.ConnectError("refused"), False),  # never arrived
    ],
)
def test_an_answer_after_an_attempt_that_may_have_run_says_so(first, lost):
    portal = Portal(first, ok({"current": []}))
    commands = {"current": ("crm.orderentity.list", {}), "add": ("crm.orderentity.add", {})}
    result = make_client(portal).batch(FakeAuth(), commands)
    assert len(portal.requests) == 2
    assert result.after_lost_answer is lost


@pytest.mark.parametrize(
    ("attempts", "applied"),
    [
        # lost, then refused until the attempts run out: the first may have landed
        ([httpx.ReadTimeout("slow"), err(503, "QUERY_LIMIT_EXCEEDED")], True),
        ([httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow")], True),
        ([err(503, "QUERY_LIMIT_EXCEEDED"), err(503, "QUERY_LIMIT_EXCEEDED")], False),
        ([httpx.ConnectError("refused"), httpx.ConnectError("refused")], False),
    ],
)
def test_a_failed_call_says_whether_an_attempt_may_have_been_applied(attempts, applied):
    portal = Portal(*attempts)
    client = make_client(portal, retry=RetryPolicy(max_attempts=2))
    commands = {"current": ("crm.orderentity.list", {}), "add": ("crm.orderentity.add", {})}
    with pytest.raises(BitrixError) as info:
        client.batch(FakeAuth(), commands)
    assert len(portal.requests) == 2
    assert info.value.maybe_applied is applied


def test_a_first_duplicate_answer_stays_an_error():
    duplicate = err(400, "201650000001", "Duplicate entry for key [ownerId, ownerTypeId, orderId]")
    with pytest.raises(AlreadyBound):
        make_client(Portal(duplicate)).call(FakeAuth(), "crm.orderentity.add", {"fields": {}})


def test_a_repeated_unbind_that_finds_nothing_is_already_gone():
    gone = err(400, "201640400004", "entity relation is not exists")
    portal = Portal(err(500, "INTERNAL_SERVER_ERROR"), gone)
    client = make_client(portal)
    result = client.call(FakeAuth(), "crm.orderentity.deleteByFilter", {"fields": {}})
    assert (result.result, result.replayed) == (True, True)


def test_the_rate_limiter_wait_counts_against_the_budget():
    clock = Clock()
    limiter = RateLimiter(rate=0.5, threshold=1.0, clock=lambda: clock.now, sleep=clock.sleep)
    portal = Portal(ok(1), ok(2))
    client = make_client(portal, clock, retry=RetryPolicy(max_total=1.0), limiter=limiter)
    client.call(FakeAuth(), "crm.deal.list")
    with pytest.raises(BudgetExceeded) as info:
        client.call(FakeAuth(), "crm.deal.list")
    assert info.value.retry_after == 2.0
    assert len(portal.requests) == 1


def test_a_time_limit_longer_than_the_budget_fails_at_once_with_when_to_retry():
    clock = Clock()
    portal = Portal(err(429, "OPERATION_TIME_LIMIT", time={"operating_reset_at": clock.now + 12}))
    client = make_client(portal, clock, retry=RetryPolicy(max_total=5.0))
    with pytest.raises(BudgetExceeded) as info:
        client.call(FakeAuth(), "crm.deal.list")
    assert info.value.retry_after == 12.0
    assert clock.sleeps == []


def test_method_errors_are_raised_at_once():
    portal = Portal(err(400, "200040300020", "Access Denied"))
    with pytest.raises(AccessDenied) as info:
        make_client(portal).call(FakeAuth(), "crm.orderentity.add", {})
    assert info.value.write is True
    assert len(portal.requests) == 1


def test_time_limit_waits_until_reset_then_retries():
    clock = Clock()
    portal = Portal(
        err(429, "OPERATION_TIME_LIMIT", time={"operating_reset_at": clock.now + 12}), ok(1)
    )
    assert make_client(portal, clock).call(FakeAuth(), "crm.deal.list").result == 1
    assert clock.sleeps == [12.0]


def test_time_limit_reads_retry_after_when_the_body_has_no_reset():
    clock = Clock()
    limited = httpx.Response(
        429, json={"error": "OPERATION_TIME_LIMIT"}, headers={"Retry-After": "7"}
    )
    portal = Portal(limited, ok(1))
    make_client(portal, clock).call(FakeAuth(), "crm.deal.list")
    assert clock.sleeps == [7.0]


def test_time_limit_beyond_the_bound_fails_at_once():
    clock = Clock()
    portal = Portal(err(429, "OPERATION_TIME_LIMIT", time={"operating_reset_at": clock.now + 600}))
    with pytest.raises(OperationTimeLimit) as info:
        make_client(portal, clock).call(FakeAuth(), "crm.deal.list")
    assert info.value.reset_at == clock.now + 600
    assert clock.sleeps == []
    assert len(portal.requests) == 1


def test_moved_portal_is_followed_once_after_the_guard():
    moved = httpx.Response(302, headers={"Location": "https://moved.example.com/rest/user.admin"})
    portal = Portal(moved, ok(True))
    auth = FakeAuth()
    assert make_client(portal).call(auth, "user.admin").result is True
    assert auth.moves == ["https://moved.example.com/rest/"]
    assert str(portal.requests[1].url) == "https://moved.example.com/rest/user.admin"


def test_redirect_to_a_private_address_is_refused():
    moved = httpx.Response(302, headers={"Location": "https://evil.example.com/rest/user.admin"})
    portal = Portal(moved, ok(True))
    auth = FakeAuth()
    with pytest.raises(UnsafeEndpoint):
        make_client(portal).call(auth, "user.admin")
    assert auth.moves == []
    assert len(portal.requests) == 1


def test_redirect_loops_stop_after_one_move():
    moved = httpx.Response(302, headers={"Location": "https://moved.example.com/rest/x"})
    portal = Portal(moved)
    with pytest.raises(PortalMoved):
        make_client(portal).call(FakeAuth(), "user.admin")
    assert len(portal.requests) == 2


def test_unsafe_stored_endpoint_sends_nothing():
    portal = Portal(ok(True))
    auth = FakeAuth()
    auth.creds.client_endpoint = "https://evil.example.com/rest/"
    with pytest.raises(UnsafeEndpoint):
        make_client(portal).call(auth, "user.admin")
    assert portal.requests == []


def test_every_attempt_passes_the_rate_limiter():
    clock = Clock()
    limiter = RateLimiter(rate=1, threshold=2, clock=clock.time, sleep=clock.sleep)
    portal = Portal(err(503, "QUERY_LIMIT_EXCEEDED"), ok(1))
    client = make_client(portal, clock, limiter=limiter, retry=RetryPolicy(base_delay=0.001))
    client.call(FakeAuth(), "crm.deal.list")
    client.call(FakeAuth(), "crm.deal.list")
    assert len(portal.requests) == 3
    assert clock.sleeps[-1] == pytest.approx(1.0, abs=0.01)


def test_every_request_carries_a_timeout():
    seen = []

    def answer(request):
        seen.append(request.extensions.get("timeout"))
        return ok(True)

    make_client(Portal(answer)).call(FakeAuth(), "user.admin")
    assert seen and all(v is not None for v in seen[0].values())


# -- batch ---------------------------------------------------------------------------------


def batch_answer(request):
    """Answer a batch: commands named err* fail, others echo their query."""
    cmd = json.loads(request.content)["cmd"]
    results = {k: v for k, v in cmd.items() if not k.startswith("err")}
    errors = {
        k: {"error": "200040300020", "error_description": "Access Denied"}
        for k in cmd
        if k.startswith("err")
    }
    return ok(
        {
            "result": results or [],
            "result_error": errors or [],
            "result_total": {k: 3 for k in results} or [],
            "result_next": [],
            "result_time": {k: {"start": 1} for k in cmd},
        }
    )


def test_batch_splits_into_chunks_of_fifty_and_merges():
    portal = Portal(batch_answer)
    commands = {f"c{i}": ("crm.deal.get", {"id": i}) for i in range(120)}
    result = make_client(portal).batch(FakeAuth(), commands)
    sizes = [len(b["cmd"]) for b in portal.bodies()]
    assert sizes == [50, 50, 20]
    assert all(b["halt"] == 0 for b in portal.bodies())
    assert result.results["c0"] == "crm.deal.get?id=0"
    assert result.results["c119"] == "crm.deal.get?id=119"
    assert len(result.results) == 120 and result.errors == {}
    assert result.totals["c5"] == 3


def test_batch_surfaces_per_command_errors_as_typed_exceptions():
    portal = Portal(batch_answer)
    commands = {
        "ok1": ("crm.orderentity.add", {"fields": {"orderId": 1}}),
        "err2": ("crm.orderentity.add", {"fields": {"orderId": 2}}),
    }
    result = make_client(portal).batch(FakeAuth(), commands)
    assert set(result.results) == {"ok1"}
    assert isinstance(result.errors["err2"], AccessDenied) and result.errors["err2"].write


def test_batch_with_halt_stops_sending_chunks_after_an_error():
    portal = Portal(batch_answer)
    commands = {f"c{i}": ("crm.deal.get", {"id": i}) for i in range(60)}
    commands["err"] = ("crm.deal.get", {"id": 0})
    commands = {"err": commands.pop("err"), **commands}
    result = make_client(portal).batch(FakeAuth(), commands, halt=True)
    assert len(portal.requests) == 1
    assert portal.bodies()[0]["halt"] == 1
    assert "err" in result.errors
    assert result.skipped == [f"c{i}" for i in range(49, 60)]


def test_batch_of_writes_is_not_retried_but_batch_of_reads_is():
    failing = err(500, "INTERNAL_SERVER_ERROR")
    portal = Portal(failing, batch_answer)
    with pytest.raises(ServerError):
        make_client(portal).batch(FakeAuth(), {"a": ("placement.bind", {})})
    assert len(portal.requests) == 1
    portal = Portal(failing, batch_answer)
    make_client(portal).batch(FakeAuth(), {"a": ("crm.deal.list", {}), "b": ("user.admin", None)})
    assert len(portal.requests) == 2


def test_batch_commands_use_bracketed_url_encoding():
    portal = Portal(batch_answer)
    params = {"filter": {">ID": 5, "%TITLE": "a&b=c"}, "select": ["ID", "TITLE"]}
    make_client(portal).batch(FakeAuth(), {"q": ("crm.deal.list", params)})
    query = portal.bodies()[0]["cmd"]["q"].split("?", 1)[1]
    assert parse_qsl(query) == [
        ("filter[>ID]", "5"),
        ("filter[%TITLE]", "a&b=c"),
        ("select[0]", "ID"),
        ("select[1]", "TITLE"),
    ]


# -- lists ---------------------------------------------------------------------------------


def paged(rows, key=None, with_next=True):
    """Serve ``rows`` 50 at a time by ``start``, like a list method."""

    def answer(request):
        start = json.loads(request.content).get("start", 0)
        page = rows[start : start + 50]
        extra = {"total": len(rows)}
        if with_next and start + 50 < len(rows):
            extra["next"] = start + 50
        return ok({key: page} if key else page, **extra)

    return answer


def test_list_all_follows_next_until_the_end():
    rows = [{"ID": str(i)} for i in range(1, 131)]
    portal = Portal(paged(rows))
    got = list(make_client(portal).list_all(FakeAuth(), "crm.deal.list", {"select": ["ID"]}))
    assert got == rows
    assert [b["start"] for b in portal.bodies()] == [0, 50, 100]


def test_list_all_reads_keyed_results_and_pages_by_total_without_next():
    rows = [{"id": i} for i in range(1, 121)]
    portal = Portal(paged(rows, key="orders", with_next=False))
    got = list(make_client(portal).list_all(FakeAuth(), "sale.order.list", {}, key="orders"))
    assert got == rows


def test_list_all_stops_at_the_limit_without_fetching_more_pages():
    portal = Portal(paged([{"ID": i} for i in range(200)]))
    got = list(make_client(portal).list_all(FakeAuth(), "crm.deal.list", {}, limit=60))
    assert len(got) == 60
    assert len(portal.requests) == 2


def test_list_by_id_seeks_by_ascending_id_with_start_minus_one():
    rows = [{"id": i} for i in range(1, 321)]

    def answer(request):
        body = json.loads(request.content)
        assert body["start"] == -1
        assert body["order"] == {"id": "ASC"}
        after = body["filter"].get(">id", 0)
        assert body["filter"]["=statusId"] == "N"
        page = [r for r in rows if r["id"] > after][:50]
        return ok({"orders": page})

    portal = Portal(answer)
    got = list(
        make_client(portal).list_by_id(
            FakeAuth(),
            "sale.order.list",
            {"filter": {"=statusId": "N"}},
            id_field="id",
            key="orders",
        )
    )
    assert got == rows
    assert [b["filter"].get(">id") for b in portal.bodies()] == [None, 50, 100, 150, 200, 250, 300]


def test_list_by_id_continues_from_a_callers_cursor_and_string_ids():
    rows = [{"ID": str(i)} for i in range(1, 101)]

    def answer(request):
        after = json.loads(request.content)["filter"].get(">ID", 0)
        return ok([r for r in rows if int(r["ID"]) > int(after)][:50])

    portal = Portal(answer)
    got = list(make_client(portal).list_by_id(FakeAuth(), "crm.deal.list", {"filter": {">ID": 40}}))
    assert [r["ID"] for r in got] == [str(i) for i in range(41, 101)]
    assert [b["filter"][">ID"] for b in portal.bodies()] == [40, 90]


def test_token_killed_by_a_concurrent_rotation_adopts_the_stored_pair():
    auth = FakeAuth()

    def rotated_meanwhile(request):
        # Another worker refreshed while this request was in flight.
        auth.creds = Credentials("token-9", "refresh-9", 20_000.0, PORTAL, "member", 1, "crm")
        return err(401, "NO_AUTH_FOUND", "Wrong authorization data")

    portal = Portal(rotated_meanwhile, ok(True))
    assert make_client(portal).call(auth, "user.admin").result is True
    assert auth.refreshes == []
    assert [b["auth"] for b in portal.bodies()] == ["token-1", "token-9"]


def test_invalid_token_is_refreshed_once_then_raised():
    portal = Portal(err(401, "NO_AUTH_FOUND"))
    auth = FakeAuth()
    with pytest.raises(InvalidToken):
        make_client(portal).call(auth, "user.admin")
    assert auth.refreshes == ["token-1"]
    assert [b["auth"] for b in portal.bodies()] == ["token-1", "token-2"]


def test_dead_chain_surfaces_as_the_refresh_error():
    portal = Portal(err(401, "invalid_token"))
    auth = FakeAuth(refresh_error=InvalidGrant("invalid_grant", "", 400))
    with pytest.raises(InvalidGrant):
        make_client(portal).call(auth, "user.admin")
    assert len(portal.requests) == 1


def test_retries_and_moves_are_logged_without_tokens(caplog):
    moved = httpx.Response(
        302, headers={"Location": "https://moved.example.com/rest/x?auth=token-1"}
    )
    portal = Portal(err(503, "QUERY_LIMIT_EXCEEDED"), moved, err(401, "expired_token"), ok(1))
    with caplog.at_level("DEBUG"):
        make_client(portal).call(FakeAuth(), "crm.deal.list")
    assert "QUERY_LIMIT_EXCEEDED" in caplog.text and "moved.example.com" in caplog.text
    assert "token-" not in caplog.text and "refresh-" not in caplog.text
