"""Serve the sandbox: one threaded WSGI server per portal, all in this process."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

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


# Seconds an idle connection stays open for its next request (nginx's default, which
# Bitrix24's front servers answer with); a client's pool normally lets go sooner.
KEEP_ALIVE_SECONDS = 75
# Request bodies up to this size are read before the portal answers, so that the connection
# can carry the next request; a larger one closes the connection after its answer.
KEEP_ALIVE_MAX_BODY = 16 * 1024 * 1024


class QuietRequestHandler(WSGIRequestHandler):
    """A portal's request handler: HTTP/1.1 keep-alive, and no line per request.

    Werkzeug's handler closes every connection (``Connection: close``), because Python's
    ``http.server`` cannot skip a body the application left unread before the next request
    line. Bitrix24 keeps connections open, so this handler reads each body first and lets
    the application read it from memory; the connection then carries the next request.
    """

    protocol_version = "HTTP/1.1"
    timeout = KEEP_ALIVE_SECONDS
    server: PortalServer
    # The socket's stream while the request is answered (see make_environ); set only when
    # the body was read, which is what lets the connection stay open.
    socket_rfile: Any = None

    def setup(self) -> None:
        """Register the connection with its server, which closes it when it stops.

        ``TCP_NODELAY``, as nginx sets on kept connections: werkzeug writes an answer's
        headers and body apart, and Nagle's algorithm would hold the body back until the
        client's delayed ACK (40 ms on Linux) once the connection no longer closes.
        """
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.opened(self.connection)

    def finish(self) -> None:
        """Forget the connection."""
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def make_environ(self) -> WSGIEnvironment:
        """Build the WSGI environ with the whole request body already read.

        Until the answer is sent, ``rfile`` is an empty stream: after every answer werkzeug
        discards what the socket still holds, which on a kept connection would be the next
        request. The socket's own stream is put back for that request.
        """
        environ = super().make_environ()
        body = _read_body(environ)
        if body is not None:
            environ["wsgi.input"] = io.BytesIO(body)
            self.socket_rfile, self.rfile = self.rfile, io.BytesIO()
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        """Drop werkzeug's ``Connection: close`` where the connection can stay open.

        It can when the body was read and neither the client nor an error asked to close.
        """
        if (
            keyword.lower() == "connection"
            and value.lower() == "close"
            and self.socket_rfile is not None
            and not self.close_connection
        ):
            return
        super().send_header(keyword, value)

    def handle_one_request(self) -> None:
        """Serve one request; a connection is only kept open once its body was read."""
        self.socket_rfile = None
        try:
            super().handle_one_request()
        finally:
            if self.socket_rfile is not None:
                self.rfile = self.socket_rfile

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log: query strings may carry ``auth`` tokens."""

    def log_error(self, format: str, *args: Any) -> None:
        """Log errors, except an idle keep-alive connection timing out."""
        if format.startswith("Request timed out"):
            return
        super().log_error(format, *args)


def _read_body(environ: WSGIEnvironment) -> bytes | None:
    """Read the request body of ``environ`` whole; None when it is left to the application.

    A body over :data:`KEEP_ALIVE_MAX_BODY`, or shorter than its ``Content-Length`` says,
    is not held (the connection then closes after the answer). A chunked one is read to
    its last chunk, or, past the cap, handed on with the part already read in front.
    """
    stream = environ["wsgi.input"]
    chunked = bool(environ.get("wsgi.input_terminated"))
    if chunked:
        length = KEEP_ALIVE_MAX_BODY + 1
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or "0")
        except ValueError:
            return None
        if length < 0 or length > KEEP_ALIVE_MAX_BODY:
            return None
    parts: list[bytes] = []
    missing = length
    while missing:
        part = stream.read(missing)
        if not part:
            break
        parts.append(part)
        missing -= len(part)
    body = b"".join(parts)
    if chunked and not missing:
        # The chunks went past the cap: the application reads on from where this stopped.
        environ["wsgi.input"] = _Prefixed(body, stream)
        return None
    if missing and not chunked:
        # The client sent less than it announced: the application sees what came.
        environ["wsgi.input"] = io.BytesIO(body)
        return None
    return body


class _Prefixed(io.RawIOBase):
    """A stream that hands out ``head`` first, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self._head = io.BytesIO(head)
        self._stream = stream

    def readable(self) -> bool:
        """Tell readers this stream reads."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the head, then from the stream."""
        count = self._head.readinto(buffer)
        return count if count else self._stream.readinto(buffer)


class PortalServer(ThreadedWSGIServer):
    """A threaded WSGI server that closes its open connections when it stops."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def opened(self, connection: socket.socket) -> None:
        """Remember an accepted connection."""
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        """Forget a connection its handler finished with."""
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut every open connection down (idle keep-alive ones would outlive the server)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


@dataclass
class RunningSandbox:
    """A started sandbox: its state, its servers and their URLs."""

    sandbox: Sandbox
    servers: list[PortalServer]
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
            server.close_connections()
        self.sandbox.close()


def start_sandbox(config: SandboxConfig) -> RunningSandbox:
    """Bind every portal's port (``port=0``: free ports), then serve them from threads."""
    servers: list[PortalServer] = []
    ports: list[int] = []
    try:
        for index in range(config.portals):
            port = 0 if config.port == 0 else config.portal_port(index)
            # Bind first with a placeholder app: the portal's domain needs the real port.
            # The socket is opened here so a busy port raises OSError (werkzeug would exit).
            with socket.create_server((config.host, port)) as sock:
                server = PortalServer(
                    config.host,
                    sock.getsockname()[1],
                    _unready_app,
                    handler=QuietRequestHandler,
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
