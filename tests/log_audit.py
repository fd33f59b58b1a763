"""The whole test run's log audit: no token, secret or session token in any log record.

Every record of the run (the app's, the sandbox portal's, werkzeug's access log, httpx's
request lines...) reaches one handler on the root logger. Every secret the run handles is
collected where it is born: each token, refresh token, authorization code and application
token the sandbox issues (all come from ``b24sandbox.tokens.new_token``), each app's client
secret, ``SECRET_KEY`` and Fernet keys (when its context is pushed), and each session token
a page carries (when the page's template is rendered). At the end of the session none of
them may appear in any record; JWTs and Fernet ciphertexts may not appear at all.

Records are cut into runs of ``[A-Za-z0-9_-]`` and the runs kept in a set; a secret is
found when one of its distinctive runs (the token itself, a JWT's signature, a key without
its padding) is among them. The integration tests' per-test check sees only the secrets
one test handled; this one sees everything, in any order.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import appcontext_pushed, template_rendered

import b24sandbox.tokens

_RUN = re.compile(r"[A-Za-z0-9_-]{8,}")
_JWT = re.compile(r"eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]{8,}")
_FERNET = re.compile(r"gAAAAA[\w-]{20,}")
# Loggers whose debug records are the app's and the portal's own.
_DEBUG_LOGGERS = ("b24app", "b24sandbox")
_INFO_LOGGERS = ("werkzeug", "httpx")


def distinctive_runs(secret: str) -> set[str]:
    """The parts of a secret that give it away in a log line."""
    runs = set(_RUN.findall(secret))
    if _JWT.fullmatch(secret):
        # Header and claims of a JWT are shared or readable; its signature is the secret.
        runs = {secret.rsplit(".", 1)[1]}
    return {run for run in runs if len(run) >= 16} or ({secret} if len(secret) >= 8 else set())


class LogAudit(logging.Handler):
    """Collects the runs of every record and the secrets of the run."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.seen: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        self.shaped: list[str] = []
        self.records = 0
        self._guard = threading.Lock()
        self._levels: dict[str, int] = {}
        self._new_token: Any = None

    # -- collecting records ---------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's runs (and its logger, to say where a leak was)."""
        try:
            text = f"{record.getMessage()} {record.exc_text or ''}"
        except Exception:  # a record that cannot be formatted has nothing to audit
            return
        shaped = _JWT.findall(text) + _FERNET.findall(text)
        with self._guard:
            self.records += 1
            for run in _RUN.findall(text):
                self.seen.setdefault(run, record.name)
            if shaped:
                self.shaped.append(f"{record.name}: {shaped[0][:12]}...")

    # -- collecting secrets ---------------------------------------------------------------

    def add_secret(self, value: object, kind: str) -> None:
        """Remember a secret under what it is."""
        if not isinstance(value, str) or not value:
            return
        with self._guard:
            for run in distinctive_runs(value):
                self.secrets.setdefault(run, kind)

    def _issued(self) -> str:
        """``b24sandbox.tokens.new_token``, recording what it returns."""
        token: str = self._new_token()
        self.add_secret(token, "sandbox token")
        return token

    def _app_context(self, sender: Any, **extra: Any) -> None:
        """Take an app's secrets when one of its contexts is pushed."""
        config = sender.config
        self.add_secret(config.get("SECRET_KEY"), "SECRET_KEY")
        self.add_secret(config.get("B24_CLIENT_SECRET"), "client secret")
        for key in config.get("TOKEN_KEYS") or ():
            self.add_secret(key, "TOKEN_KEYS")

    def _rendered(self, sender: Any, template: Any, context: dict[str, Any], **extra: Any) -> None:
        """Take the session token a page carries."""
        self.add_secret(context.get("session_token"), "session token")

    # -- the session --------------------------------------------------------------------

    def install(self) -> None:
        """Listen to the root logger and to where secrets are born."""
        root = logging.getLogger()
        root.addHandler(self)
        for name in ("", *_DEBUG_LOGGERS, *_INFO_LOGGERS):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
        root.setLevel(min(root.level or logging.WARNING, logging.INFO))
        for name in _DEBUG_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)
        for name in _INFO_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
        self._new_token = b24sandbox.tokens.new_token
        b24sandbox.tokens.new_token = self._issued
        appcontext_pushed.connect(self._app_context)
        template_rendered.connect(self._rendered)

    def uninstall(self) -> None:
        """Stop listening and put everything back."""
        template_rendered.disconnect(self._rendered)
        appcontext_pushed.disconnect(self._app_context)
        b24sandbox.tokens.new_token = self._new_token
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        logging.getLogger().removeHandler(self)

    def leaks(self) -> list[str]:
        """Every secret found in a record: what it was, the logger, and its first characters."""
        with self._guard:
            found = sorted(set(self.secrets) & set(self.seen))
            return [
                f"{self.secrets[run]} {run[:4]}... in a record of {self.seen[run]}" for run in found
            ] + [f"token-shaped text in {where}" for where in self.shaped]


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[LogAudit]:
    """Audit every log record of the session; fail at its end on any secret found."""
    audit = LogAudit()
    audit.install()
    yield audit
    audit.uninstall()
    leaks = audit.leaks()
    assert not leaks, f"secrets in the logs of this run ({audit.records} records): {leaks}"


_unlogged = {"depth": 0, "level": logging.NOTSET}
_unlogged_lock = threading.Lock()


@contextmanager
def request_lines_unlogged() -> Iterator[None]:
    """Keep httpx from logging request lines while a test sends a token in a URL on purpose.

    Bitrix24 accepts ``auth`` in the query string and documents the token request as a GET,
    and the sandbox's tests prove both; the test's own client would otherwise write those
    URLs, tokens included, into the run's log. Nested and concurrent uses (threads of one
    test) share one quiet period, which ends when the last of them does.
    """
    logger = logging.getLogger("httpx")
    with _unlogged_lock:
        if _unlogged["depth"] == 0:
            _unlogged["level"] = logger.level
            logger.setLevel(logging.WARNING)
        _unlogged["depth"] += 1
    try:
        yield
    finally:
        with _unlogged_lock:
            _unlogged["depth"] -= 1
            if _unlogged["depth"] == 0:
                logger.setLevel(_unlogged["level"])
