"""What a user may do with store orders, learned from Bitrix24 in one batch.

No REST method reports the online store right (sale module W/R/D), so the app asks with
probes that cannot change anything, using the user's own token:

- read: ``sale.order.list`` filtered to ``id = 0``. Denied (``200040300010``) means no
  store access at all; any answer means the user may read orders and bindings.
- write: ``crm.orderentity.deleteByFilter`` for the triple order 0 / deal 0. Bitrix24's
  controller checks the write right (sale >= W) before anything else, so a user without it
  gets ``200040300020``, and a store administrator gets a method error about the triple
  ("relation does not exist" ``201640400004``, an empty-field code ``2016404000x``...):
  order 0 never exists, so nothing is ever deleted.

When a probe fails for another reason (scope, outage) the app falls back to the portal admin
flag for writing and to "no access" for reading, and the real call's answer stays the judge:
every bind runs with the user's own token, so Bitrix24 enforces the right anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from b24app.bitrix.client import BatchResult
from b24app.bitrix.errors import (
    AccessDenied,
    BitrixError,
    DuplicateEntry,
    InvalidArgument,
    MethodError,
    NotFound,
)
from b24app.rights import Rights

log = logging.getLogger(__name__)

# Errors that only come after the rights check passed: the user holds the write right.
_PAST_RIGHTS_CHECK = (NotFound, InvalidArgument, MethodError, DuplicateEntry)
# Owner type 2 (deal) exists on every portal; order 0 and deal 0 never do.
WRITE_PROBE_FIELDS = {"orderId": 0, "ownerTypeId": 2, "ownerId": 0}

PROBE_COMMANDS: dict[str, tuple[str, Mapping[str, Any] | None]] = {
    "profile": ("profile", None),
    "admin": ("user.admin", None),
    "read": ("sale.order.list", {"select": ["id"], "filter": {"id": 0}}),
    "write": ("crm.orderentity.deleteByFilter", {"fields": WRITE_PROBE_FIELDS}),
}


@dataclass(frozen=True)
class UserProfile:
    """The Bitrix24 user behind a token."""

    user_id: int
    name: str
    is_admin: bool


def truthy(value: Any) -> bool:
    """Read a Bitrix24 boolean (true, "Y", 1)."""
    if isinstance(value, str):
        return value.strip().upper() in {"Y", "1", "TRUE"}
    return bool(value)


def profile_from_batch(batch: BatchResult) -> UserProfile:
    """Read the user from the probe batch; raise the batch's error if profile failed."""
    if "profile" in batch.errors:
        raise batch.errors["profile"]
    profile = batch.results.get("profile")
    if not isinstance(profile, Mapping) or not str(profile.get("ID", "")).isdigit():
        raise BitrixError("UNEXPECTED_RESULT", "profile did not name the user")
    name = " ".join(
        part
        for part in (str(profile.get("NAME") or ""), str(profile.get("LAST_NAME") or ""))
        if part
    )
    admin = batch.results.get("admin", profile.get("ADMIN"))
    return UserProfile(
        user_id=int(profile["ID"]), name=name or f"#{profile['ID']}", is_admin=truthy(admin)
    )


def rights_from_batch(batch: BatchResult, is_admin: bool) -> Rights:
    """Decide the rights from the read and write probes (see the module notes)."""
    can_view = "read" not in batch.errors
    read_error = batch.errors.get("read")
    if read_error is not None and not isinstance(read_error, AccessDenied):
        log.warning("read probe failed unexpectedly: %r", read_error)
    write_error = batch.errors.get("write")
    if write_error is None or isinstance(write_error, _PAST_RIGHTS_CHECK):
        can_bind = True
    elif isinstance(write_error, AccessDenied):
        can_bind = False
    else:
        log.warning("write probe failed unexpectedly: %r", write_error)
        can_bind = is_admin
    # Binding needs reading: the picker lists orders and the current owner first.
    return Rights(can_view=can_view, can_bind=can_bind and can_view, is_admin=is_admin)
