"""Translate Bitrix24 list parameters (``filter``, ``order``, ``select``) into parameterised SQL.

Each list method describes its fields with a :class:`FieldMap` (wire name -> SQL column and
type). User input never reaches the SQL text: field names are looked up in the map (only the
map's own column names are interpolated) and every value is bound as a parameter.

Methods differ in how they treat bad input, so a :class:`Policy` says what to do:
``crm.item.list`` rejects unknown fields and bad values with ``INVALID_ARG_VALUE``, while the
sale/orderentity REST views and the old ``crm.deal.list`` silently skip what they do not know
(that is what the Bitrix24 core does: its REST views ``continue`` past unknown names).
"""

from __future__ import annotations

import functools
import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

# The sandbox portal's time zone: every stored datetime carries this offset, so ISO strings
# compare correctly as text and filter values are normalised to it before comparing.
PORTAL_TZ = timezone(timedelta(hours=3))

PAGE_SIZE = 50

# Longest first, so "!=%" wins over "!=" and ">=" over ">".
PREFIXES = ("!=%", "!%=", ">=", "<=", "=%", "%=", "!%", "!@", "!=", ">", "<", "@", "%", "=", "!")

KINDS = ("int", "float", "str", "char", "datetime", "date")


@dataclass(frozen=True)
class Field:
    """One field of a list method: its wire name, SQL column and value kind."""

    name: str
    column: str
    kind: str

    def __post_init__(self) -> None:
        """Reject a kind the coercion code does not know."""
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}")


class FieldMap:
    """The fields one method knows, in their default ``select`` order."""

    def __init__(self, fields: Iterable[Field], *, case_insensitive: bool = False) -> None:
        self.fields = tuple(fields)
        self.case_insensitive = case_insensitive
        self._by_name = {self._key(f.name): f for f in self.fields}

    def _key(self, name: str) -> str:
        """Return the lookup key of a field name."""
        return name.upper() if self.case_insensitive else name

    def get(self, name: str) -> Field | None:
        """Return the field called ``name``, or None."""
        return self._by_name.get(self._key(name))

    def __iter__(self) -> Iterator[Field]:
        """Iterate the fields in default order."""
        return iter(self.fields)


@dataclass(frozen=True)
class Policy:
    """How a method reacts to fields and values it cannot use."""

    strict: bool = False  # raise FilterError instead of skipping
    groups: bool = False  # nested {"logic": "OR", ...} groups are allowed
    like: bool = True  # the NOT LIKE prefixes exist (crm.deal.list lacks them)


LENIENT = Policy()
ITEM_POLICY = Policy(strict=True, groups=True)


class FilterError(Exception):
    """A filter/order problem in the words ``crm.item.list`` reports it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(Exception):
    """A filter value that cannot be coerced to its field's kind."""


@dataclass
class Condition:
    """A WHERE clause fragment and its bound arguments."""

    sql: str
    args: list[Any]


# Narrows a substring filter with an index: given the field and the literal text of a ``%``
# filter, returns a condition that every row containing the text satisfies, or None. The
# LIKE is kept beside it, so the hook may name too many rows but never too few.
Narrowing = Callable[["Field", str], "Condition | None"]


def split_prefix(key: str) -> tuple[str, str]:
    """Split ``">=dateInsert"`` into ``(">=", "dateInsert")``; no prefix means ``"="``."""
    for prefix in PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return prefix, key[len(prefix) :]
    return "", key


