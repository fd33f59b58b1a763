"""The Bitrix24 OAuth server: code exchange, refresh and token verification (``app.info``)."""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from b24app.bitrix.errors import (
    BitrixError,
    ExpiredToken,
    ForeignApp,
    InvalidToken,
    OAuthError,
    ServerError,
    TransportError,
    error_from_response,
    oauth_error_from_response,
)
from b24app.bitrix.http import post_mapped
from b24app.bitrix.retry import MethodKind, RetryPolicy

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# Bitrix24's access tokens live an hour (the lifetime when an answer names none); the
# longest one believed is a day.
DEFAULT_LIFETIME = 3600
MAX_LIFETIME = 86400


@dataclass(repr=False)
class TokenSet:
    """A token response of the OAuth server (code exchange or refresh)."""

    access_token: str
    refresh_token: str
    expires_at: float
    expires_in: int
    client_endpoint: str
    member_id: str
    user_id: int | None
    scope: str
    domain: str
    server_endpoint: str
    status: str

    def __repr__(self) -> str:
        """Describe the token set without its tokens."""
        return (
            f"TokenSet(member_id={self.member_id!r}, user_id={self.user_id!r}, "
            f"client_endpoint={self.client_endpoint!r}, expires_at={self.expires_at!r})"
        )


@dataclass(frozen=True)
class VerifiedAuth:
    """What the OAuth server confirmed about a token: whose app, which portal, which user."""

    client_id: str
    member_id: str
    domain: str
    installed: bool
    scope: str
    status: str
    expires_at: float | None
    user_id: int | None = None
    client_endpoint: str = ""


def _text(value: Any) -> str:
    """Return a JSON value as text ('' for null)."""
    return "" if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    """Return a JSON number or numeric string as int, else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _timestamp(value: Any) -> float | None:
    """Read an expiry given as unix seconds or an ISO-8601 date."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _truthy(value: Any) -> bool:
    """Read Bitrix24's booleans (true, "Y", 1...)."""
    if isinstance(value, str):
        return value.strip().upper() in ("Y", "1", "TRUE")
    return bool(value)


