"""REST methods: event.bind / unbind / get."""

from __future__ import annotations

from typing import Any

from b24sandbox import apps
from b24sandbox.methods.placement import argument_error, check_handler_url, param
from b24sandbox.registry import CallContext, RestError, rest_method
from b24sandbox.users import USERS

# Events this portal can deliver or at least knows by name.
KNOWN_EVENTS = frozenset(
    {
        "ONAPPINSTALL",
        "ONAPPUNINSTALL",
        "ONAPPUPDATE",
        "ONAPPPAYMENT",
        "ONAPPTEST",
        "ONCRMDEALADD",
        "ONCRMDEALUPDATE",
        "ONCRMDEALDELETE",
        "ONCRMINVOICEADD",
        "ONCRMINVOICEUPDATE",
        "ONCRMINVOICEDELETE",
        "ONCRMDYNAMICITEMADD",
        "ONCRMDYNAMICITEMUPDATE",
        "ONCRMDYNAMICITEMDELETE",
        "ONSALEORDERSAVED",
        "ONSALEBEFOREORDERDELETE",
        "ONUSERADD",
        "ONOFFLINEEVENT",
    }
)


def is_offline(params: dict[str, Any]) -> bool:
    """Whether the call is about offline events (``event_type=offline``)."""
    return str(param(params, "event_type") or "online").lower() == "offline"


def requested_auth_type(params: dict[str, Any]) -> int | None:
    """Read ``auth_type`` (None when absent or empty)."""
    value = param(params, "auth_type")
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise argument_error("AUTH_TYPE", "Argument 'AUTH_TYPE' must be an integer") from None


@rest_method("event.bind", "basic", app_context_only=True)
def event_bind(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Bind a handler URL to an event."""
    admin = USERS[ctx.user_id].admin
    event = param(params, "event")
    handler = param(params, "handler")
    if not event or not isinstance(event, str):
        raise argument_error("EVENT")
    if not handler or not isinstance(handler, str):
        raise argument_error("HANDLER")
    event = event.upper()
    if event not in KNOWN_EVENTS:
        raise RestError("ERROR_EVENT_NOT_FOUND", "Event not found", 400)
    offline = is_offline(params)
    auth_type = requested_auth_type(params)
    if offline and not admin:
        raise RestError(
            "ACCESS_DENIED",
            "Access denied! Offline events binding requires administrator access rights",
            403,
        )
    if auth_type and not admin:
        raise RestError(
            "ACCESS_DENIED",
            "Access denied! Event binding with AUTH_TYPE requires administrator access rights",
            403,
        )
    if not admin:
        auth_type = ctx.user_id  # a non-admin's handlers run on their own behalf
    check_handler_url(ctx, handler)
    db, portal_id = ctx.sandbox.db, ctx.portal.id
    if apps.handler_exists(db, portal_id, event, handler, auth_type or 0):
        raise RestError("ERROR_CORE", "Unable to set event handler: Handler already binded", 400)
    apps.add_event_handler(db, portal_id, event, handler, auth_type or 0, offline, ctx.user_id)
    return True


@rest_method("event.unbind", "basic", app_context_only=True)
def event_unbind(ctx: CallContext, params: dict[str, Any]) -> dict[str, int]:
    """Unbind matching handlers; non-admins only reach their own online handlers."""
    admin = USERS[ctx.user_id].admin
    offline = is_offline(params)
    auth_type = requested_auth_type(params)
    if offline and not admin:
        raise RestError(
            "ACCESS_DENIED",
            "Access denied! Offline events unbinding requires administrator access rights",
            403,
        )
    if auth_type and not admin:
        raise RestError(
            "ACCESS_DENIED",
            "Access denied! Event unbinding with AUTH_TYPE requires administrator access rights",
            403,
        )
    event = param(params, "event")
    handler = param(params, "handler")
    count = apps.remove_event_handlers(
        ctx.sandbox.db,
        ctx.portal.id,
        str(event) if event else None,
        str(handler) if handler else None,
        (auth_type or 0) if admin else None,  # empty means handlers with an empty auth_type
        offline,
        None if admin else ctx.user_id,
    )
    return {"count": count}


@rest_method("event.get", "basic", app_context_only=True)
def event_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the app's event handlers (a non-admin sees only their own)."""
    admin = USERS[ctx.user_id].admin
    return apps.list_event_handlers(
        ctx.sandbox.db, ctx.portal.id, bound_by=None if admin else ctx.user_id
    )
