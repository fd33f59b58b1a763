"""Every setting the app reads from the environment, in one place, with defaults.

Precedence, lowest first: defaults, a ``.env`` file in the project root, the process
environment, the mapping given to ``create_app``. ``APP_ENV`` picks the mode:
``production`` (the default) refuses to start without its secrets; ``development`` and
``testing`` generate throwaway keys instead. ``ALLOW_HTTP_PORTALS=1`` without an explicit
``APP_ENV`` means development, because plain-http portals only exist on a developer's machine.

Production: ``gunicorn app:app`` behind a reverse proxy that terminates HTTPS, with
``PROXY_FIX=1`` so the app trusts the proxy's ``X-Forwarded-For/Proto/Host/Port/Prefix``
(exactly one proxy hop). ``PUBLIC_URL`` is the https address Bitrix24 reaches the app at.
Several gunicorn workers are fine: the token store locks in the database, not in memory.
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from dotenv import dotenv_values

DEFAULT_OAUTH_SERVER = "https://oauth.bitrix.info"
DEFAULT_JS_URL = "//api.bitrix24.com/api/v1/"
DEFAULT_DEV_PUBLIC_URL = "http://127.0.0.1:5000"
MODES = ("production", "development", "testing")
PRODUCTION_REQUIRED = (
    "B24_CLIENT_ID",
    "B24_CLIENT_SECRET",
    "SECRET_KEY",
    "TOKEN_KEYS",
    "PUBLIC_URL",
)

# Environment variable -> (config key, kind). Kinds: str, bool, int, list (comma separated).
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "APP_ENV": ("APP_ENV", "str"),
    "B24_CLIENT_ID": ("B24_CLIENT_ID", "str"),
    "B24_CLIENT_SECRET": ("B24_CLIENT_SECRET", "str"),
    "B24_OAUTH_SERVER": ("B24_OAUTH_SERVER", "str"),
    "PUBLIC_URL": ("PUBLIC_URL", "str"),
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", "str"),
    "SECRET_KEY": ("SECRET_KEY", "str"),
    "TOKEN_KEYS": ("TOKEN_KEYS", "list"),
    "B24_JS_URL": ("B24_JS_URL", "str"),
    "ALLOW_HTTP_PORTALS": ("ALLOW_HTTP_PORTALS", "bool"),
    "REDIS_URL": ("REDIS_URL", "str"),
    "PROXY_FIX": ("PROXY_FIX", "bool"),
    "SESSION_TTL": ("SESSION_TTL", "int"),
    "B24_HTTP_TIMEOUT": ("B24_HTTP_TIMEOUT", "int"),
    "B24_REQUEST_BUDGET": ("B24_REQUEST_BUDGET", "float"),
    "B24_RETRY_BASE_DELAY": ("B24_RETRY_BASE_DELAY", "float"),
    "MAX_CONTENT_LENGTH": ("MAX_CONTENT_LENGTH", "int"),
    "JOB_BATCH_BUDGET": ("JOB_BATCH_BUDGET", "float"),
    "RATE_LIMIT_STORE": ("RATE_LIMIT_STORE", "str"),
    "JOB_LEASE_SECONDS": ("JOB_LEASE_SECONDS", "float"),
    "JOB_SLICE_SECONDS": ("JOB_SLICE_SECONDS", "float"),
    "LOG_LEVEL": ("LOG_LEVEL", "str"),
}

DEFAULTS: dict[str, Any] = {
    "B24_CLIENT_ID": "",
    "B24_CLIENT_SECRET": "",
    "B24_OAUTH_SERVER": DEFAULT_OAUTH_SERVER,
    "PUBLIC_URL": "",
    "SECRET_KEY": "",
    "TOKEN_KEYS": [],
    "B24_JS_URL": DEFAULT_JS_URL,
    "ALLOW_HTTP_PORTALS": False,
    "REDIS_URL": "",
    "PROXY_FIX": False,
    # Session tokens live 15 minutes: long enough for a working session in one card,
    # short enough that a leaked one is soon useless.
    "SESSION_TTL": 900,
    "B24_HTTP_TIMEOUT": 15,
    # Seconds one request from the iframe may spend on Bitrix24 in all (limiter waits,
    # time-limit waits, retries); well under gunicorn's 30 s worker timeout.
    "B24_REQUEST_BUDGET": 6.0,
    # First retry pause (doubling, with full jitter); tests make it tiny.
    "B24_RETRY_BASE_DELAY": 0.5,
    # JSON bodies are ids (up to 10,000 of them for a bulk job): anything bigger is a 413.
    "MAX_CONTENT_LENGTH": 256 * 1024,
    # Where the per-portal request bucket lives: "auto" (Redis with REDIS_URL, else the
    # database), "redis", "database", or "local" (one per process).
    "RATE_LIMIT_STORE": "auto",
    # A job worker spends at most this long on one batch (waits and retries included)...
    "JOB_BATCH_BUDGET": 60.0,
    # ...and holds its claim on the job this long: a dead worker's job is taken over then.
    "JOB_LEASE_SECONDS": 150.0,
    # A worker that holds a job sends its batches one after another for this long, renewing
    # the lease with each batch's record, then lets another job (another portal's) have a turn.
    "JOB_SLICE_SECONDS": 2.0,
    "LOG_LEVEL": "INFO",
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "JSON_SORT_KEYS": False,
}


class ConfigError(RuntimeError):
    """The configuration cannot run: the message says which setting to fix."""


def _parse(kind: str, name: str, raw: Any) -> Any:
    """Turn one raw value into its typed form (strings from the environment, or typed)."""
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in {"1", "true", "yes", "on"}
    if kind == "int":
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc
    if kind == "float":
        try:
            return float(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if kind == "list":
        if isinstance(raw, list | tuple):
            return [str(item).strip() for item in raw if str(item).strip()]
        return [item.strip() for item in str(raw).split(",") if item.strip()]
    return str(raw).strip()


def normalise_database_url(url: str) -> str:
    """Point bare PostgreSQL URLs at psycopg 3, the driver this app ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def read_environment(root: Path, use_dotenv: bool = True) -> dict[str, str]:
    """Merge ``.env`` (when used) under the process environment."""
    merged: dict[str, str] = {}
    if use_dotenv and (root / ".env").is_file():
        merged.update({k: v for k, v in dotenv_values(root / ".env").items() if v is not None})
    merged.update(os.environ)
    return merged


