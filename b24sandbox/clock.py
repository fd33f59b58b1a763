"""The sandbox's clock: real time plus an offset that only moves forward (until a reset).

Everything in the sandbox that decides by time reads this clock: token and code expiry,
the ``expires`` of token answers, the leaky bucket's drain, the ``time`` block of REST
answers, event ``ts`` and install timestamps. ``POST /_sandbox/clock {"advance": S}``
moves it, so tests see a token die or a bucket drain without waiting for it.

Measured durations (a ``time`` block's ``duration`` and ``processing``) stay real: they say
how long the sandbox worked, which no offset changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# One advance moves the clock at most this far (about ten years): a bigger step is a typo.
MAX_ADVANCE = 10 * 366 * 24 * 3600.0


@dataclass(frozen=True)
class Mark:
    """A moment as the sandbox reports it (``at``) and a real counter to measure from."""

    at: float  # Unix seconds on the sandbox clock
    real: float  # ``time.perf_counter()``: only differences mean anything

    def elapsed_since(self, earlier: Mark) -> float:
        """Real seconds between ``earlier`` and this mark (never negative)."""
        return max(0.0, self.real - earlier.real)


class SandboxClock:
    """One sandbox's clock, shared by all its portals and threads."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        steady: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._steady = steady
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds the clock runs ahead of real time."""
        with self._lock:
            return self._offset

    def time(self) -> float:
        """The sandbox's current Unix time."""
        with self._lock:
            return self._wall() + self._offset

    def monotonic(self) -> float:
        """A monotonic reading that jumps with every advance (for rates and windows)."""
        with self._lock:
            return self._steady() + self._offset

    def mark(self) -> Mark:
        """Take a moment: the sandbox time and a real counter."""
        return Mark(self.time(), time.perf_counter())

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward and return the total offset.

        Raises ValueError for a negative, infinite or not-a-number step, or one larger
        than ``MAX_ADVANCE``.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError("advance must be a number of seconds")
        # Compared before any conversion: a huge integer must not overflow a float.
        if not 0 <= seconds <= MAX_ADVANCE:  # False for NaN too
            raise ValueError(f"advance must be between 0 and {MAX_ADVANCE:.0f} seconds")
        with self._lock:
            self._offset += float(seconds)
            return self._offset

    def reset(self) -> None:
        """Return to real time."""
        with self._lock:
            self._offset = 0.0

    def describe(self) -> dict[str, float]:
        """The clock as the control API shows it: the sandbox time and the offset."""
        with self._lock:
            return {"now": self._wall() + self._offset, "offset": self._offset}
