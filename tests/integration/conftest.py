"""The app served over real HTTP against the sandbox portal, with a fresh database per test.

One threaded server (bound once, on a free port, so its URL is known before the sandbox
needs it) serves a swappable WSGI app: each test builds its own app on its own database
(a new SQLite file, or a new PostgreSQL schema when ``B24_TEST_POSTGRES=1``) and plugs it
in. Every test's captured log output is checked for the secrets the test handled.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import create_engine, text
from werkzeug.serving import BaseWSGIServer, make_server

from b24app import create_app
from b24app.bitrix.http import tls_context
from b24app.config import normalise_database_url
from b24app.extensions import db
from b24app.services.gateway import close_gateway
from b24sandbox.bx24 import frame_post_fields

POSTGRES = os.environ.get("B24_TEST_POSTGRES") == "1"
POSTGRES_URL = normalise_database_url(
    os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
)


class SwappableApp:
    """A WSGI app that forwards to whichever Flask app the current test plugged in."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Serve with the current app, or 503 between tests."""
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no app"]
        return self.app(environ, start_response)


@dataclass
class AppServer:
    """The running server: its URL and the slot the current test's app goes into."""

    url: str
    slot: SwappableApp
    server: BaseWSGIServer


@pytest.fixture(scope="session")
def app_server() -> Iterator[AppServer]:
    """Bind a free port first (the sandbox must know the URL), then serve from a thread."""
    slot = SwappableApp()
    server = make_server("127.0.0.1", 0, slot, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="app-server", daemon=True)
    thread.start()
    yield AppServer(f"http://127.0.0.1:{server.server_port}", slot, server)
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture
def sandbox_app_url(app_server: AppServer) -> str:
    """Point the sandbox's installs and events at this package's app server."""
    return app_server.url


@dataclass
class Secrets:
    """Every secret a test handled; none of them may appear in any log line."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        """Remember secrets (empty values are ignored)."""
        self.values.update(v for v in values if v and len(v) >= 8)

    def add_tokens(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Remember the tokens of an OAuth answer and return it."""
        self.add(answer.get("access_token"), answer.get("refresh_token"))
        return answer


@pytest.fixture
def seen_secrets() -> Secrets:
    """The secrets of this test."""
    return Secrets()


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture, seen_secrets: Secrets) -> Iterator[None]:
    """Capture every log record of the test and fail if one carries a secret it handled."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="b24app")
    yield
    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    leaked = sorted(s[:6] + "..." for s in seen_secrets.values if s in logged)
    assert not leaked, f"secrets found in logs: {leaked}"


@pytest.fixture
def database_url(tmp_path: Any) -> Iterator[str]:
    """A fresh, empty database for one test: a SQLite file, or a PostgreSQL schema."""
    if not POSTGRES:
        yield f"sqlite:///{tmp_path / 'app.sqlite3'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def app_config(
    sandbox: Any, app_server: AppServer, database_url: str, seen_secrets: Secrets
) -> dict[str, Any]:
    """The app's settings for this test: the sandbox as OAuth server and portal."""
    config = {
        "TESTING": True,
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "B24_CLIENT_ID": sandbox.client_id,
        "B24_CLIENT_SECRET": sandbox.client_secret,
        "B24_OAUTH_SERVER": sandbox.oauth_url,
        "PUBLIC_URL": app_server.url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "TOKEN_KEYS": [Fernet.generate_key().decode()],
        "B24_JS_URL": f"{sandbox.url}/bx24.js",
        "ALLOW_HTTP_PORTALS": True,
        "B24_HTTP_TIMEOUT": 5,
        # Retries pause a few milliseconds: tests never wait on backoff.
        "B24_RETRY_BASE_DELAY": 0.01,
    }
    seen_secrets.add(config["B24_CLIENT_SECRET"], config["SECRET_KEY"], *config["TOKEN_KEYS"])
    return config


@pytest.fixture
def make_app(app_config: dict[str, Any], app_server: AppServer) -> Iterator[Callable[..., Flask]]:
    """Build the test's app (with overrides), create its tables and serve it."""
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        """Create, migrate-free set up and plug in an app."""
        app = create_app({**app_config, **overrides})
        with app.app_context():
            db.create_all()
        app_server.slot.app = app
        built.append(app)
        return app

    yield build
    app_server.slot.app = None
    for app in built:
        close_gateway(app)
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app with the default test settings, served on ``app_server``."""
    return make_app()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client for talking to the app like Bitrix24 or a browser would."""
    with httpx.Client(verify=tls_context(), timeout=15, follow_redirects=False) as client:
        yield client


