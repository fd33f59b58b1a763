"""Portals: verifying what Bitrix24 posts, installing, uninstalling, per-portal caches."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from b24app.bitrix import errors as b24
from b24app.bitrix.client import Credentials, TokenSource
from b24app.bitrix.oauth import DEFAULT_LIFETIME
from b24app.bitrix.payloads import AppEvent, PlacementRequest
from b24app.crypto import SecretUnreadable, cipher
from b24app.errors import BadRequest, Forbidden, Unauthorized, Unavailable, from_bitrix
from b24app.extensions import db, detached
from b24app.models import BindingRecord, Portal, UserToken, utcnow
from b24app.services.catalog import forget_catalogs
from b24app.services.gateway import gateway
from b24app.services.permissions import UserProfile, profile_from_batch
from b24app.services.tokens import (
    PostedTokenSource,
    fit_scope,
    store_chain,
    write_session,
)

log = logging.getLogger(__name__)

# The card tabs the app adds, with their titles in every language it speaks.
PLACEMENTS: dict[str, dict[str, str]] = {
    "CRM_DEAL_DETAIL_TAB": {"en": "Store orders", "ru": "Заказы магазина"},
    "CRM_ORDER_DETAIL_TAB": {"en": "Deal or invoice", "ru": "Сделка или счёт"},
    "CRM_SMART_INVOICE_DETAIL_TAB": {"en": "Store orders", "ru": "Заказы магазина"},
}
UNINSTALL_EVENT = "ONAPPUNINSTALL"


def public_url(path: str) -> str:
    """Return the app's public URL for ``path`` (what Bitrix24 is told to call)."""
    return f"{current_app.config['PUBLIC_URL']}{path}"


# -- verification --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedPortal:
    """A portal as the OAuth server confirmed it for a token."""

    member_id: str
    domain: str
    client_endpoint: str
    scope: str
    status: str
    user_id: int | None


def verify_auth(access_token: str, member_id: str, domain: str | None) -> VerifiedPortal:
    """Confirm a posted token with the OAuth server and check it matches the posted portal.

    The REST endpoint comes from the verified domain only: nothing is ever sent to an
    address taken from the raw ``DOMAIN`` field.
    """
    try:
        verified = gateway().oauth.verify(access_token)
    except b24.ForeignApp as exc:
        log.warning("refused a token issued to another application")
        raise Forbidden("foreign_app") from exc
    except (b24.InvalidToken, b24.ExpiredToken, b24.AccessDenied, b24.OAuthError) as exc:
        raise Unauthorized("auth_invalid") from exc
    except b24.BitrixError as exc:
        log.warning("token verification failed: %r", exc)
        raise Unavailable("oauth_unavailable") from exc
    if not verified.member_id or not hmac.compare_digest(
        verified.member_id.encode(), member_id.encode()
    ):
        log.warning("posted member_id %r does not match the verified token", member_id[:64])
        raise Forbidden("auth_mismatch")
    if domain and domain.lower() != verified.domain.lower():
        log.warning("posted DOMAIN %r does not match the verified portal", domain[:255])
        raise Forbidden("auth_mismatch")
    try:
        endpoint = gateway().portal_endpoint(verified.domain)
    except b24.BitrixError as exc:
        log.warning("verified portal address refused: %r", exc)
        raise Forbidden("unsafe_portal") from exc
    return VerifiedPortal(
        member_id=verified.member_id,
        domain=verified.domain.lower(),
        client_endpoint=endpoint,
        scope=verified.scope,
        status=verified.status,
        user_id=verified.user_id,
    )


def posted_source(
    verified: VerifiedPortal, access: str, refresh: str, expires_in: int | None, scope: str
) -> PostedTokenSource:
    """Wrap a just-verified token pair for the first calls of a request."""
    if not refresh:
        raise BadRequest("bad_request")
    # A posted lifetime is a hint from the request, not from the OAuth server: a missing,
    # non-positive or longer one than Bitrix24's hour counts as an hour (a too early refresh
    # costs one call; a huge one would not even fit a timestamp).
    lifetime = (
        expires_in
        if expires_in is not None and 0 < expires_in < DEFAULT_LIFETIME
        else DEFAULT_LIFETIME
    )
    credentials = Credentials(
        access_token=access,
        refresh_token=refresh,
        expires_at=time.time() + lifetime,
        client_endpoint=verified.client_endpoint,
        member_id=verified.member_id,
        user_id=verified.user_id,
        # The OAuth server's word on the scope first; the posted one is only a fallback.
        scope=verified.scope or scope,
    )
    return PostedTokenSource(credentials, gateway().oauth)


