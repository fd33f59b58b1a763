"""Unit tests of the filter/order/select translator, run against a real SQLite table."""

from __future__ import annotations

import sqlite3

import pytest

from b24sandbox.filters import (
    ITEM_POLICY,
    LENIENT,
    Field,
    FieldMap,
    FilterError,
    Policy,
    build_order,
    build_select,
    build_where,
    coerce,
    like,
    normalise_datetime,
    page_offset,
    register_like,
    split_prefix,
)

FIELDS = FieldMap(
    [
        Field("id", "id", "int"),
        Field("title", "title", "str"),
        Field("price", "price", "float"),
        Field("payed", "payed", "char"),
        Field("dateInsert", "date_insert", "datetime"),
    ]
)

ROWS = [
    (1, "Molotok", 100.0, "Y", "2024-01-10T10:00:00+03:00"),
    (2, "Hammer mol", 250.5, "N", "2024-02-10T10:00:00+03:00"),
    (3, "Saw", 80.0, "N", "2024-03-10T10:00:00+03:00"),
    (4, "50% off", 10.0, "Y", "2024-04-10T10:00:00+03:00"),
    (5, None, 999.0, "N", "2024-05-10T10:00:00+03:00"),
]


@pytest.fixture
def table():
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE t (id INTEGER, title TEXT COLLATE NOCASE, price REAL, payed TEXT,"
        " date_insert TEXT)"
    )
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", ROWS)
    yield conn
    conn.close()


def ids(conn, filter_, policy=LENIENT):
    """Return the ids the filter selects, in id order."""
    where = build_where(filter_, FIELDS, policy)
    sql = f"SELECT id FROM t WHERE {where.sql} ORDER BY id"
    return [row[0] for row in conn.execute(sql, where.args)]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (">=id", (">=", "id")),
        ("!=%title", ("!=%", "title")),
        ("!%=title", ("!%=", "title")),
        ("!@id", ("!@", "id")),
        ("!title", ("!", "title")),
        ("=%title", ("=%", "title")),
        ("id", ("", "id")),
    ],
)
def test_prefixes_are_split_longest_first(key, expected):
    assert split_prefix(key) == expected


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({">=id": 3}, [3, 4, 5]),
        ({">id": 3}, [4, 5]),
        ({"<=id": 2}, [1, 2]),
        ({"<id": 2}, [1]),
        ({"@id": [1, 3, 9]}, [1, 3]),
        ({"!@id": [1, 3]}, [2, 4, 5]),
        ({"id": 2}, [2]),
        ({"=id": 2}, [2]),
        ({"!=id": 2}, [1, 3, 4, 5]),
        ({"!id": 2}, [1, 3, 4, 5]),
        ({"%title": "mol"}, [1, 2]),
        ({"=%title": "mol%"}, [1]),
        ({"%=title": "%mol"}, [2]),
        ({"!%title": "mol"}, [3, 4, 5]),
        ({"!=%title": "mol%"}, [2, 3, 4, 5]),
        ({"!%=title": "%mol"}, [1, 3, 4, 5]),
        ({"%title": "50%"}, [4]),
        ({"payed": "Y", ">price": 50}, [1]),
        ({"id": [2, 4]}, [2, 4]),
        ({"@id": []}, []),
        ({"title": None}, [5]),
        ({"!title": None}, [1, 2, 3, 4]),
        ({}, [1, 2, 3, 4, 5]),
        (None, [1, 2, 3, 4, 5]),
    ],
)
def test_each_operator_selects_the_documented_rows(table, filter_, expected):
    assert ids(table, filter_) == expected


def test_substring_search_escapes_wildcards_in_the_value(table):
    assert ids(table, {"%title": "_"}) == []


def test_like_is_case_insensitive_like_the_portal(table):
    assert ids(table, {"%title": "MOL"}) == [1, 2]


def test_string_values_from_form_encoding_are_coerced(table):
    assert ids(table, {">=id": "4"}) == [4, 5]
    assert ids(table, {"@id": {"0": "1", "1": "2"}}) == [1, 2]
    assert ids(table, {"<price": "90.5"}) == [3, 4]


def test_dates_compare_across_offsets_and_formats(table):
    assert ids(table, {">=dateInsert": "2024-03-10T07:00:00+00:00"}) == [3, 4, 5]
    assert ids(table, {"<dateInsert": "2024-02-11"}) == [1, 2]
    assert ids(table, {"<dateInsert": "11.02.2024"}) == [1, 2]


def test_lenient_policy_skips_unknown_fields_and_bad_values(table):
    assert ids(table, {"nope": 1, "id": 2}) == [2]
    assert ids(table, {">dateInsert": "not a date"}) == [1, 2, 3, 4, 5]
    # PHP's (int)"abc" is 0, so the condition stays and matches nothing.
    assert ids(table, {"id": "abc"}) == []


def test_strict_policy_reports_unknown_fields_in_the_item_list_words(table):
    with pytest.raises(FilterError) as error:
        ids(table, {"nope": 1}, ITEM_POLICY)
    assert error.value.message == "Invalid filter: field 'nope' is not allowed in filter"


def test_strict_policy_reports_invalid_values(table):
    with pytest.raises(FilterError) as error:
        ids(table, {">id": "abc"}, ITEM_POLICY)
    assert error.value.message == "Invalid filter: field 'id' has invalid value"


