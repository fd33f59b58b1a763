"""One blueprint per HTTP surface: install, events, ui, api, oauth."""

from __future__ import annotations

from flask import Flask, g, request

from b24app.i18n import normalise_language


def remember_language() -> None:
    """Use the portal's LANG (query string or form) for this request's texts."""
    lang = normalise_language(request.args.get("LANG") or request.form.get("LANG"))
    if lang:
        g.lang = lang


def init_views(app: Flask) -> None:
    """Register every blueprint."""
    from b24app.views import api, events, install, oauth, ui

    for module in (install, events, ui, api, oauth):
        app.register_blueprint(module.bp)
