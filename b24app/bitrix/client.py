"""Calls to a portal's REST API: auth injection, refresh, retries, limits, batch and paging."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from b24app.bitrix.encoding import batch_command
from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.errors import (
    IDEMPOTENT_WRITES,
    BitrixError,
    BudgetExceeded,
    ExpiredToken,
    InvalidToken,
    MethodError,
    OperationTimeLimit,
    PortalMoved,
    ServerError,
    TransportError,
    error_from_response,
)
from b24app.bitrix.http import post_mapped
from b24app.bitrix.ratelimit import QueueTooLong, RateLimiter
from b24app.bitrix.retry import MethodKind, RetryPolicy

__all__ = [
    "BATCH_LIMIT",
    "PAGE_SIZE",
    "BatchResult",
    "BitrixClient",
    "Credentials",
    "MethodKind",
    "Result",
    "RetryPolicy",
    "TokenSource",
]

log = logging.getLogger(__name__)

PAGE_SIZE = 50
BATCH_LIMIT = 50
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Seconds before its true expiry that a token counts as expired.
EXPIRY_LEEWAY = 30.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Method name endings that only read; a batch made only of these may be retried like a read.
_READ_VERBS = frozenset(
    {"list", "get", "fields", "getfields", "current", "admin", "access", "info", "profile"}
)


@dataclass(repr=False)
class Credentials:
    """One user's token pair on one portal, as the app's token store hands it out."""

    access_token: str
    refresh_token: str
    expires_at: float
    client_endpoint: str
    member_id: str
    user_id: int | None
    scope: str

    def is_expired(self, now: float, leeway: float = EXPIRY_LEEWAY) -> bool:
        """Tell whether the access token is dead, or dies within ``leeway`` seconds.

        ``expires_at`` is the true expiry Bitrix24 gave; this is the one place a safety
        margin is applied, so a call never starts with a token that dies on the way.
        """
        return self.expires_at - leeway <= now

    def __repr__(self) -> str:
        """Describe the credentials without their tokens."""
        return (
            f"Credentials(member_id={self.member_id!r}, user_id={self.user_id!r}, "
            f"client_endpoint={self.client_endpoint!r}, expires_at={self.expires_at!r})"
        )


class TokenSource(Protocol):
    """Where the client gets tokens; the app's token service implements it."""

    def current(self) -> Credentials:
        """Return the credentials to use now."""
        ...

    def refresh(self, stale: Credentials) -> Credentials:
        """Return credentials newer than ``stale``, refreshing only if nobody else has.

        Single-flight: when the stored pair already differs from ``stale`` (another thread or
        process rotated it), return the stored pair. Refresh failures raise OAuthError.
        """
        ...

    def moved(self, new_client_endpoint: str) -> None:
        """Record that the portal now answers at ``new_client_endpoint``."""
        ...


@dataclass
class Result:
    """A successful REST answer: ``result`` plus paging and timing information."""

    result: Any
    total: int | None = None
    next: int | None = None
    time: dict[str, Any] = field(default_factory=dict)
    # True when a repeated idempotent write confirmed a first attempt whose answer was lost.
    replayed: bool = False
    # True when an earlier attempt may have reached the portal and been applied without its
    # answer coming back (a timeout, a broken answer): this answer describes the portal
    # after that attempt's work, not before it.
    after_lost_answer: bool = False


