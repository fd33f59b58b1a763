"""``POST /events``: ONAPPINSTALL and ONAPPUNINSTALL deliveries from Bitrix24."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from b24app.bitrix.payloads import AppEvent, PayloadError
from b24app.errors import BadRequest
from b24app.services.portals import install_from_event, uninstall_from_event

bp = Blueprint("events", __name__)


def handle_event() -> dict[str, Any]:
    """Parse the delivery and act on it; other events are refused without any effect."""
    try:
        event = AppEvent.from_form(request.form.items(multi=True))
    except PayloadError as exc:
        raise BadRequest("bad_event") from exc
    if event.is_uninstall:
        uninstall_from_event(event)
    elif event.is_install:
        install_from_event(event)
    else:
        raise BadRequest("unsupported_event")
    return {"result": True}


@bp.post("/events")
def events() -> Response:
    """Receive an event delivery."""
    return jsonify(handle_event())
