"""The app and a sandbox portal, served over HTTP on free ports, driven like Bitrix24 does.

The app's port is bound first so that the sandbox knows where to post the install page and
events; the app is plugged in once the sandbox's OAuth server is known. Both run in this
process, each in its own threaded server.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import create_engine, select, text, update
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from b24app import create_app
from b24app.bitrix.client import BitrixClient
from b24app.bitrix.ratelimit import RateLimiter
from b24app.config import normalise_database_url
from b24app.extensions import db
from b24app.models import Portal, UserToken
from b24app.services.catalog import forget_catalogs
from b24app.services.gateway import close_gateway
from b24sandbox.bx24 import frame_post_fields
from b24sandbox.config import SandboxConfig
from b24sandbox.server import RunningSandbox, start_sandbox
from bench.sandbox_lists import OPEN_LIMITS

_SESSION = re.compile(r'data-session="([^"]+)"')
# Longer than the app's own database pool timeout (30 s), so a stalled request is seen
# answering (or failing) rather than cut off by the client.
HTTP_TIMEOUT = 60.0


class QuietRequestHandler(WSGIRequestHandler):
    """A request handler without the per-request access log."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log line."""


def _not_ready(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answer 503 until the app is plugged in."""
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def database_kind(url: str | None) -> str:
    """Name the database behind a URL without repeating the URL (it may hold a password)."""
    if not url:
        return "sqlite"
    return normalise_database_url(url).split(":", 1)[0].split("+", 1)[0]


@contextmanager
def app_database(url: str | None) -> Iterator[str]:
    """Yield an empty database for one run: a temporary SQLite file, or a PostgreSQL schema.

    The PostgreSQL schema is dropped afterwards, so the database is left as it was found.
    The app's connections carry the schema's name as their ``application_name``: any of
    them still open at the end (a request that outlived the run) is ended first, since it
    would otherwise hold the locks the drop waits for.
    """
    if not url:
        with tempfile.TemporaryDirectory(prefix="b24bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'app.sqlite3'}"
        return
    url = normalise_database_url(url)
    if not url.startswith("postgresql"):
        raise ValueError("only a PostgreSQL URL is accepted; SQLite is the default")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in url else "?"
        try:
            yield (f"{url}{separator}options=-csearch_path%3D{schema}&application_name={schema}")
        finally:
            with admin.begin() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": schema},
                )
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def open_client(app: Flask) -> BitrixClient:
    """Return a REST client on the app's connection pool whose bucket never throttles."""
    gateway = app.extensions["b24_gateway"]
    timeout = httpx.Timeout(float(app.config["B24_HTTP_TIMEOUT"]), connect=5.0)
    return BitrixClient(
        gateway.http,
        limiter=RateLimiter(rate=1_000_000.0, threshold=1_000_000.0),
        endpoint_guard=gateway.guard,
        timeout=timeout,
    )


def widen_client_limit(app: Flask) -> None:
    """Replace the app's REST client with one whose client-side bucket never throttles.

    The app keeps itself under a portal's 2 requests per second; a benchmark sends far
    more on purpose and measures the app's own cost, not the bucket's sleeps.
    """
    app.extensions["b24_gateway"].rest = open_client(app)


@dataclass
class HttpStand:
    """An app and a sandbox portal reached over HTTP only, with the calls benchmarks drive.

    In-process (:class:`Stand`) or in processes of their own (``bench.gunicorn_stand``).
    """

    http: httpx.Client
    app_url: str
    sandbox_url: str

    def control(
        self, path: str, json: dict[str, Any] | None = None, method: str = "POST"
    ) -> dict[str, Any]:
        """Call the sandbox's control API and return its JSON."""
        response = self.http.request(method, f"{self.sandbox_url}/_sandbox/{path}", json=json)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def token(self, user_id: int, expires_in: int | None = None) -> dict[str, Any]:
        """Issue a fresh token set for a portal user."""
        body: dict[str, Any] = {"user_id": user_id}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return self.control("token", body)

    def counts(self) -> dict[str, int]:
        """Return how often the sandbox answered each REST method, plus ``refreshes``."""
        calls = self.control("calls", method="GET")
        return {**calls["counts"], "refreshes": calls["refreshes"]}

    def install(self) -> None:
        """Install the app through the sandbox and check the app accepted it."""
        result = self.control("install")
        page = result["install_page"]
        if not result["installed"] or page["status"] != 200:
            raise RuntimeError(f"install failed: {page['status']} {page.get('error')}")

    def frame_fields(self, tokens: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
        """Return the query and form fields Bitrix24 posts to open the app with ``tokens``."""
        query, form = frame_post_fields(
            tokens, domain=self.sandbox_url.split("://", 1)[1], options={}
        )
        return query, form

    def open(self, tokens: dict[str, Any]) -> httpx.Response:
        """POST the app page the way Bitrix24 frames it, with these tokens."""
        query, form = self.frame_fields(tokens)
        return self.http.post(f"{self.app_url}/app?{urlencode(query)}", data=form)

    def session(self, tokens: dict[str, Any]) -> str:
        """Open the app with these tokens and return the session token its page carries."""
        response = self.open(tokens)
        if response.status_code != 200:
            raise RuntimeError(f"opening the app answered {response.status_code}")
        match = _SESSION.search(response.text)
        if match is None:
            raise RuntimeError("the app page carries no session token")
        return match.group(1)

    def me(self, session: str) -> httpx.Response:
        """Call ``GET /api/me`` with a bearer session token."""
        return self.http.get(
            f"{self.app_url}/api/me", headers={"Authorization": f"Bearer {session}"}
        )

    def api(
        self, method: str, path: str, session: str, json: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Call the app's JSON API (``/api`` + ``path``) with a bearer session token."""
        return self.http.request(
            method,
            f"{self.app_url}/api{path}",
            json=json,
            headers={"Authorization": f"Bearer {session}"},
        )


@dataclass
class Stand(HttpStand):
    """The app and a sandbox served by threads of this process, their objects at hand."""

    app: Flask
    sandbox: RunningSandbox

    def forget_names(self, portal_id: int) -> None:
        """Drop the portal's stored names, so the next ``/api/me`` asks Bitrix24."""
        with self.app.app_context():
            forget_catalogs(portal_id)

    def portal_id(self) -> int:
        """Return the app's id of the installed portal."""
        with self.app.app_context():
            found: int = db.session.scalars(select(Portal.id)).one()
            return found

    def expire_stored_token(self, user_id: int) -> None:
        """Make the app believe a user's stored access token expired five minutes ago."""
        with self.app.app_context():
            db.session.execute(
                update(UserToken)
                .where(UserToken.user_id == user_id)
                .values(expires_at=datetime.now(UTC) - timedelta(minutes=5))
            )
            db.session.commit()


def sandbox_settings(
    client_id: str, client_secret: str, oauth_url: str, portal_url: str, app_url: str
) -> dict[str, Any]:
    """Return the settings that point the app at a sandbox as OAuth server, with fresh keys."""
    return {
        "B24_CLIENT_ID": client_id,
        "B24_CLIENT_SECRET": client_secret,
        "B24_OAUTH_SERVER": oauth_url,
        "PUBLIC_URL": app_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "TOKEN_KEYS": [Fernet.generate_key().decode()],
        "B24_JS_URL": f"{portal_url}/bx24.js",
        "ALLOW_HTTP_PORTALS": True,
    }


def app_settings(database_url: str, sandbox: RunningSandbox, app_url: str) -> dict[str, Any]:
    """Return the app's settings: the sandbox as OAuth server and portal, fresh keys."""
    config = sandbox.sandbox.config
    return {
        # Settings come from this mapping alone: a developer's .env stays out of the run.
        "TESTING": True,
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        **sandbox_settings(
            config.client_id, config.client_secret, sandbox.oauth_url, sandbox.url, app_url
        ),
        "B24_HTTP_TIMEOUT": 10,
        "SESSION_TTL": 900,
        "PROXY_FIX": False,
        # The client-side bucket is replaced anyway (widen_client_limit): no Redis needed.
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def running_stand(
    database_url: str | None, *, orders: int | None = None, client_limit: bool = False
) -> Iterator[Stand]:
    """Serve the app and a sandbox portal until the block ends.

    The portal has the sandbox's default seed, or ``orders`` orders. The sandbox's limit
    starts opened wide; the app's client-side bucket too, unless ``client_limit`` keeps the
    app's own (2 per second, threshold 40; jobs to three quarters of it while users click).
    """
    # Daemon request threads: a stuck request cannot keep the process alive.
    server = ThreadedWSGIServer("127.0.0.1", 0, _not_ready, handler=QuietRequestHandler)
    app_url = f"http://127.0.0.1:{server.server_port}"
    thread: threading.Thread | None = None
    config = SandboxConfig(host="127.0.0.1", port=0, app_url=app_url)
    if orders is not None:
        config.orders = orders
    try:
        sandbox = start_sandbox(config)
    except BaseException:
        server.server_close()
        raise
    try:
        with app_database(database_url) as url, httpx.Client(timeout=HTTP_TIMEOUT) as http:
            app = create_app(app_settings(url, sandbox, app_url))
            with app.app_context():
                db.create_all()
            if not client_limit:
                widen_client_limit(app)
            server.app = app
            thread = threading.Thread(target=server.serve_forever, name="bench-app", daemon=True)
            thread.start()
            stand = Stand(
                http=http, app_url=app_url, sandbox_url=sandbox.url, app=app, sandbox=sandbox
            )
            stand.control("limits", OPEN_LIMITS)
            try:
                yield stand
            finally:
                server.shutdown()
                close_gateway(app)
                with app.app_context():
                    db.session.remove()
                    for engine in db.engines.values():
                        engine.dispose()
    finally:
        if thread is not None:
            thread.join(timeout=5)
        server.server_close()
        sandbox.stop()
