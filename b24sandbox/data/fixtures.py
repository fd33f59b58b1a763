"""Fixed records on known ids, the same for every seed: hostile titles and pre-bound orders.

Browser and integration tests look these up by id (``docs/sandbox.md`` lists them). A fixture
only exists when the portal has that many rows (``--deals``, ``--invoices``, ``--orders``) and,
for bindings, when it offers the owner type.
"""

from __future__ import annotations

DEAL, SMART_INVOICE = 2, 31

LONG_TITLE_LENGTH = 10_000


def long_title(subject: str) -> str:
    """Return a title of exactly 10,000 characters that ends with ``END``."""
    parts: list[str] = []
    size, lot = 0, 1
    while size < LONG_TITLE_LENGTH:
        part = f"{subject}, lot {lot}; "
        parts.append(part)
        size += len(part)
        lot += 1
    return "".join(parts)[: LONG_TITLE_LENGTH - 3] + "END"


QUOTES = '"Big" deal for O\'Brien & Sons'
SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=alert(1)>"
RTL_MARK = "\u200f"

# Deal id -> title. Deal 1 is plain and its words appear in no other title.
DEAL_TITLES = {
    1: "Espresso machines for Aurora Bakery",
    2: QUOTES,
    3: SCRIPT,
    4: IMAGE,
    5: "Поставка оборудования «Ромашка»",
    6: f"{RTL_MARK}صفقة توريد أثاث مكتبي – Dubai",
    7: long_title("Framework agreement with Summit Builders"),
}

# Smart invoice id -> title.
SMART_INVOICE_TITLES = {
    1: "Aurora Bakery espresso machines, prepayment",
    2: '"Big" invoice for O\'Brien & Sons',
    3: SCRIPT,
    4: IMAGE,
    5: "Счёт на оплату «Ромашка»",
    6: f"{RTL_MARK}חשבונית עבור משרד תל אביב",
    7: long_title("Invoice for the framework agreement with Summit Builders"),
}

# Order id -> (owner type, owner id); the other fixture orders (1, 5, 10) start unbound, so
# that "the first order" of a list is free to bind.
BINDINGS = {
    2: (DEAL, 1),
    3: (DEAL, 1),
    4: (SMART_INVOICE, 1),
    6: (DEAL, 3),
    7: (SMART_INVOICE, 4),
    8: (DEAL, 7),
    9: (DEAL, 5),
}
UNBOUND_ORDERS = (1, 5, 10)
