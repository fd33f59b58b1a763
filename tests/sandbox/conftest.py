"""Fixtures of the sandbox's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sandbox.receiver import Receiver, start_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A tiny app that records the sandbox's deliveries (install page, events)."""
    running = start_receiver()
    yield running
    running.stop()
