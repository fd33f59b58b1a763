"""One blueprint per HTTP surface: install, events, ui, api, oauth."""

from __future__ import annotations

from flask import Flask, current_app, g, request

from b24app.bitrix.payloads import PayloadError, PlacementRequest
from b24app.errors import BadRequest
from b24app.i18n import normalise_language
from b24app.security import allow_framing_by, origin_from_domain


def remember_language() -> None:
    """Use the portal's LANG (query string or form) for this request's texts."""
    lang = normalise_language(request.args.get("LANG") or request.form.get("LANG"))
    if lang:
        g.lang = lang


def posted_placement() -> PlacementRequest:
    """Read a frame POST from Bitrix24 (install page or placement), or refuse it clearly.

    The language and a provisional frame-ancestors from the posted DOMAIN come first, so
    that even the refusal page renders in the portal's language inside its frame.
    """
    remember_language()
    allow_framing_by(
        origin_from_domain(request.args.get("DOMAIN"), current_app.config["ALLOW_HTTP_PORTALS"])
    )
    try:
        return PlacementRequest.from_request(request.args, request.form)
    except PayloadError as exc:
        raise BadRequest("not_from_bitrix24") from exc


def init_views(app: Flask) -> None:
    """Register every blueprint."""
    from b24app.views import api, events, install, oauth, ui

    for module in (install, events, ui, api, oauth):
        app.register_blueprint(module.bp)
