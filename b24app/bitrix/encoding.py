"""Bracketed query-string encoding of REST parameters, as ``batch`` commands need it.

Bitrix24 parses each batch command's query with PHP's ``parse_str``, so nested parameters are
written ``filter[>ID]=5&select[0]=ID``; every key and value is percent-encoded, and ``$result``
references survive because Bitrix24 resolves them after decoding.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

# What percent-encoding leaves as it is (``quote`` with no safe characters).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _scalar(value: Any) -> str:
    """Render one leaf value the way PHP's http_build_query does."""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield (bracketed key, value) pairs for nested mappings and sequences; None is skipped."""
    for raw_key, value in params.items():
        key = f"{prefix}[{raw_key}]" if prefix else str(raw_key)
        yield from _flatten_value(key, value)


def _flatten_value(key: str, value: Any) -> Iterator[tuple[str, str]]:
    """Yield the pairs for one value under ``key``."""
    if value is None:
        return
    if isinstance(value, Mapping):
        yield from flatten_params(value, key)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _flatten_value(f"{key}[{index}]", item)
    else:
        yield key, _scalar(value)


@functools.lru_cache(maxsize=4096)
def _quoted_key(key: str) -> str:
    """Percent-encode a bracketed key (a batch repeats the same few keys many times)."""
    return quote(key, safe="")


def _quoted(value: str) -> str:
    """Percent-encode a value; ids and plain words pass through as they are."""
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")


def encode_params(params: Mapping[str, Any]) -> str:
    """Return ``params`` as a bracketed, percent-encoded query string."""
    return "&".join(f"{_quoted_key(key)}={_quoted(value)}" for key, value in flatten_params(params))


def batch_command(method: str, params: Mapping[str, Any] | None = None) -> str:
    """Return one ``cmd`` entry of a batch: ``method?query``."""
    query = encode_params(params or {})
    return f"{method}?{query}" if query else method