def as_list(value: Any) -> list[Any] | None:
    """Return ``value`` as a list when it is one (form encoding gives {"0": a, "1": b})."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, Mapping) and value and all(str(k).isdigit() for k in value):
        return [value[k] for k in sorted(value, key=lambda k: int(k))]
    return None


_INT_PREFIX = re.compile(r"^\s*[+-]?\d+")
_FLOAT_PREFIX = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def coerce(value: Any, kind: str, *, strict: bool) -> Any:
    """Convert one filter value to the Python value stored for ``kind``.

    Lenient mode follows PHP's casts, which is what the core's REST views apply: ``(int)"12a"``
    is 12 and ``(int)"abc"`` is 0. Strict mode refuses anything that is not clean.
    """
    if value is None:
        return None
    if kind == "int":
        return _coerce_number(value, int, _INT_PREFIX, strict)
    if kind == "float":
        return _coerce_number(value, float, _FLOAT_PREFIX, strict)
    if kind in ("datetime", "date"):
        return normalise_datetime(value, date_only=kind == "date")
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, Mapping | list | tuple):
        raise InvalidValue(str(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _coerce_number(value: Any, cast: type, pattern: re.Pattern[str], strict: bool) -> Any:
    """Cast ``value`` to int/float, PHP-style unless ``strict``."""
    if isinstance(value, bool):
        return cast(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidValue(str(value))
        return cast(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text) if cast is float else int(text)
            return cast(number)
        except ValueError:
            if cast is int:
                try:
                    as_float = float(text)
                except ValueError:
                    as_float = None
                if as_float is not None and math.isfinite(as_float):
                    if strict and not as_float.is_integer():
                        raise InvalidValue(value) from None
                    return int(as_float)
            if strict:
                raise InvalidValue(value) from None
            match = pattern.match(text)
            return cast(float(match.group(0)) if match else 0)
    raise InvalidValue(str(value))


_DATE_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")


def parse_datetime(value: Any) -> datetime:
    """Parse an ISO-8601 (with or without offset/time) or ``DD.MM.YYYY`` value."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            for pattern in _DATE_FORMATS:
                try:
                    moment = datetime.strptime(text, pattern)
                    break
                except ValueError:
                    continue
            else:
                raise InvalidValue(value) from None
    else:
        raise InvalidValue(str(value))
    if moment.tzinfo is None:
        # Naive values are in the portal's own time zone, as Bitrix24 reads them.
        moment = moment.replace(tzinfo=PORTAL_TZ)
    return moment.astimezone(PORTAL_TZ)


def format_datetime(moment: datetime) -> str:
    """Format a moment the way the REST API prints datetimes: ``2024-02-28T17:36:55+03:00``."""
    return moment.astimezone(PORTAL_TZ).replace(microsecond=0).isoformat()


def normalise_datetime(value: Any, *, date_only: bool = False) -> str:
    """Return a filter value as the stored ISO text, so comparisons work as string compares."""
    moment = parse_datetime(value)
    if date_only:
        moment = moment.replace(hour=0, minute=0, second=0)
    return format_datetime(moment)


