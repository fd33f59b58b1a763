"""What a user may do with store orders: shared by services, sessions and views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rights:
    """The user's rights on store orders, as the UI and the API see them."""

    can_view: bool
    can_bind: bool
    is_admin: bool

    @property
    def role(self) -> str:
        """Name the role for messages: store_admin, store_manager or no_access."""
        if self.can_bind:
            return "store_admin"
        if self.can_view:
            return "store_manager"
        return "no_access"

    def as_dict(self) -> dict[str, Any]:
        """Return the rights as JSON-ready data."""
        return {
            "can_view": self.can_view,
            "can_bind": self.can_bind,
            "is_admin": self.is_admin,
            "role": self.role,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rights:
        """Rebuild rights from ``as_dict`` output."""
        return cls(
            can_view=bool(data["can_view"]),
            can_bind=bool(data["can_bind"]),
            is_admin=bool(data["is_admin"]),
        )
