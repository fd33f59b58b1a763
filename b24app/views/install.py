"""``POST /install``: the install page Bitrix24 frames, and ONAPPINSTALL sent to it."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request

from b24app.security import allow_framing_by, portal_origin
from b24app.services.portals import install_from_page
from b24app.views import posted_placement
from b24app.views.events import handle_event

bp = Blueprint("install", __name__)


@bp.post("/install")
def install() -> Response | str:
    """Install the app on the portal, then let the page call BX24.installFinish()."""
    if request.form.get("event"):
        # Bitrix24 also posts ONAPPINSTALL to the installer URL.
        return jsonify(handle_event())
    placement = posted_placement()
    installed = install_from_page(placement)
    allow_framing_by(portal_origin(installed.client_endpoint))
    return render_template("install.html", installed=installed)