def escape_like(text: str) -> str:
    """Escape LIKE wildcards in a value that must match literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# SQLite's LIKE folds the case of ASCII letters only, where Bitrix24's MySQL collations fold
# every script ("ромашка" finds "Ромашка"). A pattern with other characters is matched by this
# function instead, registered on the sandbox's connection; ASCII patterns keep the built-in
# LIKE (and its speed), which already folds every letter they can hold.
LIKE_FUNCTION = "b24_like"
# Code points past this have no case.
_CASED_BELOW = 0x1F000


@functools.cache
def _fold_table() -> dict[int, str]:
    """Map each code point to its lower case where that is one character."""
    table = {}
    for code in range(_CASED_BELOW):
        char = chr(code)
        lower = char.lower()
        if lower != char and len(lower) == 1:
            table[code] = lower
    return table


def fold_case(text: str) -> str:
    """Lower-case ``text`` one character for one (what FTS5's trigram tokenizer folds)."""
    return text.translate(_fold_table())


@functools.lru_cache(maxsize=1024)
def _like_matcher(pattern: str, escape: str | None) -> Callable[[str], bool]:
    """Compile a LIKE pattern (``%`` any run, ``_`` one character) for folded text."""
    if escape is not None and len(escape) != 1:
        raise ValueError("ESCAPE expression must be a single character")
    folded = fold_case(pattern)
    inner = folded[1:-1]
    specials = {"%", "_"} | ({escape} if escape else set())
    if len(folded) >= 2 and folded[0] == folded[-1] == "%" and not specials & set(inner):
        # "%text%" without wildcards or escapes inside: a substring test.
        return lambda text: inner in text
    parts: list[str] = []
    index = 0
    while index < len(folded):
        char = folded[index]
        if char == escape and index + 1 < len(folded):
            parts.append(re.escape(folded[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    compiled = re.compile("".join(parts), re.DOTALL)
    return lambda text: compiled.fullmatch(text) is not None


def like(pattern: Any, value: Any, escape: Any = None) -> int | None:
    """SQL ``like(pattern, value[, escape])`` with every script's letters folded."""
    if pattern is None or value is None:
        return None
    return int(_like_matcher(str(pattern), escape)(fold_case(str(value))))


def register_like(conn: sqlite3.Connection) -> None:
    """Give a connection :data:`LIKE_FUNCTION` (with and without an escape character)."""
    conn.create_function(LIKE_FUNCTION, 2, like, deterministic=True)
    conn.create_function(LIKE_FUNCTION, 3, like, deterministic=True)


def like_sql(col: str, pattern: str, *, escaped: bool) -> str:
    """Return ``col LIKE ?`` for ``pattern``, through :data:`LIKE_FUNCTION` if not ASCII."""
    if pattern.isascii():
        return f"{col} LIKE ? ESCAPE '\\'" if escaped else f"{col} LIKE ?"
    return f"{LIKE_FUNCTION}(?, {col}, '\\')" if escaped else f"{LIKE_FUNCTION}(?, {col})"


def _is_group_key(key: Any) -> bool:
    """Whether a filter key names a nested condition group (``"0"``, ``"1"``, ...)."""
    return isinstance(key, int) or (isinstance(key, str) and key.isdigit())


def build_where(
    filter_: Any, fields: FieldMap, policy: Policy = LENIENT, *, narrow: Narrowing | None = None
) -> Condition:
    """Translate a Bitrix24 ``filter`` object into a WHERE fragment (``"1"`` when empty).

    ``narrow`` adds an index's condition to each ``%`` (contains) comparison it can serve.
    """
    if filter_ is None or filter_ == [] or filter_ == "":
        return Condition("1", [])
    if isinstance(filter_, list):
        # A filter of only groups ({"0": {...}}) arrives as a list from PHP-style form keys.
        filter_ = {str(index): value for index, value in enumerate(filter_)}
    if not isinstance(filter_, Mapping):
        raise FilterError("Invalid filter: filter must be an object")
    return _group(filter_, fields, policy, narrow)


def _group(
    filter_: Mapping[str, Any], fields: FieldMap, policy: Policy, narrow: Narrowing | None
) -> Condition:
    """Translate one level of a filter; ``logic`` picks AND (default) or OR."""
    logic = str(filter_.get("logic", filter_.get("LOGIC", "AND"))).upper()
    joiner = " OR " if logic == "OR" else " AND "
    parts: list[str] = []
    args: list[Any] = []
    for raw_key, value in filter_.items():
        key = str(raw_key)
        if key.lower() == "logic":
            continue
        if _is_group_key(key) and isinstance(value, Mapping):
            if not policy.groups:
                continue
            sub = _group(value, fields, policy, narrow)
        else:
            sub_or_none = _condition(key, value, fields, policy, narrow)
            if sub_or_none is None:
                continue
            sub = sub_or_none
        parts.append(f"({sub.sql})")
        args.extend(sub.args)
    if not parts:
        return Condition("1", [])
    return Condition(joiner.join(parts), args)


def _condition(
    key: str, value: Any, fields: FieldMap, policy: Policy, narrow: Narrowing | None
) -> Condition | None:
    """Translate one ``prefix+field: value`` pair; None when it is skipped."""
    prefix, name = split_prefix(key)
    field = fields.get(name)
    if field is None:
        if policy.strict:
            raise FilterError(f"Invalid filter: field '{name}' is not allowed in filter")
        return None
    if prefix in ("!%", "!=%", "!%=") and not policy.like:
        # crm.deal.list documents no NOT LIKE; its core reads the key as an unknown field.
        return None
    try:
        return _compare(prefix, field, value, policy, narrow)
    except InvalidValue:
        if policy.strict:
            raise FilterError(f"Invalid filter: field '{name}' has invalid value") from None
        return None


def _compare(
    prefix: str, field: Field, value: Any, policy: Policy, narrow: Narrowing | None = None
) -> Condition:
    """Build the SQL comparison for one operator."""
    col = field.column
    items = as_list(value)
    negate = prefix in ("!", "!=", "!@")
    if prefix in ("@", "!@") or (items is not None and prefix in ("", "=", "!", "!=")):
        values = [
            coerce(v, field.kind, strict=policy.strict)
            for v in (items if items is not None else [value])
        ]
        values = [v for v in values if v is not None]
        if not values:
            return Condition("1" if negate else "0", [])
        marks = ", ".join("?" for _ in values)
        if negate:
            return Condition(f"{col} IS NULL OR {col} NOT IN ({marks})", values)
        return Condition(f"{col} IN ({marks})", values)
    if items is not None:
        raise InvalidValue(str(value))
    if prefix in ("%", "!%"):
        literal = _like_text(value)
        text = escape_like(literal)
        sql = like_sql(col, text, escaped=True)
        hint = narrow(field, literal) if narrow is not None and prefix == "%" else None
        if hint is not None:
            return Condition(f"({hint.sql}) AND {sql}", [*hint.args, f"%{text}%"])
        return _maybe_not(sql, col, [f"%{text}%"], prefix == "!%")
    if prefix in ("=%", "%=", "!=%", "!%="):
        pattern = _like_text(value)
        sql = like_sql(col, pattern, escaped=False)
        return _maybe_not(sql, col, [pattern], prefix.startswith("!"))
    coerced = coerce(value, field.kind, strict=policy.strict)
    if coerced is None or coerced == "":
        empty = f"{col} IS NULL" if coerced is None else f"({col} IS NULL OR {col} = '')"
        if prefix in ("!", "!="):
            return Condition(f"NOT {empty}", [])
        if prefix in ("", "="):
            return Condition(empty, [])
        raise InvalidValue(str(value))
    if prefix in (">", ">=", "<", "<="):
        return Condition(f"{col} {prefix} ?", [coerced])
    if negate:
        return Condition(f"{col} IS NULL OR {col} <> ?", [coerced])
    return Condition(f"{col} = ?", [coerced])


def _like_text(value: Any) -> str:
    """Return a LIKE operand as text."""
    if isinstance(value, Mapping | list | tuple) or value is None:
        raise InvalidValue(str(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _maybe_not(sql: str, col: str, args: list[Any], negate: bool) -> Condition:
    """Wrap a LIKE in NOT when asked; empty values count as "not like" anything."""
    if negate:
        return Condition(f"{col} IS NULL OR NOT ({sql})", args)
    return Condition(sql, args)


def build_order(
    order: Any, fields: FieldMap, policy: Policy = LENIENT, *, tiebreak: str = "id"
) -> str:
    """Translate ``{"field": "ASC"|"DESC"}`` into an ORDER BY list ending with ``tiebreak``.

    The trailing key keeps paging stable when the requested keys tie.
    """
    terms: list[str] = []
    used: set[str] = set()
    if isinstance(order, Mapping):
        for raw_name, raw_direction in order.items():
            name = str(raw_name)
            field = fields.get(name)
            if field is None:
                if policy.strict:
                    raise FilterError(f"Invalid order: field '{name}' is not allowed in order")
                continue
            direction = str(raw_direction).upper()
            if direction not in ("ASC", "DESC"):
                if policy.strict:
                    raise FilterError(
                        "Invalid order: allowed sort directions are ASC, DESC. "
                        f"But got '{raw_direction}' for field '{name}'"
                    )
                direction = "ASC"
            if field.column in used:
                continue
            used.add(field.column)
            terms.append(f"{field.column} {direction}")
    if tiebreak not in used:
        terms.append(f"{tiebreak} ASC")
    return ", ".join(terms)


def build_select(select: Any, fields: FieldMap, *, always: Iterable[str] = ()) -> list[Field]:
    """Return the fields to output: all for empty/``*``, else the known ones asked for."""
    names = as_list(select) if not isinstance(select, str) else [select]
    if not names or "*" in names:
        return list(fields)
    chosen: list[Field] = []
    seen: set[str] = set()
    for name in [*always, *(str(n) for n in names)]:
        field = fields.get(name)
        if field is not None and field.name not in seen:
            seen.add(field.name)
            chosen.append(field)
    return chosen


def page_offset(start: Any) -> tuple[int, bool]:
    """Return ``(offset, count_total)`` for a ``start`` parameter.

    Bitrix24 turns ``start`` into a page number (``start // 50 + 1``), so the offset is rounded
    down to a multiple of 50. ``start=-1`` means: first page, and skip the COUNT (no
    ``total``/``next``), which is what the core's REST manager does for every list method.
    """
    try:
        number = int(float(start)) if start not in (None, "") else 0
    except (TypeError, ValueError):
        number = 0
    if number == -1:
        return 0, False
    if number <= 0:
        return 0, True
    return (number // PAGE_SIZE) * PAGE_SIZE, True
