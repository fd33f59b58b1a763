"""The one place errors become answers: JSON ``{"error": {"code", "message"}}`` or a page.

A typed error's class decides the HTTP status; its code picks the message in the user's
language. Bitrix24 failures that a service let through are translated with ``from_bitrix``.
Unexpected exceptions become a plain 500 without details.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from b24app.bitrix.errors import BitrixError
from b24app.errors import (
    AppError,
    BadRequest,
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
    from_bitrix,
)
from b24app.i18n import DEFAULT_LANGUAGE, request_language, translate

log = logging.getLogger(__name__)

# Most specific class first: the first match decides the status.
_STATUS: tuple[tuple[type[AppError], int], ...] = (
    (BadRequest, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 502),
    (Busy, 503),
)

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


def answer_language() -> str:
    """Pick the language for an error answer without ever failing.

    Reading the language may read a form body, and the body may be the very thing that is
    refused (too large, unreadable): then the answer is in the default language.
    """
    try:
        return request_language()
    except HTTPException:
        return DEFAULT_LANGUAGE


def status_of(error: AppError) -> int:
    """Return the HTTP status for a typed error."""
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def message_of(error: AppError, lang: str) -> str:
    """Return the user's message for a typed error."""
    return translate(f"error.{error.code}", lang, **error.params)


def wants_json() -> bool:
    """Tell whether the client expects JSON rather than a page."""
    if request.path.startswith(("/api/", "/events")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(
    status: int, code: str, message: str, extra: dict[str, object] | None = None
) -> Response:
    """Render one error as JSON or as a page, whichever the client wants."""
    if wants_json():
        body: dict[str, object] = {"code": code, "message": message, **(extra or {})}
        response = jsonify({"error": body})
        response.status_code = status
        return response
    lang = answer_language()
    title = translate(f"title.{status}", lang, default=translate("title.error", lang))
    html = render_template("error.html", status=status, code=code, title=title, message=message)
    return Response(html, status=status, mimetype="text/html")


def handle_app_error(error: AppError) -> Response:
    """Answer a typed error."""
    extra: dict[str, object] = {}
    if isinstance(error, InvalidInput):
        extra["field"] = error.field
    if isinstance(error, Busy):
        extra["retryAfter"] = error.retry_after
    response = error_response(
        status_of(error), error.code, message_of(error, answer_language()), extra
    )
    if isinstance(error, Busy):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def handle_bitrix_error(error: BitrixError) -> Response:
    """Answer a Bitrix24 failure that reached the web layer untranslated."""
    return handle_app_error(from_bitrix(error))


def handle_http_error(error: HTTPException) -> Response:
    """Answer routing and protocol errors (404, 405, bad JSON...) in the same shape."""
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    return error_response(status, code, translate(f"error.{code}", answer_language()))


def handle_unexpected(error: Exception) -> Response:
    """Log an unexpected failure and answer 500 without any detail."""
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(
        500, "internal_error", translate("error.internal_error", answer_language())
    )


def init_errors(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(BitrixError, handle_bitrix_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
