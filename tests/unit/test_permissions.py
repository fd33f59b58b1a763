"""Deciding rights from the probe batch."""

import pytest

from b24app.bitrix.client import BatchResult
from b24app.bitrix.errors import InsufficientScope, error_from_response
from b24app.rights import Rights
from b24app.services.permissions import profile_from_batch, rights_from_batch


def batch(errors=None, **results):
    """A batch answer with the given results and error bodies."""
    return BatchResult(
        results={
            "profile": {"ID": "5", "NAME": "Ola", "LAST_NAME": "Nord"},
            "admin": False,
            **results,
        },
        errors={k: error_from_response(400, v) for k, v in (errors or {}).items()},
    )


def denied(code):
    """An error body as Bitrix24 sends it."""
    return {"error": code, "error_description": "Access Denied"}


def test_store_administrator():
    answer = batch({"write": {"error": "201640400004", "error_description": "not exists"}})

    assert rights_from_batch(answer, is_admin=False) == Rights(True, True, False)


def test_store_manager_reads_but_may_not_bind():
    answer = batch({"write": denied("200040300020")})

    assert rights_from_batch(answer, is_admin=False) == Rights(True, False, False)


def test_employee_without_store_access():
    answer = batch({"read": denied("200040300010"), "write": denied("200040300020")})

    assert rights_from_batch(answer, is_admin=False) == Rights(False, False, False)


def test_probe_failing_for_other_reasons_falls_back_to_the_admin_flag():
    answer = batch({"write": {"error": "QUERY_LIMIT_EXCEEDED", "error_description": ""}})

    assert rights_from_batch(answer, is_admin=True).can_bind is True
    assert rights_from_batch(answer, is_admin=False).can_bind is False


def test_profile_names_the_user():
    profile = profile_from_batch(batch(admin=True))

    assert (profile.user_id, profile.name, profile.is_admin) == (5, "Ola Nord", True)


def test_profile_failure_is_raised():
    with pytest.raises(InsufficientScope, match="insufficient_scope"):
        profile_from_batch(batch({"profile": {"error": "insufficient_scope"}}))


def test_rights_survive_the_session_token():
    rights = Rights(True, False, False)

    assert Rights.from_dict(rights.as_dict()) == rights
    assert rights.as_dict()["role"] == "store_manager"
