"""How the portal launches an app frame, and what it tells BX24.js afterwards.

Bitrix24 opens an app with a cross-site form POST into a named iframe. The query string
carries ``DOMAIN``, ``PROTOCOL``, ``LANG`` and ``APP_SID``; the body carries a fresh token
set of the current user. The iframe's ``name`` is ``DOMAIN|PROTOCOL|APP_SID``, which is how
BX24.js (and b24jssdk) find the parent page; the parent then answers ``getInitData`` over
postMessage with the same facts. Each launch is remembered by its ``APP_SID`` so that the
page's own endpoints (install finish, token refresh) know which frame is asking.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from b24sandbox.state import Portal, Sandbox

LANG = "en"
# The interface languages the sandbox portal offers (its users pick one with ?lang=).
LANGS = ("en", "ru")
# The main page of an app; widgets name their own placement code.
DEFAULT_PLACEMENT = "DEFAULT"
# The card a detail tab sits in, by placement: the URI Bitrix24 reports is the card's
# address as the slider opens it.
DETAIL_TAB_PATHS = {
    "CRM_DEAL_DETAIL_TAB": "/crm/deal/details/{id}/",
    "CRM_ORDER_DETAIL_TAB": "/shop/orders/details/{id}/",
    "CRM_SMART_INVOICE_DETAIL_TAB": "/crm/type/31/details/{id}/",
}
SLIDER_QUERY = "IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER"
# How many launches a portal remembers: enough for any page left open, bounded for benchmarks.
REMEMBERED_LAUNCHES = 2000


def php_json(value: Any) -> str:
    """Encode ``value`` the way PHP's json_encode does by default (compact, ``/`` escaped)."""
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/")


def detail_tab_options(placement: str, entity_id: int | str, *, uri: bool = True) -> dict[str, str]:
    """Return a detail tab's PLACEMENT_OPTIONS: ``{"ID": "<id>", "URI": "<card>?IFRAME=Y..."}``.

    ``ID`` is a string and there is no entity-type key (``PLACEMENT`` tells the type), as
    ``api-reference/widgets/crm/detail-tab.md`` prints it. Bitrix24 leaves ``URI`` out when
    the browser sent no Referer: ``uri=False`` builds that variant.
    """
    options = {"ID": str(entity_id)}
    if uri:
        path = DETAIL_TAB_PATHS[placement].format(id=entity_id)
        options["URI"] = f"{path}?{SLIDER_QUERY}"
    return options


