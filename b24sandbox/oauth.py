"""The OAuth server: ``/oauth/authorize/`` and ``/oauth/token/``.

Errors are ``{"error", "error_description"}`` with HTTP 400 for every code (the docs give
no statuses; the official Python SDK files ``invalid_client`` and ``invalid_grant`` under
400). The token endpoint answers on every portal origin; the documented OAuth server is
the first portal's origin.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request

from b24sandbox import tokens
from b24sandbox.faults import OAUTH_TOKEN, hold_answer
from b24sandbox.params import parse_pairs
from b24sandbox.rest import apply_fault, json_response
from b24sandbox.state import current_portal, current_sandbox
from b24sandbox.users import USERS

bp = Blueprint("oauth", __name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(code: str, description: str, status: int = 400) -> Response:
    """Answer an OAuth error."""
    response = json_response({"error": code, "error_description": description}, status)
    response.headers.update(NO_STORE)
    return response


def oauth_params() -> dict[str, Any]:
    """Read the token request from the query string and a form or JSON body."""
    params = parse_pairs(request.args.items(multi=True))
    params.update(parse_pairs(request.form.items(multi=True)))
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    return params


@bp.route("/oauth/token/", methods=["GET", "POST"])
@bp.route("/oauth/token", methods=["GET", "POST"])
def token() -> Response:
    """Exchange an authorization code or a refresh token for a new token pair."""
    sandbox = current_sandbox()
    fault = sandbox.faults.take(OAUTH_TOKEN, wildcard=False)
    if fault is not None:
        injected = apply_fault(sandbox, fault)
        if injected is not None:
            return injected
    params = oauth_params()
    grant_type = params.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token"):
        return oauth_error(
            "invalid_request", "grant_type must be authorization_code or refresh_token"
        )
    secret_field = "code" if grant_type == "authorization_code" else "refresh_token"
    missing = [
        name for name in ("client_id", "client_secret", secret_field) if not params.get(name)
    ]
    if missing:
        return oauth_error("invalid_request", f"Missing parameters: {', '.join(missing)}")
    if (params["client_id"], params["client_secret"]) != (
        sandbox.config.client_id,
        sandbox.config.client_secret,
    ):
        return oauth_error("invalid_client", "Invalid client credentials")
    ttl = sandbox.config.access_ttl
    if grant_type == "authorization_code":
        grant = tokens.redeem_code(sandbox.db, str(params["code"]), now=sandbox.clock.time())
        if grant is None:
            return oauth_error("invalid_grant", "Invalid authorization code")
        portal = sandbox.portal(grant.portal_id)
        installation = sandbox.begin_install(portal)
        pair = tokens.issue_pair(
            sandbox.db,
            grant.portal_id,
            grant.user_id,
            grant.scope,
            ttl,
            installation.application_token,
            now=sandbox.clock.time(),
        )
    else:
        try:
            pair = tokens.rotate(
                sandbox.db, str(params["refresh_token"]), ttl, now=sandbox.clock.time()
            )
        except tokens.RefreshRefused as refused:
            return oauth_error(refused.code, refused.description)
        portal = sandbox.portal(pair.grant.portal_id)
        sandbox.calls.record_refresh(portal.id)
    response = json_response(sandbox.token_response(portal, pair))
    response.headers.update(NO_STORE)
    # The pair is rotated (the old refresh token is spent) before the answer is held back.
    hold_answer(fault, sandbox.stopping)
    return response


@bp.get("/oauth/authorize/")
@bp.get("/oauth/authorize")
def authorize() -> Response:
    """Let the user (``?user=N``, default 1) authorize the app: redirect with a code."""
    sandbox, portal = current_sandbox(), current_portal()
    if request.args.get("client_id") != sandbox.config.client_id:
        return Response("Unknown application (client_id).", 400, mimetype="text/plain")
    try:
        user_id = int(request.args.get("user", 1))
    except ValueError:
        user_id = 0
    if user_id not in USERS:
        return Response("Unknown user.", 400, mimetype="text/plain")
    sandbox.begin_install(portal)  # authorizing an app puts it on the portal
    code = tokens.create_code(
        sandbox.db, portal.id, user_id, sandbox.config.scope, now=sandbox.clock.time()
    )
    query = {
        "code": code,
        "state": request.args.get("state", ""),
        "domain": portal.domain,
        "member_id": portal.member_id,
        "scope": sandbox.config.scope,
        "server_domain": sandbox.oauth_portal.domain,
    }
    target = f"{sandbox.config.app_url.rstrip('/')}/oauth/callback?{urlencode(query)}"
    return redirect(target, code=302)
