"""One database read per API request: the caller's portal, token row and catalog at once.

An API request needs three rows before its Bitrix24 call: its portal (is the app still
installed?), the caller's token row (the pair to send) and the portal's catalog (names of
owner types, statuses and stages). Read one by one, each costs a pooled connection, a ping
and a rollback. The session check reads all three in one query instead and leaves the
token row and the catalog here, in the request's ``g``, for the services to take:

- the token row is taken once: the first Bitrix24 call of the request uses it, any later
  call (after a refresh, say) reads the stored pair again;
- the catalog row stands for the whole request; a request that stores a new catalog or a
  new pair forgets what was read (:func:`forget`).

Outside a request (jobs, commands) nothing is left here and every reader goes to the
database as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, has_request_context
from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from b24app.extensions import statement_engine
from b24app.models import Portal, PortalCatalog, UserToken

_KEY = "b24app_prefetched"


@dataclass
class Prefetched:
    """What the session check read for one caller (None: no such row is stored)."""

    user_id: int
    lang: str
    portal: Portal
    token: UserToken | None
    catalog: PortalCatalog | None
    token_taken: bool = False


# Built once: the statement's compiled form is then found in SQLAlchemy's cache at once.
_SESSION_ROWS = (
    select(Portal, UserToken, PortalCatalog)
    .outerjoin(
        UserToken,
        and_(UserToken.portal_id == Portal.id, UserToken.user_id == bindparam("user_id")),
    )
    .outerjoin(
        PortalCatalog,
        and_(PortalCatalog.portal_id == Portal.id, PortalCatalog.lang == bindparam("lang")),
    )
    .where(Portal.id == bindparam("portal_id"))
)


def read_for_session(portal_id: int, user_id: int, lang: str) -> Portal | None:
    """Read the portal with the caller's token row and catalog; keep the two for the request.

    Returns the portal (detached), or None when there is no such portal.
    """
    params = {"portal_id": portal_id, "user_id": user_id, "lang": lang}
    # A short session of its own: the request goes on to call Bitrix24 and must not hold
    # a pooled connection meanwhile (see ``b24app.extensions.detached``).
    with Session(statement_engine()) as session:
        row = session.execute(_SESSION_ROWS, params).one_or_none()
        session.expunge_all()
    if row is None:
        return None
    portal, token, catalog = row
    if has_request_context():
        setattr(g, _KEY, Prefetched(user_id, lang, portal, token, catalog))
    return portal


def take_token(portal_id: int, user_id: int) -> tuple[UserToken | None, Portal] | None:
    """Hand over the caller's token row read by the session check, once.

    Returns ``(token, portal)`` (token None: the user has no stored chain), or None when
    nothing was read for this user in this request, or it was already taken.
    """
    found = _prefetched()
    if (
        found is None
        or found.token_taken
        or (found.portal.id, found.user_id)
        != (
            portal_id,
            user_id,
        )
    ):
        return None
    found.token_taken = True
    return found.token, found.portal


def catalog_row(portal_id: int, lang: str) -> tuple[bool, PortalCatalog | None]:
    """Return ``(True, row)`` when the session check read this catalog, else ``(False, None)``."""
    found = _prefetched()
    if found is None or (found.portal.id, found.lang) != (portal_id, lang):
        return False, None
    return True, found.catalog


def forget() -> None:
    """Drop what was read: this request just stored a newer pair or catalog."""
    if has_request_context():
        g.pop(_KEY, None)


def _prefetched() -> Prefetched | None:
    """Return what the session check left in this request, if anything."""
    if not has_request_context():
        return None
    found: Prefetched | None = g.get(_KEY)
    return found
