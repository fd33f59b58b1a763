"""What can go wrong, as the user is told it: typed errors with stable codes.

Services and the security layer raise these; they import no Flask and choose no HTTP status.
The web layer (``b24app.views.errors``) is the one place that turns a class into a status
and a code into a message in the user's language. Bitrix24's own failures arrive as
:mod:`b24app.bitrix.errors` exceptions and are translated here, once, by :func:`from_bitrix`.
"""

from __future__ import annotations

import math
import time
from typing import Any

from b24app.bitrix import errors as b24


class AppError(Exception):
    """A failure the user should see, under a stable ``code`` with message ``params``."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class BadRequest(AppError):
    """The request cannot be handled as sent (malformed, not from Bitrix24...)."""


class InvalidInput(BadRequest):
    """A field of the request is missing, of the wrong type or out of range."""

    def __init__(self, code: str, field: str, detail: str = "", **params: Any) -> None:
        super().__init__(code, field=field, detail=detail, **params)
        self.field = field
        self.detail = detail


class Unauthorized(AppError):
    """The caller is not (or no longer) signed in: reopen the app."""


class Forbidden(AppError):
    """The caller is known but may not do this."""


class NotFound(AppError):
    """The thing the request names does not exist."""


class Conflict(AppError):
    """The request no longer matches the current state (the binding changed meanwhile)."""


class Busy(AppError):
    """Bitrix24 is rate limiting or out of time budget; ``retry_after`` is in seconds."""

    def __init__(self, code: str = "portal_busy", retry_after: float | None = None) -> None:
        # Unknown: the portal's bucket drains two requests a second, so a moment is enough.
        seconds = max(1, math.ceil(retry_after if retry_after is not None else 2.0))
        super().__init__(code, seconds=seconds)
        self.retry_after = seconds


class Unavailable(AppError):
    """Bitrix24 (or its OAuth server) failed or did not answer."""


# Every code the app answers with; each has an ``error.<code>`` message in both catalogues.
ERROR_CODES: frozenset[str] = frozenset(
    {
        # protocol and validation
        "bad_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "payload_too_large",
        "unsupported_media_type",
        "too_many_requests",
        "http_error",
        "internal_error",
        "invalid_field",
        "missing_field",
        "unknown_field",
        # opening, sessions, OAuth
        "not_from_bitrix24",
        "session_required",
        "session_invalid",
        "session_expired",
        "portal_not_installed",
        "auth_invalid",
        "auth_mismatch",
        "foreign_app",
        "unsafe_portal",
        "oauth_unavailable",
        "oauth_state_invalid",
        "oauth_code_invalid",
        "reauth_required",
        # install and events
        "install_not_admin",
        "install_bind_failed",
        "bad_event",
        "unsupported_event",
        "event_forbidden",
        # rights
        "permission_denied",
        "no_store_access",
        "insufficient_scope",
        "user_access_error",
        "portal_gone",
        # Bitrix24 answers
        "bitrix_not_found",
        "bitrix_invalid_argument",
        "portal_busy",
        "portal_unavailable",
        "change_unconfirmed",
        # binding
        "order_not_found",
        "owner_not_found",
        "owner_type_not_offered",
        "binding_changed",
        "history_not_found",
        "not_undoable",
        "undo_conflict",
        # bulk jobs
        "too_many_orders",
        "job_not_found",
        "job_finished",
        "job_running",
        "nothing_to_retry",
    }
)


def from_bitrix(error: b24.BitrixError) -> AppError:
    """Translate a Bitrix24 failure into what the user is told (the one table for the app)."""
    if isinstance(error, b24.InvalidToken | b24.ExpiredToken | b24.InvalidGrant):
        return Unauthorized("reauth_required")
    if isinstance(error, b24.AccessDenied):
        return Forbidden("permission_denied" if error.write else "no_store_access")
    if isinstance(error, b24.InsufficientScope):
        return Forbidden("insufficient_scope")
    if isinstance(error, b24.UserAccessError):
        return Forbidden("user_access_error")
    if isinstance(error, b24.PortalGone | b24.PaymentRequired):
        return Forbidden("portal_gone")
    if isinstance(error, b24.UnsafeEndpoint):
        return Forbidden("unsafe_portal")
    if isinstance(error, b24.ForeignApp):
        return Forbidden("foreign_app")
    if isinstance(error, b24.NotFound):
        return NotFound("bitrix_not_found")
    if isinstance(error, b24.InvalidArgument):
        return BadRequest("bitrix_invalid_argument")
    if isinstance(error, b24.BudgetExceeded):
        return Busy(retry_after=error.retry_after)
    if isinstance(error, b24.OperationTimeLimit):
        wait = error.reset_at - time.time() if error.reset_at is not None else None
        return Busy(retry_after=wait)
    if isinstance(error, b24.RateLimited | b24.Overloaded):
        return Busy(retry_after=None)
    return Unavailable("portal_unavailable")
