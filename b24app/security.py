"""Session tokens, OAuth state, frame-ancestors and log scrubbing.

The app page carries a short-lived signed session token (a JWT, HS256) and every API call
sends it back as ``Authorization: Bearer``: no cookie is needed inside the Bitrix24 iframe.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import OctKey
from werkzeug.wrappers import Response

from b24app.errors import AppError, BadRequest, Unauthorized
from b24app.models import Portal
from b24app.rights import Rights
from b24app.services.prefetch import read_for_session

ALGORITHM = "HS256"
STATE_TTL = 600
# A portal address as Bitrix24 sends it in DOMAIN: a host name and an optional port.
_HOST_PORT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?$")

P = ParamSpec("P")
R = TypeVar("R")


def _derived_key(purpose: str) -> OctKey:
    """Derive a signing key for one purpose from SECRET_KEY (so purposes never mix)."""
    secret = current_app.config["SECRET_KEY"].encode()
    raw = hmac.new(secret, f"b24app:{purpose}:v1".encode(), hashlib.sha256).digest()
    return OctKey.import_key(raw)


@dataclass(frozen=True)
class SessionContext:
    """Who is calling the API: the portal, the Bitrix24 user and what they may do."""

    portal: Portal
    user_id: int
    user_name: str
    rights: Rights
    lang: str
    expires_at: int


def issue_session_token(
    portal: Portal, user_id: int, user_name: str, rights: Rights, lang: str
) -> str:
    """Sign a session token for ``user_id`` on ``portal``."""
    now = int(time.time())
    claims = {
        "iss": current_app.config["PUBLIC_URL"],
        "aud": current_app.config["B24_CLIENT_ID"],
        "sub": f"{portal.member_id}:{user_id}",
        "pid": portal.id,
        "iat": now,
        "nbf": now,
        "exp": now + int(current_app.config["SESSION_TTL"]),
        "jti": secrets.token_urlsafe(8),
        "name": user_name,
        "rights": rights.as_dict(),
        "lang": lang,
    }
    return jwt.encode({"alg": ALGORITHM}, claims, _derived_key("session"), algorithms=[ALGORITHM])


def _claims(value: str, purpose: str, leeway: int = 5) -> dict[str, Any]:
    """Verify signature, audience and times of ``value``; return its claims."""
    try:
        token = jwt.decode(value, _derived_key(purpose), algorithms=[ALGORITHM])
        registry = jwt.JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": current_app.config["PUBLIC_URL"]},
            aud={"essential": True, "value": current_app.config["B24_CLIENT_ID"]},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        registry.validate(token.claims)
    except ExpiredTokenError as exc:
        raise Unauthorized("session_expired") from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise Unauthorized("session_invalid") from exc
    return dict(token.claims)


def verify_session_token(value: str) -> SessionContext:
    """Check a session token and that its portal is still installed; return the caller."""
    claims = _claims(value, "session")
    try:
        member_id, user_part = str(claims["sub"]).rsplit(":", 1)
        user_id = int(user_part)
        portal_id = int(claims["pid"])
        rights = Rights.from_dict(claims["rights"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Unauthorized("session_invalid") from exc
    lang = str(claims.get("lang") or "en")
    # The caller's token row and catalog come along, for the request's Bitrix24 call.
    portal = read_for_session(portal_id, user_id, lang)
    if portal is None or not hmac.compare_digest(portal.member_id, member_id):
        raise Unauthorized("session_invalid")
    if not portal.is_installed:
        raise Unauthorized("portal_not_installed")
    return SessionContext(
        portal=portal,
        user_id=user_id,
        user_name=str(claims.get("name") or ""),
        rights=rights,
        lang=lang,
        expires_at=int(claims["exp"]),
    )


def bearer_token() -> str | None:
    """Return the bearer token of the current request, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require_session(view: Callable[P, R]) -> Callable[P, R]:
    """Let the view run only for a valid bearer session token; put it in ``g.session``."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        """Authenticate, then call the view."""
        token = bearer_token()
        if token is None:
            raise Unauthorized("session_required")
        g.session = verify_session_token(token)
        return view(*args, **kwargs)

    return wrapper


def current_session() -> SessionContext:
    """Return the authenticated caller of this request."""
    session: SessionContext = g.session
    return session


def issue_oauth_state(member_id: str, user_id: int) -> str:
    """Sign the ``state`` for an authorization-code round trip started by this user."""
    now = int(time.time())
    claims = {
        "iss": current_app.config["PUBLIC_URL"],
        "aud": current_app.config["B24_CLIENT_ID"],
        "sub": f"{member_id}:{user_id}",
        "iat": now,
        "exp": now + STATE_TTL,
        "nonce": secrets.token_urlsafe(12),
    }
    return jwt.encode(
        {"alg": ALGORITHM}, claims, _derived_key("oauth-state"), algorithms=[ALGORITHM]
    )


def verify_oauth_state(value: str) -> tuple[str, int]:
    """Check a returned ``state``; return the (member_id, user_id) it was issued for."""
    try:
        claims = _claims(value, "oauth-state")
    except AppError as exc:
        raise BadRequest("oauth_state_invalid") from exc
    try:
        member_id, user_part = str(claims["sub"]).rsplit(":", 1)
        return member_id, int(user_part)
    except (KeyError, ValueError) as exc:
        raise BadRequest("oauth_state_invalid") from exc


# -- framing ----------------------------------------------------------------------------


def portal_origin(client_endpoint: str) -> str:
    """Return the browser origin of a portal from its REST endpoint."""
    parts = urlsplit(client_endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def origin_from_domain(domain: str | None, allow_http: bool) -> str | None:
    """Return the origin a posted DOMAIN frames us from, or None when it is not a host.

    Only used to let an error page show inside the portal: nothing is ever sent there.
    """
    if not domain or not _HOST_PORT.match(domain):
        return None
    # Host names ignore case; the origin is written the way browsers serialise it.
    domain = domain.lower()
    host = domain.rsplit(":", 1)[0]
    if allow_http and host in {"localhost", "127.0.0.1"}:
        return f"http://{domain}"
    return f"https://{domain}"


def _script_source(js_url: str) -> str:
    """Return the CSP source expression that allows the BX24 script."""
    parts = urlsplit(js_url if "//" in js_url else f"//{js_url}")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else parts.netloc


def content_security_policy(frame_ancestors: str | None) -> str:
    """Build the CSP header: who may frame the page and where scripts may come from."""
    script_src = " ".join(["'self'", _script_source(current_app.config["B24_JS_URL"])])
    ancestors = frame_ancestors or "'none'"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_src}",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors}",
        ]
    )


def allow_framing_by(origin: str | None) -> None:
    """Let this response be framed by ``origin`` (the portal) only."""
    g.frame_ancestor = origin


def _apply_security_headers(response: Response) -> Response:
    """Add the per-response CSP (framed pages get their portal) and related headers."""
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = content_security_policy(
            g.get("frame_ancestor")
        )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    # Pages and API answers are per user: never let a shared cache keep them.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_security(app: Flask) -> None:
    """Install the response headers and the log scrubbing."""
    app.after_request(_apply_security_headers)
    install_log_scrubbing()


# -- log scrubbing ------------------------------------------------------------------------

_SECRET_KEYS = (
    r"auth|access_token|refresh_token|auth_id|refresh_id|application_token|client_secret|"
    r"token|secret|password|authorization"
)
_PATTERNS = [
    # key=value, key: value, "key": "value", auth[access_token]=value
    re.compile(
        r"(?i)((?:\b|\[)(?:" + _SECRET_KEYS + r")\]?[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}\]]+)"
    ),
    # An authorization code or OAuth state in a logged URL.
    re.compile(r"([?&](?:code|state)=)([^&\s\"']+)"),
    re.compile(r"(?i)(\bbearer\s+)([\w.~+/-]+=*)"),
    # JWTs and Fernet ciphertexts, wherever they appear.
    re.compile(r"()(eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]+)"),
    re.compile(r"()(gAAAAA[\w-]{20,}=*)"),
    # Long opaque runs: Bitrix24 access and refresh tokens. A bare 32-digit hex run is left
    # alone: that is a member_id, which logs need.
    re.compile(r"()(\b(?![0-9a-f]{32}\b)[A-Za-z0-9]{32,}\b)"),
]
REDACTED = "[redacted]"


def scrub(text: str) -> str:
    """Replace anything token-like in ``text``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


_installed = False


def install_log_scrubbing() -> None:
    """Scrub every log record the process creates, whatever logger or handler it meets.

    A belt only: the code never passes a token to a log call in the first place.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        """Create the record, then scrub its message and traceback text."""
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
