"""``GET /oauth/callback``: the end of an authorization-code round trip."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from b24app.errors import BadRequest, Forbidden
from b24app.security import verify_oauth_state
from b24app.services.sessions import complete_authorization

bp = Blueprint("oauth", __name__)


@bp.get("/oauth/callback")
def callback() -> str:
    """Check the state we issued, exchange the code and store the user's new chain."""
    code = request.args.get("code", "")
    state = request.args.get("state", "")
    if not code or not state:
        raise BadRequest("oauth_state_invalid")
    member_id, user_id = verify_oauth_state(state)
    if request.args.get("member_id", member_id) != member_id:
        raise Forbidden("auth_mismatch")
    portal = complete_authorization(code, member_id, user_id)
    return render_template("oauth_result.html", domain=portal.domain)
