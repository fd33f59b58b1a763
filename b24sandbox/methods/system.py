"""REST methods: app.info, profile, user.current, user.admin, user.access."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from b24sandbox.registry import CallContext, RestError, rest_method
from b24sandbox.users import USERS, User

APP_ID = 1
APP_VERSION = 1
LANGUAGE_ID = "en"
LICENSE_FAMILY = "pro"
LICENSE_TYPE = "pro100"
MEMBER_TYPE = "B24"
DATE_REGISTER = "2024-01-15T09:00:00+00:00"
LAST_LOGIN = "2025-01-20T08:30:00+00:00"
DEPARTMENT_ID = 1


def acting_user(ctx: CallContext) -> User:
    """Return the user the token belongs to."""
    return USERS[ctx.user_id]


@rest_method("app.info", "basic")
def app_info(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Describe the app on this portal (plus the OAuth server's view on its origin)."""
    sandbox = ctx.sandbox
    installation = sandbox.installation(ctx.portal)
    installed = bool(installation and installation.installed)
    result: dict[str, Any] = {
        "ID": APP_ID,
        "CODE": sandbox.config.client_id,
        "VERSION": APP_VERSION,
        "STATUS": sandbox.app_status,
        "INSTALLED": installed,
        "PAYMENT_EXPIRED": "N",
        "DAYS": None,
        "LANGUAGE_ID": LANGUAGE_ID,
        "LICENSE": f"{LANGUAGE_ID}_{LICENSE_TYPE}",
        "LICENSE_TYPE": LICENSE_TYPE,
        "LICENSE_FAMILY": LICENSE_FAMILY,
    }
    if ctx.oauth_server:
        result.update(oauth_server_view(ctx, installed))
    return result


def oauth_server_view(ctx: CallContext, installed: bool) -> dict[str, Any]:
    """The fields the OAuth server's app.info adds: the app, the token and its portal."""
    sandbox, portal = ctx.sandbox, ctx.portal
    # Keep the configured order of the scope list, as the token endpoint reports it.
    ordered = [s for s in sandbox.config.scope.split(",") if s in ctx.scope]
    scope = ",".join(ordered + sorted(ctx.scope - set(ordered)))
    expires = ""
    if ctx.token_expires_at is not None:
        expires = datetime.fromtimestamp(ctx.token_expires_at, UTC).isoformat()
    return {
        "client_id": sandbox.config.client_id,
        "scope": scope,
        "expires": expires,
        "user_id": ctx.user_id,
        "install": {
            "installed": installed,
            "version": APP_VERSION,
            "status": sandbox.app_status,
            "scope": scope,
            "domain": portal.domain,
            "uri": f"{portal.base_url}/",
            "client_endpoint": portal.client_endpoint,
            "member_id": portal.member_id,
            "member_type": MEMBER_TYPE,
        },
    }


@rest_method("profile", "basic")
def profile(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Return the current user's basic profile."""
    user = acting_user(ctx)
    return {
        "ID": str(user.id),
        "ADMIN": user.admin,
        "NAME": user.name,
        "LAST_NAME": user.last_name,
        "PERSONAL_GENDER": "",
        "TIME_ZONE": "",
    }


@rest_method("user.current", "user,user_brief,user_basic")
def user_current(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Return the current user; contacts only with a scope that includes them."""
    user = acting_user(ctx)
    result: dict[str, Any] = {
        "ID": str(user.id),
        "ACTIVE": True,
        "NAME": user.name,
        "LAST_NAME": user.last_name,
    }
    if ctx.scope & {"user", "user_basic"}:
        result["EMAIL"] = user.email
    result.update(
        {
            "LAST_LOGIN": LAST_LOGIN,
            "DATE_REGISTER": DATE_REGISTER,
            "IS_ONLINE": "Y",
            "LAST_ACTIVITY_DATE": "2025-01-20 08:31:00",
            "PERSONAL_GENDER": "",
            "PERSONAL_BIRTHDAY": "",
            "WORK_POSITION": user.position,
            "UF_EMPLOYMENT_DATE": "",
            "UF_DEPARTMENT": [DEPARTMENT_ID],
        }
    )
    return result


@rest_method("user.admin", "basic")
def user_admin(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Say whether the current user may manage the app's settings (portal admin)."""
    return acting_user(ctx).admin


def access_codes(user: User) -> set[str]:
    """Return the access codes a user holds."""
    codes = {f"U{user.id}", "AU", "G2", f"D{DEPARTMENT_ID}", f"DR{DEPARTMENT_ID}"}
    if user.admin:
        codes.add("G1")
    return codes


@rest_method("user.access", "basic")
def user_access(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Say whether the current user holds at least one of the ``ACCESS`` codes."""
    user = acting_user(ctx)
    if user.admin:
        return True  # documented: always true for a user with app-settings permission
    requested = params.get("ACCESS", params.get("access"))
    if requested is None or requested == "":
        raise RestError(
            "ERROR_ARGUMENT", "Argument 'ACCESS' is null or empty", 400, {"argument": "ACCESS"}
        )
    if isinstance(requested, dict):
        requested = list(requested.values())
    if not isinstance(requested, list):
        requested = [requested]
    return any(str(code).upper() in access_codes(user) for code in requested)
