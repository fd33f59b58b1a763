"""Opening the app: verify the placement POST, learn user and rights, start a session."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

from b24app.bitrix import errors as b24
from b24app.bitrix.client import Credentials
from b24app.bitrix.payloads import PlacementRequest
from b24app.crypto import cipher
from b24app.errors import BadRequest, Forbidden, from_bitrix
from b24app.extensions import db
from b24app.jobs.service import resume_paused
from b24app.models import Portal
from b24app.services.catalog import Catalog, adopt_catalog, catalog_commands, stored_catalog
from b24app.services.gateway import gateway
from b24app.services.permissions import (
    PROBE_COMMANDS,
    Rights,
    UserProfile,
    profile_from_batch,
    rights_from_batch,
)
from b24app.services.portals import find_portal, placement_source, verify_auth
from b24app.services.tokens import PostedTokenSource, store_chain, write_session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenedApp:
    """Everything the app page needs after a successful open."""

    portal: Portal
    user: UserProfile
    rights: Rights
    placement: str
    placement_options: dict[str, Any]
    # The portal's owner types and names (``catalog.owner_types`` is [] when unknown).
    catalog: Catalog

    @property
    def owner_types(self) -> list[dict[str, Any]]:
        """The owner types the portal offers (``crm.enum.getorderownertypes``)."""
        return self.catalog.owner_types


def _follow_verified_address(portal: Portal, domain: str, endpoint: str) -> None:
    """Store the portal's verified address when it changed (the portal was renamed)."""
    if portal.client_endpoint == endpoint and portal.domain == domain:
        return
    with write_session(db.engine) as session:
        stored = session.get(Portal, portal.id)
        if stored is not None:
            stored.domain = domain
            stored.client_endpoint = endpoint
    portal.domain = domain
    portal.client_endpoint = endpoint


def open_app(request: PlacementRequest, lang: str = "en") -> OpenedApp:
    """Handle a placement POST (the left-menu page or a CRM tab) for any user.

    One batch with the user's own token names the user and probes the rights (and, when
    not cached, fetches the owner types); the user's token pair is then stored encrypted.
    """
    verified = verify_auth(request.auth_id, request.member_id, request.domain)
    portal = find_portal(verified.member_id)
    if portal is None or not portal.is_installed:
        raise Forbidden("portal_not_installed")
    _follow_verified_address(portal, verified.domain, verified.client_endpoint)
    source = placement_source(verified, request)
    commands = dict(PROBE_COMMANDS)
    catalog = stored_catalog(portal.id, lang)
    if catalog is None:
        commands.update(catalog_commands(lang))
    try:
        # Every command only reads (the write probe cannot match anything): safe to retry.
        batch = gateway().rest.batch(source, commands)
        user = profile_from_batch(batch)
    except b24.BitrixError as exc:
        raise from_bitrix(exc) from exc
    if verified.user_id is not None and verified.user_id != user.user_id:
        raise Forbidden("auth_mismatch")
    rights = rights_from_batch(batch, user.is_admin)
    if catalog is None:
        catalog = adopt_catalog(portal.id, lang, batch) or Catalog()
    store_chain(db.engine, cipher(), portal.id, user.user_id, source.pair())
    # A fresh chain revives the user's bulk jobs that a dead one paused.
    resume_paused(portal.id, user.user_id)
    log.info(
        "user %s opened %s on portal %s (%s)",
        user.user_id,
        request.placement,
        portal.id,
        rights.role,
    )
    return OpenedApp(
        portal=portal,
        user=user,
        rights=rights,
        placement=request.placement,
        placement_options=request.placement_options,
        catalog=catalog,
    )


def complete_authorization(code: str, member_id: str, user_id: int) -> Portal:
    """Finish an authorization-code round trip: exchange, check the user, store the chain.

    The user is taken from the OAuth server's answer (or ``profile`` with the new token),
    never from the request: a link forwarded to someone else must not store their token
    under the user who asked.
    """
    portal = find_portal(member_id)
    if portal is None or not portal.is_installed:
        raise Forbidden("portal_not_installed")
    oauth = gateway().oauth
    try:
        tokens = oauth.exchange_code(code)
    except b24.InvalidGrant as exc:
        raise BadRequest("oauth_code_invalid") from exc
    except b24.BitrixError as exc:
        raise from_bitrix(exc) from exc
    if not hmac.compare_digest(tokens.member_id.encode(), member_id.encode()):
        raise Forbidden("auth_mismatch")
    source = PostedTokenSource(
        Credentials(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at,
            client_endpoint=portal.client_endpoint,
            member_id=portal.member_id,
            user_id=tokens.user_id,
            scope=tokens.scope,
        ),
        oauth,
    )
    actual_user = tokens.user_id
    if actual_user is None:
        try:
            profile = gateway().rest.call(source, "profile").result
        except b24.BitrixError as exc:
            raise from_bitrix(exc) from exc
        raw_id = str(profile.get("ID", "")) if isinstance(profile, dict) else ""
        actual_user = int(raw_id) if raw_id.isdigit() else None
    if actual_user != user_id:
        log.warning("authorization completed by another user than the one who started it")
        raise Forbidden("auth_mismatch")
    store_chain(db.engine, cipher(), portal.id, user_id, source.pair())
    log.info("user %s re-authorized on portal %s", user_id, portal.id)
    return portal
