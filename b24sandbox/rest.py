"""The REST dispatcher: ``/rest/<method>`` with Bitrix24's envelope, errors and limits.

Order of checks, per request: injected fault, rate limit, token, method, scope, handler.
Every call is logged (method, user, status, error code; never a token) for
``GET /_sandbox/calls``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Response, g, request

from b24sandbox import tokens
from b24sandbox.clock import Mark
from b24sandbox.faults import MALFORMED, TIMEOUT, Fault, hold_answer
from b24sandbox.params import is_true, parse_pairs, request_params
from b24sandbox.registry import (
    CallContext,
    MethodSpec,
    Page,
    RestError,
    find_method,
    rest_method,
)
from b24sandbox.state import Portal, Sandbox, current_portal, current_sandbox

log = logging.getLogger(__name__)

bp = Blueprint("rest", __name__)

TIMEOUT_SECONDS = 30.0  # longer than any sane client timeout, yet bounded
OPERATING_WINDOW = 600  # Bitrix24 accounts method time in 10-minute windows

METHOD_NOT_FOUND = ("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
NO_AUTH = ("NO_AUTH_FOUND", "Wrong authorization data", 401)
EXPIRED = ("expired_token", "The access token provided has expired.", 401)
INSUFFICIENT_SCOPE = (
    "insufficient_scope",
    "The request requires higher privileges than provided by the access token.",
    403,
)
QUERY_LIMIT = ("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)


def canonical_name(method: str) -> str:
    """Return the logged, canonical form of a method name: lowercase, no ``.json``."""
    name = method.strip().strip("/").lower()
    return name[: -len(".json")] if name.endswith(".json") else name


def time_block(started: Mark, finished: Mark, full: bool = True) -> dict[str, Any]:
    """Build the ``time`` object; ``full`` adds ``operating_reset_at`` and ``operating``.

    Moments come from the sandbox clock; ``duration`` and ``processing`` are the real
    seconds the call took.
    """
    elapsed = finished.elapsed_since(started)
    block: dict[str, Any] = {
        "start": started.at,
        "finish": finished.at,
        "duration": elapsed,
        "processing": elapsed,
        "date_start": _iso(started.at),
        "date_finish": _iso(finished.at),
    }
    if full:
        block["operating_reset_at"] = int(started.at) + OPERATING_WINDOW
        block["operating"] = 0
    return block


def _iso(moment: float) -> str:
    """Format a Unix time as ISO-8601 with the local offset, as Bitrix24 does."""
    return datetime.fromtimestamp(moment).astimezone().isoformat(timespec="seconds")


def json_response(body: Any, status: int = 200) -> Response:
    """Serialise a body without reordering its keys."""
    return Response(json.dumps(body), status=status, mimetype="application/json")


def error_body(code: str, description: str, **extra: Any) -> dict[str, Any]:
    """Return Bitrix24's error body."""
    return {"error": code, "error_description": description, **extra}


@dataclass
class Caller:
    """Who a request acts as, once its token checked out."""

    portal: Portal
    user_id: int
    scope: frozenset[str]
    oauth_server: bool
    expires_at: float


def authenticate(
    sandbox: Sandbox, origin: Portal, token: Any, method: str
) -> tuple[Caller | None, RestError | None]:
    """Check an access token against the portal it was sent to."""
    if not isinstance(token, str) or not token:
        return None, RestError(*NO_AUTH)
    grant = tokens.find_access(sandbox.db, token)
    if grant is None:
        return None, RestError(*NO_AUTH)
    oauth_check = origin is sandbox.oauth_portal and method == "app.info"
    if grant.portal_id != origin.id and not oauth_check:
        return None, RestError(*NO_AUTH)  # a token of another portal means nothing here
    if grant.expired(sandbox.clock.time()):
        return None, RestError(*EXPIRED)
    portal = sandbox.portal(grant.portal_id)
    scope = frozenset(s for s in grant.scope.split(",") if s)
    return (
        Caller(portal, grant.user_id, scope, origin is sandbox.oauth_portal, grant.expires_at),
        None,
    )


def scope_allows(spec: MethodSpec, scope: frozenset[str]) -> bool:
    """Whether a token's scope covers a method (``basic`` is always granted)."""
    needed = {s.strip() for s in spec.scope.split(",") if s.strip()}
    return not needed or "basic" in needed or bool(needed & scope)


