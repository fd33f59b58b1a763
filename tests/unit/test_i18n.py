"""The message catalogues (gettext .po read through Babel) and the locale formatting helpers."""

from __future__ import annotations

import os
import shutil
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po, write_po
from flask import Flask, render_template_string

import b24app.errors
import b24app.i18n as i18n
from b24app.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    PLURAL_CATEGORIES,
    format_datetime,
    format_money,
    format_number,
    init_i18n,
    plural_strings_for,
    strings_for,
    translate,
    translate_plural,
)

STANDARD_PLURAL_FORMS = {
    "en": "nplurals=2; plural=(n != 1);",
    "ru": (
        "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
        "(n%100<10 || n%100>=20) ? 1 : 2);"
    ),
}


def source(lang: str, directory: Path | None = None) -> Catalog:
    """One language's .po as Babel reads it (the source, not the compiled .mo)."""
    with i18n.po_path(lang, directory).open("rb") as fp:
        return read_po(fp, locale=lang, abort_invalid=True)


def messages(lang: str) -> dict[str, str | tuple[str, ...]]:
    """Message id to text (singular) or forms (plural), header left out."""
    found: dict[str, str | tuple[str, ...]] = {}
    for message in source(lang):
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            found[message.id[0]] = tuple(message.string)
        else:
            found[message.id] = message.string
    return found