@dataclass
class BatchResult:
    """The merged answers of one or more ``batch`` calls, keyed by command name."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BitrixError] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    nexts: dict[str, int] = field(default_factory=dict)
    times: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Commands that never ran (``halt`` stopped the batch before them).
    skipped: list[str] = field(default_factory=list)
    # A chunk was sent again after an attempt that may have been applied (see ``Result``).
    after_lost_answer: bool = False


def _unanswered(error: BitrixError) -> bool:
    """Tell whether an attempt that failed with ``error`` may have run on the portal."""
    return isinstance(error, TransportError) and error.maybe_sent


def _as_int(value: Any) -> int | None:
    """Return ``value`` as an int when it is one (or a numeric string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _as_dict(value: Any) -> dict[str, Any]:
    """Return a batch member as a dict (Bitrix24 sends an empty one as ``[]``)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def _rest_base(location: str, old_endpoint: str) -> str:
    """Return the REST base URL (``https://host/rest/``) a redirect points at."""
    target = urljoin(old_endpoint, location)
    parts = urlsplit(target)
    path = parts.path
    marker = path.find("/rest/")
    base_path = path[: marker + len("/rest/")] if marker >= 0 else "/rest/"
    return f"{parts.scheme}://{parts.netloc}{base_path}"


def _looks_read_only(method: str) -> bool:
    """Tell whether a method name only reads (``crm.deal.list``, ``user.admin``...).

    Getters are reads too (``crm.enum.getorderownertypes``, ``crm.orderentity.getFields``).
    """
    verb = method.rsplit(".", 1)[-1].lower()
    return verb in _READ_VERBS or verb.startswith("get")


def _kind_of_name(method: str) -> MethodKind:
    """Classify one method name."""
    name = method.strip().lower().removesuffix(".json")
    if _looks_read_only(name):
        return MethodKind.READ
    if name in IDEMPOTENT_WRITES:
        return MethodKind.IDEMPOTENT_WRITE
    return MethodKind.WRITE


def method_kind(method: str, params: Mapping[str, Any] | None = None) -> MethodKind:
    """Tell whether a call reads, writes idempotently or writes, from its method name.

    A ``batch`` is as strict as its strictest command (commands are ``"method?query"``
    strings), so a batch holding one plain write is never retried as a read.
    """
    if method.strip().lower().removesuffix(".json") != "batch":
        return _kind_of_name(method)
    cmd = (params or {}).get("cmd")
    commands = cmd.values() if isinstance(cmd, Mapping) else cmd if isinstance(cmd, list) else []
    kinds = [_kind_of_name(str(command).split("?", 1)[0]) for command in commands]
    return max(kinds, default=MethodKind.READ)


def _replayed_result(method: str, params: Mapping[str, Any] | None) -> Any:
    """Return what a lost successful answer of an idempotent write contained."""
    if method.lower() == "crm.orderentity.add":
        fields = (params or {}).get("fields")
        return {"dealOrder": dict(fields) if isinstance(fields, Mapping) else {}}
    return True


def _cut(value: float | None, left: float) -> float:
    """Return a timeout no longer than ``left`` seconds."""
    return left if value is None else min(value, left)


class BitrixClient:
    """Sends REST calls to portals through one shared, pooled ``httpx.Client``."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing it is safe
        endpoint_guard: EndpointGuard,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        rand: Callable[[], float] = random.random,
        background: bool = False,
    ) -> None:
        self._http = http
        # Background work (bulk jobs) leaves users room in the shared bucket while they click.
        self._background = background
        self._limiter = limiter
        self._retry = retry
        self._guard = endpoint_guard
        self._sleep = sleep
        self._clock = clock
        self._timeout = timeout
        self._rand = rand

    # -- single calls -------------------------------------------------------------------

    def call(
        self,
        auth: TokenSource,
        method: str,
        params: Mapping[str, Any] | None = None,
    ) -> Result:
        """Call ``method`` with the token from ``auth``; retry, refresh and wait as allowed.

        Whether a failed call may be sent again follows from the method name (for ``batch``,
        from every command in it): reads retry; writes only when a repeat cannot change the
        outcome (:data:`IDEMPOTENT_WRITES`), whose repeat answering "already bound" / "already
        gone" is then the success the lost first answer would have been. The token is
        refreshed at most once per call: before it when expired, or after a 401.

        Everything (limiter waits, time-limit waits, retries, the requests themselves) fits in
        the policy's ``max_total`` seconds; past it :class:`BudgetExceeded` says when to retry.
        """
        kind = method_kind(method, params)
        creds = auth.current()
        refreshed = False
        if creds.is_expired(self._clock()):
            creds = auth.refresh(creds)
            refreshed = True
        moved = False
        adopted = False
        resent = False
        lost = False
        attempt = 1
        deadline = self._clock() + self._retry.max_total
        try:
            while True:
                if self._limiter is not None:
                    # Outside the try: a full client-side bucket is not worth a retry.
                    try:
                        self._limiter.acquire(
                            creds.member_id,
                            max(0.0, deadline - self._clock()),
                            background=self._background,
                        )
                    except QueueTooLong as full:
                        raise BudgetExceeded(full.wait, full) from None
                try:
                    body = self._send(creds, method, params, deadline)
                    return Result(
                        result=body.get("result"),
                        total=_as_int(body.get("total")),
                        next=_as_int(body.get("next")),
                        time=dict(body["time"]) if isinstance(body.get("time"), Mapping) else {},
                        after_lost_answer=lost,
                    )
                except _Redirect as redirect:
                    if moved:
                        raise PortalMoved(
                            "PORTAL_MOVED",
                            "the portal redirected twice",
                            redirect.status,
                            location=redirect.location,
                        ) from None
                    new_endpoint = self._guard.check(
                        _rest_base(redirect.location, creds.client_endpoint)
                    )
                    log.warning("portal %s moved to %s", creds.member_id, new_endpoint)
                    auth.moved(new_endpoint)
                    creds = dataclasses.replace(creds, client_endpoint=new_endpoint)
                    moved = True
                except ExpiredToken:
                    if refreshed:
                        raise
                    creds = auth.refresh(creds)
                    refreshed = True
                except InvalidToken:
                    # A refresh elsewhere may have rotated the pair while this request was in
                    # flight, which kills the access token we sent. Adopt a newer stored pair, or
                    # ask the (single-flight) token source, which waits for a running refresh.
                    latest = auth.current()
                    if not adopted and latest.access_token != creds.access_token:
                        creds = latest
                        adopted = True
                    elif not refreshed:
                        creds = auth.refresh(creds)
                        refreshed = True
                    else:
                        raise
                except OperationTimeLimit as error:
                    # The method was refused before it ran, so even a write may wait and retry.
                    wait = self._retry.time_limit_wait(error, self._clock())
                    if wait is None or attempt >= self._retry.max_attempts:
                        raise
                    if self._clock() + wait > deadline:
                        raise BudgetExceeded(wait, error) from None
                    log.warning(
                        "%s on %s: time limit, waiting %.1f s", method, creds.member_id, wait
                    )
                    self._sleep(wait)
                    attempt += 1
                except BitrixError as error:
                    replay = IDEMPOTENT_WRITES.get(method.lower())
                    if resent and replay is not None and isinstance(error, replay):
                        # The lost first attempt did the work; this is its success.
                        log.info(
                            "%s on %s: repeat confirms the first attempt", method, creds.member_id
                        )
                        return Result(
                            result=_replayed_result(method, params),
                            replayed=True,
                            after_lost_answer=lost,
                        )
                    if not self._retry.may_retry(error, kind):
                        raise
                    if attempt >= self._retry.max_attempts:
                        raise
                    delay = self._retry.backoff(attempt, self._rand)
                    if self._clock() + delay >= deadline:
                        raise
                    # Codes and ids only: never a token.
                    log.info(
                        "%s on %s failed with %s, retry %d in %.2f s",
                        method,
                        creds.member_id,
                        error.code,
                        attempt,
                        delay,
                    )
                    self._sleep(delay)
                    attempt += 1
                    resent = True
                    lost = lost or _unanswered(error)
        except BitrixError as error:
            # The caller learns whether the portal may have applied an attempt of this call
            # whose answer never came (a bulk job then trusts the owners it read before).
            error.maybe_applied = lost or _unanswered(error)
            raise

    def _send(
        self,
        creds: Credentials,
        method: str,
        params: Mapping[str, Any] | None,
        deadline: float,
    ) -> dict[str, Any]:
        """Send one request and return its JSON body; raise typed errors for failures."""
        endpoint = self._guard.check(creds.client_endpoint)
        if not endpoint.endswith("/"):
            endpoint += "/"
        payload = {**(params or {}), "auth": creds.access_token}
        response = post_mapped(
            self._http,
            endpoint + method,
            "the portal",
            self._request_timeout(deadline),
            json=payload,
        )
        return self._parse(response)

    def _request_timeout(self, deadline: float) -> httpx.Timeout:
        """Return the configured timeout, cut to what is left of the call's budget."""
        left = max(0.5, deadline - self._clock())
        base = self._timeout if isinstance(self._timeout, httpx.Timeout) else None
        if base is None:
            seconds = min(float(self._timeout), left)  # type: ignore[arg-type]
            return httpx.Timeout(seconds)
        return httpx.Timeout(
            connect=_cut(base.connect, left),
            read=_cut(base.read, left),
            write=_cut(base.write, left),
            pool=_cut(base.pool, left),
        )

    def _parse(self, response: httpx.Response) -> dict[str, Any]:
        """Turn an HTTP answer into a JSON body or the matching exception."""
        status = response.status_code
        if status in _REDIRECTS:
            location = response.headers.get("location", "")
            if not location:
                raise PortalMoved("PORTAL_MOVED", "redirect without a location", status)
            raise _Redirect(status, location)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            if status >= 500:
                raise ServerError(f"HTTP_{status}", "the portal failed", status) from None
            if status >= 400:
                raise error_from_response(status, None) from None
            raise TransportError(
                "MALFORMED_RESPONSE", "the portal sent a body that is not JSON", status
            ) from None
        if isinstance(body, Mapping) and "error" in body:
            error = error_from_response(status, body)
            if isinstance(error, OperationTimeLimit) and error.reset_at is None:
                error.reset_at = self._retry_after(response)
            raise error
        if status >= 400 or not isinstance(body, Mapping):
            raise error_from_response(status, body)
        return dict(body)

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Read a ``Retry-After`` header (seconds or HTTP date) as a unix time."""
        value = response.headers.get("retry-after")
        if not value:
            return None
        if value.strip().isdigit():
            return self._clock() + int(value.strip())
        try:
            return parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None

    # -- batch ----------------------------------------------------------------------------

    def batch(
        self,
        auth: TokenSource,
        commands: Mapping[str, tuple[str, Mapping[str, Any] | None]],
        *,
        halt: bool = False,
    ) -> BatchResult:
        """Run ``commands`` ({key: (method, params)}) as ``batch`` calls of up to 50.

        Each chunk is retried like a single call whose kind is the strictest of its
        commands'; with ``halt`` the chunks after the first failing one are not sent.
        """
        merged = BatchResult()
        items = list(commands.items())
        for offset in range(0, len(items), BATCH_LIMIT):
            chunk = items[offset : offset + BATCH_LIMIT]
            cmd = {key: batch_command(method, params) for key, (method, params) in chunk}
            answer = self.call(auth, "batch", {"halt": 1 if halt else 0, "cmd": cmd})
            self._merge_batch(merged, answer.result)
            merged.after_lost_answer = merged.after_lost_answer or answer.after_lost_answer
            if halt and merged.errors:
                break
        merged.skipped = [k for k in commands if k not in merged.results and k not in merged.errors]
        return merged

    @staticmethod
    def _merge_batch(merged: BatchResult, payload: Any) -> None:
        """Add one batch answer's members to ``merged``."""
        if not isinstance(payload, Mapping):
            raise MethodError("UNEXPECTED_RESULT", "batch answered without a result object")
        merged.results.update(_as_dict(payload.get("result")))
        for key, entry in _as_dict(payload.get("result_error")).items():
            merged.errors[key] = error_from_response(None, entry)
        for key, value in _as_dict(payload.get("result_total")).items():
            total = _as_int(value)
            if total is not None:
                merged.totals[key] = total
        for key, value in _as_dict(payload.get("result_next")).items():
            nxt = _as_int(value)
            if nxt is not None:
                merged.nexts[key] = nxt
        for key, value in _as_dict(payload.get("result_time")).items():
            if isinstance(value, Mapping):
                merged.times[key] = dict(value)

    # -- lists ----------------------------------------------------------------------------

    def list_all(
        self,
        auth: TokenSource,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield the rows of a list method page by page (``start``/``next``), up to ``limit``."""
        query = dict(params or {})
        start = _as_int(query.pop("start", 0)) or 0
        yielded = 0
        while True:
            page = self.call(auth, method, {**query, "start": start})
            rows = extract_rows(page.result, key)
            for row in rows:
                if limit is not None and yielded >= limit:
                    return
                yield row
                yielded += 1
            if limit is not None and yielded >= limit:
                return
            if page.next is not None and page.next > start:
                start = page.next
            elif (
                page.next is None
                and page.total is not None
                and len(rows) >= PAGE_SIZE
                and start + len(rows) < page.total
            ):
                # Some list methods document ``total`` but not ``next``.
                start += len(rows)
            else:
                return

    def list_by_id(
        self,
        auth: TokenSource,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        id_field: str = "ID",
        key: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every row ordered by ``id_field``, paging with ``>ID`` and ``start=-1``.

        Skipping the COUNT (``start=-1``) and seeking by ID keeps each page cheap on big tables.
        """
        query = {k: v for k, v in (params or {}).items() if k != "start"}
        base_filter = dict(query.pop("filter", None) or {})
        cursor_key = f">{id_field}"
        cursor: Any = base_filter.pop(cursor_key, None)
        order = dict(query.pop("order", None) or {})
        if not any(k.lower() == id_field.lower() for k in order):
            order = {id_field: "ASC"}
        while True:
            page_filter = dict(base_filter)
            if cursor is not None:
                page_filter[cursor_key] = cursor
            page = self.call(
                auth, method, {**query, "filter": page_filter, "order": order, "start": -1}
            )
            rows = extract_rows(page.result, key)
            yield from rows
            if len(rows) < PAGE_SIZE:
                return
            last = rows[-1].get(id_field)
            if last is None:
                raise MethodError("UNEXPECTED_RESULT", f"rows carry no {id_field} to page by")
            last_int = _as_int(last)
            cursor = last_int if last_int is not None else last


def extract_rows(result: Any, key: str | None = None) -> list[dict[str, Any]]:
    """Return the row list of a list method's ``result`` (a bare list or ``{key: [...]}``)."""
    if key is not None:
        if not isinstance(result, Mapping) or not isinstance(result.get(key), list):
            raise MethodError("UNEXPECTED_RESULT", f"the result has no list under {key!r}")
        return list(result[key])
    if isinstance(result, list):
        return list(result)
    if isinstance(result, Mapping):
        lists = [v for v in result.values() if isinstance(v, list)]
        if len(lists) == 1:
            return list(lists[0])
        if not result:
            return []
    raise MethodError("UNEXPECTED_RESULT", "the result is not a list of rows")


class _Redirect(Exception):
    """Internal signal: the portal answered with a redirect."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(status)
        self.status = status
        self.location = location
