import json
import threading
from urllib.parse import parse_qs

import httpx
import pytest

from b24app.bitrix.errors import (
    ForeignApp,
    InvalidClient,
    InvalidGrant,
    InvalidToken,
    OAuthError,
    PaymentRequired,
    TransportError,
)
from b24app.bitrix.oauth import OAuthClient

SERVER = "https://oauth.example.com"
TOKEN_ANSWER = {
    "access_token": "new-access",
    "client_endpoint": "https://portal.example.com/rest/",
    "domain": "oauth.example.com",
    "expires": 1780319382,
    "expires_in": 3600,
    "member_id": "member-1",
    "refresh_token": "new-refresh",
    "scope": "crm,sale",
    "server_endpoint": "https://oauth.example.com/rest/",
    "status": "L",
    "user_id": 67,
}


class Server:
    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.requests.append(request)
        return self.handler(request)


def client(handler, now=1000.0, **kwargs):
    clock = {"now": now}
    server = Server(handler)
    http = httpx.Client(transport=httpx.MockTransport(server))
    oauth = OAuthClient(SERVER, "app.client", "s3cret", http, clock=lambda: clock["now"], **kwargs)
    return oauth, server, clock


def test_refresh_posts_form_credentials_and_returns_a_token_set():
    oauth, server, _ = client(lambda r: httpx.Response(200, json=TOKEN_ANSWER))
    tokens = oauth.refresh("old-refresh")
    request = server.requests[0]
    assert request.method == "POST" and str(request.url) == SERVER + "/oauth/token/"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["refresh_token"],
        "client_id": ["app.client"],
        "client_secret": ["s3cret"],
        "refresh_token": ["old-refresh"],
    }
    assert "s3cret" not in str(request.url) and "old-refresh" not in str(request.url)
    assert (tokens.access_token, tokens.refresh_token) == ("new-access", "new-refresh")
    assert tokens.expires_at == 4600.0 and tokens.expires_in == 3600
    assert tokens.client_endpoint == "https://portal.example.com/rest/"
    assert (tokens.member_id, tokens.user_id, tokens.scope) == ("member-1", 67, "crm,sale")
    assert (tokens.domain, tokens.status) == ("oauth.example.com", "L")
    assert tokens.server_endpoint == "https://oauth.example.com/rest/"
    assert "new-access" not in repr(tokens) and "new-refresh" not in repr(tokens)


def test_code_exchange_without_user_id_or_expires():
    answer = {k: v for k, v in TOKEN_ANSWER.items() if k not in ("user_id", "expires")}
    oauth, server, _ = client(lambda r: httpx.Response(200, json=answer))
    tokens = oauth.exchange_code("the-code")
    form = parse_qs(server.requests[0].content.decode())
    assert form["grant_type"] == ["authorization_code"] and form["code"] == ["the-code"]
    assert tokens.user_id is None and tokens.expires_at == 4600.0


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "invalid_grant", InvalidGrant),
        (200, "invalid_grant", InvalidGrant),
        (401, "invalid_client", InvalidClient),
        (200, "PAYMENT_REQUIRED", PaymentRequired),
        (500, "whatever", OAuthError),
    ],
)
def test_token_errors_are_typed_whatever_the_status(status, code, expected):
    body = {"error": code, "error_description": "nope"}
    oauth, _, _ = client(lambda r: httpx.Response(status, json=body))
    with pytest.raises(expected) as info:
        oauth.refresh("old-refresh")
    assert "old-refresh" not in str(info.value) and "s3cret" not in str(info.value)


def test_token_answer_without_tokens_is_an_error():
    oauth, _, _ = client(lambda r: httpx.Response(200, json={"result": True}))
    with pytest.raises(OAuthError):
        oauth.refresh("x")


def test_unreachable_server_is_a_transport_error():
    def fail(request):
        raise httpx.ConnectError("refused")

    oauth, _, _ = client(fail)
    with pytest.raises(TransportError):
        oauth.refresh("x")


def test_authorization_url_names_client_and_state():
    oauth, _, _ = client(lambda r: httpx.Response(500))
    url = oauth.authorization_url("https://portal.example.com/", "st ate")
    assert url == "https://portal.example.com/oauth/authorize/?client_id=app.client&state=st+ate"


def app_info(client_id="app.client", installed=True, expires="1970-01-01T01:10:00+00:00"):
    """An OAuth-server app.info answer (expires 4200 = 1000 + 3200 s)."""
    return {
        "result": {
            "client_id": client_id,
            "scope": "crm,sale",
            "expires": expires,
            "user_id": 5,
            "install": {
                "installed": installed,
                "status": "L",
                "scope": "crm,sale",
                "domain": "portal.example.com",
                "client_endpoint": "https://portal.example.com/rest/",
                "member_id": "member-1",
            },
            "ID": 5,
            "STATUS": "L",
            "INSTALLED": installed,
        },
        "time": {},
    }


