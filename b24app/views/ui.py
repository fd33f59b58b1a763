"""The pages people see: ``POST /app`` for every placement, and the app's home page ``GET /``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, g, render_template, request, url_for

from b24app.errors import BadRequest
from b24app.i18n import normalise_language, plural_strings_for, request_language, strings_for
from b24app.security import allow_framing_by, issue_session_token, portal_origin
from b24app.services.sessions import open_app
from b24app.views import posted_placement

bp = Blueprint("ui", __name__)

# A card id as Bitrix24 posts it in PLACEMENT_OPTIONS.ID: a positive integer, as a string.
_CARD_ID = re.compile(r"[1-9][0-9]{0,17}")


@dataclass(frozen=True)
class Screen:
    """What one placement shows: its template and the card it is opened on."""

    template: str
    # The card's CRM owner type (deal 2, smart invoice 31); None for the order card.
    owner_type_id: int | None = None
    # Whether PLACEMENT_OPTIONS.ID names the card (every CRM tab).
    on_card: bool = False


DEFAULT_SCREEN = Screen("placement/default.html")
SCREENS = {
    "DEFAULT": DEFAULT_SCREEN,
    "CRM_DEAL_DETAIL_TAB": Screen("placement/deal_tab.html", owner_type_id=2, on_card=True),
    "CRM_SMART_INVOICE_DETAIL_TAB": Screen(
        "placement/invoice_tab.html", owner_type_id=31, on_card=True
    ),
    "CRM_ORDER_DETAIL_TAB": Screen("placement/order_tab.html", on_card=True),
}


def card_id(options: dict[str, Any]) -> int | None:
    """Return the card id a tab was opened on, or None when ``ID`` is not a positive integer."""
    raw = options.get("ID")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    text = str(raw).strip()
    return int(text) if _CARD_ID.fullmatch(text) else None


@bp.post("/app")
def app_page() -> str | tuple[str, int]:
    """Open the app for the user Bitrix24 posted, in the placement it names.

    A tab without a usable card id is refused before anything is asked of Bitrix24.
    """
    placement = posted_placement()
    screen = SCREENS.get(placement.placement, DEFAULT_SCREEN)
    entity_id = card_id(placement.placement_options) if screen.on_card else None
    if screen.on_card and entity_id is None:
        return render_template("placement/bad_options.html"), 400
    lang = request_language()
    opened = open_app(placement, lang)
    allow_framing_by(portal_origin(opened.portal.client_endpoint))
    session_token = issue_session_token(
        opened.portal, opened.user.user_id, opened.user.name, opened.rights, lang
    )
    return render_template(
        screen.template,
        opened=opened,
        session_token=session_token,
        strings=strings_for("ui.", lang),
        plurals=plural_strings_for("ui.", lang),
        api_root=url_for("api.me").removesuffix("me"),
        portal_url=portal_origin(opened.portal.client_endpoint),
        owner_type_id=screen.owner_type_id,
        entity_id=entity_id,
    )


@bp.get("/app")
def app_outside_bitrix24() -> str:
    """Explain that the app opens from inside Bitrix24 only."""
    raise BadRequest("not_from_bitrix24")


@bp.get("/")
def home() -> str:
    """Say what the app is and how to install it (in ``?LANG=``/``?lang=`` or the browser's)."""
    chosen = normalise_language(request.args.get("LANG") or request.args.get("lang"))
    if chosen:
        g.lang = chosen
    return render_template("home.html", install_url=url_for("install.install"))
