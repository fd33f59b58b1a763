"""Users' token chains: encrypted storage and single-flight refresh.

Bitrix24 refresh tokens are single-use: when two workers refresh the same chain at once,
one of them gets ``invalid_grant`` and, if it then overwrote the stored pair, the chain
would be lost. So a refresh happens under a row lock (``SELECT ... FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), re-reads the stored pair, adopts it when another
worker already rotated it, and otherwise refreshes and commits the new pair before anyone
uses it. The lock is held across the round trip to the OAuth server: that is the point.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from b24app.bitrix.client import Credentials
from b24app.bitrix.errors import InvalidGrant, InvalidToken
from b24app.bitrix.oauth import OAuthClient
from b24app.crypto import SecretUnreadable, TokenCipher, cipher
from b24app.extensions import SQLITE_IMMEDIATE, db, statement_engine
from b24app.models import SCOPE_WIDTH, Portal, UserToken, utcnow
from b24app.services import prefetch
from b24app.services.gateway import gateway

log = logging.getLogger(__name__)


class ChainDead(InvalidToken):
    """The user's token chain cannot be used or refreshed: they must reopen the app."""

    def __init__(self, description: str = "the user must reopen the app") -> None:
        super().__init__("REAUTH_REQUIRED", description, 401)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """Run a short write transaction that takes the write lock up front on SQLite.

    A deferred SQLite transaction that reads and then writes can fail at once with
    "database is locked" when another writer got in between; IMMEDIATE waits instead.
    """
    with Session(engine, expire_on_commit=False) as session:
        session.connection(execution_options={SQLITE_IMMEDIATE: True})
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()


def fit_scope(scope: str) -> str:
    """Return ``scope`` cut to whole names that fit its column (a longer one is not real).

    Bitrix24's scopes are a few short names; a longer list only comes from a forged or
    broken request, and PostgreSQL would refuse to store it.
    """
    if len(scope) <= SCOPE_WIDTH:
        return scope
    return scope[: SCOPE_WIDTH + 1].rsplit(",", 1)[0][:SCOPE_WIDTH]


def _as_datetime(timestamp: float) -> datetime:
    """Convert a unix time to an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


@dataclasses.dataclass(frozen=True)
class TokenPair:
    """A token pair to store, whatever it came from (a POST, an event, the OAuth server)."""

    access_token: str
    refresh_token: str
    expires_at: float
    scope: str = ""

    def __repr__(self) -> str:
        """Describe the pair without its tokens."""
        return f"TokenPair(expires_at={self.expires_at!r}, scope={self.scope!r})"


def store_chain(
    engine: Engine, cipher: TokenCipher, portal_id: int, user_id: int, pair: TokenPair
) -> None:
    """Save ``pair`` as the user's chain on the portal (encrypted), reviving a dead chain."""
    prefetch.forget()
    for attempt in (1, 2):
        try:
            with write_session(engine) as session:
                token = session.scalars(
                    select(UserToken)
                    .where(UserToken.portal_id == portal_id, UserToken.user_id == user_id)
                    .with_for_update()
                ).one_or_none()
                if token is None:
                    token = UserToken(portal_id=portal_id, user_id=user_id)
                    session.add(token)
                token.access_token_encrypted = cipher.encrypt(pair.access_token)
                token.refresh_token_encrypted = cipher.encrypt(pair.refresh_token)
                token.expires_at = _as_datetime(pair.expires_at)
                token.scope = fit_scope(pair.scope or token.scope or "")
                token.invalid_grant_at = None
            return
        except IntegrityError:
            # Two first opens raced to insert the row (PostgreSQL); the second updates it.
            if attempt == 2:
                raise


def _usable(token: UserToken | None, portal: Portal | None) -> tuple[UserToken, Portal]:
    """Return a stored chain and its portal; raise ChainDead when either is unusable."""
    if token is None or portal is None or token.is_dead:
        raise ChainDead()
    if not portal.is_installed:
        raise ChainDead("the app is not installed on this portal")
    return token, portal