def texts(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


@pytest.fixture
def translations_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the .po files (no .mo) that the module reads instead of the real ones."""
    copy = tmp_path / "translations"
    for lang in LANGUAGES:
        target = i18n.po_path(lang, copy)
        target.parent.mkdir(parents=True)
        shutil.copy2(i18n.po_path(lang), target)
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", copy)
    return copy


def remove_message(po: Path, key: str) -> None:
    """Rewrite ``po`` without message ``key``."""
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=po.parent.parent.name)
    catalog.delete(key)
    with po.open("wb") as fp:
        write_po(fp, catalog, width=0, no_location=True)


# --- the catalogues themselves ------------------------------------------------------------


def test_both_catalogues_have_exactly_the_same_message_ids():
    en, ru = set(messages("en")), set(messages("ru"))

    assert not en - ru, f"missing in ru.po: {sorted(en - ru)}"
    assert not ru - en, f"missing in en.po: {sorted(ru - en)}"


def test_a_message_is_plural_in_both_catalogues_or_in_neither():
    en, ru = messages("en"), messages("ru")

    differing = [k for k in en if k in ru and isinstance(en[k], tuple) != isinstance(ru[k], tuple)]
    assert not differing


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_headers_and_entries_are_clean(lang):
    catalog = source(lang)

    assert str(catalog.locale) == lang
    assert dict(catalog.mime_headers)["Plural-Forms"] == STANDARD_PLURAL_FORMS[lang]
    assert not catalog.fuzzy, "a fuzzy header makes pybabel compile skip the catalogue"
    assert not [m.id for m in catalog if m.id and m.fuzzy]
    assert not [m.id for m in catalog if m.id and not all(texts(m.string))], "empty msgstr"
    assert not list(catalog.check())


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_plural_message_has_all_forms(lang):
    catalog = source(lang)
    plurals = [m for m in catalog if isinstance(m.id, tuple)]

    assert plurals, "ui.orders_count at least"
    for message in plurals:
        assert message.id[1] == message.id[0], "msgid_plural repeats the key"
        assert len(message.string) == catalog.num_plurals == (3 if lang == "ru" else 2)
        assert all(message.string), message.id


def test_placeholders_agree_between_english_and_russian_per_message():
    en, ru = messages("en"), messages("ru")

    for key in en.keys() & ru.keys():
        expected = i18n.placeholders(texts(en[key])[0])
        for text in (*texts(en[key]), *texts(ru[key])):
            assert i18n.placeholders(text) == expected, (key, text)


def test_plural_texts_use_count():
    for lang in LANGUAGES:
        for key, value in messages(lang).items():
            if isinstance(value, tuple):
                assert all("count" in i18n.placeholders(form) for form in value), key


def test_every_error_code_has_a_message():
    codes = getattr(b24app.errors, "ERROR_CODES", None)
    if codes is None:
        pytest.skip("b24app.errors.ERROR_CODES does not exist yet")
    en, ru = messages("en"), messages("ru")

    assert codes
    for lang, found in (("en", en), ("ru", ru)):
        lacking = sorted(code for code in codes if f"error.{code}" not in found)
        assert not lacking, f"codes without an error.<code> message in {lang}.po"


# --- translate ------------------------------------------------------------------------------


def test_translate_fills_placeholders_per_language():
    assert translate("install.done", "en", domain="a.bitrix24.ru") == (
        "The app is installed on a.bitrix24.ru."
    )
    assert translate("install.done", "ru", domain="a.bitrix24.ru") == (
        "Приложение установлено на портал a.bitrix24.ru."
    )


def test_translate_tolerates_missing_params_and_unknown_keys():
    assert translate("install.done", "en") == "The app is installed on {domain}."
    assert translate("install.done", "en", other="x") == "The app is installed on {domain}."
    assert translate("no.such.key", "ru") == "no.such.key"
    assert translate("no.such.key", "ru", default="Fallback") == "Fallback"


def test_unknown_language_falls_back_to_english():
    assert translate("ui.loading", "de") == "Loading…"
    assert translate_plural("ui.orders_count", 3, "de") == "3 orders"
    assert strings_for("ui.", "de") == strings_for("ui.", "en")
    assert plural_strings_for("ui.", "de") == plural_strings_for("ui.", "en")


def test_a_message_missing_in_russian_falls_back_to_english(translations_copy):
    ru_po = i18n.po_path("ru", translations_copy)
    remove_message(ru_po, "ui.loading")
    remove_message(ru_po, "ui.orders_count")

    assert translate("ui.loading", "ru") == "Loading…"
    assert translate("ui.portal", "ru") == "Портал"
    assert strings_for("ui.", "ru")["ui.loading"] == "Loading…"
    assert translate_plural("ui.orders_count", 5, "ru") == "5 orders"
    assert translate_plural("ui.orders_count", 1, "ru") == "1 order"
    assert plural_strings_for("ui.", "ru")["ui.orders_count"] == {
        "one": "{count} order",
        "few": "{count} orders",
        "many": "{count} orders",
        "other": "{count} orders",
    }


def test_strings_for_gives_singular_messages_under_the_prefix():
    strings = strings_for("ui.", "ru")

    assert strings["ui.loading"] == "Загрузка…"
    assert all(key.startswith("ui.") for key in strings)
    assert "ui.orders_count" not in strings  # plurals come from plural_strings_for
    assert strings.keys() == strings_for("ui.", "en").keys()


# --- plurals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 заказов"),
        (1, "1 заказ"),
        (2, "2 заказа"),
        (3, "3 заказа"),
        (5, "5 заказов"),
        (11, "11 заказов"),
        (12, "12 заказов"),
        (21, "21 заказ"),
        (22, "22 заказа"),
        (25, "25 заказов"),
        (101, "101 заказ"),
        (111, "111 заказов"),
        (1000, "1\xa0000 заказов"),
    ],
)
def test_russian_plural_forms(count, expected):
    assert translate_plural("ui.orders_count", count, "ru") == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 orders"), (1, "1 order"), (2, "2 orders"), (1000, "1,000 orders")],
)
def test_english_plural_forms(count, expected):
    assert translate_plural("ui.orders_count", count, "en") == expected


def test_translate_plural_passes_other_params_and_tolerates_unknown_keys():
    assert translate_plural("ui.orders_count", 2, "en", unused="x") == "2 orders"
    assert translate_plural("no.such.plural", 2, "ru") == "no.such.plural"


def test_plural_strings_for_uses_the_cldr_categories_of_intl_plural_rules():
    assert plural_strings_for("ui.", "en")["ui.orders_count"] == {
        "one": "{count} order",
        "other": "{count} orders",
    }
    assert plural_strings_for("ui.", "ru")["ui.orders_count"] == {
        "one": "{count} заказ",
        "few": "{count} заказа",
        "many": "{count} заказов",
        "other": "{count} заказа",  # fractions: 1,5 заказа
    }
    for lang in LANGUAGES:
        plurals = plural_strings_for("ui.", lang)
        assert all(set(forms) == set(PLURAL_CATEGORIES[lang]) for forms in plurals.values())
        assert not set(plurals) & set(strings_for("ui.", lang))
    assert plural_strings_for("install.", "ru") == {}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plural_category_table_matches_cldr_and_the_catalogue_plural_forms(lang):
    rule = Locale.parse(lang).plural_form
    table = PLURAL_CATEGORIES[lang]
    gettext_form = i18n.load_catalogue(lang).translations.plural

    assert set(table) == set(rule.tags) | {"other"}
    for n in range(0, 1200):
        assert table[rule(n)] == gettext_form(n), n


# --- formatting ----------------------------------------------------------------------------


def test_format_money():
    assert format_money(Decimal("1234.5"), "USD", "en") == "$1,234.50"
    assert format_money(Decimal("1234.5"), "RUB", "en") == "RUB1,234.50"
    # CLDR Russian: non-breaking space to group and before the sign, comma for decimals.
    assert format_money(Decimal("1234.5"), "RUB", "ru") == "1\xa0234,50\xa0₽"
    assert format_money(1234567, "RUB", "ru") == "1\xa0234\xa0567,00\xa0₽"
    assert format_money(Decimal("1234.5"), "USD", "ru") == "1\xa0234,50\xa0$"
    assert format_money(10, "RUB", "de") == format_money(10, "RUB", "en")


def test_format_number():
    assert format_number(1234567.891, "en") == "1,234,567.891"
    assert format_number(Decimal("1234567.891"), "ru") == "1\xa0234\xa0567,891"
    assert format_number(5, "ru") == "5"


def test_format_datetime_short_and_medium():
    moment = datetime(2024, 3, 5, 14, 7, tzinfo=UTC)

    assert format_datetime(moment, "en", "short") == "3/5/24, 2:07\u202fPM"
    assert format_datetime(moment, "en") == "Mar 5, 2024, 2:07:00\u202fPM"
    assert format_datetime(moment, "ru", "short") == "05.03.2024, 14:07"
    assert format_datetime(moment, "ru", "medium") == "5 мар. 2024\u202fг., 14:07:00"


def test_format_datetime_keeps_the_zone_or_converts_to_the_one_given():
    moscow = timezone(timedelta(hours=3))
    moment = datetime(2024, 3, 5, 14, 7, tzinfo=UTC)

    assert format_datetime(moment, "ru", "short", tz=moscow) == "05.03.2024, 17:07"
    assert format_datetime(moment.astimezone(moscow), "ru", "short") == "05.03.2024, 17:07"


def test_format_datetime_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="aware"):
        format_datetime(datetime(2024, 3, 5, 14, 7), "en")


# --- templates -----------------------------------------------------------------------------


@pytest.fixture
def template_app(translations_copy) -> Flask:
    app = Flask(__name__)
    init_i18n(app)
    return app


def test_templates_get_translators_language_and_filters(template_app):
    template = (
        "{{ lang }}|{{ _('ui.loading') }}|{{ _('install.done', domain='d') }}|"
        "{{ _n('ui.orders_count', 21) }}|{{ amount | money('RUB') }}|{{ 1234.5 | number }}|"
        "{{ moment | datetime('short') }}|{{ moment | datetime }}"
    )
    values = {"amount": Decimal("1500"), "moment": datetime(2024, 3, 5, 14, 7, tzinfo=UTC)}

    with template_app.test_request_context("/?LANG=ru"):
        ru = render_template_string(template, **values)
    with template_app.test_request_context("/", headers={"Accept-Language": "en-US"}):
        en = render_template_string(template, **values)

    assert ru == (
        "ru|Загрузка…|Приложение установлено на портал d.|21 заказ|1\xa0500,00\xa0₽|"
        "1\xa0234,5|05.03.2024, 14:07|5 мар. 2024\u202fг., 14:07:00"
    )
    assert en == (
        "en|Loading…|The app is installed on d.|21 orders|RUB1,500.00|1,234.5|"
        "3/5/24, 2:07\u202fPM|Mar 5, 2024, 2:07:00\u202fPM"
    )


# --- compiling -----------------------------------------------------------------------------


def test_start_compiles_missing_mo_files(translations_copy):
    mos = [i18n.po_path(lang, translations_copy).with_suffix(".mo") for lang in LANGUAGES]
    assert not any(mo.exists() for mo in mos)

    init_i18n(Flask(__name__))

    for lang, mo in zip(LANGUAGES, mos, strict=True):
        assert mo.is_file()
        assert mo.read_bytes() == i18n.compile_po(i18n.po_path(lang, translations_copy))
        with mo.open("rb") as fp:
            assert read_mo(fp).get("ui.loading") is not None
    assert not list(translations_copy.rglob("*.tmp"))
    assert translate("ui.loading", "ru") == "Загрузка…"


def test_a_mo_older_than_its_po_is_compiled_again(translations_copy):
    po = i18n.po_path("ru", translations_copy)
    mo = po.with_suffix(".mo")
    i18n.ensure_compiled(po)
    compiled = mo.read_bytes()
    assert i18n.ensure_compiled(po) == compiled  # fresh: read as it is

    remove_message(po, "ui.loading")
    po_mtime = mo.stat().st_mtime_ns + 1_000_000_000
    os.utime(po, ns=(po_mtime, po_mtime))
    recompiled = i18n.ensure_compiled(po)

    assert recompiled != compiled
    assert mo.read_bytes() == recompiled
    assert mo.stat().st_mtime_ns == po_mtime
    with mo.open("rb") as fp:
        assert read_mo(fp).get("ui.loading") is None


def test_processes_starting_together_never_see_a_partial_mo(translations_copy):
    po = i18n.po_path("ru", translations_copy)
    expected = i18n.compile_po(po)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(i18n.ensure_compiled(po))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert results == [expected] * len(threads)
    assert po.with_suffix(".mo").read_bytes() == expected
    assert not list(translations_copy.rglob("*.tmp"))


def test_a_read_only_folder_compiles_in_memory(translations_copy, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(i18n.tempfile, "mkstemp", refuse)

    assert translate("ui.loading", "ru") == "Загрузка…"
    assert not i18n.po_path("ru", translations_copy).with_suffix(".mo").exists()
    assert "compiled in memory" in caplog.text


def test_the_real_catalogues_compile_like_pybabel_compile():
    for lang in LANGUAGES:
        data = i18n.compile_po(i18n.po_path(lang))
        assert data.startswith(b"\xde\x12\x04\x95")  # little-endian gettext magic
    assert DEFAULT_LANGUAGE == "en"