def placement_source(verified: VerifiedPortal, request: PlacementRequest) -> PostedTokenSource:
    """Wrap the token pair a frame POST carried, once verified."""
    return posted_source(
        verified,
        request.auth_id,
        request.refresh_id,
        request.auth_expires,
        request.application_scope,
    )


def find_portal(member_id: str) -> Portal | None:
    """Return the stored portal with this member_id, detached from the request's session."""
    found: Portal | None = db.session.scalars(
        select(Portal).where(Portal.member_id == member_id)
    ).one_or_none()
    return detached(found) if found is not None else None


# -- install -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """The outcome of an installation: the portal, the installer, what was newly bound."""

    portal_id: int
    member_id: str
    domain: str
    client_endpoint: str
    installer: UserProfile
    newly_bound: tuple[str, ...]


def _already_exists(error: b24.BitrixError) -> bool:
    """Tell whether a bind error only says the handler is there already."""
    text = f"{error.code} {error.description}".upper()
    return "ALREADY" in text or "EXIST" in text


def ensure_handlers(source: TokenSource) -> tuple[UserProfile, tuple[str, ...]]:
    """Check the installer is an admin, then bind the tabs and the uninstall event if missing.

    One batch reads who is installing and what is bound; a second binds only what is
    missing, so re-installing changes nothing.
    """
    client = gateway().rest
    try:
        first = client.batch(
            source,
            {
                "profile": ("profile", None),
                "admin": ("user.admin", None),
                "placements": ("placement.get", None),
                "events": ("event.get", None),
            },
        )
        installer = profile_from_batch(first)
    except b24.BitrixError as exc:
        raise from_bitrix(exc) from exc
    if not installer.is_admin:
        raise Forbidden("install_not_admin")
    for key in ("placements", "events"):
        if key in first.errors:
            raise from_bitrix(first.errors[key])
    handler, events_url = public_url("/app"), public_url("/events")
    bound_placements = {
        (str(p.get("placement", "")).upper(), p.get("handler"))
        for p in _rows(first.results.get("placements"))
    }
    bound_events = {
        (str(e.get("event", "")).upper(), e.get("handler"))
        for e in _rows(first.results.get("events"))
    }
    commands: dict[str, tuple[str, Mapping[str, Any] | None]] = {}
    for code, titles in PLACEMENTS.items():
        if (code, handler) not in bound_placements:
            commands[code] = (
                "placement.bind",
                {
                    "PLACEMENT": code,
                    "HANDLER": handler,
                    "TITLE": titles["en"],
                    "LANG_ALL": {lang: {"TITLE": title} for lang, title in titles.items()},
                },
            )
    if (UNINSTALL_EVENT, events_url) not in bound_events:
        commands[UNINSTALL_EVENT] = (
            "event.bind",
            {"event": UNINSTALL_EVENT, "handler": events_url},
        )
    if commands:
        try:
            result = client.batch(source, commands)
        except b24.BitrixError as exc:
            raise from_bitrix(exc) from exc
        failed = {k: e for k, e in result.errors.items() if not _already_exists(e)}
        if failed:
            log.warning("binding handlers failed: %r", failed)
            raise Unavailable("install_bind_failed")
    return installer, tuple(commands)


