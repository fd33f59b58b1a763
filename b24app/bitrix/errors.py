"""Bitrix24 error codes and HTTP statuses mapped, in one table, to typed exceptions.

Every exception carries the Bitrix24 ``code`` (always a string: numeric codes such as
``200040300020`` may arrive as JSON numbers), the ``description`` Bitrix24 gave and the HTTP
``status`` when there was one. None of them ever carries a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class BitrixError(Exception):
    """A failure reported by Bitrix24 (portal REST API or OAuth server) or on the way to it."""

    # Whether a read (a call that changes nothing) may be sent again after this error.
    retryable: ClassVar[bool] = False

    def __init__(self, code: str, description: str = "", status: int | None = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.status = status
        # Set by the client when a call fails: whether one of its attempts may have reached
        # the portal and been applied without its answer coming back.
        self.maybe_applied = False

    def __repr__(self) -> str:
        """Show class, code and status for logs."""
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r})"


class ExpiredToken(BitrixError):
    """The access token has expired (401 ``expired_token``): refresh and retry once."""


class InvalidToken(BitrixError):
    """The token is unusable (bad, revoked, foreign): the user must reopen the app."""


class InsufficientScope(BitrixError):
    """The app's scopes do not cover the method (403 ``insufficient_scope``)."""


class UserAccessError(BitrixError):
    """The admin limited the app to some users and this user is not one of them."""


class AccessDenied(BitrixError):
    """The user lacks the right for this action; ``write`` tells a denied change from a read."""

    def __init__(
        self, code: str, description: str = "", status: int | None = None, *, write: bool = False
    ) -> None:
        super().__init__(code, description, status)
        self.write = write


class DuplicateEntry(BitrixError):
    """The identical record already exists."""


class AlreadyBound(DuplicateEntry):
    """``crm.orderentity.add`` for a triple that is already the order's binding (201650000001)."""


class NotFound(BitrixError):
    """The order, relation or entity the call names does not exist."""


class OrderNotFound(NotFound):
    """The order does not exist (``200540400001``, or ``201240400001`` on sale.order.get)."""


class RelationNotFound(NotFound):
    """``crm.orderentity.deleteByFilter`` found no such binding (``201640400004``)."""


class RateLimited(BitrixError):
    """The portal's leaky bucket is full (503 ``QUERY_LIMIT_EXCEEDED``)."""

    retryable = True


class OperationTimeLimit(BitrixError):
    """The method's time budget is spent (429); ``reset_at`` is when it lifts (unix time)."""

    def __init__(
        self,
        code: str,
        description: str = "",
        status: int | None = None,
        *,
        reset_at: float | None = None,
    ) -> None:
        super().__init__(code, description, status)
        self.reset_at = reset_at


class BudgetExceeded(BitrixError):
    """The call's time budget ran out (limiter waits, time-limit waits and retries included).

    ``retry_after`` is how long the caller should wait before trying again, in seconds.
    Raised by the client, never by Bitrix24: an interactive request fails with this instead
    of outliving the web worker.
    """

    def __init__(self, retry_after: float, cause: BitrixError | None = None) -> None:
        super().__init__("BUDGET_EXCEEDED", "the request's time budget is spent", None)
        self.retry_after = retry_after
        self.cause = cause


class Overloaded(BitrixError):
    """REST is blocked by hand for this portal (``OVERLOAD_LIMIT``); retrying does not help."""


class ServerError(BitrixError):
    """Bitrix24 failed on its side (5xx, ``INTERNAL_SERVER_ERROR``...)."""

    retryable = True


class PortalGone(BitrixError):
    """The portal was deleted, or the app is no longer installed or paid for there."""


class InvalidArgument(BitrixError):
    """Bitrix24 rejected the parameters (code ``0``, ``INVALID_ARG_VALUE``, ``ERROR_ARGUMENT``)."""


class MethodNotFound(BitrixError):
    """The REST method does not exist on this portal."""