def run_method(ctx: CallContext, spec: MethodSpec, params: dict[str, Any]) -> Any:
    """Run a handler after the scope check; raises RestError."""
    if not scope_allows(spec, ctx.scope):
        raise RestError(*INSUFFICIENT_SCOPE)
    return spec.handler(ctx, params)


def success_body(result: Any, started: Mark, finished: Mark) -> dict[str, Any]:
    """Wrap a handler's return value in the envelope (``total``/``next`` for pages)."""
    if isinstance(result, Page):
        body: dict[str, Any] = {"result": result.result}
        if result.next is not None:
            body["next"] = result.next
        if result.total is not None:
            body["total"] = result.total
    else:
        body = {"result": result}
    body["time"] = time_block(started, finished)
    return body


@bp.route("/rest/<path:method>", methods=["GET", "POST"])
def rest_call(method: str) -> Response:
    """Answer one REST call the way the portal does."""
    sandbox, origin = current_sandbox(), current_portal()
    started = sandbox.clock.mark()
    name = canonical_name(method)
    user_id: int | None = None
    try:
        fault = sandbox.faults.take(name)
        if fault is not None:
            if fault.replaces_answer:
                # Logged before any wait, so a hanging answer cannot land in a later log.
                sandbox.calls.record(
                    name, None, fault.logged_status(), fault.error_code(), origin.id
                )
            injected = apply_fault(sandbox, fault)
            if injected is not None:
                return injected
        if not sandbox.limits.admit(origin.id):
            raise RestError(*QUERY_LIMIT)
        params = request_params(request)
        caller, auth_error = authenticate(sandbox, origin, params.pop("auth", None), name)
        if auth_error is not None:
            raise auth_error
        assert caller is not None
        user_id = caller.user_id
        spec = find_method(name)
        if spec is None:
            raise RestError(*METHOD_NOT_FOUND)
        ctx = CallContext(
            sandbox=sandbox,
            portal=caller.portal,
            user_id=caller.user_id,
            scope=caller.scope,
            oauth_server=caller.oauth_server,
            token_expires_at=caller.expires_at,
        )
        outcome = run_method(ctx, spec, params)
        body = success_body(outcome, started, sandbox.clock.mark())
    except RestError as error:
        sandbox.calls.record(
            name, user_id, error.status, error.code, origin.id, commands=batch_commands()
        )
        return json_response(error.body(), error.status)
    except Exception:
        log.exception("REST method %s failed", name)
        sandbox.calls.record(
            name, user_id, 500, "INTERNAL_SERVER_ERROR", origin.id, commands=batch_commands()
        )
        return json_response(error_body("INTERNAL_SERVER_ERROR", "Internal server error"), 500)
    sandbox.calls.record(name, user_id, 200, None, origin.id, commands=batch_commands())
    hold_answer(fault, sandbox.stopping)
    return json_response(body)


def batch_commands() -> list[str] | None:
    """The methods of the batch this request ran (None unless it ran ``batch``)."""
    commands = g.get("batch_commands")
    return list(commands) if commands is not None else None


def apply_fault(sandbox: Sandbox, fault: Fault) -> Response | None:
    """Delay the call and, when the fault answers, return its response."""
    if fault.latency_ms:
        sandbox.stopping.wait(fault.latency_ms / 1000)
    if fault.error == TIMEOUT:
        sandbox.stopping.wait(TIMEOUT_SECONDS)
        return json_response(error_body("ERROR_UNEXPECTED_ANSWER", "Request timed out"), 504)
    if fault.error == MALFORMED:
        return Response('{"result": {"orders": [{"id": 1,', 200, mimetype="application/json")
    if not fault.answers:
        return None
    if fault.status is not None and 300 <= fault.status < 400:
        return redirect_response(fault)
    status = fault.status or 400
    body = error_body(fault.error_code(), fault.description())
    if fault.error_code() == "OPERATION_TIME_LIMIT":
        now = sandbox.clock.mark()
        body["time"] = time_block(now, now)
        if fault.reset_in is not None:
            body["time"]["operating_reset_at"] = int(now.at + fault.reset_in)
    return json_response(body, status)


def redirect_response(fault: Fault) -> Response:
    """Answer like a portal that moved: a redirect to the same call at the new address."""
    location = fault.location or ""
    if location.endswith("/rest/") and "/rest/" in request.path:
        location += request.path.split("/rest/", 1)[1]
        if request.query_string:
            location += "?" + request.query_string.decode()
    response = Response("", status=fault.status or 302)
    response.headers["Location"] = location
    return response


