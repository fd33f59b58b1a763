"""Token chains under concurrency: one refresh for many callers, never a reused token."""

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from b24app.crypto import cipher
from b24app.extensions import db
from b24app.models import Portal, UserToken
from b24app.services import catalog
from b24app.services.catalog import forget_catalogs
from b24app.services.gateway import gateway
from tests.integration.conftest import POSTGRES
from tests.integration.refresh_worker import hammer


def set_expiry(app, user_id, when):
    """Make the app believe the user's stored token expires at ``when``."""
    with app.app_context():
        db.session.execute(
            update(UserToken).where(UserToken.user_id == user_id).values(expires_at=when)
        )
        db.session.commit()


def stored_chain(app, user_id):
    """Return (access, refresh, dead) of the user's stored chain."""
    with app.app_context():
        token = db.session.scalars(select(UserToken).where(UserToken.user_id == user_id)).one()
        return (
            cipher().decrypt(token.access_token_encrypted),
            cipher().decrypt(token.refresh_token_encrypted),
            token.is_dead,
        )


def portal_id(app):
    """Return the installed portal's id."""
    with app.app_context():
        return db.session.scalars(select(Portal.id)).one()


@pytest.fixture
def refresh_log(app, monkeypatch):
    """Record every refresh token the app sends to the OAuth server."""
    sent = []
    with app.app_context():
        oauth = gateway().oauth
    original = oauth.refresh

    def recording(refresh_token):
        sent.append(refresh_token)
        return original(refresh_token)

    monkeypatch.setattr(oauth, "refresh", recording)
    return sent


def concurrently(count, call):
    """Run ``call`` from ``count`` threads released together; return the results."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("expired_by", ["stored_expiry", "portal_401"])
def test_twenty_threads_on_an_expired_token_refresh_exactly_once(
    app, portal24, refresh_log, expired_by
):
    portal24.install()
    if expired_by == "stored_expiry":
        session = portal24.session(user_id=2)
        set_expiry(app, 2, datetime.now(UTC) - timedelta(minutes=5))
    else:
        # The portal's clock moves past the token's hour while the app's clock (and so the
        # stored expiry) stays put: the callers meet 401 expired_token from the portal itself.
        real = portal24.token(2)
        session = portal24.session(user_id=2, tokens=real)
        portal24.advance_clock(real["expires_in"])
    refreshes_before = portal24.sandbox.calls()["refreshes"]
    calls_before = len(portal24.sandbox.calls()["calls"])
    old_access, old_refresh, _ = stored_chain(app, 2)

    def call_api():
        # Each call must reach Bitrix24 with the stored token: forget the cached names.
        forget_names(app)
        return portal24.api("/api/me", session).status_code

    statuses = concurrently(20, call_api)

    assert statuses == [200] * 20
    assert portal24.sandbox.calls()["refreshes"] - refreshes_before == 1
    assert refresh_log == [old_refresh]
    errors = {c["error"] for c in portal24.sandbox.calls()["calls"][calls_before:]}
    assert ("expired_token" in errors) == (expired_by == "portal_401")
    access, refresh, dead = stored_chain(app, 2)
    assert not dead and (access, refresh) != (old_access, old_refresh)
    # The rotated pair works: the chain survived.
    assert portal24.sandbox.rest("profile", token=access).status_code == 200


def forget_names(app):
    """Drop the portal's stored names, so that /api/me asks Bitrix24 again."""
    with app.app_context():
        forget_catalogs(portal_id(app))


def test_twenty_callers_never_hold_two_connections_of_a_small_pool(make_app, portal24, monkeypatch):
    # Two connections for twenty concurrent callers that all need the portal and their
    # token row: a request holding one connection while waiting for another would starve.
    make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 0, "pool_timeout": 20})
    monkeypatch.setattr(catalog, "CATALOG_TTL", timedelta(seconds=-1))
    portal24.install()
    real = portal24.token(2)
    session = portal24.session(user_id=2, tokens=real)
    portal24.advance_clock(real["expires_in"])  # dead at the portal, alive for the app
    refreshes_before = portal24.sandbox.calls()["refreshes"]

    statuses = concurrently(20, lambda: portal24.api("/api/me", session).status_code)

    assert statuses == [200] * 20
    assert portal24.sandbox.calls()["refreshes"] - refreshes_before == 1


def test_a_used_refresh_token_is_never_sent_again(app, portal24, refresh_log):
    portal24.install()
    session = portal24.session(user_id=1)
    for _ in range(3):
        set_expiry(app, 1, datetime.now(UTC) - timedelta(minutes=1))
        forget_names(app)
        assert portal24.api("/api/me", session).status_code == 200

    assert len(refresh_log) == 3
    assert len(set(refresh_log)) == 3


def test_invalid_grant_marks_the_chain_dead_until_the_user_reopens(
    app, portal24, sandbox, refresh_log
):
    portal24.install()
    session = portal24.session(user_id=2)
    _, refresh, _ = stored_chain(app, 2)
    # Someone else spends the stored refresh token: the app's chain is now broken.
    spent = httpx.post(
        f"{sandbox.oauth_url}/oauth/token/",
        data={
            "grant_type": "refresh_token",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "refresh_token": refresh,
        },
    )
    portal24.seen.add_tokens(spent.json())
    set_expiry(app, 2, datetime.now(UTC) - timedelta(minutes=1))
    forget_names(app)

    first = portal24.api("/api/me", session)
    second = portal24.api("/api/me", session)

    # The caller is still known; the page is told to send the user back through Bitrix24.
    assert first.status_code == second.status_code == 200
    assert first.json()["bitrix_auth"] == "reauth_required"
    assert first.json()["owner_types"] == []
    assert first.json()["reconnect_url"]
    assert stored_chain(app, 2)[2] is True
    # The dead chain is not tried again.
    assert refresh_log == [refresh]
    fresh_session = portal24.session(user_id=2)
    assert stored_chain(app, 2)[2] is False
    assert portal24.api("/api/me", fresh_session).json()["bitrix_auth"] == "ok"


@pytest.mark.skipif(not POSTGRES, reason="cross-process row locks are proven on PostgreSQL")
def test_four_processes_on_an_expired_token_refresh_exactly_once(app, app_config, portal24):
    portal24.install()
    portal24.session(user_id=1)
    set_expiry(app, 1, datetime.now(UTC) - timedelta(minutes=5))
    refreshes_before = portal24.sandbox.calls()["refreshes"]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    out = context.Queue()
    processes = [
        context.Process(target=hammer, args=(app_config, portal_id(app), 1, 5, barrier, out))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    flat = [outcome for result in results for outcome in result]
    assert flat == ["ok:1"] * 20
    assert portal24.sandbox.calls()["refreshes"] - refreshes_before == 1
    assert stored_chain(app, 1)[2] is False