class MethodError(BitrixError):
    """A method refused the call with a code this table does not know."""


class BatchError(BitrixError):
    """The ``batch`` call itself was refused."""


class BatchLengthExceeded(BatchError):
    """More than 50 commands in one batch."""


class BatchMethodNotAllowed(BatchError):
    """A command's method may not run inside a batch."""


class PortalMoved(BitrixError):
    """The portal answered with a redirect the client could not follow."""

    def __init__(
        self, code: str, description: str = "", status: int | None = None, *, location: str = ""
    ) -> None:
        super().__init__(code, description, status)
        self.location = location


class UnsafeEndpoint(BitrixError):
    """A portal or OAuth URL points somewhere no request may go (loopback, private, http...)."""


class ForeignApp(BitrixError):
    """The verified token belongs to another application."""


class TransportError(BitrixError):
    """No usable answer: timeout, connection failure or a body that is not JSON.

    ``timeout`` tells a timeout from other failures; ``maybe_sent`` is False only when the
    request surely never reached the server (so even a write may be sent again).
    """

    retryable = True

    def __init__(
        self,
        code: str,
        description: str = "",
        status: int | None = None,
        *,
        timeout: bool = False,
        maybe_sent: bool = True,
    ) -> None:
        super().__init__(code, description, status)
        self.timeout = timeout
        self.maybe_sent = maybe_sent


class OAuthError(BitrixError):
    """The OAuth server refused a code exchange or refresh."""


class InvalidGrant(OAuthError):
    """The code or refresh token is bad, expired or already used: the token chain is dead."""


class InvalidClient(OAuthError):
    """Wrong client id or secret, or the app is not installed on the portal."""


class InvalidRequest(OAuthError):
    """The OAuth request was malformed."""


class InvalidScope(OAuthError):
    """The requested scopes exceed the app's card."""


class PaymentRequired(OAuthError):
    """The app's trial or paid period is over."""


# One table: upper-cased REST error code -> exception class (and for AccessDenied, whether the
# code denies a write). Lookups are case-insensitive because Bitrix24 mixes cases
# (``expired_token`` next to ``NO_AUTH_FOUND``).
_REST_CODES: dict[str, type[BitrixError]] = {
    "EXPIRED_TOKEN": ExpiredToken,
    "NO_AUTH_FOUND": InvalidToken,
    "INVALID_TOKEN": InvalidToken,
    "AUTHORIZATION_ERROR": InvalidToken,
    "ERROR_OAUTH": InvalidToken,
    "INSUFFICIENT_SCOPE": InsufficientScope,
    "INVALID_SCOPE": InsufficientScope,
    "USER_ACCESS_ERROR": UserAccessError,
    "200040300020": AccessDenied,
    "200040300010": AccessDenied,
    "ACCESS_DENIED": AccessDenied,
    "INVALID_CREDENTIALS": AccessDenied,
    "ALLOWED_ONLY_INTRANET_USER": AccessDenied,
    "WRONG_AUTH_TYPE": AccessDenied,
    "201650000001": AlreadyBound,
    "200540400001": OrderNotFound,
    "201240400001": OrderNotFound,
    "201640400004": RelationNotFound,
    "NOT_FOUND": NotFound,
    "QUERY_LIMIT_EXCEEDED": RateLimited,
    "OPERATION_TIME_LIMIT": OperationTimeLimit,
    "OVERLOAD_LIMIT": Overloaded,
    "INTERNAL_SERVER_ERROR": ServerError,
    "ERROR_UNEXPECTED_ANSWER": ServerError,
    "PORTAL_DELETED": PortalGone,
    "PORTAL_NOT_FOUND": PortalGone,
    "APPLICATION_NOT_FOUND": PortalGone,
    "NOT_INSTALLED": PortalGone,
    "PAYMENT_REQUIRED": PortalGone,
    "0": InvalidArgument,
    "100": InvalidArgument,
    "INVALID_ARG_VALUE": InvalidArgument,
    "ERROR_ARGUMENT": InvalidArgument,
    "ERROR_METHOD_NOT_FOUND": MethodNotFound,
    "ERROR_BATCH_LENGTH_EXCEEDED": BatchLengthExceeded,
    "ERROR_BATCH_METHOD_NOT_ALLOWED": BatchMethodNotAllowed,
}

