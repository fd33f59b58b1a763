"""The JSON API under ``/api/``: bearer session token in, JSON out."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from b24app.errors import AppError
from b24app.security import current_session, issue_oauth_state, portal_origin, require_session
from b24app.services.gateway import gateway
from b24app.services.portals import owner_types
from b24app.services.tokens import token_source

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/me")
@require_session
def me() -> Response:
    """Describe the caller: portal, user, rights and the owner types the portal offers.

    A dead token chain does not hide who the caller is: ``bitrix_auth`` then says
    ``reauth_required`` and ``reconnect_url`` offers the way back.
    """
    session = current_session()
    portal = session.portal
    bitrix_auth = "ok"
    try:
        types = owner_types(portal.id, token_source(portal.id, session.user_id))
    except AppError as error:
        if error.code != "reauth_required":
            raise
        types, bitrix_auth = [], "reauth_required"
    reconnect = gateway().oauth.authorization_url(
        portal_origin(portal.client_endpoint), issue_oauth_state(portal.member_id, session.user_id)
    )
    return jsonify(
        {
            "portal": {"id": portal.id, "domain": portal.domain, "member_id": portal.member_id},
            "user": {"id": session.user_id, "name": session.user_name},
            "rights": session.rights.as_dict(),
            "owner_types": types,
            "bitrix_auth": bitrix_auth,
            "session": {"expires_at": session.expires_at, "lang": session.lang},
            "reconnect_url": reconnect,
        }
    )
