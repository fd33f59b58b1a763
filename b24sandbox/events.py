"""Outbound deliveries: the install page POST, ONAPPINSTALL and ONAPPUNINSTALL.

Bitrix24 posts events form-encoded with bracketed keys (``auth[access_token]``). Every POST
here has a short timeout and never raises: a delivery that fails is reported, not thrown
into the request that caused it.
"""

from __future__ import annotations

import functools
import logging
import ssl
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from b24sandbox import apps
from b24sandbox.bx24 import frame_post_fields

if TYPE_CHECKING:
    from b24sandbox.state import Portal, Sandbox

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT = 5.0
APP_VERSION = 1
LANGUAGE_ID = "en"
ADMIN_USER_ID = 1


@dataclass
class Delivery:
    """One outbound POST and what the receiver answered (status None = unreachable)."""

    kind: str
    url: str
    status: int | None
    error: str | None = None


def flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    """Encode nested data as PHP-style bracketed form fields."""
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            pairs.extend(flatten(f"{prefix}[{key}]" if prefix else str(key), item))
        return pairs
    if isinstance(value, bool):
        return [(prefix, "1" if value else "0")]
    return [(prefix, "" if value is None else str(value))]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every delivery: building one parses the whole CA bundle."""
    return httpx.create_ssl_context()


def post_form(kind: str, url: str, fields: list[tuple[str, str]]) -> Delivery:
    """POST form fields to a URL; report the status instead of raising."""
    try:
        response = httpx.post(
            url,
            content=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=DELIVERY_TIMEOUT,
            verify=_tls_context(),
        )
    except Exception as error:  # noqa: BLE001 - a failed delivery is reported, never raised
        log.warning("%s delivery to %s failed: %s", kind, url.split("?")[0], type(error).__name__)
        return Delivery(kind, url, None, type(error).__name__)
    return Delivery(kind, url, response.status_code)


def install_url(sandbox: Sandbox) -> str:
    """The app's install page, also its installer URL for ONAPPINSTALL."""
    return f"{sandbox.config.app_url.rstrip('/')}/install"


def post_install_page(sandbox: Sandbox, portal: Portal) -> Delivery:
    """Open the app's install page as the admin, framed exactly as Bitrix24 posts it."""
    installation = sandbox.begin_install(portal)
    auth = sandbox.issue_tokens(portal, ADMIN_USER_ID)
    query, fields = frame_post_fields(
        auth,
        domain=portal.domain,
        lang=LANGUAGE_ID,
        application_token=installation.application_token,
        member_id=portal.member_id,
    )
    return post_form(
        "install_page", f"{install_url(sandbox)}?{urlencode(query)}", list(fields.items())
    )


def event_auth(sandbox: Sandbox, portal: Portal, with_tokens: bool) -> dict[str, Any]:
    """The ``auth`` block of an event; tokens only where Bitrix24 sends them."""
    installation = sandbox.installation(portal)
    auth: dict[str, Any] = {}
    if with_tokens:
        tokens = sandbox.issue_tokens(portal, ADMIN_USER_ID)
        auth.update(
            access_token=tokens["access_token"],
            expires=tokens["expires"],
            expires_in=tokens["expires_in"],
            scope=tokens["scope"],
        )
    auth.update(
        domain=portal.domain,
        server_endpoint=sandbox.server_endpoint,
        status=sandbox.app_status,
        client_endpoint=portal.client_endpoint,
        member_id=portal.member_id,
    )
    if with_tokens:
        auth.update(user_id=ADMIN_USER_ID, refresh_token=tokens["refresh_token"])
    auth["application_token"] = installation.application_token if installation else ""
    return auth


def event_fields(
    event: str, data: dict[str, Any], auth: dict[str, Any], ts: float
) -> list[tuple[str, str]]:
    """Encode an event sent at ``ts`` (Unix time) as Bitrix24 posts it."""
    return (
        [("event", event), ("event_handler_id", "0")]
        + flatten("data", data)
        + [("ts", str(int(ts)))]
        + flatten("auth", auth)
    )


def finish_install(sandbox: Sandbox, portal: Portal) -> list[Delivery]:
    """Mark the app installed and post ONAPPINSTALL to the installer and bound handlers."""
    sandbox.begin_install(portal)
    apps.mark_installed(sandbox.db, portal.id, sandbox.clock.time())
    data = {"VERSION": APP_VERSION, "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": LANGUAGE_ID}
    targets = [install_url(sandbox)]
    for handler in apps.list_event_handlers(sandbox.db, portal.id, "ONAPPINSTALL"):
        if handler["handler"] not in targets:
            targets.append(handler["handler"])
    deliveries = []
    for url in targets:
        # Each delivery carries its own fresh token pair, as each handler gets its own.
        auth = event_auth(sandbox, portal, True)
        fields = event_fields("ONAPPINSTALL", data, auth, sandbox.clock.time())
        deliveries.append(post_form("ONAPPINSTALL", url, fields))
    return deliveries


def install(sandbox: Sandbox, portal: Portal) -> dict[str, Any]:
    """Install as the admin: the install page, then installFinish and ONAPPINSTALL."""
    page = post_install_page(sandbox, portal)
    deliveries: list[Delivery] = []
    if page.status == 200:
        deliveries = finish_install(sandbox, portal)
    installation = sandbox.installation(portal)
    return {
        "portal": portal.id,
        "installed": bool(installation and installation.installed),
        "install_page": asdict(page),
        "events": [asdict(d) for d in deliveries],
    }


def uninstall(sandbox: Sandbox, portal: Portal, clean: bool) -> dict[str, Any]:
    """Post ONAPPUNINSTALL to the bound handlers, then remove the app and its access."""
    data = {"LANGUAGE_ID": LANGUAGE_ID, "CLEAN": 1 if clean else 0}
    auth = event_auth(sandbox, portal, False)
    handlers = apps.list_event_handlers(sandbox.db, portal.id, "ONAPPUNINSTALL")
    # Bitrix24 revokes API access before the event goes out, so remove first.
    apps.remove_app(sandbox.db, portal.id)
    deliveries = [
        post_form(
            "ONAPPUNINSTALL",
            h["handler"],
            event_fields("ONAPPUNINSTALL", data, auth, sandbox.clock.time()),
        )
        for h in handlers
    ]
    return {"portal": portal.id, "installed": False, "events": [asdict(d) for d in deliveries]}
