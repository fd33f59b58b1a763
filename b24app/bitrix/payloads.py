"""What Bitrix24 posts to the app (placements, install page, events), parsed into dataclasses.

Parsing only: nothing here is trusted until the OAuth server has confirmed the token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


class PayloadError(ValueError):
    """A Bitrix24 payload lacks a field the app cannot work without."""


def _split_key(raw: str) -> list[str]:
    """Split ``auth[access_token]`` into ``["auth", "access_token"]``."""
    head, bracket, _ = raw.partition("[")
    if not bracket:
        return [raw]
    rest = raw[len(head) :]
    parts = _KEY_PART.findall(rest)
    # A key like ``a[b]junk`` is not bracket syntax: keep it whole, as PHP keeps the head.
    if "".join(f"[{p}]" for p in parts) != rest or not head:
        return [raw]
    return [head, *parts]


def parse_bracketed_form(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build nested dicts from form pairs with bracketed keys (``data[FIELDS][ID]=7``).

    ``a[]=x`` appends to a list; a later scalar never overwrites a nested dict.
    """
    tree: dict[str, Any] = {}
    for raw_key, value in items:
        parts = _split_key(raw_key)
        node: Any = tree
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                child: Any = [] if parts[index + 1] == "" else {}
                node.append(child)
                node = child
                continue
            if last:
                if part == "":
                    break
                if not isinstance(node.get(part), dict | list):
                    node[part] = value
                break
            want_list = parts[index + 1] == ""
            existing = node.get(part)
            if want_list and not isinstance(existing, list):
                existing = []
                node[part] = existing
            elif not want_list and not isinstance(existing, dict):
                existing = {}
                node[part] = existing
            node = existing
    return tree


def _get(mapping: Mapping[str, Any], name: str) -> str:
    """Return a field as stripped text ('' when absent)."""
    value = mapping.get(name)
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()


def _int_or_none(text: str) -> int | None:
    """Return ``text`` as an int, or None when it is not a whole number."""
    try:
        return int(text)
    except ValueError:
        return None


def _flag(value: Any) -> bool:
    """Read a Bitrix24 boolean flag (``1``, ``Y``, ``true``)."""
    return str(value).strip().upper() in ("1", "Y", "TRUE")


@dataclass(repr=False)
class PlacementRequest:
    """A placement or install-page POST: query (DOMAIN, PROTOCOL...) plus form (AUTH_ID...)."""

    domain: str
    protocol: int | None
    lang: str
    app_sid: str
    auth_id: str
    auth_expires: int | None
    refresh_id: str
    server_endpoint: str
    application_token: str
    application_scope: str
    member_id: str
    status: str
    placement: str
    placement_options: dict[str, Any] = field(default_factory=dict)
    placement_options_invalid: bool = False

    def __repr__(self) -> str:
        """Describe the request without its tokens."""
        return (
            f"PlacementRequest(domain={self.domain!r}, member_id={self.member_id!r}, "
            f"placement={self.placement!r}, options={self.placement_options!r})"
        )

    @classmethod
    def from_request(cls, query: Mapping[str, Any], form: Mapping[str, Any]) -> PlacementRequest:
        """Parse the POST Bitrix24 sends when it opens the app in a frame."""

        def pick(name: str) -> str:
            """Prefer the form value, fall back to the query string."""
            return _get(form, name) or _get(query, name)

        auth_id = pick("AUTH_ID")
        member_id = pick("member_id")
        missing = [n for n, v in (("AUTH_ID", auth_id), ("member_id", member_id)) if not v]
        if missing:
            raise PayloadError(f"the request lacks {', '.join(missing)}: open the app in Bitrix24")
        options, invalid = _placement_options(form.get("PLACEMENT_OPTIONS"))
        return cls(
            domain=pick("DOMAIN").lower(),
            protocol=_int_or_none(pick("PROTOCOL")),
            lang=pick("LANG"),
            app_sid=pick("APP_SID"),
            auth_id=auth_id,
            auth_expires=_int_or_none(pick("AUTH_EXPIRES")),
            refresh_id=pick("REFRESH_ID"),
            server_endpoint=pick("SERVER_ENDPOINT"),
            application_token=pick("APPLICATION_TOKEN"),
            application_scope=pick("APPLICATION_SCOPE"),
            member_id=member_id,
            status=pick("status"),
            placement=pick("PLACEMENT") or "DEFAULT",
            placement_options=options,
            placement_options_invalid=invalid,
        )


