"""The authorization-code round trip: ``reconnect_url`` → portal → ``/oauth/callback``."""

from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from b24app.crypto import cipher
from b24app.extensions import db
from b24app.models import UserToken, utcnow


def reconnect_url(portal24, user_id):
    """Open the app as ``user_id`` and return the authorize URL ``/api/me`` offers."""
    session = portal24.session(user_id=user_id)
    return portal24.api("/api/me", session).json()["reconnect_url"]


def authorize(portal24, url, as_user):
    """Let ``as_user`` approve on the portal; return the app's callback URL it redirects to."""
    answer = portal24.http.get(f"{url}&user={as_user}")
    assert answer.status_code == 302
    location = answer.headers["location"]
    portal24.seen.add(parse_qs(urlsplit(location).query)["code"][0])
    return location


def chain(app, user_id):
    """Return (access token, dead) of the stored chain."""
    with app.app_context():
        token = db.session.scalars(select(UserToken).where(UserToken.user_id == user_id)).one()
        return cipher().decrypt(token.access_token_encrypted), token.is_dead


def test_callback_revives_a_dead_chain(app, portal24):
    portal24.install()
    url = reconnect_url(portal24, user_id=2)
    assert url.startswith(f"{portal24.sandbox.url}/oauth/authorize/?client_id=")
    with app.app_context():
        db.session.execute(update(UserToken).values(invalid_grant_at=utcnow()))
        db.session.commit()
    before, _ = chain(app, 2)

    response = portal24.http.get(authorize(portal24, url, as_user=2))

    assert response.status_code == 200
    assert "Access restored" in response.text
    access, dead = chain(app, 2)
    assert not dead and access != before
    portal24.seen.add(access)
    assert portal24.sandbox.rest("profile", token=access).json()["result"]["ID"] == "2"


def test_callback_completed_by_another_user_stores_nothing(app, portal24):
    portal24.install()
    url = reconnect_url(portal24, user_id=2)
    before = chain(app, 2)

    response = portal24.http.get(authorize(portal24, url, as_user=1))

    assert response.status_code == 403
    assert chain(app, 2) == before


def test_callback_with_a_bad_or_missing_state_is_refused(app, portal24):
    portal24.install()
    url = reconnect_url(portal24, user_id=1)
    location = authorize(portal24, url, as_user=1)
    query = parse_qs(urlsplit(location).query)
    base = f"{portal24.app_url}/oauth/callback"

    tampered = portal24.http.get(base, params={"code": query["code"][0], "state": "x.y.z"})
    missing = portal24.http.get(base, params={"code": query["code"][0]})
    no_code = portal24.http.get(base, params={"state": query["state"][0]})

    assert tampered.status_code == missing.status_code == no_code.status_code == 400
    assert "authorization link is invalid" in tampered.text


def test_a_spent_code_is_refused(app, portal24):
    portal24.install()
    location = authorize(portal24, reconnect_url(portal24, user_id=1), as_user=1)

    assert portal24.http.get(location).status_code == 200
    again = portal24.http.get(location)

    assert again.status_code == 400
    assert "authorization code is invalid" in again.text
