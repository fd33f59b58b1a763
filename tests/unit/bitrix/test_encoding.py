from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from b24app.bitrix.encoding import batch_command, encode_params, flatten_params


def test_nested_mappings_and_lists_become_bracketed_keys():
    params = {
        "filter": {">ID": 10, "@STAGE_ID": ["NEW", "WON"], "nested": {"deep": "x"}},
        "select": ["ID"],
        "start": 0,
    }
    assert list(flatten_params(params)) == [
        ("filter[>ID]", "10"),
        ("filter[@STAGE_ID][0]", "NEW"),
        ("filter[@STAGE_ID][1]", "WON"),
        ("filter[nested][deep]", "x"),
        ("select[0]", "ID"),
        ("start", "0"),
    ]


def test_booleans_none_and_floats_follow_php_conventions():
    assert list(flatten_params({"a": True, "b": False, "c": None, "d": 2.0, "e": 2.5})) == [
        ("a", "1"),
        ("b", "0"),
        ("d", "2"),
        ("e", "2.5"),
    ]


def test_reserved_characters_are_percent_encoded_and_round_trip():
    params = {"filter": {"%TITLE": "50% & more=yes", "=name": "Иван"}, "fields": {"x": "a+b c"}}
    encoded = encode_params(params)
    assert "&more" not in encoded and " " not in encoded and "+" not in encoded
    assert parse_qsl(encoded) == [
        ("filter[%TITLE]", "50% & more=yes"),
        ("filter[=name]", "Иван"),
        ("fields[x]", "a+b c"),
    ]


def test_result_references_survive_decoding():
    command = batch_command("crm.deal.get", {"id": "$result[first][0][ID]"})
    method, query = command.split("?", 1)
    assert method == "crm.deal.get"
    assert parse_qsl(query) == [("id", "$result[first][0][ID]")]


def test_command_without_parameters_is_the_bare_method():
    assert batch_command("user.admin") == "user.admin"
    assert batch_command("profile", {}) == "profile"


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(st.text(max_size=20), st.integers(), st.lists(st.text(max_size=8), max_size=3)),
        max_size=5,
    )
)
def test_any_keys_and_values_come_back_whole_after_php_style_decoding(params):
    pairs = list(flatten_params(params))
    assert parse_qsl(encode_params(params), keep_blank_values=True) == pairs
