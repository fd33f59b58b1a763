import pytest

from b24app.bitrix.payloads import AppEvent, PayloadError, PlacementRequest, parse_bracketed_form


def test_bracketed_form_builds_nested_dicts_and_lists():
    items = [
        ("event", "ONAPPINSTALL"),
        ("auth[access_token]", "a"),
        ("auth[member_id]", "m"),
        ("data[FIELDS][ID]", "7"),
        ("data[LIST][]", "x"),
        ("data[LIST][]", "y"),
        ("plain", "1"),
    ]
    assert parse_bracketed_form(items) == {
        "event": "ONAPPINSTALL",
        "auth": {"access_token": "a", "member_id": "m"},
        "data": {"FIELDS": {"ID": "7"}, "LIST": ["x", "y"]},
        "plain": "1",
    }


def test_bracketed_form_keeps_odd_keys_whole_and_never_clobbers_nesting():
    items = [("a[b]c", "1"), ("[x]", "2"), ("auth[t]", "3"), ("auth", "flat")]
    assert parse_bracketed_form(items) == {"a[b]c": "1", "[x]": "2", "auth": {"t": "3"}}


PLACEMENT_QUERY = {"DOMAIN": "Portal.Bitrix24.com", "PROTOCOL": "1", "LANG": "en", "APP_SID": "sid"}
PLACEMENT_FORM = {
    "AUTH_ID": "access",
    "AUTH_EXPIRES": "3600",
    "REFRESH_ID": "refresh",
    "SERVER_ENDPOINT": "https://oauth.bitrix.info/rest/",
    "APPLICATION_TOKEN": "app-token",
    "APPLICATION_SCOPE": "crm,sale",
    "member_id": "abc123",
    "status": "L",
    "PLACEMENT": "CRM_DEAL_DETAIL_TAB",
    "PLACEMENT_OPTIONS": '{"ID":"8061","URI":"/crm/deal/details/8061/"}',
}


def test_placement_request_reads_query_and_form():
    req = PlacementRequest.from_request(PLACEMENT_QUERY, PLACEMENT_FORM)
    assert req.domain == "portal.bitrix24.com"
    assert (req.protocol, req.lang, req.app_sid) == (1, "en", "sid")
    assert (req.auth_id, req.auth_expires, req.refresh_id) == ("access", 3600, "refresh")
    assert req.server_endpoint == "https://oauth.bitrix.info/rest/"
    assert (req.application_token, req.application_scope) == ("app-token", "crm,sale")
    assert (req.member_id, req.status, req.placement) == ("abc123", "L", "CRM_DEAL_DETAIL_TAB")
    assert req.placement_options == {"ID": "8061", "URI": "/crm/deal/details/8061/"}
    assert req.placement_options_invalid is False


def test_placement_defaults_and_bad_options_are_flagged():
    form = {
        **PLACEMENT_FORM,
        "PLACEMENT": "",
        "PLACEMENT_OPTIONS": "{not json",
        "AUTH_EXPIRES": "x",
    }
    req = PlacementRequest.from_request({}, form)
    assert req.placement == "DEFAULT"
    assert req.placement_options == {} and req.placement_options_invalid is True
    assert req.auth_expires is None and req.protocol is None
    empty = PlacementRequest.from_request({}, {**PLACEMENT_FORM, "PLACEMENT_OPTIONS": "[]"})
    assert empty.placement_options == {} and empty.placement_options_invalid is False


@pytest.mark.parametrize("missing", ["AUTH_ID", "member_id"])
def test_placement_without_token_or_member_id_is_refused_clearly(missing):
    form = {k: v for k, v in PLACEMENT_FORM.items() if k != missing}
    with pytest.raises(PayloadError, match=missing):
        PlacementRequest.from_request(PLACEMENT_QUERY, form)


def test_placement_repr_hides_tokens():
    text = repr(PlacementRequest.from_request(PLACEMENT_QUERY, PLACEMENT_FORM))
    assert "access" not in text and "refresh" not in text and "app-token" not in text


INSTALL_EVENT = [
    ("event", "onappinstall"),
    ("data[VERSION]", "1"),
    ("data[LANGUAGE_ID]", "en"),
    ("ts", "1700000000"),
    ("auth[access_token]", "tok-access"),
    ("auth[refresh_token]", "tok-refresh"),
    ("auth[expires_in]", "3600"),
    ("auth[application_token]", "apt"),
    ("auth[member_id]", "m1"),
    ("auth[domain]", "Portal.Example.com"),
    ("auth[client_endpoint]", "https://portal.example.com/rest/"),
    ("auth[server_endpoint]", "https://oauth.bitrix.info/rest/"),
    ("auth[scope]", "crm"),
    ("auth[status]", "F"),
]


def test_install_event_is_parsed_from_bracketed_pairs():
    event = AppEvent.from_form(INSTALL_EVENT)
    assert event.event == "ONAPPINSTALL" and event.is_install and not event.is_uninstall
    assert event.data == {"VERSION": "1", "LANGUAGE_ID": "en"}
    assert event.ts == 1700000000
    auth = event.auth
    assert (auth.access_token, auth.refresh_token, auth.expires_in) == (
        "tok-access",
        "tok-refresh",
        3600,
    )
    assert (auth.application_token, auth.member_id, auth.domain) == (
        "apt",
        "m1",
        "portal.example.com",
    )
    assert auth.client_endpoint == "https://portal.example.com/rest/"
    assert (auth.server_endpoint, auth.scope, auth.status) == (
        "https://oauth.bitrix.info/rest/",
        "crm",
        "F",
    )
    assert "tok-" not in repr(event) + repr(event.auth)


@pytest.mark.parametrize(("clean", "expected"), [("1", True), ("0", False), ("", False)])
def test_uninstall_event_reads_clean_flag_from_a_flat_mapping(clean, expected):
    form = {
        "event": "ONAPPUNINSTALL",
        "data[CLEAN]": clean,
        "data[LANGUAGE_ID]": "en",
        "auth[application_token]": "apt",
        "auth[member_id]": "m1",
    }
    event = AppEvent.from_form(form)
    assert event.is_uninstall and event.clean is expected
    assert event.auth.access_token == "" and event.auth.expires_in is None


def test_event_without_name_is_refused():
    with pytest.raises(PayloadError):
        AppEvent.from_form([("auth[member_id]", "m1")])