# Writes that may be sent again after an answer was lost, because a repeat cannot change the
# outcome: a repeat answers with this error class exactly when the first attempt succeeded
# (the triple is bound; the binding is gone), so the client reports it as that success.
IDEMPOTENT_WRITES: dict[str, type[BitrixError]] = {
    "crm.orderentity.add": AlreadyBound,
    "crm.orderentity.deletebyfilter": RelationNotFound,
}

# Access-denied codes that refuse a change (the others refuse a read or everything).
_WRITE_DENIED_CODES = frozenset({"200040300020"})

_OAUTH_CODES: dict[str, type[OAuthError]] = {
    "INVALID_GRANT": InvalidGrant,
    "INVALID_CLIENT": InvalidClient,
    "INVALID_REQUEST": InvalidRequest,
    "INVALID_SCOPE": InvalidScope,
    "INSUFFICIENT_SCOPE": InvalidScope,
    "PAYMENT_REQUIRED": PaymentRequired,
}


def normalise_code(raw: Any) -> str:
    """Return an error code as a string (JSON numbers become their decimal text)."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def _status_fallback(status: int | None) -> type[BitrixError]:
    """Pick the exception class for a code the table does not know, by HTTP status."""
    if status is None:
        return MethodError
    if status == 401:
        return InvalidToken
    if status == 403:
        return AccessDenied
    if status == 404:
        return NotFound
    if status == 429:
        return OperationTimeLimit
    if status >= 500:
        return ServerError
    return MethodError


def _reset_at(body: Mapping[str, Any]) -> float | None:
    """Read ``operating_reset_at`` from an error body (inside ``time`` or at the top)."""
    time_info = body.get("time")
    candidates = [body.get("operating_reset_at")]
    if isinstance(time_info, Mapping):
        candidates.insert(0, time_info.get("operating_reset_at"))
    for value in candidates:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                continue
    return None


def _split_body(body: Any) -> tuple[str, str, bool]:
    """Return (code, description, had_error_key) from whatever Bitrix24 sent."""
    if not isinstance(body, Mapping) or "error" not in body:
        return "", "", False
    description = body.get("error_description")
    return normalise_code(body.get("error")), "" if description is None else str(description), True


def error_from_response(status: int | None, body: Any) -> BitrixError:
    """Build the typed exception for a REST error answer (or a batch ``result_error`` entry)."""
    code, description, had_error = _split_body(body)
    cls = _REST_CODES.get(code.upper()) if code else None
    if cls is None and had_error and code == "":
        # crm.deal.list reports refusals with an empty code and only a message.
        if description.lower().startswith("access denied"):
            return AccessDenied("", description, status, write=False)
        if description:
            return InvalidArgument("", description, status)
    if cls is None:
        cls = _status_fallback(status)
        if not code:
            code = f"HTTP_{status}" if status is not None else "UNKNOWN_ERROR"
    if cls is AccessDenied:
        return AccessDenied(code, description, status, write=code in _WRITE_DENIED_CODES)
    if cls is OperationTimeLimit:
        reset_at = _reset_at(body) if isinstance(body, Mapping) else None
        return OperationTimeLimit(code, description, status, reset_at=reset_at)
    return cls(code, description, status)


def oauth_error_from_response(status: int | None, body: Any) -> OAuthError:
    """Build the typed exception for an OAuth server refusal, whatever its HTTP status."""
    code, description, _ = _split_body(body)
    cls = _OAUTH_CODES.get(code.upper(), OAuthError)
    if not code:
        code = f"HTTP_{status}" if status is not None else "UNKNOWN_ERROR"
    return cls(code, description, status)
