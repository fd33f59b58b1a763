"""The fault matrix's app (short timeouts) and its installed, opened administrator."""

from __future__ import annotations

import pytest

from tests.integration.faults.matrix import FAST


@pytest.fixture
def app(make_app):
    """The app with short timeouts, so hanging cells stay short."""
    return make_app(**FAST)


@pytest.fixture
def admin(app, portal24):
    """Installed and opened by the store administrator: the session token."""
    portal24.install()
    return portal24.session(user_id=1)
