"""The Bitrix24 client: REST calls, OAuth, error mapping and payload parsing (no Flask)."""

from b24app.bitrix.client import (
    BatchResult,
    BitrixClient,
    Credentials,
    Result,
    TokenSource,
)
from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.http import make_http_client
from b24app.bitrix.oauth import OAuthClient, TokenSet, VerifiedAuth
from b24app.bitrix.payloads import AppEvent, EventAuth, PayloadError, PlacementRequest
from b24app.bitrix.ratelimit import RateLimiter
from b24app.bitrix.retry import RetryPolicy

__all__ = [
    "AppEvent",
    "BatchResult",
    "BitrixClient",
    "Credentials",
    "EndpointGuard",
    "EventAuth",
    "OAuthClient",
    "PayloadError",
    "PlacementRequest",
    "RateLimiter",
    "Result",
    "RetryPolicy",
    "TokenSet",
    "TokenSource",
    "VerifiedAuth",
    "make_http_client",
]
