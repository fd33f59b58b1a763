"""Serve the sandbox: one threaded WSGI server per portal, all in this process."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field, replace

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from b24sandbox.config import SandboxConfig
from b24sandbox.state import Portal, Sandbox


def create_portal_app(sandbox: Sandbox, portal: Portal) -> Flask:
    """Build the WSGI app of one portal: REST, OAuth, the control API and the web pages."""
    import b24sandbox.methods  # noqa: F401  (registers every REST method)
    from b24sandbox import control, oauth, rest, web

    app = Flask(f"b24sandbox.portal{portal.id}")
    app.extensions["b24sandbox"] = {"sandbox": sandbox, "portal": portal}
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(rest.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(web.bp)
    return app


class QuietRequestHandler(WSGIRequestHandler):
    """A request handler that does not print one line per request (tokens ride in URLs)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log: query strings may carry ``auth`` tokens."""


@dataclass
class RunningSandbox:
    """A started sandbox: its state, its servers and their URLs."""

    sandbox: Sandbox
    servers: list[BaseWSGIServer]
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def portal_urls(self) -> list[str]:
        """Every portal's base URL, in portal order."""
        return [portal.base_url for portal in self.sandbox.portals]

    @property
    def url(self) -> str:
        """The first portal's base URL."""
        return self.portal_urls[0]

    @property
    def oauth_url(self) -> str:
        """The OAuth server's origin (the first portal's)."""
        return self.sandbox.oauth_url

    def stop(self) -> None:
        """Stop every server, end hanging answers and close the database."""
        self.sandbox.stopping.set()
        for server in self.servers:
            server.shutdown()
        for thread in self.threads:
            thread.join(timeout=5)
        for server in self.servers:
            server.server_close()
        self.sandbox.close()


def start_sandbox(config: SandboxConfig) -> RunningSandbox:
    """Bind every portal's port (``port=0``: free ports), then serve them from threads."""
    servers: list[BaseWSGIServer] = []
    ports: list[int] = []
    try:
        for index in range(config.portals):
            port = 0 if config.port == 0 else config.portal_port(index)
            # Bind first with a placeholder app: the portal's domain needs the real port.
            # The socket is opened here so a busy port raises OSError (werkzeug would exit).
            with socket.create_server((config.host, port)) as sock:
                server = make_server(
                    config.host,
                    sock.getsockname()[1],
                    _unready_app,
                    threaded=True,
                    request_handler=QuietRequestHandler,
                    fd=sock.fileno(),
                )
            servers.append(server)
            ports.append(server.server_address[1])
    except OSError:
        for server in servers:
            server.server_close()
        raise
    sandbox = Sandbox(replace(config), ports)
    running = RunningSandbox(sandbox, servers)
    for server, portal in zip(servers, sandbox.portals, strict=True):
        server.app = create_portal_app(sandbox, portal)
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever,
            args=(0.1,),  # poll interval: stop() returns quickly
            name=f"b24sandbox-portal{portal.id}",
            daemon=True,
        )
        thread.start()
        running.threads.append(thread)
    return running


def _unready_app(environ: dict, start_response: object) -> list[bytes]:
    """Answer 503 until the real app is in place (only possible during start-up)."""
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])  # type: ignore[operator]
    return [b"starting"]