class UserTokenSource:
    """The client's TokenSource for one user of one portal, backed by the database."""

    def __init__(
        self,
        engine: Engine,
        cipher: TokenCipher,
        oauth: OAuthClient,
        portal_id: int,
        user_id: int,
        *,
        clock: Callable[[], float] = time.time,
        reader: Engine | None = None,
    ) -> None:
        self._engine = engine
        # Plain reads of the pair may go through an autocommit engine on the same pool.
        self._reader = reader or engine
        self._cipher = cipher
        self._oauth = oauth
        self.portal_id = portal_id
        self.user_id = user_id
        self._clock = clock

    def __repr__(self) -> str:
        """Identify the chain."""
        return f"UserTokenSource(portal_id={self.portal_id}, user_id={self.user_id})"

    def _credentials(self, token: UserToken, portal: Portal) -> Credentials:
        """Decrypt a stored row into the client's credentials."""
        try:
            access = self._cipher.decrypt(token.access_token_encrypted)
            refresh = self._cipher.decrypt(token.refresh_token_encrypted)
        except SecretUnreadable as exc:
            # The key that wrote it is gone from TOKEN_KEYS: only a new chain helps.
            raise ChainDead("the stored token cannot be decrypted") from exc
        return Credentials(
            access_token=access,
            refresh_token=refresh,
            expires_at=token.expires_at.timestamp(),
            client_endpoint=portal.client_endpoint,
            member_id=portal.member_id,
            user_id=self.user_id,
            scope=token.scope,
        )

    def _load(self, session: Session, lock: bool) -> tuple[UserToken, Portal]:
        """Read the chain and its portal in one query; raise ChainDead when unusable.

        With ``lock`` only the token's row is locked (``FOR UPDATE OF``), as a refresh needs.
        """
        query = (
            select(UserToken, Portal)
            .join(Portal, Portal.id == UserToken.portal_id)
            .where(UserToken.portal_id == self.portal_id, UserToken.user_id == self.user_id)
        )
        row = session.execute(query.with_for_update(of=UserToken) if lock else query).one_or_none()
        token, portal = row if row is not None else (None, None)
        return _usable(token, portal)

    def current(self) -> Credentials:
        """Return the stored pair (as the request's session check read it, the first time)."""
        prefetched = prefetch.take_token(self.portal_id, self.user_id)
        if prefetched is not None:
            token, portal = _usable(*prefetched)
            return self._credentials(token, portal)
        with Session(self._reader) as session:
            token, portal = self._load(session, lock=False)
            return self._credentials(token, portal)

    def refresh(self, stale: Credentials) -> Credentials:
        """Return a fresh pair replacing ``stale``: adopt a newer stored one, or refresh."""
        prefetch.forget()
        dead = False
        with write_session(self._engine) as session:
            token, portal = self._load(session, lock=True)
            stored = self._credentials(token, portal)
            rotated_meanwhile = (stored.access_token, stored.refresh_token) != (
                stale.access_token,
                stale.refresh_token,
            )
            if rotated_meanwhile and not stored.is_expired(self._clock()):
                return stored
            try:
                fresh = self._oauth.refresh(stored.refresh_token)
            except InvalidGrant:
                # Commit the mark (not raise inside the transaction, which would roll it back).
                token.invalid_grant_at = utcnow()
                dead = True
            else:
                token.access_token_encrypted = self._cipher.encrypt(fresh.access_token)
                token.refresh_token_encrypted = self._cipher.encrypt(fresh.refresh_token)
                token.expires_at = _as_datetime(fresh.expires_at)
                token.scope = fit_scope(fresh.scope or token.scope)
                stored = self._credentials(token, portal)
        if dead:
            log.info("token chain of user %s on portal %s is dead", self.user_id, self.portal_id)
            raise ChainDead()
        return stored

    def moved(self, new_client_endpoint: str) -> None:
        """Remember the portal's new address (it answered with a redirect)."""
        prefetch.forget()
        with write_session(self._engine) as session:
            portal = session.get(Portal, self.portal_id)
            if portal is not None:
                portal.client_endpoint = new_client_endpoint
                portal.domain = urlsplit(new_client_endpoint).netloc
        log.info("portal %s moved to %s", self.portal_id, new_client_endpoint)


class PostedTokenSource:
    """A TokenSource over a pair the browser or an event just handed over, kept in memory.

    Used until the app knows whose pair it is (the first batch names the user); whatever it
    holds afterwards, rotated or not, is then stored with :func:`store_chain`.
    """

    def __init__(self, credentials: Credentials, oauth: OAuthClient) -> None:
        self._credentials = credentials
        self._oauth = oauth

    def current(self) -> Credentials:
        """Return the pair."""
        return self._credentials

    def refresh(self, stale: Credentials) -> Credentials:
        """Refresh once; a second caller with the old pair gets the new one."""
        if stale.access_token != self._credentials.access_token:
            return self._credentials
        try:
            fresh = self._oauth.refresh(self._credentials.refresh_token)
        except InvalidGrant as exc:
            raise ChainDead() from exc
        self._credentials = dataclasses.replace(
            self._credentials,
            access_token=fresh.access_token,
            refresh_token=fresh.refresh_token,
            expires_at=fresh.expires_at,
            scope=fresh.scope or self._credentials.scope,
        )
        return self._credentials

    def moved(self, new_client_endpoint: str) -> None:
        """Use the new address for the rest of this request."""
        self._credentials = dataclasses.replace(
            self._credentials, client_endpoint=new_client_endpoint
        )

    def pair(self) -> TokenPair:
        """Return what to store."""
        creds = self._credentials
        return TokenPair(
            access_token=creds.access_token,
            refresh_token=creds.refresh_token,
            expires_at=creds.expires_at,
            scope=creds.scope,
        )


def token_source(portal_id: int, user_id: int) -> UserTokenSource:
    """Return the token source of a user of a portal, for the current app."""
    return UserTokenSource(
        db.engine, cipher(), gateway().oauth, portal_id, user_id, reader=statement_engine()
    )


def installer_token_source(portal: Portal) -> UserTokenSource:
    """Return the portal-level token source: the chain of the admin who installed the app."""
    if portal.installer_user_id is None:
        raise ChainDead("the portal has no installer token")
    return token_source(portal.id, portal.installer_user_id)
