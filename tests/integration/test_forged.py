"""Forged requests get 401/403 and change nothing; no request goes where an attacker points."""

import base64
import json
import socket
import threading
import time

import pytest
from joserfc import jwt
from sqlalchemy import func, select

from b24app.extensions import db
from b24app.models import Portal, UserToken
from b24app.security import _derived_key


def counts(app):
    """Return (portals, tokens) stored."""
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Portal)),
            db.session.scalar(select(func.count()).select_from(UserToken)),
        )


def portal_calls(portal24):
    """Return the REST calls the sandbox answered, except token checks on the OAuth server."""
    return [c["method"] for c in portal24.sandbox.calls()["calls"] if c["method"] != "app.info"]


class Listener:
    """A TCP listener on loopback that records whether anybody connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener():
    """A loopback address an attacker might point DOMAIN at."""
    found = Listener()
    yield found
    found.close()


@pytest.mark.parametrize("path", ["/install", "/app"])
def test_unknown_token_is_refused(app, portal24, path):
    if path == "/app":
        portal24.install()
    before = counts(app)
    binds = portal24.sandbox.calls()["counts"].get("placement.bind", 0)
    tokens = dict(portal24.token(1), access_token="unknowntokenunknowntokenunknown1")

    response = portal24.frame_post(path, tokens=tokens)

    assert response.status_code == 401
    assert counts(app) == before
    assert portal24.sandbox.calls()["counts"].get("placement.bind", 0) == binds


@pytest.mark.parametrize("path", ["/install", "/app"])
def test_token_of_another_app_is_refused(make_app, portal24, path):
    app = make_app(B24_CLIENT_ID="local.anotherapp00000.00000002")

    response = portal24.frame_post(path, user_id=1)

    assert response.status_code == 403
    assert "another application" in response.text
    assert counts(app) == (0, 0)
    assert portal_calls(portal24) == []


@pytest.mark.parametrize(
    "domain",
    ["127.0.0.1:{port}", "localhost:{port}", "10.0.0.1", "169.254.169.254", "evil.example.com"],
)
@pytest.mark.parametrize("path", ["/install", "/app"])
def test_domain_pointing_elsewhere_is_refused_and_never_contacted(
    app, portal24, listener, path, domain
):
    if path == "/app":
        portal24.install()
    before_counts = counts(app)
    before_calls = len(portal24.sandbox.calls()["calls"])
    response = portal24.frame_post(path, user_id=1, domain=domain.format(port=listener.port))

    assert response.status_code == 403
    # Refused before any connection to the address the DOMAIN named.
    assert listener.connections == 0
    new_calls = portal24.sandbox.calls()["calls"][before_calls:]
    assert [c["method"] for c in new_calls] == ["app.info"]
    assert counts(app) == before_counts


def test_member_id_of_another_portal_is_refused(app, portal24):
    portal24.install(portal=1)
    portal24.install(portal=2)
    other = portal24.state(2)["member_id"]

    response = portal24.open(user_id=1, portal=1, member_id=other)

    assert response.status_code == 403


def test_forged_install_changes_no_stored_application_token(app, portal24):
    portal24.install()
    with app.app_context():
        stored = db.session.scalars(select(Portal)).one().application_token_encrypted
    tokens = dict(portal24.token(2), access_token="forgedtokenforgedtokenforged0001")

    response = portal24.frame_post("/install", tokens=tokens, application_token="attacker-chosen")

    assert response.status_code == 401
    with app.app_context():
        assert db.session.scalars(select(Portal)).one().application_token_encrypted == stored


def test_session_of_portal_a_is_useless_on_portal_b(app, portal24):
    portal24.install(portal=1)
    portal24.install(portal=2)
    session_a = portal24.session(user_id=1, portal=1)
    session_b = portal24.session(user_id=1, portal=2)
    me_b = portal24.api("/api/me", session_b).json()

    # Token A always means portal A...
    assert portal24.api("/api/me", session_a).json()["portal"]["id"] != me_b["portal"]["id"]
    # ...re-pointing it at portal B breaks its signature...
    header, payload, signature = session_a.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["pid"] = me_b["portal"]["id"]
    claims["sub"] = f"{me_b['portal']['member_id']}:1"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    response = portal24.api("/api/me", forged)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_invalid"
    # ...and once portal A is gone, token A is dead while B keeps working.
    portal24.uninstall(portal=1)
    assert portal24.api("/api/me", session_a).status_code == 401
    assert portal24.api("/api/me", session_b).status_code == 200


def sign(app, claims, header=None):
    """Sign claims with the app's real session key."""
    with app.app_context():
        return jwt.encode(header or {"alg": "HS256"}, claims, _derived_key("session"))


def valid_claims(app, portal24, **changes):
    """Claims like the app issues for user 1 of the installed portal."""
    with app.app_context():
        portal = db.session.scalars(select(Portal)).one()
        claims = {
            "iss": app.config["PUBLIC_URL"],
            "aud": app.config["B24_CLIENT_ID"],
            "sub": f"{portal.member_id}:1",
            "pid": portal.id,
            "iat": int(time.time()) - 10,
            "exp": int(time.time()) + 600,
            "name": "Anna Admin",
            "rights": {"can_view": True, "can_bind": True, "is_admin": True},
            "lang": "en",
        }
    claims.update(changes)
    return claims


def test_expired_session_token_is_refused(app, portal24):
    portal24.install()
    portal24.session(user_id=1)
    now = int(time.time())
    token = sign(app, valid_claims(app, portal24, iat=now - 3600, exp=now - 60))

    response = portal24.api("/api/me", token)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"


def test_session_token_for_another_audience_is_refused(app, portal24):
    portal24.install()
    portal24.session(user_id=1)
    token = sign(app, valid_claims(app, portal24, aud="local.anotherapp00000.00000002"))

    assert portal24.api("/api/me", token).status_code == 401


def test_tampered_or_unsigned_session_tokens_are_refused(app, portal24):
    portal24.install()
    good = portal24.session(user_id=1)
    header, payload, signature = good.split(".")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()

    for token in (
        f"{header}.{payload}.{flipped}",
        f"{none_header}.{payload}.",
        "garbage",
        good[:-1],
    ):
        response = portal24.api("/api/me", token)
        assert response.status_code == 401
        assert response.json()["error"]["code"] in {"session_invalid", "session_expired"}
    assert portal24.api("/api/me", None).json()["error"]["code"] == "session_required"
    assert portal24.api("/api/me", good).status_code == 200


def test_session_token_in_a_cookie_or_query_is_not_accepted(app, portal24):
    portal24.install()
    good = portal24.session(user_id=1)

    by_query = portal24.http.get(f"{portal24.app_url}/api/me", params={"token": good})
    by_cookie = portal24.http.get(
        f"{portal24.app_url}/api/me", headers={"Cookie": f"session={good}"}
    )

    assert by_query.status_code == 401
    assert by_cookie.status_code == 401
