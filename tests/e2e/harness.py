"""The app and the sandbox portal served side by side for browser tests (and screenshots).

The portal answers on ``localhost`` and the app on ``127.0.0.1``: two different sites, as a
Bitrix24 portal and its app are, so the browser treats the frame as cross-site.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from b24app import create_app
from b24app.extensions import db
from b24app.services.gateway import close_gateway


class QuietHandler(WSGIRequestHandler):
    """No access log: query strings may carry tokens, and the output stays readable."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the line."""


@dataclass
class ServedApp:
    """The app running on a free loopback port."""

    url: str
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and release the app's connections."""
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()
        close_gateway(self.app)
        with self.app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


@contextmanager
def served_app(sandbox: Any, database: Path) -> Iterator[ServedApp]:
    """Serve a fresh app (its own SQLite file) that trusts ``sandbox`` as Bitrix24."""
    slot: dict[str, Flask] = {}

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        """Forward to the app once it is built (the URL must be known first)."""
        return slot["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True, request_handler=QuietHandler)
    server.daemon_threads = True
    url = f"http://127.0.0.1:{server.server_port}"
    app = create_app(
        {
            "TESTING": True,
            "APP_ENV": "testing",
            "DATABASE_URL": f"sqlite:///{database}",
            "B24_CLIENT_ID": sandbox.sandbox.config.client_id,
            "B24_CLIENT_SECRET": sandbox.sandbox.config.client_secret,
            "B24_OAUTH_SERVER": sandbox.oauth_url,
            "PUBLIC_URL": url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "TOKEN_KEYS": [Fernet.generate_key().decode()],
            "B24_JS_URL": f"{sandbox.url}/bx24.js",
            "ALLOW_HTTP_PORTALS": True,
            "B24_HTTP_TIMEOUT": 5,
        }
    )
    with app.app_context():
        db.create_all()
    slot["app"] = app
    thread = threading.Thread(target=server.serve_forever, name="e2e-app", daemon=True)
    thread.start()
    served = ServedApp(url, app, server, thread)
    try:
        yield served
    finally:
        served.stop()


@contextmanager
def job_worker(served: ServedApp, poll_interval: float = 0.2) -> Iterator[Any]:
    """Run a bulk-job worker in a thread of the process serving the app."""
    from b24app.jobs.worker import WorkerThread

    worker = WorkerThread(served.app, poll_interval=poll_interval).start()
    try:
        yield worker
    finally:
        worker.stop()


class Portal:
    """The sandbox portal as the tests drive it: control calls, state, page URLs."""

    def __init__(self, base_url: str, http: httpx.Client) -> None:
        self.url = base_url.rstrip("/")
        self.http = http

    def control(self, path: str, json: dict[str, Any] | None = None, method: str = "POST") -> Any:
        """Call ``/_sandbox/<path>`` and return its JSON."""
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", json=json)
        response.raise_for_status()
        return response.json()

    def reset(self, app_url: str) -> None:
        """Start from the seed again, pointed at ``app_url``.

        The portal's request limit is raised: the tests' own REST calls that arrange
        bindings come in bursts and must not use up the bucket the app's calls draw from
        (the limiter itself is proven by the integration tests, not here).
        """
        self.control("reset", {"app_url": app_url})
        self.control("limits", {"rps": 1000, "burst": 1000})

    def install(self) -> None:
        """Install the app as the administrator would (install page, installFinish, event)."""
        assert self.control("install")["installed"] is True

    def state(self) -> dict[str, Any]:
        """``GET /_sandbox/state``."""
        return self.control("state", method="GET")

    def owners_of(self, order_id: int) -> list[tuple[int, int]]:
        """The (ownerTypeId, ownerId) pairs the portal holds for an order now."""
        result = self.rest("crm.orderentity.list", {"filter": {"orderId": order_id}})
        rows = result["orderEntity"] if isinstance(result, dict) else result
        return [(int(row["ownerTypeId"]), int(row["ownerId"])) for row in rows]

    def orders_of(self, owner_type_id: int, owner_id: int) -> list[int]:
        """The ids of the orders bound to a deal or an invoice now."""
        query = {"filter": {"ownerTypeId": owner_type_id, "ownerId": owner_id}}
        result = self.rest("crm.orderentity.list", query)
        rows = result["orderEntity"] if isinstance(result, dict) else result
        return sorted(int(row["orderId"]) for row in rows)

    def all_owners(self) -> dict[int, tuple[int, int]]:
        """Every bound order's (ownerTypeId, ownerId) now, read page by page."""
        found: dict[int, tuple[int, int]] = {}
        token = self.control("token", {"user_id": 1})["access_token"]
        start: int | None = 0
        while start is not None:
            answer = self.http.post(
                f"{self.url}/rest/crm.orderentity.list",
                json={"order": {"orderId": "asc"}, "start": start, "auth": token},
            )
            answer.raise_for_status()
            body = answer.json()
            result = body["result"]
            rows = result["orderEntity"] if isinstance(result, dict) else result
            for row in rows:
                found[int(row["orderId"])] = (int(row["ownerTypeId"]), int(row["ownerId"]))
            start = body.get("next")
        return found

    def bind(self, order_id: int, owner_type_id: int, owner_id: int) -> None:
        """Bind an order behind the app's back (as another Bitrix24 user would)."""
        fields = {"orderId": order_id, "ownerTypeId": owner_type_id, "ownerId": owner_id}
        self.rest("crm.orderentity.add", {"fields": fields})

    def unbind(self, order_id: int) -> None:
        """Remove whatever owner an order has, behind the app's back."""
        for owner_type_id, owner_id in self.owners_of(order_id):
            fields = {"orderId": order_id, "ownerTypeId": owner_type_id, "ownerId": owner_id}
            self.rest("crm.orderentity.deleteByFilter", {"fields": fields})

    def order(self, order_id: int) -> dict[str, Any]:
        """An order as ``sale.order.get`` returns it."""
        return dict(self.rest("sale.order.get", {"id": order_id})["order"])

    def rest(self, method: str, params: dict[str, Any], user_id: int = 1) -> Any:
        """Call a REST method as ``user_id`` and return its ``result``."""
        token = self.control("token", {"user_id": user_id})["access_token"]
        answer = self.http.post(f"{self.url}/rest/{method}", json={**params, "auth": token})
        answer.raise_for_status()
        return answer.json()["result"]

    def page(self, path: str, user: int = 1, lang: str | None = None, **query: Any) -> str:
        """A portal page's URL as ``user`` (and in ``lang``)."""
        values = {"user": user, **query}
        if lang:
            values["lang"] = lang
        encoded = "&".join(f"{name}={value}" for name, value in values.items())
        return f"{self.url}{path}?{encoded}"
