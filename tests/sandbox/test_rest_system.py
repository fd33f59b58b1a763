"""app.info, profile, user.*: shapes and types as documented, per user."""

from __future__ import annotations

import pytest


def result(sandbox, method, params=None, user_id=1):
    response = sandbox.rest(method, params, user_id=user_id)
    assert response.status_code == 200, response.text
    return response.json()["result"]


@pytest.mark.parametrize(
    ("user_id", "admin", "name"), [(1, True, "Anna"), (2, False, "Mark"), (3, False, "Eva")]
)
def test_profile_per_user(sandbox, user_id, admin, name):
    profile = result(sandbox, "profile", user_id=user_id)
    assert profile == {
        "ID": str(user_id),
        "ADMIN": admin,
        "NAME": name,
        "LAST_NAME": profile["LAST_NAME"],
        "PERSONAL_GENDER": "",
        "TIME_ZONE": "",
    }
    assert isinstance(profile["LAST_NAME"], str) and profile["LAST_NAME"]


@pytest.mark.parametrize(("user_id", "admin"), [(1, True), (2, False), (3, False)])
def test_user_admin_is_a_boolean(sandbox, user_id, admin):
    assert result(sandbox, "user.admin", user_id=user_id) is admin


def test_user_current_types_and_brief_scope(sandbox):
    user = result(sandbox, "user.current", user_id=3)
    assert user["ID"] == "3"
    assert user["ACTIVE"] is True
    assert user["IS_ONLINE"] == "Y"
    assert user["UF_DEPARTMENT"] == [1]
    assert user["WORK_POSITION"] == "Sales assistant"
    assert "EMAIL" not in user  # user_brief carries no contacts


def test_user_current_needs_a_user_scope(sandbox):
    token = sandbox.control("token", {"user_id": 1, "scope": "crm"})["access_token"]
    response = sandbox.rest("user.current", token=token)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    full = sandbox.control("token", {"user_id": 1, "scope": "user"})["access_token"]
    assert sandbox.rest("user.current", token=full).json()["result"]["EMAIL"]


def test_user_access_checks_codes(sandbox):
    assert result(sandbox, "user.access", {"ACCESS": ["U2"]}, user_id=2) is True
    assert result(sandbox, "user.access", {"ACCESS": ["U1", "G1"]}, user_id=2) is False
    assert result(sandbox, "user.access", {"ACCESS": ["AU"]}, user_id=3) is True
    # always true for the admin
    assert result(sandbox, "user.access", {"ACCESS": ["U2"]}, user_id=1) is True


def test_app_info_reports_installation(sandbox):
    info = result(
        sandbox,
        "app.info",
        user_id=2,
    )
    assert info["CODE"] == sandbox.client_id
    assert info["INSTALLED"] is False
    assert info["PAYMENT_EXPIRED"] == "N"
    assert isinstance(info["ID"], int) and isinstance(info["VERSION"], int)
    assert info["DAYS"] is None


def test_app_info_is_installed_after_install_finish(sandbox_server, sandbox):
    running = sandbox_server.sandbox
    running.finish_install(running.portal(1))
    assert result(sandbox, "app.info")["INSTALLED"] is True
    assert sandbox.state()["portals"][0]["installed"] is True
