"""The order-binding Bitrix24 app: the application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from b24app.cli import init_cli
from b24app.config import load_config
from b24app.crypto import init_cipher
from b24app.extensions import db, init_extensions
from b24app.i18n import init_i18n
from b24app.security import init_security
from b24app.services.gateway import init_gateway
from b24app.templating import COMPILED
from b24app.views import init_views
from b24app.views.errors import init_errors

ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app; ``config`` overrides settings read from the environment.

    Raises :class:`b24app.config.ConfigError` at once when a required setting is missing.
    """
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.jinja_options = {**app.jinja_options, "bytecode_cache": COMPILED}
    app.config.update(load_config(ROOT, Path(app.instance_path), config))
    _configure_logging(app)
    if app.config["PROXY_FIX"]:
        # Behind one reverse proxy that terminates HTTPS: trust its X-Forwarded-* headers.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1
        )
    init_extensions(app, str(ROOT / "migrations"))
    init_cipher(app)
    init_gateway(app)
    init_security(app)
    init_i18n(app)
    init_errors(app)
    init_views(app)
    init_cli(app)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """Answer liveness probes; 503 when the database does not answer."""
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            log.warning("health check: database unavailable")
            return jsonify({"status": "unavailable"}), 503
        return jsonify({"status": "ok"}), 200

    return app


def _configure_logging(app: Flask) -> None:
    """Give the app's loggers a level; handlers stay whatever the server configured."""
    logging.getLogger("b24app").setLevel(app.config["LOG_LEVEL"])