def test_nested_or_groups(table):
    filter_ = {"0": {"logic": "OR", "0": {"id": 1}, "1": {"%title": "saw"}}, "payed": "N"}
    assert ids(table, filter_, ITEM_POLICY) == [3]
    # A filter holding only groups arrives as a list from form keys.
    assert ids(table, [{"logic": "OR", "0": {"id": 1}, "1": {"id": 3}}], ITEM_POLICY) == [1, 3]


def test_groups_are_ignored_where_the_method_has_none(table):
    assert ids(table, {"0": {"logic": "OR", "0": {"id": 1}}}, LENIENT) == [1, 2, 3, 4, 5]


def test_not_like_prefixes_are_skipped_when_the_method_lacks_them(table):
    assert ids(table, {"!%title": "mol"}, Policy(like=False)) == [1, 2, 3, 4, 5]


def test_values_never_reach_the_sql_text():
    where = build_where({"%title": "x'); DROP TABLE t; --", "id": "1 OR 1=1"}, FIELDS)
    assert "DROP" not in where.sql and "1=1" not in where.sql
    assert "x'); DROP TABLE t; --" in where.args[0]


def test_non_object_filter_is_rejected():
    with pytest.raises(FilterError):
        build_where("id=1", FIELDS)


def test_order_builds_terms_and_a_stable_tiebreak():
    assert build_order({"price": "desc", "title": "ASC"}, FIELDS) == (
        "price DESC, title ASC, id ASC"
    )
    assert build_order({"id": "DESC"}, FIELDS) == "id DESC"
    assert build_order({"nope": "ASC"}, FIELDS) == "id ASC"
    assert build_order(None, FIELDS) == "id ASC"


def test_strict_order_rejects_unknown_fields_and_directions():
    with pytest.raises(FilterError, match="Invalid order: field 'nope' is not allowed in order"):
        build_order({"nope": "ASC"}, FIELDS, ITEM_POLICY)
    with pytest.raises(FilterError, match="But got 'up' for field 'id'"):
        build_order({"id": "up"}, FIELDS, ITEM_POLICY)


def test_select_defaults_to_all_and_skips_unknown_names():
    assert [f.name for f in build_select(None, FIELDS)] == [f.name for f in FIELDS]
    assert [f.name for f in build_select(["*"], FIELDS)] == [f.name for f in FIELDS]
    assert [f.name for f in build_select(["title", "nope"], FIELDS)] == ["title"]
    assert [f.name for f in build_select(["title"], FIELDS, always=["id"])] == ["id", "title"]


def test_case_insensitive_maps_accept_any_case():
    upper = FieldMap([Field("TITLE", "title", "str")], case_insensitive=True)
    assert upper.get("title") is upper.get("TITLE") is not None


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (None, (0, True)),
        (0, (0, True)),
        ("50", (50, True)),
        (75, (50, True)),  # Bitrix24 turns start into a page number
        (100, (100, True)),
        (-1, (0, False)),
        ("-1", (0, False)),
        ("junk", (0, True)),
    ],
)
def test_start_becomes_a_page_offset(start, expected):
    assert page_offset(start) == expected


def test_coerce_follows_php_casts_unless_strict():
    assert coerce("12abc", "int", strict=False) == 12
    assert coerce("3.0", "int", strict=True) == 3
    assert coerce(True, "char", strict=False) == "Y"
    assert normalise_datetime("2024-01-01T00:00:00Z") == "2024-01-01T03:00:00+03:00"


@pytest.fixture
def titles():
    """A table of titles in several scripts, with the sandbox's LIKE function."""
    conn = sqlite3.connect(":memory:")
    register_like(conn)
    conn.execute("CREATE TABLE t (id INTEGER, title TEXT)")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?)",
        [
            (1, "Поставка «Ромашка»"),
            (2, "РОМАШКА и ко"),
            (3, "Ёлка 50% скидка"),
            (4, "елка"),
            (5, "ΩMEGA Ωmega"),
            (6, None),
        ],
    )
    yield conn
    conn.close()


def title_ids(conn, filter_):
    """Return the ids of ``t`` (titles) the filter selects, in id order."""
    where = build_where(
        filter_, FieldMap([Field("id", "id", "int"), Field("title", "title", "str")])
    )
    return [
        row[0]
        for row in conn.execute(f"SELECT id FROM t WHERE {where.sql} ORDER BY id", where.args)
    ]


def test_letters_of_every_script_match_in_any_case(titles):
    assert title_ids(titles, {"%title": "ромашка"}) == [1, 2]
    assert title_ids(titles, {"%title": "ωmega"}) == [5]
    # Ё and Е are different letters, as they are to Bitrix24's search.
    assert title_ids(titles, {"%title": "ёлка"}) == [3]
    assert title_ids(titles, {"!%title": "ромашка"}) == [3, 4, 5, 6]


def test_wildcards_and_escapes_keep_their_meaning_beside_other_scripts(titles):
    # In a contains search the value is literal: "%" matches a percent sign only.
    assert title_ids(titles, {"%title": "50% СКИДКА"}) == [3]
    assert title_ids(titles, {"%title": "ёлка_"}) == []
    # The pattern prefixes take SQL wildcards as given.
    assert title_ids(titles, {"=%title": "ЁЛКА%"}) == [3]
    assert title_ids(titles, {"=%title": "_лка"}) == [4]
    assert title_ids(titles, {"%=title": "%ко"}) == [2]


def test_the_like_function_reads_null_and_numbers_as_sql_does():
    assert like(None, "x") is None and like("%", None) is None
    assert like("1_", 15) == 1 and like("%ж%", "ЖУК") == 1 and like("ж", "жук") == 0
    with pytest.raises(ValueError, match="single character"):
        like("%", "x", "ab")
