"""Request parameters the way Bitrix24's PHP front end sees them.

Query string, form body (``filter[>id]=5``, ``select[]=id``, nested brackets) and JSON body
all merge into one dict. Bracketed arrays whose keys are exactly 0..n-1 become lists, like
PHP arrays become JSON lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from flask import Request

_SEGMENT = re.compile(r"\[([^\]]*)\]")


def split_key(key: str) -> list[str]:
    """Split ``filter[>id][0]`` into ``["filter", ">id", "0"]`` (``[]`` gives ``""``)."""
    head, bracket, rest = key.partition("[")
    if not bracket or not head:
        return [key]
    segments = [head]
    position = len(head)
    for match in _SEGMENT.finditer(key, position):
        if match.start() != position:
            break  # anything between brackets ends the array path, as in PHP
        segments.append(match.group(1))
        position = match.end()
    if len(segments) == 1:
        return [key]
    return segments


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build nested parameters from decoded ``(key, value)`` pairs."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        segments = split_key(key)
        node = root
        for index, segment in enumerate(segments):
            last = index == len(segments) - 1
            if segment == "":
                segment = str(_next_index(node))
            if last:
                node[segment] = value
            else:
                child = node.get(segment)
                if not isinstance(child, dict):
                    child = node[segment] = {}
                node = child
    return {key: php_array(value) for key, value in root.items()}


def _next_index(node: dict[str, Any]) -> int:
    """Return the index ``[]`` appends at: one past the largest integer key."""
    numbers = [int(k) for k in node if k.lstrip("-").isdigit()]
    return max(numbers) + 1 if numbers else 0


def php_array(value: Any) -> Any:
    """Turn nested dicts keyed 0..n-1 into lists, recursively (PHP list semantics)."""
    if not isinstance(value, dict):
        return value
    converted = {key: php_array(item) for key, item in value.items()}
    if converted and list(converted) == [str(i) for i in range(len(converted))]:
        return list(converted.values())
    return converted


def request_params(request: Request) -> dict[str, Any]:
    """Merge query string and body (JSON or form) into one parameter dict."""
    params = parse_pairs(request.args.items(multi=True))
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        params.update(parse_pairs(request.form.items(multi=True)))
        return params
    body = request.get_data(cache=True)
    if body.strip():
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None  # PHP ignores a body it cannot decode
        if isinstance(decoded, dict):
            params.update(decoded)
    return params


def is_true(value: Any) -> bool:
    """Read a Bitrix24 boolean flag: true, 1, "1", "Y", "true"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "y", "true", "yes")
    return bool(value)
