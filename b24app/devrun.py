"""Run the app on a developer machine: ``python -m b24app.devrun`` (what ``make run`` does).

Without a configured ``B24_CLIENT_ID`` (environment or ``.env``) the sandbox portal starts
in this process on ``localhost:<sandbox-port>`` and the app on ``127.0.0.1:<app-port>``,
configured for each other: two different sites, as a Bitrix24 portal and its app are. With
``B24_CLIENT_ID`` configured the app is served alone, with the settings it reads itself.
Either way the database is migrated to the latest revision first. Ctrl-C stops everything.

This is the development server: production runs ``gunicorn app:app`` (see ``b24app.config``).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy.engine import make_url
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from b24app import ROOT, create_app
from b24app.config import ConfigError, read_environment
from b24app.jobs.worker import WorkerThread

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

HOST = "127.0.0.1"
# The app's client id on the sandbox portal; a real Bitrix24 issues one at registration.
DEV_CLIENT_ID = "local.devrun00000000.00000001"

# Named, not __name__: run with -m this module is __main__.
log = logging.getLogger("b24app.devrun")


class DevrunError(RuntimeError):
    """Starting failed for a reason the message states in one line."""


class SandboxPortal(Protocol):
    """What this command uses of a started sandbox (``b24sandbox.server.RunningSandbox``)."""

    @property
    def url(self) -> str:
        """The portal's origin."""

    @property
    def oauth_url(self) -> str:
        """The OAuth server's origin."""

    def stop(self) -> None:
        """Stop serving."""


class PathOnlyRequestHandler(WSGIRequestHandler):
    """Log each request by method, path and status, never its query string."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Write one access line without the query, where OAuth codes travel."""
        log.info(
            '%s "%s %s" %s', self.address_string(), self.command, urlsplit(self.path).path, code
        )


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m b24app.devrun",
        description="Serve the app for development, with the sandbox portal when no "
        "B24_CLIENT_ID is configured.",
    )
    parser.add_argument("--app-port", type=int, default=5000, help="the app's port (0: a free one)")
    parser.add_argument(
        "--sandbox-port",
        type=int,
        default=5001,
        help="the sandbox portal's port (0: a free one); unused with B24_CLIENT_ID",
    )
    return parser


def configured_client_id() -> str:
    """Return B24_CLIENT_ID as the app will read it: the environment over ``.env``."""
    return read_environment(ROOT).get("B24_CLIENT_ID", "").strip()


def starting_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Answer 503: the server holds this stand-in until the real app is plugged in."""
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def listen(port: int, option: str) -> socket.socket:
    """Open a listening socket on the port, or say in one line why it cannot be."""
    try:
        return socket.create_server((HOST, port))
    except OSError as exc:
        raise DevrunError(port_problem(port, option, exc)) from None


def bind_app_server(port: int) -> ThreadedWSGIServer:
    """Listen on the app's port now, so a busy port fails before anything else happens."""
    # Bound here and handed over: werkzeug itself would print two lines and exit.
    with listen(port, "--app-port") as sock:
        # Its request threads are daemons: open keep-alive connections cannot delay Ctrl-C.
        return ThreadedWSGIServer(
            HOST, sock.getsockname()[1], starting_app, PathOnlyRequestHandler, fd=sock.fileno()
        )