def load_config(
    root: Path, instance_path: Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Read, type, default and validate every setting; raise ConfigError when unusable."""
    overrides = dict(overrides or {})
    # Tests build their app from the mapping alone: a developer's .env must not leak in.
    testing = bool(overrides.get("TESTING"))
    environ = read_environment(root, use_dotenv=not testing)
    config: dict[str, Any] = copy.deepcopy(DEFAULTS)
    for env_name, (key, kind) in ENVIRONMENT.items():
        if env_name in environ and environ[env_name] != "":
            config[key] = _parse(kind, env_name, environ[env_name])
    if "DATABASE_URL" in overrides:
        overrides["SQLALCHEMY_DATABASE_URI"] = overrides.pop("DATABASE_URL")
    for env_name, (key, kind) in ENVIRONMENT.items():
        if key in overrides:
            overrides[key] = _parse(kind, env_name, overrides[key])
    config.update(overrides)
    config["APP_ENV"] = _mode(config, testing)
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        config["SQLALCHEMY_DATABASE_URI"] = (
            f"sqlite:///{_throwaway_database()}"
            if testing
            else f"sqlite:///{instance_path / 'b24app.sqlite3'}"
        )
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(config["SQLALCHEMY_DATABASE_URI"])
    _fill_or_require(config, instance_path)
    _validate(config)
    config["PUBLIC_URL"] = config["PUBLIC_URL"].rstrip("/")
    config["B24_OAUTH_SERVER"] = config["B24_OAUTH_SERVER"].rstrip("/")
    return config


def _throwaway_database() -> Path:
    """Return a fresh SQLite file path for a test app, deleted when the process ends.

    A file, not ``sqlite://``: an in-memory database lives on one shared connection, where
    the separate short write transactions the token store uses cannot nest.
    """
    handle, name = tempfile.mkstemp(prefix="b24app-test-", suffix=".sqlite3")
    os.close(handle)
    path = Path(name)
    atexit.register(_remove_database, path)
    return path


def _remove_database(path: Path) -> None:
    """Delete a throwaway database and its WAL files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _mode(config: Mapping[str, Any], testing: bool) -> str:
    """Decide production, development or testing."""
    mode = str(config.get("APP_ENV") or "").lower()
    if not mode:
        if testing:
            mode = "testing"
        elif config.get("ALLOW_HTTP_PORTALS"):
            mode = "development"
        else:
            mode = "production"
    if mode not in MODES:
        raise ConfigError(f"APP_ENV must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _fill_or_require(config: dict[str, Any], instance_path: Path) -> None:
    """Require production secrets, or give development and tests usable stand-ins."""
    if config["APP_ENV"] == "production":
        missing = [name for name in PRODUCTION_REQUIRED if not config.get(name)]
        if missing:
            raise ConfigError(
                "Missing required settings for production: "
                + ", ".join(missing)
                + ". Set them in the environment or in .env (see README, Configuration), "
                "or set APP_ENV=development on a developer machine."
            )
        if config.get("ALLOW_HTTP_PORTALS"):
            raise ConfigError("ALLOW_HTTP_PORTALS is for development only; unset it in production")
        return
    if not config.get("PUBLIC_URL"):
        config["PUBLIC_URL"] = DEFAULT_DEV_PUBLIC_URL
    if config.get("SECRET_KEY") and config.get("TOKEN_KEYS"):
        return
    if config["APP_ENV"] == "testing":
        generated = {"SECRET_KEY": Fernet.generate_key().decode(), "TOKEN_KEYS": [_new_key()]}
    else:
        generated = _development_secrets(instance_path)
    config["SECRET_KEY"] = config.get("SECRET_KEY") or generated["SECRET_KEY"]
    config["TOKEN_KEYS"] = config.get("TOKEN_KEYS") or generated["TOKEN_KEYS"]


def _new_key() -> str:
    """Return a fresh Fernet key as text."""
    return Fernet.generate_key().decode()


def _development_secrets(instance_path: Path) -> dict[str, Any]:
    """Load, or create once, the keys a development instance keeps across restarts.

    Stored tokens stay readable after a restart and several worker processes agree on the
    keys. Created with O_EXCL so two processes starting together end up with one file.
    """
    path = instance_path / "dev-secrets.json"
    instance_path.mkdir(parents=True, exist_ok=True)
    secrets = {"SECRET_KEY": _new_key(), "TOKEN_KEYS": [_new_key()]}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is unreadable; delete it to generate new keys") from exc
        return {"SECRET_KEY": str(loaded["SECRET_KEY"]), "TOKEN_KEYS": list(loaded["TOKEN_KEYS"])}
    with os.fdopen(fd, "w") as handle:
        json.dump(secrets, handle)
    return secrets


def _validate(config: Mapping[str, Any]) -> None:
    """Check formats, so a typo fails at start rather than at the first request."""
    for index, key in enumerate(config["TOKEN_KEYS"], start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"TOKEN_KEYS entry {index} is not a Fernet key (32 url-safe base64 bytes); "
                'make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from exc
    if config["APP_ENV"] == "production" and len(config["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters long in production")
    for name in ("PUBLIC_URL", "B24_OAUTH_SERVER"):
        value = str(config.get(name) or "")
        if not value.startswith(("https://", "http://")):
            raise ConfigError(f"{name} must be an absolute http(s) URL, got {value!r}")
        if config["APP_ENV"] == "production" and not value.startswith("https://"):
            raise ConfigError(f"{name} must use https in production, got {value!r}")
    if config["SESSION_TTL"] <= 0 or config["B24_HTTP_TIMEOUT"] <= 0:
        raise ConfigError("SESSION_TTL and B24_HTTP_TIMEOUT must be positive")
    if config["RATE_LIMIT_STORE"] not in {"auto", "redis", "database", "local"}:
        raise ConfigError("RATE_LIMIT_STORE must be auto, redis, database or local")
    if config["RATE_LIMIT_STORE"] == "redis" and not config["REDIS_URL"]:
        raise ConfigError("RATE_LIMIT_STORE=redis needs REDIS_URL")
    if config["JOB_LEASE_SECONDS"] <= config["JOB_BATCH_BUDGET"]:
        raise ConfigError("JOB_LEASE_SECONDS must be longer than JOB_BATCH_BUDGET")
    if config["JOB_SLICE_SECONDS"] < 0:
        raise ConfigError("JOB_SLICE_SECONDS must not be negative")
    if config["B24_REQUEST_BUDGET"] <= 0 or config["B24_RETRY_BASE_DELAY"] < 0:
        raise ConfigError("B24_REQUEST_BUDGET must be positive, B24_RETRY_BASE_DELAY not negative")
