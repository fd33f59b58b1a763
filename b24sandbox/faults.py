"""Injected faults: the next ``count`` calls of a method answer an error or are delayed."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

# Descriptions Bitrix24 sends with the errors a fault usually imitates.
KNOWN_ERRORS: dict[str, str] = {
    "QUERY_LIMIT_EXCEEDED": "Too many requests",
    "OPERATION_TIME_LIMIT": "Method is blocked due to operation time limit.",
    "OVERLOAD_LIMIT": "REST API is blocked due to overload.",
    "INTERNAL_SERVER_ERROR": "Internal server error",
    "PORTAL_DELETED": "Portal was deleted",
    "expired_token": "The access token provided has expired.",
    "NO_AUTH_FOUND": "Wrong authorization data",
    "invalid_token": "The access token provided is invalid.",
    "user_access_error": "The user does not have access to the application.",
}

# The HTTP status Bitrix24 documents for each system error (``_includes/system-errors.md``):
# a fault that names one of these without a status answers with it.
DOCUMENTED_STATUS: dict[str, int] = {
    "QUERY_LIMIT_EXCEEDED": 503,
    "OPERATION_TIME_LIMIT": 429,
    "OVERLOAD_LIMIT": 503,
    "INTERNAL_SERVER_ERROR": 500,
    "ERROR_UNEXPECTED_ANSWER": 500,
    "PORTAL_DELETED": 500,
    "NO_AUTH_FOUND": 401,
    "expired_token": 401,
    "invalid_token": 401,
    "user_access_error": 403,
    "insufficient_scope": 403,
}

# The error a bare status stands for when the fault names none.
DEFAULT_ERRORS: dict[int, str] = {
    401: "expired_token",
    429: "OPERATION_TIME_LIMIT",
    500: "INTERNAL_SERVER_ERROR",
    503: "QUERY_LIMIT_EXCEEDED",
}

# The name a fault uses to target the OAuth token endpoint.
OAUTH_TOKEN = "oauth.token"
TIMEOUT = "timeout"
MALFORMED = "malformed"


@dataclass
class Fault:
    """One injected fault, matched by canonical method name or ``*``."""

    method: str
    count: int = 1
    status: int | None = None
    error: str | None = None
    error_description: str | None = None
    latency_ms: int = 0
    location: str | None = None
    # Milliseconds a successful answer is held back after the call did its work (a refresh
    # that rotated the pair, an add that bound the order): an answer the caller may never read.
    hold_ms: int = 0
    # Seconds from now to the ``operating_reset_at`` an OPERATION_TIME_LIMIT answer names
    # (None: the end of Bitrix24's 10-minute accounting window).
    reset_in: int | None = None
    # Matching calls let through untouched before the fault applies (the second batch...).
    skip: int = 0

    @property
    def answers(self) -> bool:
        """Whether the fault answers with an error status (otherwise it may only delay)."""
        return self.error not in (TIMEOUT, MALFORMED) and (
            self.status is not None or self.error is not None
        )

    @property
    def replaces_answer(self) -> bool:
        """Whether the call gets no normal answer (an error, a hang or broken JSON)."""
        return self.answers or self.error in (TIMEOUT, MALFORMED)

    def logged_status(self) -> int:
        """The status the call log records for this fault."""
        if self.error == TIMEOUT:
            return 504
        if self.error == MALFORMED:
            return 200
        return self.status or 400

    def error_code(self) -> str:
        """Return the error code this fault answers with."""
        return self.error or DEFAULT_ERRORS.get(self.status or 0, "INTERNAL_SERVER_ERROR")

    def description(self) -> str:
        """Return the error description this fault answers with."""
        if self.error_description is not None:
            return self.error_description
        return KNOWN_ERRORS.get(self.error_code(), "")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from the control API's JSON; raises ValueError on bad input."""
        method = str(data.get("method") or "*").lower()
        if method.endswith(".json"):
            method = method[: -len(".json")]
        count = int(data.get("count", 1))
        if count < 1:
            raise ValueError("count must be at least 1")
        status = data.get("status")
        fault = cls(
            method=method,
            count=count,
            status=int(status) if status is not None else None,
            error=str(data["error"]) if data.get("error") is not None else None,
            error_description=data.get("error_description"),
            latency_ms=int(data.get("latency_ms") or 0),
            location=data.get("location"),
            hold_ms=int(data.get("hold_ms") or 0),
            reset_in=int(data["reset_in"]) if data.get("reset_in") is not None else None,
            skip=int(data.get("skip") or 0),
        )
        if fault.status == 302 and not fault.location:
            raise ValueError("a 302 fault needs a location")
        if fault.hold_ms and (fault.status is not None or fault.error is not None):
            raise ValueError("hold_ms holds a successful answer: it takes no status or error")
        if fault.reset_in is not None and (
            fault.reset_in < 0 or fault.error_code() != "OPERATION_TIME_LIMIT"
        ):
            raise ValueError("reset_in is for OPERATION_TIME_LIMIT, in seconds from now")
        if fault.latency_ms < 0 or fault.hold_ms < 0 or fault.skip < 0:
            raise ValueError("latency_ms, hold_ms and skip must not be negative")
        if fault.error not in (TIMEOUT, MALFORMED) and fault.status is None and fault.error:
            fault.status = DOCUMENTED_STATUS.get(fault.error, 400)
        return fault


def hold_answer(fault: Fault | None, stopping: threading.Event) -> None:
    """Hold a successful answer back for the fault's ``hold_ms`` (ends when the sandbox stops)."""
    if fault is not None and fault.hold_ms:
        stopping.wait(fault.hold_ms / 1000)


class FaultBook:
    """Pending faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Queue a fault."""
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, wildcard: bool = True) -> Fault | None:
        """Consume one use of the first fault that matches ``method``.

        ``wildcard=False`` ignores ``*`` faults (the token endpoint only answers faults
        that name it, ``oauth.token``, so ``*`` means "any REST method").
        """
        with self._lock:
            for fault in self._faults:
                if fault.method == method or (wildcard and fault.method == "*"):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """Return the pending faults as JSON."""
        with self._lock:
            return [asdict(fault) for fault in self._faults]