class Portal24:
    """Acts like a Bitrix24 portal towards the app: installs, opens placements, sends events."""

    def __init__(self, sandbox: Any, app_url: str, http: httpx.Client, seen: Secrets) -> None:
        self.sandbox = sandbox
        self.app_url = app_url
        self.http = http
        self.seen = seen

    def state(self, portal: int = 1) -> dict[str, Any]:
        """Return one portal's part of ``/_sandbox/state``; remember its application token."""
        found = next(p for p in self.sandbox.state()["portals"] if p["id"] == portal)
        self.seen.add(found.get("application_token"))
        return found

    def install(self, portal: int = 1) -> dict[str, Any]:
        """Install the app through the sandbox (install page, installFinish, ONAPPINSTALL)."""
        result = self.sandbox.control("install", {"portal": portal})
        self.state(portal)
        return result

    def uninstall(self, portal: int = 1, clean: int = 0) -> dict[str, Any]:
        """Uninstall through the sandbox (ONAPPUNINSTALL to the bound handler)."""
        return self.sandbox.control("uninstall", {"portal": portal, "clean": clean})

    def token(self, user_id: int, portal: int = 1, expires_in: int | None = None) -> dict:
        """Issue a fresh token set for a user of a portal."""
        return self.seen.add_tokens(self.sandbox.token(user_id, expires_in, portal=portal))

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the portal's clock forward: its tokens expire and its bucket drains."""
        return self.sandbox.advance_clock(seconds)

    def frame_post(
        self,
        path: str,
        user_id: int = 1,
        portal: int = 1,
        *,
        tokens: dict[str, Any] | None = None,
        domain: str | None = None,
        member_id: str | None = None,
        placement: str = "DEFAULT",
        options: dict[str, Any] | None = None,
        lang: str = "en",
        expires_in: int | None = None,
        application_token: str = "",
    ) -> httpx.Response:
        """POST the app page the way Bitrix24 frames it (query string + form body)."""
        tokens = tokens or self.token(user_id, portal, expires_in)
        query, form = frame_post_fields(
            tokens,
            domain=domain if domain is not None else self.sandbox.portal_url(portal - 1)[7:],
            lang=lang,
            application_token=application_token,
            member_id=member_id,
            placement=placement,
            options=options or {},
        )
        return self.http.post(f"{self.app_url}{path}?{urlencode(query)}", data=form)

    def open(self, user_id: int = 1, portal: int = 1, **kwargs: Any) -> httpx.Response:
        """Open the app (``POST /app``) as a user."""
        return self.frame_post("/app", user_id, portal, **kwargs)

    def session(self, user_id: int = 1, portal: int = 1, **kwargs: Any) -> str:
        """Open the app and return the session token the page carries."""
        response = self.open(user_id, portal, **kwargs)
        assert response.status_code == 200, response.text
        token = session_token_of(response.text)
        self.seen.add(token)
        return token

    def event(self, path: str, fields: dict[str, Any]) -> httpx.Response:
        """POST an event form with bracketed keys, as Bitrix24 delivers events."""
        return self.http.post(
            f"{self.app_url}{path}",
            content=urlencode(_flatten("", fields)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def api(self, path: str, session: str | None, **kwargs: Any) -> httpx.Response:
        """Call the app's JSON API with a bearer session token."""
        headers = {"Authorization": f"Bearer {session}"} if session else {}
        return self.http.request(
            kwargs.pop("method", "GET"), f"{self.app_url}{path}", headers=headers, **kwargs
        )


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    """Encode nested data as PHP-style bracketed form fields."""
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            pairs.extend(_flatten(f"{prefix}[{key}]" if prefix else str(key), item))
        return pairs
    return [(prefix, "" if value is None else str(value))]


_SESSION = re.compile(r'data-session="([^"]+)"')


def session_token_of(html: str) -> str:
    """Return the session token an app page carries."""
    match = _SESSION.search(html)
    assert match, "the page carries no session token"
    return match.group(1)


@pytest.fixture
def portal24(
    sandbox: Any, app_server: AppServer, http: httpx.Client, seen_secrets: Secrets
) -> Portal24:
    """A Bitrix24 stand-in driving the app over HTTP."""
    return Portal24(sandbox, app_server.url, http, seen_secrets)
