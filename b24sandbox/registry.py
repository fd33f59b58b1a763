"""The REST method registry: handlers register here, the dispatcher looks them up.

A handler is ``handler(ctx: CallContext, params: dict) -> Any``. It returns the value of
``result`` or a :class:`Page` for list methods, and raises :class:`RestError` for any
documented error. The dispatcher (``rest.py``) adds the envelope (``time``, ``total``,
``next``), authentication, scopes, limits, faults and the call log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from b24sandbox.state import Portal, Sandbox


class RestError(Exception):
    """A documented Bitrix24 error: ``{"error": code, "error_description": description}``."""

    def __init__(
        self,
        code: str,
        description: str,
        status: int = 400,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """Return the JSON error body as Bitrix24 sends it."""
        return {"error": self.code, "error_description": self.description, **self.extra}


@dataclass
class Page:
    """One page of a list method: ``result`` plus ``total``/``next`` (None = omitted)."""

    result: Any
    total: int | None = None
    next: int | None = None


@dataclass
class CallContext:
    """Who is calling, on which portal, with which token scope."""

    sandbox: Sandbox
    portal: Portal
    user_id: int
    scope: frozenset[str]
    in_batch: bool = False
    # True when the call reached the OAuth server's origin with a token of ``portal``
    # (possibly another portal): app.info then adds the OAuth server's fields.
    oauth_server: bool = False
    # When the calling access token expires (Unix time); None inside internal calls.
    token_expires_at: float | None = None


Handler = Callable[[CallContext, dict[str, Any]], Any]


@dataclass
class MethodSpec:
    """A registered method: its canonical name, required scope and handler.

    ``scope`` may list alternatives separated by commas (``"user,user_brief"``): any one
    of them in the token's scope is enough. ``basic`` needs no scope at all.
    """

    name: str
    scope: str
    handler: Handler
    batchable: bool = True
    app_context_only: bool = False
    tags: set[str] = field(default_factory=set)


METHODS: dict[str, MethodSpec] = {}


def rest_method(
    name: str, scope: str, *, batchable: bool = True, app_context_only: bool = False
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as REST method ``name`` (names are case-insensitive)."""

    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = MethodSpec(
            name=name,
            scope=scope,
            handler=handler,
            batchable=batchable,
            app_context_only=app_context_only,
        )
        return handler

    return register


def find_method(name: str) -> MethodSpec | None:
    """Look a method up the way Bitrix24 does: case-insensitive, optional ``.json``."""
    key = name.lower()
    if key.endswith(".json"):
        key = key[: -len(".json")]
    return METHODS.get(key)