def test_verify_sends_the_token_in_the_body_and_returns_confirmed_facts():
    oauth, server, _ = client(lambda r: httpx.Response(200, json=app_info()))
    verified = oauth.verify("tok")
    request = server.requests[0]
    assert str(request.url) == SERVER + "/rest/app.info"
    assert json.loads(request.content) == {"auth": "tok"}
    assert verified.client_id == "app.client"
    assert (verified.member_id, verified.domain, verified.installed) == (
        "member-1",
        "portal.example.com",
        True,
    )
    assert (verified.scope, verified.status, verified.user_id) == ("crm,sale", "L", 5)
    assert verified.expires_at == 4200.0
    assert verified.client_endpoint == "https://portal.example.com/rest/"


def test_verification_is_cached_until_expiry_or_max_age():
    oauth, server, clock = client(lambda r: httpx.Response(200, json=app_info()), cache_max_age=300)
    oauth.verify("tok")
    clock["now"] = 1299
    oauth.verify("tok")
    assert len(server.requests) == 1
    clock["now"] = 1301  # max age passed
    oauth.verify("tok")
    assert len(server.requests) == 2
    oauth.verify("other")
    assert len(server.requests) == 3


def test_cache_ends_when_the_token_expires():
    oauth, server, clock = client(
        lambda r: httpx.Response(200, json=app_info(expires=1100)), cache_max_age=3600
    )
    oauth.verify("tok")
    clock["now"] = 1099
    oauth.verify("tok")
    clock["now"] = 1101
    oauth.verify("tok")
    assert len(server.requests) == 2


def test_cache_is_bounded():
    oauth, server, _ = client(lambda r: httpx.Response(200, json=app_info()), cache_size=2)
    for token in ("a", "b", "c", "a"):
        oauth.verify(token)
    assert len(server.requests) == 4  # "a" was evicted by "c"
    oauth.verify("c")
    assert len(server.requests) == 4


def test_not_installed_answers_are_not_cached():
    oauth, server, _ = client(lambda r: httpx.Response(200, json=app_info(installed=False)))
    assert oauth.verify("tok").installed is False
    oauth.verify("tok")
    assert len(server.requests) == 2


def test_token_of_another_app_is_refused_and_not_cached():
    oauth, server, _ = client(lambda r: httpx.Response(200, json=app_info(client_id="app.other")))
    for _ in range(2):
        with pytest.raises(ForeignApp):
            oauth.verify("tok")
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "NO_AUTH_FOUND"), (401, "expired_token"), (401, "invalid_token"), (401, "other")],
)
def test_unknown_or_expired_tokens_are_invalid(status, code):
    oauth, _, _ = client(lambda r: httpx.Response(status, json={"error": code}))
    with pytest.raises(InvalidToken):
        oauth.verify("tok")


def test_forget_drops_a_cached_verification():
    oauth, server, _ = client(lambda r: httpx.Response(200, json=app_info()))
    oauth.verify("tok")
    oauth.forget("tok")
    oauth.verify("tok")
    assert len(server.requests) == 2


def test_concurrent_verifications_are_safe():
    oauth, server, _ = client(lambda r: httpx.Response(200, json=app_info()), cache_size=8)
    errors = []

    def worker(n):
        try:
            for i in range(20):
                assert oauth.verify(f"t{(n + i) % 12}").member_id == "member-1"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(oauth._cache) <= 8


@pytest.mark.parametrize(
    ("fields", "lifetime"),
    [
        ({"expires_in": 10**22}, 86400),
        ({"expires_in": 7200}, 7200),
        ({"expires_in": -5}, 0),
        ({"expires_in": None, "expires": "inf"}, 3600),
        ({"expires_in": None, "expires": 10**30}, 86400),
        ({"expires_in": None, "expires": 1800}, 800),
    ],
)
def test_a_token_lifetime_is_believed_up_to_a_day(fields, lifetime):
    # A rotated pair with an absurd expiry must still be storable: the old pair is gone.
    answer = {k: v for k, v in {**TOKEN_ANSWER, **fields}.items() if v is not None}
    oauth, _, _ = client(lambda r: httpx.Response(200, json=answer))
    tokens = oauth.refresh("old-refresh")
    assert tokens.expires_in == lifetime
    assert tokens.expires_at == 1000.0 + lifetime
