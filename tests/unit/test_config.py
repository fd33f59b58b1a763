"""Configuration: one place, defaults, and a clear failure at start for missing settings."""

import json

import pytest
from cryptography.fernet import Fernet

from b24app.config import ConfigError, load_config

KEY = Fernet.generate_key().decode()
PRODUCTION = {
    "B24_CLIENT_ID": "app.123",
    "B24_CLIENT_SECRET": "client-secret",
    "SECRET_KEY": "s" * 40,
    "TOKEN_KEYS": KEY,
    "PUBLIC_URL": "https://app.example.com/",
}
ALL_VARIABLES = [
    "APP_ENV",
    "B24_CLIENT_ID",
    "B24_CLIENT_SECRET",
    "B24_OAUTH_SERVER",
    "PUBLIC_URL",
    "DATABASE_URL",
    "SECRET_KEY",
    "TOKEN_KEYS",
    "B24_JS_URL",
    "ALLOW_HTTP_PORTALS",
    "REDIS_URL",
    "PROXY_FIX",
    "SESSION_TTL",
    "B24_HTTP_TIMEOUT",
    "JOB_SLICE_SECONDS",
    "LOG_LEVEL",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Start every test from an environment without the app's variables."""
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def load(tmp_path, environ=None, overrides=None, monkeypatch=None):
    """Load the configuration with ``environ`` set, rooted in ``tmp_path``."""
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    return load_config(tmp_path, tmp_path / "instance", overrides)


def test_production_with_everything_set(tmp_path, monkeypatch):
    config = load(tmp_path, PRODUCTION, monkeypatch=monkeypatch)

    assert config["APP_ENV"] == "production"
    assert config["TOKEN_KEYS"] == [KEY]
    assert config["PUBLIC_URL"] == "https://app.example.com"
    assert config["B24_OAUTH_SERVER"] == "https://oauth.bitrix.info"
    assert config["B24_JS_URL"] == "//api.bitrix24.com/api/v1/"
    assert config["SQLALCHEMY_DATABASE_URI"].endswith("instance/b24app.sqlite3")
    assert config["ALLOW_HTTP_PORTALS"] is False
    assert config["SESSION_TTL"] == 900


@pytest.mark.parametrize("missing", sorted(PRODUCTION))
def test_production_names_every_missing_setting(tmp_path, monkeypatch, missing):
    environ = {k: v for k, v in PRODUCTION.items() if k != missing}

    with pytest.raises(ConfigError, match=missing):
        load(tmp_path, environ, monkeypatch=monkeypatch)


def test_production_refuses_http_portals(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="development only"):
        load(
            tmp_path,
            {**PRODUCTION, "APP_ENV": "production", "ALLOW_HTTP_PORTALS": "1"},
            monkeypatch=monkeypatch,
        )


def test_production_refuses_http_urls(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="https"):
        load(
            tmp_path,
            {**PRODUCTION, "PUBLIC_URL": "http://app.example.com"},
            monkeypatch=monkeypatch,
        )


def test_bad_token_key_fails_at_start(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="TOKEN_KEYS entry 2"):
        load(tmp_path, {**PRODUCTION, "TOKEN_KEYS": f"{KEY},not-a-key"}, monkeypatch=monkeypatch)


def test_short_secret_key_fails_in_production(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load(tmp_path, {**PRODUCTION, "SECRET_KEY": "short"}, monkeypatch=monkeypatch)


def test_several_token_keys_keep_their_order(tmp_path, monkeypatch):
    second = Fernet.generate_key().decode()

    config = load(
        tmp_path, {**PRODUCTION, "TOKEN_KEYS": f" {KEY} , {second} "}, monkeypatch=monkeypatch
    )

    assert config["TOKEN_KEYS"] == [KEY, second]


def test_allow_http_portals_means_development_with_kept_keys(tmp_path, monkeypatch):
    first = load(tmp_path, {"ALLOW_HTTP_PORTALS": "1"}, monkeypatch=monkeypatch)
    second = load(tmp_path, monkeypatch=monkeypatch)

    assert first["APP_ENV"] == "development"
    assert first["PUBLIC_URL"] == "http://127.0.0.1:5000"
    # The generated keys are stored in the instance folder and reused after a restart.
    assert (first["SECRET_KEY"], first["TOKEN_KEYS"]) == (
        second["SECRET_KEY"],
        second["TOKEN_KEYS"],
    )
    stored = json.loads((tmp_path / "instance" / "dev-secrets.json").read_text())
    assert stored["TOKEN_KEYS"] == first["TOKEN_KEYS"]


def test_testing_generates_throwaway_keys_and_database(tmp_path):
    first = load_config(tmp_path, tmp_path / "instance", {"TESTING": True})
    second = load_config(tmp_path, tmp_path / "instance", {"TESTING": True})

    assert first["APP_ENV"] == "testing"
    assert first["SECRET_KEY"] != second["SECRET_KEY"]
    assert first["SQLALCHEMY_DATABASE_URI"].endswith(".sqlite3")
    assert first["SQLALCHEMY_DATABASE_URI"] != second["SQLALCHEMY_DATABASE_URI"]
    assert not (tmp_path / "instance").exists()


def test_dotenv_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in PRODUCTION.items()) + "B24_CLIENT_ID=from-dotenv\n"
    )
    monkeypatch.setenv("B24_CLIENT_ID", "from-environment")

    config = load(tmp_path, monkeypatch=monkeypatch)

    assert config["B24_CLIENT_ID"] == "from-environment"
    assert config["B24_CLIENT_SECRET"] == "client-secret"


def test_overrides_win_and_are_typed(tmp_path, monkeypatch):
    config = load(
        tmp_path,
        PRODUCTION,
        {"PROXY_FIX": "1", "SESSION_TTL": "60", "DATABASE_URL": "postgres://u@db/app"},
        monkeypatch=monkeypatch,
    )

    assert config["PROXY_FIX"] is True
    assert config["SESSION_TTL"] == 60
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/app"


def test_unknown_mode_and_bad_numbers_fail(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="APP_ENV"):
        load(tmp_path, {**PRODUCTION, "APP_ENV": "staging"}, monkeypatch=monkeypatch)
    with pytest.raises(ConfigError, match="SESSION_TTL"):
        load(tmp_path, {**PRODUCTION, "SESSION_TTL": "soon"}, monkeypatch=monkeypatch)


def test_job_slice_is_read_as_seconds_and_may_not_be_negative(tmp_path, monkeypatch):
    assert load(tmp_path, PRODUCTION, monkeypatch=monkeypatch)["JOB_SLICE_SECONDS"] == 2.0
    found = load(tmp_path, {**PRODUCTION, "JOB_SLICE_SECONDS": "0.5"}, monkeypatch=monkeypatch)
    assert found["JOB_SLICE_SECONDS"] == 0.5
    with pytest.raises(ConfigError, match="JOB_SLICE_SECONDS"):
        load(tmp_path, {**PRODUCTION, "JOB_SLICE_SECONDS": "-1"}, monkeypatch=monkeypatch)
