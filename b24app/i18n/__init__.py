"""English and Russian strings for everything the app renders.

Catalogues are flat JSON files (``en.json``, ``ru.json``) mapping dotted keys to text with
``{name}`` placeholders. English is the fallback for a missing key or language.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask, g, has_request_context, request

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
# Bitrix24 portal languages that read Russian best.
_RUSSIAN_READERS = {"ru", "ua", "by", "kz"}
_HERE = Path(__file__).resolve().parent


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Load one language's strings."""
    loaded: dict[str, str] = json.loads((_HERE / f"{lang}.json").read_text(encoding="utf-8"))
    return loaded


def normalise_language(value: str | None) -> str | None:
    """Map a Bitrix24 LANG or a browser language tag to a supported language."""
    if not value:
        return None
    primary = value.strip().lower().replace("_", "-").split("-", 1)[0]
    if primary in _RUSSIAN_READERS:
        return "ru"
    if primary == "en":
        return "en"
    return None


def request_language() -> str:
    """Pick the language for this request: Bitrix24's LANG, then the browser's."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    chosen = g.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    lang = normalise_language(request.args.get("LANG") or request.form.get("LANG"))
    if lang is None:
        lang = normalise_language(request.accept_languages.best_match(["en", "ru"]))
    return lang or DEFAULT_LANGUAGE


def translate(key: str, lang: str, default: str | None = None, **params: Any) -> str:
    """Return the text for ``key`` in ``lang`` with ``params`` filled in."""
    text = catalogue(lang).get(key) if lang in LANGUAGES else None
    if text is None:
        text = catalogue(DEFAULT_LANGUAGE).get(key)
    if text is None:
        return default if default is not None else key
    try:
        return text.format(**params) if params else text
    except (KeyError, IndexError, ValueError):
        return text


def strings_for(prefix: str, lang: str) -> dict[str, str]:
    """Return every string under ``prefix`` (for the page's scripts), English filled in."""
    merged = {k: v for k, v in catalogue(DEFAULT_LANGUAGE).items() if k.startswith(prefix)}
    if lang in LANGUAGES:
        merged.update({k: v for k, v in catalogue(lang).items() if k.startswith(prefix)})
    return merged


def init_i18n(app: Flask) -> None:
    """Make ``_`` and ``lang`` available in templates."""

    @app.context_processor
    def inject() -> dict[str, Any]:
        """Give templates a translator bound to the request's language."""
        lang = request_language()

        def _(key: str, **params: Any) -> str:
            """Translate ``key`` for this request."""
            return translate(key, lang, **params)

        return {"_": _, "lang": lang}
