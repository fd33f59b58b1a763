"""Session tokens, OAuth state, frame-ancestors and log scrubbing."""

import logging
import time

import pytest
from flask import g
from joserfc import jwt

from b24app import create_app
from b24app.errors import AppError, Unauthorized
from b24app.extensions import db
from b24app.models import Portal, utcnow
from b24app.rights import Rights
from b24app.security import (
    _derived_key,
    content_security_policy,
    issue_oauth_state,
    issue_session_token,
    origin_from_domain,
    scrub,
    verify_oauth_state,
    verify_session_token,
)
from b24app.services.gateway import close_gateway

RIGHTS = Rights(can_view=True, can_bind=False, is_admin=False)


@pytest.fixture
def app():
    """A testing app with one installed portal."""
    app = create_app({"TESTING": True, "B24_CLIENT_ID": "app.1", "SESSION_TTL": 60})
    with app.app_context():
        db.create_all()
        db.session.add(
            Portal(
                member_id="a" * 32,
                domain="a.bitrix24.com",
                client_endpoint="https://a.bitrix24.com/rest/",
                installed_at=utcnow(),
            )
        )
        db.session.commit()
    yield app
    close_gateway(app)


@pytest.fixture
def ctx(app):
    """A request context of the app."""
    with app.test_request_context():
        yield


def portal():
    """Return the stored portal."""
    return db.session.get(Portal, 1)


def test_session_token_round_trip(ctx, app):
    token = issue_session_token(portal(), 7, "Mark Manager", RIGHTS, "ru")

    session = verify_session_token(token)

    assert (session.portal.id, session.user_id, session.user_name) == (1, 7, "Mark Manager")
    assert session.rights == RIGHTS
    assert session.lang == "ru"
    claims = jwt.decode(token, _derived_key("session")).claims
    assert claims["aud"] == "app.1"
    assert claims["sub"] == f"{'a' * 32}:7"
    assert claims["exp"] - claims["iat"] == 60


def test_session_token_is_refused_after_uninstall(ctx, app):
    token = issue_session_token(portal(), 7, "Mark", RIGHTS, "en")
    portal().uninstalled_at = utcnow()
    db.session.commit()

    with pytest.raises(Unauthorized) as error:
        verify_session_token(token)
    assert error.value.code == "portal_not_installed"


@pytest.mark.parametrize(
    "change, code",
    [
        ({"exp": -100}, "session_expired"),
        ({"aud": "another.app"}, "session_invalid"),
        ({"iss": "https://elsewhere.example"}, "session_invalid"),
        ({"sub": f"{'b' * 32}:7"}, "session_invalid"),
        ({"pid": 99}, "session_invalid"),
        ({"sub": "no-user-part"}, "session_invalid"),
    ],
)
def test_session_token_claims_are_checked(ctx, app, change, code):
    now = int(time.time())
    claims = {
        "iss": app.config["PUBLIC_URL"],
        "aud": "app.1",
        "sub": f"{'a' * 32}:7",
        "pid": 1,
        "iat": now,
        "exp": now + 60,
        "rights": RIGHTS.as_dict(),
    }
    if "exp" in change:
        change = {"exp": now + change["exp"], "iat": now - 200}
    token = jwt.encode({"alg": "HS256"}, {**claims, **change}, _derived_key("session"))

    with pytest.raises(Unauthorized) as error:
        verify_session_token(token)
    assert error.value.code == code


def test_keys_differ_per_purpose_and_per_secret(ctx, app):
    state = issue_oauth_state("a" * 32, 7)

    with pytest.raises(AppError):
        verify_session_token(state)
    assert verify_oauth_state(state) == ("a" * 32, 7)
    other = create_app({"TESTING": True, "B24_CLIENT_ID": "app.1"})
    with other.test_request_context(), pytest.raises(AppError) as error:
        verify_oauth_state(state)
    assert error.value.code == "oauth_state_invalid"
    close_gateway(other)


@pytest.mark.parametrize(
    "domain, allow_http, origin",
    [
        ("a.bitrix24.com", False, "https://a.bitrix24.com"),
        ("localhost:5001", True, "http://localhost:5001"),
        ("localhost:5001", False, "https://localhost:5001"),
        ("A.Bitrix24.COM", False, "https://a.bitrix24.com"),
        ("LocalHost:5001", True, "http://localhost:5001"),
        ("evil.example; script-src *", False, None),
        ("a.bitrix24.com/x", False, None),
        ("", False, None),
        (None, False, None),
    ],
)
def test_frame_origin_from_domain_never_injects(domain, allow_http, origin):
    assert origin_from_domain(domain, allow_http) == origin


def test_csp_frames_only_the_portal(ctx):
    policy = content_security_policy("https://a.bitrix24.com")

    assert "frame-ancestors https://a.bitrix24.com" in policy
    assert "script-src 'self' api.bitrix24.com" in policy
    assert "frame-ancestors 'none'" in content_security_policy(None)


def test_every_response_gets_a_csp_and_no_x_frame_options(app):
    client = app.test_client()

    response = client.get("/healthz")

    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_framed_page_gets_its_portal_in_frame_ancestors(app):
    @app.get("/framed-test")
    def framed():
        g.frame_ancestor = "https://a.bitrix24.com"
        return "ok"

    response = app.test_client().get("/framed-test")

    assert response.headers["Content-Security-Policy"].endswith(
        "frame-ancestors https://a.bitrix24.com"
    )


@pytest.mark.parametrize(
    "line",
    [
        "auth[access_token]=s1morf609228iwyjjpvfv6wsvuja4p8u&x=1",
        '{"refresh_token": "4f9k4jpmg13usmybzuqknt2v9fh0q6rl"}',
        "AUTH_ID=s1morf609228iwyjjpvfv6wsvuja4p8u",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0",
        "GET /oauth/callback?code=abcdef1234567890&state=zzz HTTP/1.1",
        "stored gAAAAABlZ2V0dGluZ3Rva2VuZW5jcnlwdGVkdmFsdWVz==",
        "token s1morf609228iwyjjpvfv6wsvuja4p8u leaked",
    ],
)
def test_scrub_removes_token_like_values(line):
    cleaned = scrub(line)

    for secret in ("s1morf609228", "4f9k4jpmg13", "eyJhbGciOi", "abcdef1234567890", "gAAAAABlZ2V0"):
        assert secret not in cleaned
    assert "[redacted]" in cleaned


def test_scrub_keeps_member_ids_and_error_codes():
    line = "portal a223c6b3710f85df22e9377d6c4f7553 error code=QUERY_LIMIT_EXCEEDED status 503"

    assert scrub(line) == line


def test_log_records_are_scrubbed_whatever_the_logger(app, caplog):
    caplog.set_level(logging.INFO)

    logging.getLogger("somewhere.else").info(
        "sent %s", "refresh_token=4f9k4jpmg13usmybzuqknt2v9fh0q6rl"
    )

    assert "4f9k4jpmg13" not in caplog.text
    assert "refresh_token=[redacted]" in caplog.text
