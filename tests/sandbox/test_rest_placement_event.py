"""placement.* and event.*: admin rules, argument errors, shapes, per-portal storage."""

from __future__ import annotations

import pytest


@pytest.fixture
def handler(sandbox_app_url):
    return f"{sandbox_app_url}/app"


def bind_tab(sandbox, handler, user_id=1, portal=1, placement="CRM_DEAL_DETAIL_TAB"):
    return sandbox.rest(
        "placement.bind",
        {"PLACEMENT": placement, "HANDLER": handler, "TITLE": "Orders", "DESCRIPTION": "d"},
        user_id=user_id,
        portal=portal,
    )


def test_placement_bind_and_get(sandbox, handler):
    response = bind_tab(sandbox, handler)
    assert response.status_code == 200
    assert response.json()["result"] is True
    assert set(response.json()["time"]) >= {"operating_reset_at", "operating"}
    placements = sandbox.rest("placement.get").json()["result"]
    assert placements == [
        {
            "placement": "CRM_DEAL_DETAIL_TAB",
            "userId": 0,
            "handler": handler,
            "options": [],
            "title": "Orders",
            "description": "d",
            "langAll": {},
        }
    ]


def test_placement_bind_needs_the_admin(sandbox, handler):
    response = bind_tab(sandbox, handler, user_id=2)
    assert response.status_code == 403
    assert response.json()["error"] == "ACCESS_DENIED"
    assert sandbox.rest("placement.get", user_id=3).status_code == 403


@pytest.mark.parametrize(
    ("params", "argument"),
    [
        ({"HANDLER": "http://127.0.0.1:9/app"}, "PLACEMENT"),
        ({"PLACEMENT": "CRM_DEAL_DETAIL_TAB"}, "HANDLER"),
    ],
)
def test_placement_bind_argument_errors(sandbox, params, argument):
    response = sandbox.rest("placement.bind", params)
    assert response.status_code == 400
    assert response.json() == {
        "error": "ERROR_ARGUMENT",
        "error_description": f"Argument '{argument}' is null or empty",
        "argument": argument,
    }


def test_placement_bind_twice_is_an_error(sandbox, handler):
    assert bind_tab(sandbox, handler).status_code == 200
    again = bind_tab(sandbox, handler)
    assert again.status_code == 400
    assert again.json()["error"] == "ERROR_CORE"
    assert "already binded" in again.json()["error_description"]


def test_placement_handler_must_be_on_the_apps_host(sandbox):
    response = bind_tab(sandbox, "https://evil.example/app")
    assert response.status_code == 400
    assert response.json()["error"] == "ERROR_WRONG_HANDLER_URL"


def test_unknown_placement_is_refused(sandbox, handler):
    response = bind_tab(sandbox, handler, placement="NO_SUCH_PLACE")
    assert response.status_code == 400
    assert response.json()["error"] == "ERROR_PLACEMENT_NOT_FOUND"


def test_placement_unbind_counts_as_bitrix24_does(sandbox, handler):
    bind_tab(sandbox, handler)
    bind_tab(sandbox, handler + "?v=2")
    bind_tab(sandbox, handler, placement="CRM_ORDER_DETAIL_TAB")
    one = sandbox.rest("placement.unbind", {"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": handler})
    assert one.json()["result"] == {"count": 2}
    rest = sandbox.rest("placement.unbind", {"PLACEMENT": "CRM_DEAL_DETAIL_TAB"})
    assert rest.json()["result"] == {"count": 2}
    remaining = sandbox.rest("placement.get").json()["result"]
    assert [p["placement"] for p in remaining] == ["CRM_ORDER_DETAIL_TAB"]
    missing = sandbox.rest("placement.unbind", {})
    assert missing.status_code == 400 and missing.json()["argument"] == "PLACEMENT"
    assert sandbox.rest("placement.unbind", {"PLACEMENT": "X"}, user_id=2).status_code == 403


def test_placements_are_per_portal(sandbox, handler):
    bind_tab(sandbox, handler, portal=1)
    assert sandbox.rest("placement.get", portal=2).json()["result"] == []


def test_event_bind_get_unbind(sandbox, handler):
    bound = sandbox.rest("event.bind", {"event": "onAppUninstall", "handler": handler})
    assert bound.json()["result"] is True
    events = sandbox.rest("event.get").json()["result"]
    assert events == [
        {"event": "ONAPPUNINSTALL", "handler": handler, "auth_type": "0", "offline": 0}
    ]
    again = sandbox.rest("event.bind", {"event": "ONAPPUNINSTALL", "handler": handler})
    assert again.status_code == 400 and again.json()["error"] == "ERROR_CORE"
    removed = sandbox.rest("event.unbind", {"event": "ONAPPUNINSTALL", "handler": handler})
    assert removed.json()["result"] == {"count": 1}
    assert sandbox.rest("event.get").json()["result"] == []


def test_event_bind_errors(sandbox, handler):
    unknown = sandbox.rest("event.bind", {"event": "ONNOTHING", "handler": handler})
    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": "ERROR_EVENT_NOT_FOUND",
        "error_description": "Event not found",
    }
    missing = sandbox.rest("event.bind", {"event": "ONAPPUNINSTALL"})
    assert missing.status_code == 400 and missing.json()["argument"] == "HANDLER"
    offline = sandbox.rest(
        "event.bind",
        {"event": "ONCRMDEALADD", "handler": handler, "event_type": "offline"},
        user_id=2,
    )
    assert offline.status_code == 403 and offline.json()["error"] == "ACCESS_DENIED"
    with_auth_type = sandbox.rest(
        "event.bind", {"event": "ONCRMDEALADD", "handler": handler, "auth_type": 1}, user_id=2
    )
    assert with_auth_type.status_code == 403


def test_non_admin_handlers_are_their_own(sandbox, handler):
    assert (
        sandbox.rest("event.bind", {"event": "ONCRMDEALADD", "handler": handler}).status_code == 200
    )
    mine = sandbox.rest("event.bind", {"event": "ONCRMDEALUPDATE", "handler": handler}, user_id=2)
    assert mine.json()["result"] is True
    seen_by_manager = sandbox.rest("event.get", user_id=2).json()["result"]
    assert seen_by_manager == [
        {"event": "ONCRMDEALUPDATE", "handler": handler, "auth_type": "2", "offline": 0}
    ]
    assert len(sandbox.rest("event.get").json()["result"]) == 2
    # a non-admin cannot remove the admin's handler
    other = sandbox.rest("event.unbind", {"event": "ONCRMDEALADD", "handler": handler}, user_id=2)
    assert other.json()["result"] == {"count": 0}
