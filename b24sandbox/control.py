"""The control API under ``/_sandbox/``: a test surface, answered on loopback only.

Each call acts on the portal whose origin it reached, unless the body names ``"portal"``
(a portal id, as ``GET /_sandbox/state`` lists them).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from b24sandbox import events
from b24sandbox.faults import Fault
from b24sandbox.rest import json_response
from b24sandbox.state import Portal, Sandbox, current_portal, current_sandbox
from b24sandbox.users import USERS

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


class ControlError(Exception):
    """A bad control request: answered 400 (or the given status) with a reason."""

    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


@bp.errorhandler(ControlError)
def control_error(error: ControlError) -> Response:
    """Answer a bad control request."""
    return json_response(
        {"error": "bad_request", "error_description": error.description}, error.status
    )


@bp.before_request
def loopback_only() -> Response | None:
    """Refuse the control API to anyone but this machine."""
    if request.remote_addr not in LOOPBACK:
        return json_response(
            {"error": "forbidden", "error_description": "The control API is loopback only"}, 403
        )
    return None


def body() -> dict[str, Any]:
    """Return the JSON body (empty when there is none)."""
    data = request.get_json(silent=True)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ControlError("The body must be a JSON object")
    return data


def target_portal(sandbox: Sandbox, data: dict[str, Any]) -> Portal:
    """Return the portal named in the body, or the one this request reached."""
    portal_id = data.get("portal", request.args.get("portal"))
    if portal_id is None:
        return current_portal()
    try:
        return sandbox.portal(int(portal_id))
    except (KeyError, ValueError):
        raise ControlError(f"There is no portal {portal_id!r}", 404) from None


def portal_state(sandbox: Sandbox, portal: Portal) -> dict[str, Any]:
    """Describe one portal for ``GET /_sandbox/state``."""
    installation = sandbox.installation(portal)
    return {
        "id": portal.id,
        "member_id": portal.member_id,
        "domain": portal.domain,
        "url": portal.base_url,
        "client_endpoint": portal.client_endpoint,
        "installed": bool(installation and installation.installed),
        "install_started": installation is not None,
        "installed_at": installation.installed_at if installation else None,
        "application_token": installation.application_token if installation else None,
        "placements": sandbox.placements(portal),
        "event_handlers": sandbox.event_handlers(portal),
        "bindings": binding_count(sandbox, portal),
    }


def binding_count(sandbox: Sandbox, portal: Portal) -> int:
    """Count the portal's order bindings (the data module's crm_order_entity table)."""
    rows = sandbox.db.query(
        "SELECT COUNT(*) FROM crm_order_entity WHERE portal_id = ?", (portal.id,)
    )
    return int(rows[0][0])


@bp.get("/state")
def state() -> Response:
    """Describe every portal, the app's footprint on it, limits and pending faults."""
    sandbox = current_sandbox()
    return json_response(
        {
            "oauth_url": sandbox.oauth_url,
            "app_url": sandbox.config.app_url,
            "client_id": sandbox.config.client_id,
            "scope": sandbox.config.scope,
            "users": [
                {
                    "id": u.id,
                    "name": f"{u.name} {u.last_name}",
                    "admin": u.admin,
                    "sale_right": u.sale_right,
                }
                for u in USERS.values()
            ],
            "limits": sandbox.limits.describe(),
            "clock": sandbox.clock.describe(),
            "faults": sandbox.faults.pending(),
            "portals": [portal_state(sandbox, p) for p in sandbox.portals],
        }
    )


@bp.post("/reset")
def reset() -> Response:
    """Reseed every portal; forget tokens, installs, calls, faults, limits and clock moves."""
    data = body()
    app_url = data.get("app_url")
    if app_url is not None and not isinstance(app_url, str):
        raise ControlError("app_url must be a string")
    sandbox = current_sandbox()
    sandbox.reset(app_url=app_url)
    return json_response({"ok": True, "app_url": sandbox.config.app_url})


