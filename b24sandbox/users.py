"""The portal's users and their online store rights (the same on every sandbox portal)."""

from __future__ import annotations

from dataclasses import dataclass

# Sale module rights as Bitrix24 names them: W = write (store administrator),
# R = read (store manager), D = denied.
SALE_WRITE = "W"
SALE_READ = "R"
SALE_DENIED = "D"


@dataclass(frozen=True)
class User:
    """A portal user as profile/user.current describe it, plus the sale right."""

    id: int
    name: str
    last_name: str
    email: str
    admin: bool
    sale_right: str
    position: str

    @property
    def can_read_store(self) -> bool:
        """Whether Bitrix24 lets this user read orders and bindings."""
        return self.sale_right != SALE_DENIED

    @property
    def can_write_store(self) -> bool:
        """Whether Bitrix24 lets this user bind and unbind orders."""
        return self.sale_right == SALE_WRITE


USERS: dict[int, User] = {
    1: User(
        1, "Anna", "Admin", "anna.admin@example.test", True, SALE_WRITE, "Portal administrator"
    ),
    2: User(2, "Mark", "Manager", "mark.manager@example.test", False, SALE_READ, "Store manager"),
    3: User(
        3, "Eva", "Employee", "eva.employee@example.test", False, SALE_DENIED, "Sales assistant"
    ),
}