def frame_post_fields(
    tokens: Mapping[str, Any],
    *,
    domain: str,
    protocol: str = "0",
    lang: str = LANG,
    application_token: str = "",
    member_id: str | None = None,
    placement: str = DEFAULT_PLACEMENT,
    options: Mapping[str, Any] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Return the query and the form body of a frame POST, as Bitrix24 opens an app.

    ``tokens`` is a token set as the OAuth server returns it. The main page and the install
    page (``DEFAULT``) get no PLACEMENT_OPTIONS, as ``settings/oauth/simple-way.md`` shows,
    unless ``options`` are given; a widget gets them as a JSON string (see
    :func:`detail_tab_options`).
    """
    query = {
        "DOMAIN": domain,
        "PROTOCOL": protocol,
        "LANG": lang,
        "APP_SID": secrets.token_hex(16),
    }
    fields = {
        "AUTH_ID": str(tokens["access_token"]),
        "AUTH_EXPIRES": str(tokens["expires_in"]),
        "REFRESH_ID": str(tokens["refresh_token"]),
        "SERVER_ENDPOINT": str(tokens["server_endpoint"]),
        "APPLICATION_TOKEN": application_token,
        "APPLICATION_SCOPE": str(tokens.get("scope") or ""),
        "member_id": member_id if member_id is not None else str(tokens["member_id"]),
        "status": str(tokens.get("status") or "L"),
        "PLACEMENT": placement,
    }
    if placement != DEFAULT_PLACEMENT or options is not None:
        fields["PLACEMENT_OPTIONS"] = php_json(dict(options or {}))
    return query, fields


def origin_of(url: str) -> str:
    """Return the ``scheme://host[:port]`` origin of an absolute URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class FrameLaunch:
    """One render of an app frame: the form to post and the data BX24.js will ask for."""

    app_sid: str
    portal_id: int
    user_id: int
    is_admin: bool
    install: bool
    action: str
    target: str
    app_origin: str
    fields: dict[str, str]
    init_data: dict[str, Any]

    @property
    def application_token(self) -> str:
        """The application token of the installation this frame was launched for."""
        return self.fields["APPLICATION_TOKEN"]


def launch_frame(
    sandbox: Sandbox,
    portal: Portal,
    *,
    user_id: int,
    is_admin: bool,
    handler: str,
    placement: str = DEFAULT_PLACEMENT,
    options: dict[str, str] | None = None,
    install: bool = False,
    lang: str = LANG,
) -> FrameLaunch:
    """Build the frame launch for ``handler``: new APP_SID, new tokens for ``user_id``.

    ``lang`` is the viewing user's interface language, sent as the ``LANG`` query value.
    """
    tokens = dict(sandbox.issue_tokens(portal, user_id))
    tokens["scope"] = tokens.get("scope") or sandbox.config.scope
    installation = sandbox.installation(portal)
    protocol = "1" if portal.scheme == "https" else "0"
    query_fields, fields = frame_post_fields(
        tokens,
        domain=portal.domain,
        protocol=protocol,
        lang=lang,
        application_token=installation.application_token if installation else "",
        member_id=portal.member_id,
        placement=placement,
        options=options if placement != DEFAULT_PLACEMENT else None,
    )
    app_sid = query_fields["APP_SID"]
    query = urlencode(query_fields)
    separator = "&" if urlsplit(handler).query else "?"
    # What the portal page answers getInitData with; PROTOCOL is a number there (the frame
    # URL's query carries it as text).
    init_data = {
        "DOMAIN": portal.domain,
        "PROTOCOL": int(protocol),
        "PATH": "/rest",
        "LANG": lang,
        "APP_SID": app_sid,
        "AUTH_ID": fields["AUTH_ID"],
        "AUTH_EXPIRES": fields["AUTH_EXPIRES"],
        "REFRESH_ID": fields["REFRESH_ID"],
        "MEMBER_ID": portal.member_id,
        "IS_ADMIN": is_admin,
        "APP_OPTIONS": {},
        "USER_OPTIONS": {},
        "PLACEMENT": placement,
        "PLACEMENT_OPTIONS": options or {},
        "INSTALL": install,
        "FIRST_RUN": install,
    }
    return FrameLaunch(
        app_sid=app_sid,
        portal_id=portal.id,
        user_id=user_id,
        is_admin=is_admin,
        install=install,
        action=f"{handler}{separator}{query}",
        target=f"{portal.domain}|{protocol}|{app_sid}",
        app_origin=origin_of(handler),
        fields=fields,
        init_data=init_data,
    )


def refreshed_auth(sandbox: Sandbox, portal: Portal, launch: FrameLaunch) -> dict[str, str]:
    """Issue a new token set for the frame's user, shaped as BX24.js ``refreshAuth`` expects."""
    tokens = sandbox.issue_tokens(portal, launch.user_id)
    return {
        "AUTH_ID": tokens["access_token"],
        "REFRESH_ID": tokens["refresh_token"],
        "AUTH_EXPIRES": str(tokens["expires_in"]),
    }


class LaunchRegistry:
    """The launches a portal has rendered, by APP_SID (thread-safe, oldest forgotten first)."""

    def __init__(self, capacity: int = REMEMBERED_LAUNCHES) -> None:
        self._capacity = capacity
        self._launches: OrderedDict[str, FrameLaunch] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, launch: FrameLaunch) -> None:
        """Keep ``launch`` so the page can later act for it."""
        with self._lock:
            self._launches[launch.app_sid] = launch
            while len(self._launches) > self._capacity:
                self._launches.popitem(last=False)

    def find(self, app_sid: str) -> FrameLaunch | None:
        """Return the launch with this APP_SID, if this portal rendered it."""
        with self._lock:
            return self._launches.get(app_sid)