def _rows(value: Any) -> list[Mapping[str, Any]]:
    """Return the list rows of a result (Bitrix24 may send an object keyed by index)."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if not isinstance(value, list):
        return []
    return [row for row in value if isinstance(row, Mapping)]


def save_portal(
    verified: VerifiedPortal, application_token: str | None, installer_user_id: int | None
) -> int:
    """Create or update the portal as installed; return its id."""
    for attempt in (1, 2):
        try:
            with write_session(db.engine) as session:
                portal = session.scalars(
                    select(Portal).where(Portal.member_id == verified.member_id).with_for_update()
                ).one_or_none()
                if portal is None:
                    portal = Portal(member_id=verified.member_id)
                    session.add(portal)
                portal.domain = verified.domain
                portal.client_endpoint = verified.client_endpoint
                portal.scope = fit_scope(verified.scope or portal.scope or "")
                portal.status = verified.status or portal.status or ""
                if application_token:
                    portal.application_token_encrypted = cipher().encrypt(application_token)
                if installer_user_id is not None:
                    portal.installer_user_id = installer_user_id
                if not portal.is_installed:
                    portal.installed_at = utcnow()
                    portal.uninstalled_at = None
                session.flush()
                portal_id: int = portal.id
            return portal_id
        except IntegrityError:
            # The install page and ONAPPINSTALL raced to create the row (PostgreSQL).
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _install(
    verified: VerifiedPortal, source: PostedTokenSource, application_token: str | None
) -> Installed:
    """Bind handlers, then store the portal and the installer's chain."""
    installer, newly_bound = ensure_handlers(source)
    if verified.user_id is not None and verified.user_id != installer.user_id:
        raise Forbidden("auth_mismatch")
    portal_id = save_portal(verified, application_token, installer.user_id)
    store_chain(db.engine, cipher(), portal_id, installer.user_id, source.pair())
    forget_catalogs(portal_id)
    log.info(
        "installed on portal %s (%s) by user %s", portal_id, verified.domain, installer.user_id
    )
    return Installed(
        portal_id,
        verified.member_id,
        verified.domain,
        verified.client_endpoint,
        installer,
        newly_bound,
    )


def install_from_page(request: PlacementRequest) -> Installed:
    """Handle the install page POST: verify, bind, store. Nothing is stored on refusal."""
    verified = verify_auth(request.auth_id, request.member_id, request.domain)
    source = placement_source(verified, request)
    return _install(verified, source, request.application_token or None)


def install_from_event(event: AppEvent) -> Installed:
    """Handle ONAPPINSTALL: the same as the install page, from the event's auth block."""
    auth = event.auth
    if not auth.access_token or not auth.member_id:
        raise BadRequest("bad_event")
    verified = verify_auth(auth.access_token, auth.member_id, auth.domain or None)
    source = posted_source(
        verified, auth.access_token, auth.refresh_token, auth.expires_in, auth.scope
    )
    return _install(verified, source, auth.application_token or None)


# -- uninstall -----------------------------------------------------------------------------

# Compared against when the member_id is unknown, so both refusals take the same time.
_NO_TOKEN = b"\x00" * 32


def uninstall_from_event(event: AppEvent) -> int:
    """Handle ONAPPUNINSTALL: check the application token first, then forget the portal.

    Deletes the portal's tokens and marks it uninstalled; with CLEAN=1 also its history.
    Repeated deliveries do the same again, harmlessly. Returns the portal id.
    """
    member_id = event.auth.member_id
    posted = event.auth.application_token.encode()
    with write_session(db.engine) as session:
        portal = session.scalars(
            select(Portal).where(Portal.member_id == member_id).with_for_update()
        ).one_or_none()
        stored = _NO_TOKEN
        if portal is not None and portal.application_token_encrypted:
            try:
                stored = cipher().decrypt(portal.application_token_encrypted).encode()
            except SecretUnreadable:
                stored = _NO_TOKEN
        matched = hmac.compare_digest(stored, posted) and stored != _NO_TOKEN and bool(posted)
        if portal is None or not matched:
            log.warning(
                "refused %s for member_id %r: %s",
                event.event,
                member_id[:64],
                "unknown portal" if portal is None else "application token mismatch",
            )
            raise Forbidden("event_forbidden")
        session.execute(delete(UserToken).where(UserToken.portal_id == portal.id))
        if event.clean:
            session.execute(delete(BindingRecord).where(BindingRecord.portal_id == portal.id))
        if portal.uninstalled_at is None:
            portal.uninstalled_at = utcnow()
        portal_id: int = portal.id
    forget_catalogs(portal_id)
    log.info("uninstalled from portal %s (clean=%s)", portal_id, event.clean)
    return portal_id