# --- batch -----------------------------------------------------------------------------

BATCH_LIMIT = 50
_REFERENCE = re.compile(r"\$result\[([^\]]*)\]((?:\[[^\]]*\])*)")
_INDEX = re.compile(r"\[([^\]]*)\]")


def php_keyed(members: dict[str, Any]) -> Any:
    """Serialise a keyed member as PHP would: ``[]`` when empty, a list for keys 0..n-1."""
    if not members:
        return []
    if list(members) == [str(i) for i in range(len(members))]:
        return list(members.values())
    return members


def resolve_reference(results: dict[str, Any], key: str, path: str) -> Any:
    """Follow ``$result[key][field][0]...`` into earlier results; None when absent."""
    value: Any = results.get(key)
    for step in _INDEX.findall(path):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.lstrip("-").isdigit():
            index = int(step)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
    return value


def substitute(value: Any, results: dict[str, Any]) -> Any:
    """Replace ``$result[...]`` references in a parameter value."""
    if isinstance(value, dict):
        return {k: substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, results) for v in value]
    if not isinstance(value, str) or "$result[" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole:  # a whole-value reference keeps the referenced type (a list stays a list)
        return resolve_reference(results, whole.group(1), whole.group(2))

    def scalar(match: re.Match[str]) -> str:
        """Render one embedded reference as text."""
        found = resolve_reference(results, match.group(1), match.group(2))
        if isinstance(found, bool):
            return "1" if found else ""
        return "" if found is None or isinstance(found, dict | list) else str(found)

    return _REFERENCE.sub(scalar, value)


def parse_command(command: Any) -> tuple[str, dict[str, Any]]:
    """Split ``"method?urlencoded params"`` into a canonical name and parameters."""
    text = str(command)
    method, _, query = text.partition("?")
    return canonical_name(method), parse_pairs(parse_qsl(query, keep_blank_values=True))


@rest_method("batch", "basic", batchable=False)
def batch(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Run up to 50 commands in order, with ``halt`` and ``$result`` references."""
    commands = params.get("cmd") or {}
    if isinstance(commands, list):
        commands = {str(i): c for i, c in enumerate(commands)}
    if not isinstance(commands, dict):
        raise RestError(
            "ERROR_ARGUMENT", "Argument 'cmd' must be an array", 400, {"argument": "cmd"}
        )
    if not ctx.in_batch:
        # For the call log: which methods this batch carried (a nested one is refused anyway).
        g.batch_commands = [parse_command(c)[0] for c in commands.values()]
    if len(commands) > BATCH_LIMIT:
        raise RestError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
    halt = is_true(params.get("halt", False))
    results: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    totals: dict[str, Any] = {}
    nexts: dict[str, Any] = {}
    times: dict[str, Any] = {}
    sandbox = ctx.sandbox
    for key, command in commands.items():
        key = str(key)
        started = sandbox.clock.mark()
        name, sub_params = parse_command(command)
        sub_params.pop("auth", None)  # a command runs with the batch's own token
        try:
            spec = find_method(name)
            if spec is None:
                raise RestError(*METHOD_NOT_FOUND)
            if not spec.batchable:
                raise RestError(
                    "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
                )
            sub_ctx = replace(ctx, in_batch=True)
            outcome = run_method(sub_ctx, spec, substitute(sub_params, results))
        except RestError as error:
            sandbox.calls.record(name, ctx.user_id, error.status, error.code, ctx.portal.id, True)
            errors[key] = error.body()
            times[key] = time_block(started, sandbox.clock.mark(), full=False)
            if halt:
                break
            continue
        sandbox.calls.record(name, ctx.user_id, 200, None, ctx.portal.id, True)
        if isinstance(outcome, Page):
            results[key] = outcome.result
            if outcome.total is not None:
                totals[key] = outcome.total
            if outcome.next is not None:
                nexts[key] = outcome.next
        else:
            results[key] = outcome
        times[key] = time_block(started, sandbox.clock.mark(), full=False)
    return {
        "result": php_keyed(results),
        "result_error": php_keyed(errors),
        "result_total": php_keyed(totals),
        "result_next": php_keyed(nexts),
        "result_time": php_keyed(times),
    }