def port_problem(port: int, option: str, exc: OSError) -> str:
    """Explain in one line why a port cannot be listened on."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is already in use: stop what listens there or pass another {option}"
    return f"cannot listen on {HOST}:{port} ({option}): {exc.strerror or exc}"


def sandbox_module(name: str) -> Any:
    """Load a module of the sandbox package by name.

    The app never imports the sandbox: serving it alone must not need that package, and the
    sandbox, a development counterpart, stays outside the app's type-checked code.
    """
    return importlib.import_module(f"b24sandbox.{name}")


def start_portal(sandbox_port: int, app_url: str, client_secret: str) -> SandboxPortal:
    """Start the sandbox portal in this process, pointed at the app."""
    config = sandbox_module("config").SandboxConfig(
        host=HOST,
        port=sandbox_port,
        app_url=app_url,
        client_id=DEV_CLIENT_ID,
        client_secret=client_secret,
    )
    try:
        portal: SandboxPortal = sandbox_module("server").start_sandbox(config)
    except OSError as exc:
        raise DevrunError(port_problem(sandbox_port, "--sandbox-port", exc)) from None
    return portal


def portal_settings(portal: SandboxPortal, app_url: str, client_secret: str) -> dict[str, str]:
    """Return the settings that make the app talk to the sandbox portal."""
    return {
        "APP_ENV": "development",
        "ALLOW_HTTP_PORTALS": "1",
        "B24_CLIENT_ID": DEV_CLIENT_ID,
        "B24_CLIENT_SECRET": client_secret,
        "B24_OAUTH_SERVER": portal.oauth_url,
        "PUBLIC_URL": app_url,
        "B24_JS_URL": f"{portal.url}/api/v1/",
    }


def build_app(settings: Mapping[str, str]) -> Flask:
    """Build the app with ``settings`` over its own configuration."""
    try:
        app = create_app(settings)
    except ConfigError as exc:
        raise DevrunError(str(exc)) from None
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if database.get_backend_name() == "sqlite" and database.database:
        path = Path(database.database)
        # SQLite creates the file but not its folder (the instance folder on a first run).
        if path.is_absolute():
            path.parent.mkdir(parents=True, exist_ok=True)
    return app


def upgrade_database(settings: Mapping[str, str]) -> None:
    """Apply every pending migration, exactly as ``flask db upgrade`` does."""
    # A separate process: Alembic's env.py reconfigures logging and would silence ours.
    env = {**os.environ, **settings, "FLASK_SKIP_DOTENV": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise DevrunError(f"flask db upgrade failed (exit status {done.returncode}); see above")


def database_label(app: Flask) -> str:
    """Name the app's database without its password."""
    return make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=True)


def say(*lines: str) -> None:
    """Print lines at once, even when stdout is a pipe."""
    print("\n".join(lines), flush=True)


def portal_guide(portal: SandboxPortal, app: Flask) -> list[str]:
    """Tell a newcomer where to go once the portal and the app are up."""
    users = ", ".join(
        f"?user={user.id} {user.name} {user.last_name}"
        for user in sandbox_module("users").USERS.values()
    )
    return [
        f"App:    {app.config['PUBLIC_URL']}  (development, database {database_label(app)})",
        f"Portal: {portal.url}/",
        "",
        "Open the portal in a browser, press Install, then Install again to confirm: the",
        "app's installer finishes the installation and the portal opens the app. Later, open",
        f"it with Open on the portal's start page or at {portal.url}/marketplace/app/.",
        f"Portal users: {users}.",
        "The portal keeps its data in memory: after a restart, install the app again.",
        "Press Ctrl-C to stop.",
    ]


def alone_guide(app: Flask, port: int) -> list[str]:
    """Tell what runs when the app is served without the sandbox portal."""
    public = app.config["PUBLIC_URL"]
    return [
        f"Serving the app alone (B24_CLIENT_ID {app.config['B24_CLIENT_ID']} is configured; "
        "no sandbox portal).",
        f"App:    http://{HOST}:{port}  ({app.config['APP_ENV']}, database {database_label(app)})",
        f"Bitrix24 reaches it at {public}: installer {public}/install, handler {public}/app.",
        "Press Ctrl-C to stop.",
    ]


def interrupt(signum: int, frame: FrameType | None) -> None:
    """Stop on SIGTERM the way Ctrl-C stops."""
    raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> None:
    """Bind, migrate and serve until interrupted; clean up whatever was started."""
    with ExitStack() as cleanup:
        server = bind_app_server(args.app_port)
        cleanup.callback(server.server_close)
        settings: dict[str, str] = {}
        portal: SandboxPortal | None = None
        if not configured_client_id():
            app_url = f"http://{HOST}:{server.port}"
            # The portal forgets its installs when it stops: a fresh secret per run costs nothing.
            client_secret = secrets.token_hex(16)
            portal = start_portal(args.sandbox_port, app_url, client_secret)
            cleanup.callback(portal.stop)
            settings = portal_settings(portal, app_url, client_secret)
        app = build_app(settings)
        upgrade_database(settings)
        # One bulk-job worker inside the dev runner (production runs `flask jobs worker`).
        worker = WorkerThread(app).start()
        cleanup.callback(worker.stop)
        server.app = app
        if portal is not None:
            say(*portal_guide(portal, app))
        else:
            say(*alone_guide(app, server.port))
        server.serve_forever(poll_interval=0.5)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    signal.signal(signal.SIGTERM, interrupt)
    try:
        serve(args)
    except DevrunError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        # Interrupted while starting; once serving, werkzeug's loop takes Ctrl-C as its end.
        pass
    say("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