class OAuthClient:
    """Talks to ``server_url`` (``https://oauth.bitrix.info`` or the sandbox) for one app."""

    def __init__(
        self,
        server_url: str,
        client_id: str,
        client_secret: str,
        http: httpx.Client,
        *,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        cache_size: int = 1024,
        cache_max_age: float = 300.0,
        verify_retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self._http = http
        self._clock = clock
        self._timeout = timeout
        self._cache_size = cache_size
        self._cache_max_age = cache_max_age
        self._cache: OrderedDict[str, tuple[float, VerifiedAuth]] = OrderedDict()
        self._lock = threading.Lock()
        # The token check only reads, so it is retried like a read; a refresh never is (a
        # repeat after a lost answer would send a spent refresh token).
        self._verify_retry = verify_retry
        self._sleep = sleep
        self._rand = rand

    def __repr__(self) -> str:
        """Describe the client without its secret."""
        return f"OAuthClient(server_url={self.server_url!r}, client_id={self.client_id!r})"

    @property
    def token_url(self) -> str:
        """Return the token endpoint."""
        return f"{self.server_url}/oauth/token/"

    def authorization_url(self, portal_url: str, state: str) -> str:
        """Return the portal's authorize URL that sends the user back with a code."""
        base = f"{portal_url.rstrip('/')}/oauth/authorize/"
        return add_params_to_uri(base, [("client_id", self.client_id), ("state", state)])

    # -- tokens --------------------------------------------------------------------------

    def exchange_code(self, code: str) -> TokenSet:
        """Trade an authorization code (valid 30 s) for a token pair."""
        return self._token_request("authorization_code", code=code)

    def refresh(self, refresh_token: str) -> TokenSet:
        """Trade a refresh token for a new pair; the old pair is dead afterwards."""
        return self._token_request("refresh_token", refresh_token=refresh_token)

    def _token_request(self, grant_type: str, **grant: str) -> TokenSet:
        """POST a token request (form-encoded, credentials in the body) and parse the answer."""
        body = prepare_token_request(
            grant_type,
            client_id=self.client_id,
            client_secret=self._client_secret,
            **grant,
        )
        started = self._clock()
        response = self._post(
            self.token_url,
            content=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        payload = self._json(response)
        # Errors come as {"error", "error_description"} with any HTTP status, even 200.
        if not isinstance(payload, Mapping) or "error" in payload or response.status_code >= 400:
            raise oauth_error_from_response(response.status_code, payload)
        return self._token_set(payload, started)

    def _token_set(self, payload: Mapping[str, Any], started: float) -> TokenSet:
        """Build a TokenSet; expiry counts from our clock so server clock skew cannot bite."""
        access_token = _text(payload.get("access_token"))
        refresh_token = _text(payload.get("refresh_token"))
        if not access_token or not refresh_token:
            raise OAuthError("INVALID_TOKEN_RESPONSE", "the token answer lacks tokens")
        expires_in = _int_or_none(payload.get("expires_in"))
        if expires_in is None:
            expires = _timestamp(payload.get("expires"))
            if expires is not None and math.isfinite(expires):
                expires_in = int(expires - started)
            else:
                expires_in = DEFAULT_LIFETIME
        # A lifetime past MAX_LIFETIME is not believed: a huge one would not even fit the
        # stored expiry, and the pair the server just rotated would be lost with it.
        expires_in = max(0, min(expires_in, MAX_LIFETIME))
        return TokenSet(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=started + expires_in,
            expires_in=expires_in,
            client_endpoint=_text(payload.get("client_endpoint")),
            member_id=_text(payload.get("member_id")),
            user_id=_int_or_none(payload.get("user_id")),
            scope=_text(payload.get("scope")),
            domain=_text(payload.get("domain")),
            server_endpoint=_text(payload.get("server_endpoint")),
            status=_text(payload.get("status")),
        )

    # -- verification --------------------------------------------------------------------

    def verify(self, access_token: str) -> VerifiedAuth:
        """Ask the OAuth server whose token this is; refuse tokens of other apps.

        Successful answers for installed apps are cached per token until the token expires
        or ``cache_max_age`` passes, whichever is first.
        """
        key = hashlib.sha256(access_token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                if cached[0] > now:
                    self._cache.move_to_end(key)
                    return cached[1]
                del self._cache[key]
        verified = self._app_info_retried(access_token)
        if verified.client_id != self.client_id:
            raise ForeignApp("FOREIGN_APP", "the token belongs to another application")
        if verified.installed:
            valid_until = now + self._cache_max_age
            if verified.expires_at is not None:
                valid_until = min(valid_until, verified.expires_at)
            if valid_until > now:
                with self._lock:
                    self._cache[key] = (valid_until, verified)
                    self._cache.move_to_end(key)
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return verified

    def forget(self, access_token: str) -> None:
        """Drop a token from the verification cache (e.g. after the portal refused it)."""
        key = hashlib.sha256(access_token.encode()).hexdigest()
        with self._lock:
            self._cache.pop(key, None)

    def _app_info_retried(self, access_token: str) -> VerifiedAuth:
        """Call ``app.info``, again after a busy, failing or silent server, within the budget."""
        policy = self._verify_retry
        if policy is None:
            return self._app_info(access_token, self._timeout)
        deadline = self._clock() + policy.max_total
        attempt = 1
        while True:
            try:
                return self._app_info(access_token, self._cut_timeout(deadline))
            except BitrixError as error:
                if not policy.may_retry(error, MethodKind.READ) or attempt >= policy.max_attempts:
                    raise
                delay = policy.backoff(attempt, self._rand)
                if self._clock() + delay >= deadline:
                    raise
                self._sleep(delay)
                attempt += 1

    def _cut_timeout(self, deadline: float) -> httpx.Timeout:
        """Return the timeout, no longer than what is left before ``deadline``."""
        left = max(0.5, deadline - self._clock())
        if not isinstance(self._timeout, httpx.Timeout):
            return httpx.Timeout(min(float(self._timeout), left))
        parts = (self._timeout.connect, self._timeout.read, self._timeout.write, self._timeout.pool)
        connect, read, write, pool = (left if p is None else min(p, left) for p in parts)
        return httpx.Timeout(connect=connect, read=read, write=write, pool=pool)

    def _app_info(self, access_token: str, timeout: httpx.Timeout | float) -> VerifiedAuth:
        """Call ``app.info`` on the OAuth server with the token in the body."""
        response = self._post(
            f"{self.server_url}/rest/app.info", timeout=timeout, json={"auth": access_token}
        )
        payload = self._json(response)
        if (isinstance(payload, Mapping) and "error" in payload) or response.status_code >= 400:
            error = error_from_response(response.status_code, payload)
            if isinstance(error, ExpiredToken):
                raise InvalidToken(error.code, error.description, error.status)
            raise error
        result = payload.get("result") if isinstance(payload, Mapping) else None
        if not isinstance(result, Mapping):
            raise InvalidToken("INVALID_TOKEN", "app.info did not confirm the token")
        install = result.get("install")
        install = install if isinstance(install, Mapping) else {}
        return VerifiedAuth(
            client_id=_text(result.get("client_id")),
            member_id=_text(install.get("member_id") or result.get("member_id")),
            domain=_text(install.get("domain") or result.get("domain")),
            installed=_truthy(install.get("installed", result.get("INSTALLED", False))),
            scope=_text(result.get("scope") or install.get("scope")),
            status=_text(install.get("status") or result.get("STATUS") or result.get("status")),
            expires_at=_timestamp(result.get("expires")),
            user_id=_int_or_none(result.get("user_id")),
            client_endpoint=_text(install.get("client_endpoint")),
        )

    # -- transport -----------------------------------------------------------------------

    def _post(
        self, url: str, timeout: httpx.Timeout | float | None = None, **kwargs: Any
    ) -> httpx.Response:
        """POST with a timeout and no redirects; map transport failures."""
        chosen = self._timeout if timeout is None else timeout
        return post_mapped(self._http, url, "the OAuth server", chosen, **kwargs)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        """Decode a JSON answer or raise the right error for a broken one."""
        try:
            return response.json()
        except ValueError:
            if response.status_code >= 500:
                raise ServerError(
                    f"HTTP_{response.status_code}", "the OAuth server failed", response.status_code
                ) from None
            raise TransportError(
                "MALFORMED_RESPONSE",
                "the OAuth server sent a body that is not JSON",
                response.status_code,
            ) from None
