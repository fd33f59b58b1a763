"""Every response of the app carries the framing and sniffing headers, errors included.

The test walks every URL rule of the app with every usual method (so pages, the API,
404, 405, 401, 400 and the automatic OPTIONS and HEAD answers are all met), then asks for
a 413, a 415, a 500, static files and the OpenAPI document, and checks each answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from b24app import create_app
from b24app.extensions import db
from b24app.models import Portal, utcnow
from b24app.rights import Rights
from b24app.security import issue_session_token
from b24app.services.gateway import close_gateway

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Sample values for each converter a rule may use.
SAMPLES = {"int": "1", "default": "x", "string": "x", "path": "js/app.js", "any": "x"}


@pytest.fixture
def app() -> Iterator[Flask]:
    """A testing app (no portal needed: nothing here reaches Bitrix24)."""
    app = create_app({"TESTING": True, "B24_CLIENT_ID": "app.1", "MAX_CONTENT_LENGTH": 4096})
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/unexpected-failure-test")
    def unexpected() -> str:
        raise RuntimeError("a bug")

    with app.app_context():
        db.create_all()
    yield app
    close_gateway(app)


def url_of(rule: Rule) -> str:
    """Fill a rule's variables with sample values."""
    values = {}
    for name in rule.arguments:
        converter = type(rule._converters[name]).__name__.lower().removesuffix("converter")
        values[name] = SAMPLES.get(converter, "1")
    path = rule.rule
    for name, value in values.items():
        path = re.sub(rf"<(?:[^:>]+:)?{name}>", value, path)
    return path


def check_headers(response: TestResponse, what: str) -> None:
    """The CSP with frame-ancestors, nosniff and a referrer policy, and no X-Frame-Options."""
    csp = response.headers.get("Content-Security-Policy", "")
    assert re.search(r"(^|; )frame-ancestors \S", csp), f"{what}: CSP {csp!r}"
    assert "default-src 'self'" in csp, f"{what}: CSP {csp!r}"
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("Referrer-Policy") in {
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    }, what
    assert "X-Frame-Options" not in response.headers, what


def test_every_rule_and_method_answers_with_the_headers(app: Flask) -> None:
    client = app.test_client()
    statuses: dict[int, int] = {}
    rules = list(app.url_map.iter_rules())
    assert len(rules) >= 20
    for rule in rules:
        url = url_of(rule)
        for method in METHODS:
            response = client.open(url, method=method)
            response.close()
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            check_headers(response, f"{method} {url} -> {response.status_code}")
    # The walk met successes, refusals, missing sessions, wrong methods and a failure.
    assert {200, 400, 401, 405, 500} <= set(statuses), statuses


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("GET", "/no/such/page", {}, 404),
        ("GET", "/api/no/such/thing", {}, 404),
        ("GET", "/static/no-such-file.css", {}, 404),
        ("PUT", "/install", {}, 405),
        ("POST", "/install", {"data": {"AUTH_ID": "x" * 8000}}, 413),
        ("POST", "/app", {"data": {"AUTH_ID": "x" * 8000}}, 413),
        ("POST", "/events", {"data": {"event": "x" * 8000}}, 413),
        ("GET", "/static/app.css", {}, 200),
        ("GET", "/static/js/app.js", {}, 200),
        ("GET", "/api/openapi.json", {}, 200),
        ("GET", "/healthz", {}, 200),
        ("GET", "/", {}, 200),
        ("GET", "/app", {}, 400),
        ("GET", "/oauth/callback?code=x&state=y", {}, 400),
        ("GET", "/api/me", {}, 401),
        ("GET", "/unexpected-failure-test", {}, 500),
    ],
)
def test_special_answers_carry_the_headers(
    app: Flask, method: str, url: str, kwargs: dict, status: int
) -> None:
    response = app.test_client().open(url, method=method, **kwargs)
    response.close()

    assert response.status_code == status
    check_headers(response, f"{method} {url}")


@pytest.fixture
def session_token(app: Flask) -> str:
    """A store administrator's session on a stored portal (the API checks it first)."""
    with app.app_context():
        portal = Portal(
            member_id="a" * 32,
            domain="a.bitrix24.com",
            client_endpoint="https://a.bitrix24.com/rest/",
            installed_at=utcnow(),
        )
        db.session.add(portal)
        db.session.commit()
        with app.test_request_context():
            rights = Rights(can_view=True, can_bind=True, is_admin=True)
            return issue_session_token(portal, 1, "Anna", rights, "en")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("orderId=1", "text/plain", 415, "unsupported_media_type"),
        ("x" * 8000, "application/json", 413, "payload_too_large"),
        ("{", "application/json", 400, "bad_request"),
    ],
)
def test_refused_api_bodies_carry_the_headers(
    app: Flask, session_token: str, body: str, content_type: str, status: int, code: str
) -> None:
    response = app.test_client().post(
        "/api/bindings",
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {session_token}"},
    )

    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    check_headers(response, f"POST /api/bindings {content_type} -> {status}")


def test_static_files_are_served_from_the_static_folder(app: Flask) -> None:
    # The walk's sample static path must be a real file, or it would only meet a 404.
    assert (ROOT / "static" / SAMPLES["path"]).is_file()
