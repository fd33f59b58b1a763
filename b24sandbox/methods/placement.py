"""REST methods: placement.bind / unbind / get."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from b24sandbox import apps
from b24sandbox.registry import CallContext, RestError, rest_method
from b24sandbox.users import USERS

# Placement codes this portal knows (the CRM detail tabs the app uses, and common others).
KNOWN_PLACEMENTS = frozenset(
    {
        "CRM_DEAL_DETAIL_TAB",
        "CRM_ORDER_DETAIL_TAB",
        "CRM_SMART_INVOICE_DETAIL_TAB",
        "CRM_LEAD_DETAIL_TAB",
        "CRM_CONTACT_DETAIL_TAB",
        "CRM_COMPANY_DETAIL_TAB",
        "CRM_DEAL_LIST_MENU",
        "CRM_DEAL_DETAIL_TOOLBAR",
        "CRM_DEAL_DETAIL_ACTIVITY",
        "CRM_SMART_INVOICE_LIST_MENU",
        "CRM_ORDER_LIST_MENU",
        "LEFT_MENU",
        "REST_APP_URI",
        "PAGE_BACKGROUND_WORKER",
        "USER_PROFILE_MENU",
    }
)
# Widgets that allow one handler only.
SINGLE_INSTANCE = frozenset({"PAGE_BACKGROUND_WORKER", "REST_APP_URI"})

ACCESS_DENIED = ("ACCESS_DENIED", "Access denied!", 403)


def param(params: dict[str, Any], name: str) -> Any:
    """Read a parameter the way Bitrix24 does here: upper or lower case key."""
    return params.get(name, params.get(name.lower()))


def argument_error(name: str, message: str | None = None) -> RestError:
    """Return the ``ERROR_ARGUMENT`` error naming the bad argument."""
    text = message or f"Argument '{name}' is null or empty"
    return RestError("ERROR_ARGUMENT", text, 400, {"argument": name})


def require_admin(ctx: CallContext) -> None:
    """Refuse anyone but a portal administrator."""
    if not USERS[ctx.user_id].admin:
        raise RestError(*ACCESS_DENIED)


def check_handler_url(ctx: CallContext, handler: str) -> None:
    """Refuse a handler that is not on the app's own host, as Bitrix24 does."""
    parts = urlsplit(handler)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RestError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL", 400)
    app_host = urlsplit(ctx.sandbox.config.app_url).hostname
    if parts.hostname != app_host:
        raise RestError(
            "ERROR_WRONG_HANDLER_URL", "Handler URL host doesn't match application url", 400
        )


def placement_code(params: dict[str, Any]) -> str:
    """Read and check ``PLACEMENT``."""
    code = param(params, "PLACEMENT")
    if code is None or code == "":
        raise argument_error("PLACEMENT")
    if not isinstance(code, str):
        raise argument_error(
            "PLACEMENT", "The value of an argument 'PLACEMENT' must be of type string"
        )
    return code.upper()


@rest_method("placement.bind", "placement", app_context_only=True)
def placement_bind(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Register a handler for a widget placement."""
    require_admin(ctx)
    code = placement_code(params)
    handler = param(params, "HANDLER")
    if not handler or not isinstance(handler, str):
        raise argument_error("HANDLER")
    if code not in KNOWN_PLACEMENTS:
        raise RestError("ERROR_PLACEMENT_NOT_FOUND", "Placement not found", 400)
    if code.startswith("CRM_") and "crm" not in ctx.scope:
        raise RestError("ERROR_PLACEMENT_NOT_FOUND", "Placement not found", 400)
    user_id = param(params, "USER_ID")
    if user_id not in (None, "", 0, "0") and code != "PAGE_BACKGROUND_WORKER":
        raise RestError("ERROR_PLACEMENT_USER_MODE", "User mode is not available", 400)
    check_handler_url(ctx, handler)
    db, portal_id = ctx.sandbox.db, ctx.portal.id
    if code in SINGLE_INSTANCE and any(
        p["placement"] == code for p in apps.list_placements(db, portal_id)
    ):
        raise RestError("ERROR_PLACEMENT_MAX_COUNT", "Placement max count exceeded", 400)
    if apps.placement_exists(db, portal_id, code, handler):
        raise RestError(
            "ERROR_CORE", "Unable to set placement handler: Handler already binded", 400
        )
    lang_all = param(params, "LANG_ALL")
    options = param(params, "OPTIONS")
    apps.add_placement(
        db,
        portal_id,
        {
            "placement": code,
            "handler": handler,
            "title": str(param(params, "TITLE") or ""),
            "description": str(param(params, "DESCRIPTION") or ""),
            "groupName": str(param(params, "GROUP_NAME") or ""),
            "langAll": lang_all if isinstance(lang_all, dict) else {},
            "options": options if isinstance(options, dict) and options else [],
            "userId": int(user_id or 0),
        },
    )
    return True


@rest_method("placement.unbind", "placement", app_context_only=True)
def placement_unbind(ctx: CallContext, params: dict[str, Any]) -> dict[str, int]:
    """Remove the app's handlers of a placement (all of them when HANDLER is empty)."""
    require_admin(ctx)
    code = placement_code(params)
    handler = param(params, "HANDLER")
    user_id = param(params, "USER_ID")
    removed = apps.remove_placements(
        ctx.sandbox.db,
        ctx.portal.id,
        code,
        handler if isinstance(handler, str) and handler else None,
        int(user_id) if user_id not in (None, "") else None,
    )
    # Bitrix24 counts each handler once when found and once more when deleted.
    return {"count": removed * 2}


@rest_method("placement.get", "placement", app_context_only=True)
def placement_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the handlers this app registered on the portal."""
    require_admin(ctx)
    return apps.list_placements(ctx.sandbox.db, ctx.portal.id)
