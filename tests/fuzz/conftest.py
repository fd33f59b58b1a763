"""Fuzzing the app against the sandbox portal: fixtures, the case budget and the watchdog.

The app is the integration tests' app (a fresh database per test, the sandbox as its
Bitrix24 over real HTTP). ``FUZZ_EXAMPLES`` sets how many cases each fuzz test generates
(small by default, so ``make test`` stays quick; ``make fuzz`` runs the full size).

``SandboxWatch`` takes a fingerprint of everything a request could change on the portal:
``GET /_sandbox/state`` (installs, placements, event handlers, binding counts), every
binding row, and the count of successful write calls in the portal's call log. A refused
request must leave the fingerprint as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings

from b24app.errors import ERROR_CODES
from b24app.services.gateway import gateway
from tests.integration import conftest as integration
from tests.integration.conftest import AppServer, Portal24

# The integration tests' fixtures: the app server, a fresh app and database per test, the
# Bitrix24 stand-in that drives it, and the per-test check that no secret reached a log.
app_server = integration.app_server
sandbox_app_url = integration.sandbox_app_url
seen_secrets = integration.seen_secrets
no_secret_in_logs = integration.no_secret_in_logs
database_url = integration.database_url
app_config = integration.app_config
make_app = integration.make_app
http = integration.http
portal24 = integration.portal24

DEFAULT_EXAMPLES = 25


def fuzz_examples() -> int:
    """How many cases a fuzz test generates (``FUZZ_EXAMPLES``, default 25)."""
    raw = os.environ.get("FUZZ_EXAMPLES", "")
    return max(1, int(raw)) if raw.strip() else DEFAULT_EXAMPLES


def fuzz_settings(examples: int | None = None, **overrides: Any) -> settings:
    """Hypothesis settings for a fuzz run: a fixed case count, no deadline, no database.

    The example database stays off so that runs leave no files in the work tree.
    """
    return settings(
        max_examples=examples or fuzz_examples(),
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
        **overrides,
    )


# The last part of a REST method's name that changes data on the portal.
_WRITE_VERBS = ("add", "update", "delete", "deletebyfilter", "bind", "unbind", "set")


def is_write(method: str) -> bool:
    """Tell whether a REST method (as the call log names it) changes data."""
    verb = method.rsplit(".", 1)[-1].lower()
    return method != "batch" and verb.startswith(_WRITE_VERBS)


@dataclass(frozen=True)
class Fingerprint:
    """What the portal looks like now, as far as the app could have changed it."""

    state: str
    bindings: tuple[tuple[int, int, int, int], ...]
    writes: int


class SandboxWatch:
    """Fingerprints of the sandbox, to prove that a refused request changed nothing."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.portal = sandbox.running.sandbox

    def fingerprint(self) -> Fingerprint:
        """Read the state, the bindings and the successful writes so far."""
        state = self.sandbox.state()
        # The portal's clock moves by itself; everything else in the state is the portal's.
        state.pop("clock", None)
        rows = self.portal.db.query(
            "SELECT portal_id, order_id, owner_type_id, owner_id FROM crm_order_entity"
            " ORDER BY portal_id, order_id"
        )
        calls = self.portal.calls.snapshot()["calls"]
        writes = sum(
            1
            for call in calls
            if is_write(call["method"]) and call["status"] == 200 and not call["error"]
        )
        return Fingerprint(
            json.dumps(state, sort_keys=True),
            tuple((r[0], r[1], r[2], r[3]) for r in rows),
            writes,
        )

    def assert_same(self, before: Fingerprint, after: Fingerprint, what: str) -> None:
        """Fail when the portal changed between two fingerprints."""
        assert after.writes == before.writes, f"{what}: {after.writes - before.writes} writes"
        assert after.bindings == before.bindings, f"{what}: the bindings changed"
        assert after.state == before.state, f"{what}: the portal's state changed"

    def assert_unchanged(self, before: Fingerprint, what: str) -> None:
        """Fail when the portal changed since ``before``."""
        self.assert_same(before, self.fingerprint(), what)


def unlimited(app: Flask) -> Flask:
    """Let the app call the portal without its client-side bucket.

    Fuzzing is about input handling: thousands of cases would otherwise wait for a bucket
    that drains two requests a second (the limiter has its own tests).
    """
    with app.app_context():
        found = gateway()
        found.rest._limiter = None
        found.jobs_rest._limiter = None
    return app


@dataclass
class FuzzTarget:
    """An installed portal, the app and the session tokens of its users."""

    app: Flask
    portal24: Portal24
    watch: SandboxWatch
    sessions: dict[int, str]
    url: str


@pytest.fixture
def fuzz_target(
    make_app: Callable[..., Flask], portal24: Portal24, sandbox: Any, app_server: AppServer
) -> FuzzTarget:
    """The app on an installed portal, with the portal's request limit out of the way."""
    built = unlimited(make_app())
    sandbox.control("limits", {"rps": 100000, "burst": 100000})
    portal24.install()
    sessions = {user: portal24.session(user_id=user) for user in (1, 2, 3)}
    return FuzzTarget(built, portal24, SandboxWatch(sandbox), sessions, app_server.url)


_ERROR_KEYS = {"code", "message"}


def assert_error_shape(status: int, body: Any, what: str) -> None:
    """Every error is ``{"error": {"code", "message", ...}}`` with string code and message."""
    assert isinstance(body, dict) and set(body) == {"error"}, f"{what}: {status} {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and _ERROR_KEYS <= set(error), f"{what}: {body!r}"
    assert isinstance(error["code"], str) and error["code"], f"{what}: {body!r}"
    assert isinstance(error["message"], str) and error["message"], f"{what}: {body!r}"
    assert error["code"] in ERROR_CODES, f"{what}: unknown code {error['code']!r}"
    if "field" in error:
        assert error["field"] is None or isinstance(error["field"], str), f"{what}: {body!r}"
    if "retryAfter" in error:
        assert isinstance(error["retryAfter"], int), f"{what}: {body!r}"


# Upstream answers the API documents: Bitrix24 failed (502) or is rate limiting (503).
DOCUMENTED_5XX = {502, 503}


def assert_no_server_error(status: int, what: str) -> None:
    """No 5xx other than the documented upstream answers."""
    assert status < 500 or status in DOCUMENTED_5XX, f"{what}: server error {status}"
