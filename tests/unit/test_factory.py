"""The application factory."""

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from b24app import create_app
from b24app.config import ConfigError
from b24app.extensions import db
from b24app.services.gateway import close_gateway


@pytest.fixture
def app():
    """A testing app with its tables."""
    app = create_app({"TESTING": True})
    with app.app_context():
        db.create_all()
    yield app
    close_gateway(app)


def test_config_override_is_applied(app):
    assert app.testing
    assert app.config["APP_ENV"] == "testing"


def test_healthz_answers_ok(app):
    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_every_url_of_the_design_is_routed(app):
    rules = {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods}

    for url, method in [
        ("/install", "POST"),
        ("/app", "POST"),
        ("/events", "POST"),
        ("/oauth/callback", "GET"),
        ("/healthz", "GET"),
        ("/api/me", "GET"),
    ]:
        assert (url, method) in rules


def test_production_without_settings_fails_at_create_app(monkeypatch, tmp_path):
    for name in (
        "APP_ENV",
        "B24_CLIENT_ID",
        "SECRET_KEY",
        "TOKEN_KEYS",
        "PUBLIC_URL",
        "ALLOW_HTTP_PORTALS",
        "B24_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    # A developer's .env in the project root must not complete the settings.
    monkeypatch.setattr("b24app.ROOT", tmp_path)

    with pytest.raises(ConfigError, match="B24_CLIENT_ID"):
        create_app({"APP_ENV": "production"})


def test_proxy_fix_only_when_asked(app):
    proxied = create_app({"TESTING": True, "PROXY_FIX": True})

    assert isinstance(proxied.wsgi_app, ProxyFix)
    assert not isinstance(app.wsgi_app, ProxyFix)
    close_gateway(proxied)


def test_unexpected_errors_are_a_plain_500(app):
    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret detail s1morf609228iwyjjpvfv6wsvuja4p8u")

    app.testing = False  # let the error handler answer instead of re-raising
    response = app.test_client().get("/api/boom")

    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "secret detail" not in response.get_data(as_text=True)


def test_html_errors_are_pages_in_the_portal_language(app):
    response = app.test_client().get("/nowhere?LANG=ru", headers={"Accept": "text/html"})

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Не найдено" in response.get_data(as_text=True)


def test_no_route_sets_a_cookie(app):
    client = app.test_client()

    for response in (client.get("/healthz"), client.get("/api/me"), client.post("/app")):
        assert "Set-Cookie" not in response.headers
