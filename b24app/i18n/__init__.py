"""English and Russian strings for everything the app renders, and locale formatting.

Catalogues are gettext files read through Babel:
``b24app/translations/<lang>/LC_MESSAGES/messages.po``. Message ids are symbolic dotted keys
(``error.session_invalid``, ``ui.loading``); ``en`` holds the English text, ``ru`` the
Russian. Texts use ``{name}`` placeholders (``str.format``). A plural message has
``msgid_plural`` equal to its ``msgid`` and one ``msgstr[i]`` per gettext form of the
language (``en`` 2, ``ru`` 3); its text gets ``{count}``. English is the fallback for a
missing key or language.

The compiled ``messages.mo`` next to each ``.po`` is not kept in git: ``make setup`` builds
it with ``pybabel compile``, and the first lookup (or :func:`init_i18n`) compiles any that is
missing or older than its ``.po``, writing a temporary file and renaming it into place so
that processes starting together never read a half-written file. When the folder is
read-only the catalogue is compiled in memory instead.

To add a message, add the same ``msgid`` to both ``.po`` files (``tests/unit/test_i18n.py``
fails when one lacks it).
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import cache
from pathlib import Path
from string import Formatter
from typing import Any, Literal

from babel import dates, numbers
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import Flask, g, has_request_context, request
from jinja2 import pass_context
from jinja2.runtime import Context
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
DOMAIN = "messages"
# Bitrix24 portal languages that read Russian best.
_RUSSIAN_READERS = {"ru", "ua", "by", "kz"}
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"

# Which gettext form (msgstr[i], chosen by the catalogue's Plural-Forms) serves each CLDR
# plural category that ``Intl.PluralRules(lang)`` yields. Russian "other" covers fractions
# (1,5 заказа), which take the genitive singular, i.e. the "few" form.
# tests/unit/test_i18n.py checks this table against Babel's CLDR rules and the catalogues.
PLURAL_CATEGORIES: dict[str, dict[str, int]] = {
    "en": {"one": 0, "other": 1},
    "ru": {"one": 0, "few": 1, "many": 2, "other": 1},
}

DateTimeStyle = Literal["short", "medium"]


@dataclass(frozen=True)
class Catalogue:
    """One language's compiled messages."""

    lang: str
    translations: Translations
    singular: Mapping[str, str]
    plural: Mapping[str, tuple[str, ...]]


def _directory() -> Path:
    """The translations folder (a module attribute, so tests can point it elsewhere)."""
    return TRANSLATIONS_DIR


def po_path(lang: str, directory: Path | None = None) -> Path:
    """Where ``lang``'s source catalogue lives."""
    return (directory or _directory()) / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_po(po: Path) -> bytes:
    """Compile one ``.po`` file to ``.mo`` bytes (fuzzy entries left out, as pybabel does)."""
    lang = po.parent.parent.name
    with po.open("rb") as source:
        parsed = read_po(source, locale=lang, domain=DOMAIN, abort_invalid=True)
    buffer = io.BytesIO()
    write_mo(buffer, parsed)
    return buffer.getvalue()


def ensure_compiled(po: Path) -> bytes:
    """Return the ``.mo`` bytes for ``po``, compiling when the ``.mo`` is missing or stale.

    The new ``.mo`` is written to a temporary file in the same folder and renamed over the
    old one (atomic), stamped with the ``.po``'s modification time, so an edit made while
    compiling still counts as newer.
    """
    mo = po.with_suffix(".mo")
    po_mtime = po.stat().st_mtime_ns
    try:
        if mo.stat().st_mtime_ns >= po_mtime:
            return mo.read_bytes()
    except FileNotFoundError:
        pass
    data = compile_po(po)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=mo.parent, prefix=f".{DOMAIN}-", suffix=".mo.tmp")
    except OSError as error:
        log.warning("cannot write %s (%s): using the catalogue compiled in memory", mo, error)
        return data
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp_name, 0o644)
        os.utime(tmp_name, ns=(po_mtime, po_mtime))
        os.replace(tmp_name, mo)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    log.info("compiled %s", mo)
    return data


def compile_catalogues(directory: Path | None = None) -> None:
    """Make sure every supported language's ``.mo`` is compiled and current."""
    for lang in LANGUAGES:
        ensure_compiled(po_path(lang, directory))


@cache
def _load(lang: str, directory: Path) -> Catalogue:
    """Compile (when needed) and load one language's catalogue."""
    data = ensure_compiled(po_path(lang, directory))
    translations = Translations(io.BytesIO(data), domain=DOMAIN)
    singular: dict[str, str] = {}
    plural: dict[str, tuple[str, ...]] = {}
    for message in read_mo(io.BytesIO(data)):
        if not message.id:
            continue  # the header
        if isinstance(message.id, list | tuple):  # read_mo gives lists for plurals
            forms = message.string
            plural[message.id[0]] = tuple(forms) if isinstance(forms, list | tuple) else ()
        elif isinstance(message.string, str):
            singular[message.id] = message.string
    return Catalogue(lang, translations, singular, plural)


def load_catalogue(lang: str) -> Catalogue:
    """Return one supported language's catalogue."""
    return _load(lang, _directory())


def catalogue(lang: str) -> Mapping[str, str]:
    """One language's singular messages (key to text)."""
    return load_catalogue(lang).singular


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
    lang = normalise_language(request.args.get("LANG") or _posted_language())
    if lang is None:
        lang = normalise_language(request.accept_languages.best_match(["en", "ru"]))
    return lang or DEFAULT_LANGUAGE


