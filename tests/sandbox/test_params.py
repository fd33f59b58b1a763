"""Parameter decoding the way Bitrix24's PHP front end reads query strings and forms."""

from __future__ import annotations

from urllib.parse import parse_qsl

from b24sandbox.params import parse_pairs, split_key


def decode(query: str) -> dict:
    return parse_pairs(parse_qsl(query, keep_blank_values=True))


def test_split_key_reads_php_brackets():
    assert split_key("filter[>id]") == ["filter", ">id"]
    assert split_key("select[]") == ["select", ""]
    assert split_key("a[b][0][c]") == ["a", "b", "0", "c"]
    assert split_key("plain") == ["plain"]
    assert split_key("[odd]") == ["[odd]"]


def test_operator_keys_and_appended_lists():
    assert decode("filter[>id]=5&filter[%25accountNumber]=12&select[]=id&select[]=price") == {
        "filter": {">id": "5", "%accountNumber": "12"},
        "select": ["id", "price"],
    }


def test_numbered_keys_become_lists_only_when_dense():
    assert decode("filter[@id][0]=1&filter[@id][1]=2") == {"filter": {"@id": ["1", "2"]}}
    assert decode("cmd[0]=a&cmd[2]=b") == {"cmd": {"0": "a", "2": "b"}}


def test_nested_objects_and_repeated_keys():
    assert decode("fields[orderId]=1&fields[ownerTypeId]=2&fields[ownerId]=3") == {
        "fields": {"orderId": "1", "ownerTypeId": "2", "ownerId": "3"}
    }
    assert decode("a=1&a=2") == {"a": "2"}  # the last one wins, as in PHP