def _placement_options(raw: Any) -> tuple[dict[str, Any], bool]:
    """Decode PLACEMENT_OPTIONS (a JSON string); return ({}, True) when it is not an object."""
    if raw is None or raw == "":
        return {}, False
    if isinstance(raw, Mapping):
        return dict(raw), False
    try:
        decoded = json.loads(str(raw))
    except ValueError:
        return {}, True
    if isinstance(decoded, dict):
        return decoded, False
    # Bitrix24 sends an empty array for "no options".
    if decoded == []:
        return {}, False
    return {}, True


@dataclass(repr=False)
class EventAuth:
    """The ``auth`` block of an event delivery."""

    access_token: str = ""
    refresh_token: str = ""
    expires_in: int | None = None
    application_token: str = ""
    member_id: str = ""
    domain: str = ""
    client_endpoint: str = ""
    server_endpoint: str = ""
    scope: str = ""
    status: str = ""

    def __repr__(self) -> str:
        """Describe the auth block without tokens."""
        return f"EventAuth(member_id={self.member_id!r}, domain={self.domain!r})"


@dataclass(repr=False)
class AppEvent:
    """An event Bitrix24 posted to the app's handler (ONAPPINSTALL, ONAPPUNINSTALL...)."""

    event: str
    data: dict[str, Any]
    ts: int | None
    auth: EventAuth

    def __repr__(self) -> str:
        """Describe the event without tokens."""
        return f"AppEvent(event={self.event!r}, member_id={self.auth.member_id!r})"

    @classmethod
    def from_form(cls, form: Mapping[str, Any] | Iterable[tuple[str, str]]) -> AppEvent:
        """Parse a form-encoded event delivery (bracketed keys or an already nested dict)."""
        if isinstance(form, Mapping):
            if any("[" in str(k) for k in form):
                tree = parse_bracketed_form((str(k), str(v)) for k, v in form.items())
            else:
                tree = dict(form)
        else:
            tree = parse_bracketed_form(form)
        event = _get(tree, "event").upper()
        if not event:
            raise PayloadError("the event delivery lacks its event name")
        raw_auth = tree.get("auth")
        auth_tree = raw_auth if isinstance(raw_auth, Mapping) else {}
        raw_data = tree.get("data")
        data = dict(raw_data) if isinstance(raw_data, Mapping) else {}
        auth = EventAuth(
            access_token=_get(auth_tree, "access_token"),
            refresh_token=_get(auth_tree, "refresh_token"),
            expires_in=_int_or_none(_get(auth_tree, "expires_in")),
            application_token=_get(auth_tree, "application_token"),
            member_id=_get(auth_tree, "member_id"),
            domain=_get(auth_tree, "domain").lower(),
            client_endpoint=_get(auth_tree, "client_endpoint"),
            server_endpoint=_get(auth_tree, "server_endpoint"),
            scope=_get(auth_tree, "scope"),
            status=_get(auth_tree, "status"),
        )
        return cls(event=event, data=data, ts=_int_or_none(_get(tree, "ts")), auth=auth)

    @property
    def is_install(self) -> bool:
        """Tell whether this is ONAPPINSTALL."""
        return self.event == "ONAPPINSTALL"

    @property
    def is_uninstall(self) -> bool:
        """Tell whether this is ONAPPUNINSTALL."""
        return self.event == "ONAPPUNINSTALL"

    @property
    def clean(self) -> bool:
        """Tell whether the admin chose to delete the app's data (``data[CLEAN]=1``)."""
        return _flag(self.data.get("CLEAN", ""))