def _posted_language() -> str | None:
    """Return the posted LANG, or None when the body itself is refused (too large, unreadable).

    An error page for that very body asks for the language too: it must not fail again.
    """
    try:
        return request.form.get("LANG")
    except HTTPException:
        return None


def _supported(lang: str) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def _fill(text: str, params: Mapping[str, Any]) -> str:
    try:
        return text.format(**params) if params else text
    except (KeyError, IndexError, ValueError):
        return text


def translate(key: str, lang: str, default: str | None = None, **params: Any) -> str:
    """Return the text for ``key`` in ``lang`` with ``params`` filled in."""
    text = load_catalogue(_supported(lang)).singular.get(key)
    if text is None:
        text = load_catalogue(DEFAULT_LANGUAGE).singular.get(key)
    if text is None:
        return default if default is not None else key
    return _fill(text, params)


def translate_plural(key: str, count: int, lang: str, **params: Any) -> str:
    """Return the form of plural message ``key`` for ``count`` in ``lang``.

    ``{count}`` in the text is ``count`` formatted for the language (``1 000`` in Russian).
    """
    found = load_catalogue(_supported(lang))
    if key not in found.plural:
        found = load_catalogue(DEFAULT_LANGUAGE)
        if key not in found.plural:
            return key
    text = found.translations.ngettext(key, key, count)
    return _fill(text, {**params, "count": format_number(count, found.lang)})


def strings_for(prefix: str, lang: str) -> dict[str, str]:
    """Return every singular string under ``prefix`` (for the page's scripts), English filled in."""
    merged = {
        k: v for k, v in load_catalogue(DEFAULT_LANGUAGE).singular.items() if k.startswith(prefix)
    }
    if lang in LANGUAGES:
        merged.update(
            {k: v for k, v in load_catalogue(lang).singular.items() if k.startswith(prefix)}
        )
    return merged


def plural_strings_for(prefix: str, lang: str) -> dict[str, dict[str, str]]:
    """Return every plural message under ``prefix`` by CLDR category, for the page's scripts.

    Each value maps the categories ``Intl.PluralRules(lang).select(n)`` yields (ru: one, few,
    many, other; en: one, other) to the text, placeholders unfilled. A message missing in
    ``lang`` comes in English: its "one" text under "one", its plural under the rest.
    """
    lang = _supported(lang)
    categories = PLURAL_CATEGORIES[lang]
    english = load_catalogue(DEFAULT_LANGUAGE).plural
    own = load_catalogue(lang).plural
    result: dict[str, dict[str, str]] = {}
    for key in sorted({*english, *own}):
        if not key.startswith(prefix):
            continue
        if key in own:
            forms = own[key]
            result[key] = {category: forms[i] for category, i in categories.items()}
        else:
            one, many = english[key][0], english[key][-1]
            result[key] = {category: one if category == "one" else many for category in categories}
    return result


def format_money(amount: Decimal | int | float | str, currency: str, lang: str) -> str:
    """Format an amount in ``currency`` (ISO 4217) the way ``lang`` writes money."""
    return numbers.format_currency(amount, currency, locale=_supported(lang))


def format_number(value: Decimal | int | float | str, lang: str) -> str:
    """Format a number with ``lang``'s grouping and decimal signs."""
    return numbers.format_decimal(value, locale=_supported(lang))


def format_datetime(
    value: datetime, lang: str, style: DateTimeStyle = "medium", tz: tzinfo | None = None
) -> str:
    """Format an aware datetime in ``lang`` (``short`` or ``medium``), in ``tz`` if given.

    Naive datetimes are refused: the app keeps every time in UTC with its zone.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("format_datetime needs an aware datetime")
    return dates.format_datetime(value, style, tzinfo=tz, locale=_supported(lang))


def _context_language(context: Context) -> str:
    lang = context.get("lang")
    return str(lang) if lang in LANGUAGES else request_language()


@pass_context
def _money_filter(context: Context, amount: Decimal | int | float | str, currency: str) -> str:
    return format_money(amount, currency, _context_language(context))


@pass_context
def _number_filter(context: Context, value: Decimal | int | float | str) -> str:
    return format_number(value, _context_language(context))


@pass_context
def _datetime_filter(
    context: Context, value: datetime, style: DateTimeStyle = "medium", tz: tzinfo | None = None
) -> str:
    return format_datetime(value, _context_language(context), style, tz)


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders ``text`` uses."""
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def init_i18n(app: Flask) -> None:
    """Compile stale catalogues; give templates ``_``, ``_n``, ``lang`` and the filters.

    Filters: ``money(currency)``, ``number``, ``datetime(style="medium", tz=None)``.
    """
    compile_catalogues()
    for lang in LANGUAGES:
        load_catalogue(lang)
    app.jinja_env.filters.update(
        money=_money_filter, number=_number_filter, datetime=_datetime_filter
    )

    @app.context_processor
    def inject() -> dict[str, Any]:
        """Give templates translators bound to the request's language."""
        lang = request_language()

        def _(key: str, **params: Any) -> str:
            """Translate ``key`` for this request."""
            return translate(key, lang, **params)

        def _n(key: str, count: int, **params: Any) -> str:
            """Translate plural message ``key`` for ``count`` for this request."""
            return translate_plural(key, count, lang, **params)

        return {"_": _, "_n": _n, "lang": lang}
