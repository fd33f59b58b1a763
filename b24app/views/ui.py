"""``POST /app``: every placement (the left-menu page and the CRM card tabs)."""

from __future__ import annotations

from flask import Blueprint, render_template

from b24app.errors import BadRequest
from b24app.i18n import request_language, strings_for
from b24app.security import allow_framing_by, issue_session_token, portal_origin
from b24app.services.sessions import open_app
from b24app.views import posted_placement

bp = Blueprint("ui", __name__)


@bp.post("/app")
def app_page() -> str:
    """Open the app for the user Bitrix24 posted, in the placement it names."""
    placement = posted_placement()
    lang = request_language()
    opened = open_app(placement)
    allow_framing_by(portal_origin(opened.portal.client_endpoint))
    session_token = issue_session_token(
        opened.portal, opened.user.user_id, opened.user.name, opened.rights, lang
    )
    return render_template(
        "app.html",
        opened=opened,
        session_token=session_token,
        strings=strings_for("ui.", lang),
    )


@bp.get("/app")
def app_outside_bitrix24() -> str:
    """Explain that the app opens from inside Bitrix24 only."""
    raise BadRequest("not_from_bitrix24")
