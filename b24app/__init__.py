"""The order-binding Bitrix24 app: the application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app; ``config`` overrides settings read from the environment."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    if config:
        app.config.update(config)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Answer liveness probes."""
        return {"status": "ok"}

    return app
