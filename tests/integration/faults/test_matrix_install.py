"""The fault matrix for install (POST /install, its two batches) and uninstall."""

from __future__ import annotations

import pytest

from tests.integration.faults.matrix import (
    LOST_MS,
    assert_error_page,
    bind,
    cells,
    clear_faults,
    history,
    pending_faults,
    prepare,
    queue,
    stored_portals,
    token_rows,
)

# -- install (POST /install) ---------------------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_install(app, portal24, monkeypatch, fault):
    prepare(app, portal24, monkeypatch, fault, "batch", verified=True)

    response = portal24.frame_post("/install", user_id=1)

    clear_faults(portal24)
    state = portal24.state()
    portals = stored_portals(app)
    if fault.expect is None:
        assert response.status_code == 200, response.text[:500]
        assert "js/install.js" in response.text
        assert len(portals) == 1 and portals[0].is_installed
        assert set(token_rows(app)) == {1}
        assert len(state["placements"]) == 3
        assert [e["event"] for e in state["event_handlers"]] == ["ONAPPUNINSTALL"]
    else:
        assert_error_page(response, fault.expect)
        assert "js/install.js" not in response.text
        # Nothing is half installed: no portal row, no tokens; installing again works.
        assert portals == [] and token_rows(app) == {}
        monkeypatch.undo()
        result = portal24.install()
        assert result["install_page"]["status"] == 200
        assert stored_portals(app)[0].is_installed


# -- uninstall (ONAPPUNINSTALL) ------------------------------------------------------------


@pytest.mark.parametrize("fault", cells())
def test_uninstall(app, portal24, admin, monkeypatch, fault):
    assert bind(portal24, admin, 1, 2).status_code == 200
    prepare(app, portal24, monkeypatch, fault, "*")
    queued = pending_faults(portal24)

    result = portal24.uninstall(clean=0)

    # ONAPPUNINSTALL needs no call to Bitrix24: the faults are all still pending.
    assert [e["status"] for e in result["events"]] == [200]
    assert pending_faults(portal24) == queued
    portal = stored_portals(app)[0]
    assert not portal.is_installed
    assert token_rows(app) == {}
    assert len(history(app)) == 1


# -- install: the batch that binds the tabs and the event (plain writes) -------------------

WRITE_BATCH_FAULTS = [
    pytest.param(
        {"status": 503, "error": "QUERY_LIMIT_EXCEEDED"}, 1, (503, "portal_busy"), id="503"
    ),
    pytest.param(
        {"status": 500, "error": "INTERNAL_SERVER_ERROR"}, 1, (502, "portal_unavailable"), id="500"
    ),
    pytest.param({"hold_ms": LOST_MS}, 1, (502, "portal_unavailable"), id="lost"),
]


@pytest.mark.parametrize(("spec", "count", "expect"), WRITE_BATCH_FAULTS)
def test_install_binding_handlers(app, portal24, spec, count, expect):
    # The first batch (who installs, what is bound) passes; the second one binds.
    queue(portal24, {"method": "batch", "skip": 1, "count": count, **spec})

    response = portal24.frame_post("/install", user_id=1)

    clear_faults(portal24)
    # placement.bind and event.bind are plain writes: not sent twice, whatever the error.
    batches = [c for c in portal24.sandbox.calls()["calls"] if c["method"] == "batch"]
    assert len(batches) == 2
    assert_error_page(response, expect)
    assert stored_portals(app) == [] and token_rows(app) == {}
    bound = len(portal24.state()["placements"])
    # A lost answer bound the tabs; the other failures bound nothing.
    assert bound == (3 if "hold_ms" in spec else 0)
    # Installing again binds what is missing (nothing twice) and stores the portal.
    result = portal24.install()
    assert result["install_page"]["status"] == 200
    assert stored_portals(app)[0].is_installed
    state = portal24.state()
    assert len(state["placements"]) == 3
    assert [e["event"] for e in state["event_handlers"]] == ["ONAPPUNINSTALL"]
