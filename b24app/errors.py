"""The app's error answers: ``{"error": {"code", "message"}}`` for JSON, a page for HTML.

Views and services raise :class:`AppError` with a code from the message catalogue; nothing
else ever reaches the client. Unexpected exceptions become a plain 500 without details.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from b24app.bitrix import errors as b24
from b24app.i18n import request_language, translate

log = logging.getLogger(__name__)

# Werkzeug's HTTP errors under stable codes of our own.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class AppError(Exception):
    """A failure the user should see: HTTP status, stable code, translated message."""

    def __init__(self, status: int, code: str, message: str | None = None, **params: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.explicit_message = message
        self.params = params

    def message(self, lang: str) -> str:
        """Return the message in ``lang``."""
        if self.explicit_message is not None:
            return self.explicit_message
        return translate(f"error.{self.code}", lang, **self.params)


def from_bitrix(error: b24.BitrixError) -> AppError:
    """Translate a Bitrix24 failure into what the user is told (one table for the app)."""
    if isinstance(error, b24.InvalidToken | b24.ExpiredToken | b24.InvalidGrant):
        return AppError(401, "reauth_required")
    if isinstance(error, b24.AccessDenied):
        return AppError(403, "permission_denied" if error.write else "no_store_access")
    if isinstance(error, b24.InsufficientScope):
        return AppError(403, "insufficient_scope")
    if isinstance(error, b24.UserAccessError):
        return AppError(403, "user_access_error")
    if isinstance(error, b24.PortalGone | b24.PaymentRequired):
        return AppError(403, "portal_gone")
    if isinstance(error, b24.UnsafeEndpoint):
        return AppError(403, "unsafe_portal")
    if isinstance(error, b24.NotFound):
        return AppError(404, "bitrix_not_found")
    if isinstance(error, b24.InvalidArgument):
        return AppError(400, "bitrix_invalid_argument")
    if isinstance(error, b24.RateLimited | b24.OperationTimeLimit | b24.Overloaded):
        return AppError(503, "portal_busy")
    if isinstance(error, b24.ForeignApp):
        return AppError(403, "foreign_app")
    return AppError(502, "portal_unavailable")


def wants_json() -> bool:
    """Tell whether the client expects JSON rather than a page."""
    if request.path.startswith(("/api/", "/events")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(status: int, code: str, message: str) -> Response:
    """Render one error as JSON or as a page, whichever the client wants."""
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = status
        return response
    lang = request_language()
    title = translate(f"title.{status}", lang, default=translate("title.error", lang))
    html = render_template("error.html", status=status, code=code, title=title, message=message)
    return Response(html, status=status, mimetype="text/html")


def handle_app_error(error: AppError) -> Response:
    """Answer an AppError."""
    return error_response(error.status, error.code, error.message(request_language()))


def handle_http_error(error: HTTPException) -> Response:
    """Answer routing and protocol errors (404, 405, bad JSON...) in the same shape."""
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    lang = request_language()
    return error_response(status, code, translate(f"error.{code}", lang))


def handle_unexpected(error: Exception) -> Response:
    """Log an unexpected failure and answer 500 without any detail."""
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(
        500, "internal_error", translate("error.internal_error", request_language())
    )


def init_errors(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
