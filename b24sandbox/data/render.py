"""Turn stored rows into the wire shapes of each method (types exactly as the docs print)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from b24sandbox.filters import Field


def number(value: float | int | None) -> float | int | None:
    """Print a double the way the portal does: ``1176`` for whole values, ``163.33`` otherwise."""
    if value is None:
        return None
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else round(as_float, 2)


def native(field: Field, value: Any) -> Any:
    """Render a value with its native JSON type (camelCase methods)."""
    if value is None:
        return None
    if field.kind == "int":
        return int(value)
    if field.kind == "float":
        return number(value)
    return value


def as_string(field: Field, value: Any) -> str | None:
    """Render a value as the old UPPER_CASE CRM methods do: every value a string."""
    if value is None:
        return None
    if field.kind == "float":
        return f"{float(value):.2f}"
    return str(value)


def row_native(row: sqlite3.Row, fields: Iterable[Field]) -> dict[str, Any]:
    """Render a row with native types, keyed by wire name."""
    return {f.name: native(f, row[f.column]) for f in fields}


def row_strings(row: sqlite3.Row, fields: Iterable[Field]) -> dict[str, Any]:
    """Render a row with string values, keyed by wire name."""
    return {f.name: as_string(f, row[f.column]) for f in fields}