@bp.post("/token")
def token() -> Response:
    """Issue a token set for a user, exactly as ``/oauth/token/`` returns it.

    Body: ``user_id`` (default 1), ``expires_in`` (seconds), ``portal`` (id) and
    ``scope`` (a narrower comma list, to provoke ``insufficient_scope``).
    """
    data = body()
    sandbox = current_sandbox()
    portal = target_portal(sandbox, data)
    try:
        user_id = int(data.get("user_id", 1))
        expires_in = data.get("expires_in")
        expires_in = None if expires_in is None else int(expires_in)
    except (TypeError, ValueError):
        raise ControlError("user_id and expires_in must be integers") from None
    if user_id not in USERS:
        raise ControlError(f"There is no user {user_id}; users are {sorted(USERS)}", 404)
    scope = data.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise ControlError("scope must be a comma-separated string")
    return json_response(sandbox.issue_tokens(portal, user_id, expires_in, scope))


@bp.get("/calls")
def calls() -> Response:
    """Return the call log (all portals, or ``?portal=N``)."""
    portal = request.args.get("portal")
    try:
        portal_id = int(portal) if portal is not None else None
    except ValueError:
        raise ControlError("portal must be an integer") from None
    return json_response(current_sandbox().calls.snapshot(portal_id))


@bp.post("/faults")
def add_fault() -> Response:
    """Queue a fault for the next ``count`` calls of ``method`` (``{"clear": true}`` drops all)."""
    data = body()
    sandbox = current_sandbox()
    if data.get("clear"):
        sandbox.faults.clear()
    else:
        try:
            sandbox.faults.add(Fault.from_json(data))
        except (TypeError, ValueError) as error:
            raise ControlError(str(error)) from None
    return json_response({"faults": sandbox.faults.pending()})


@bp.get("/faults")
def list_faults() -> Response:
    """Return the pending faults."""
    return json_response({"faults": current_sandbox().faults.pending()})


@bp.post("/limits")
def limits() -> Response:
    """Change the leaky bucket's drain rate and threshold (buckets start empty)."""
    data = body()
    sandbox = current_sandbox()
    try:
        rps = float(data.get("rps", sandbox.limits.rps))
        burst = int(data.get("burst", sandbox.limits.burst))
    except (TypeError, ValueError):
        raise ControlError("rps must be a number and burst an integer") from None
    if rps < 0 or burst < 1:
        raise ControlError("rps must be >= 0 and burst >= 1")
    sandbox.limits.configure(rps, burst)
    return json_response(sandbox.limits.describe())


@bp.get("/clock")
def clock() -> Response:
    """Return the sandbox time (Unix seconds) and how far it runs ahead of real time."""
    return json_response(current_sandbox().clock.describe())


@bp.post("/clock")
def advance_clock() -> Response:
    """Move the sandbox clock forward: ``{"advance": S}`` with ``S >= 0`` seconds.

    Tokens and codes then expire, and buckets drain, as if ``S`` seconds had passed.
    """
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ControlError('The body must be a JSON object like {"advance": 1.5}')
    if "advance" not in data:
        raise ControlError("advance (seconds) is required")
    sandbox = current_sandbox()
    try:
        sandbox.clock.advance(data["advance"])
    except ValueError as error:
        raise ControlError(str(error)) from None
    return json_response(sandbox.clock.describe())


@bp.post("/install")
def install() -> Response:
    """Install the app as the admin: install page, installFinish, ONAPPINSTALL."""
    sandbox = current_sandbox()
    return json_response(events.install(sandbox, target_portal(sandbox, body())))


@bp.post("/uninstall")
def uninstall() -> Response:
    """Uninstall the app: ONAPPUNINSTALL to bound handlers, then remove it and its tokens."""
    data = body()
    sandbox = current_sandbox()
    clean = data.get("clean", 0)
    if clean not in (0, 1, True, False, "0", "1"):
        raise ControlError("clean must be 0 or 1")
    return json_response(
        events.uninstall(sandbox, target_portal(sandbox, data), clean in (1, True, "1"))
    )
