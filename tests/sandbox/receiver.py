"""A tiny app for delivery tests: it records every POST the sandbox sends it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, request
from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class Delivery:
    """One request the receiver got."""

    path: str
    query: dict[str, str]
    form: dict[str, str]
    content_type: str


@dataclass
class Receiver:
    """A running receiver: its URL, what it got, and the status it answers with."""

    server: BaseWSGIServer
    thread: threading.Thread
    deliveries: list[Delivery] = field(default_factory=list)
    status: int = 200

    @property
    def url(self) -> str:
        """The receiver's base URL."""
        return f"http://127.0.0.1:{self.server.server_port}"

    def at(self, path: str) -> list[Delivery]:
        """Return the deliveries to one path."""
        return [d for d in self.deliveries if d.path == path]

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()


def start_receiver() -> Receiver:
    """Start a receiver on a free loopback port."""
    app = Flask("delivery_receiver")
    holder: dict[str, Any] = {}

    @app.route("/<path:path>", methods=["GET", "POST"])
    def record(path: str) -> tuple[str, int]:
        """Record the request and answer with the configured status."""
        receiver: Receiver = holder["receiver"]
        receiver.deliveries.append(
            Delivery(
                path="/" + path,
                query=dict(request.args.items()),
                form=dict(request.form.items()),
                content_type=request.mimetype,
            )
        )
        return "ok", receiver.status

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    receiver = Receiver(server, thread)
    holder["receiver"] = receiver
    thread.start()
    return receiver
