"""Wall-clock samples and their summaries: medians, never means, on a noisy machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Summary:
    """The spread of one measurement, in milliseconds."""

    median_ms: float
    min_ms: float
    max_ms: float
    runs: int

    def as_dict(self) -> dict[str, float | int]:
        """Return the summary as JSON-ready numbers."""
        return {
            "median_ms": round(self.median_ms, 3),
            "min_ms": round(self.min_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "runs": self.runs,
        }


def summarize(seconds: Sequence[float]) -> Summary:
    """Summarise samples taken in seconds."""
    if not seconds:
        raise ValueError("no samples to summarise")
    millis = [s * 1000.0 for s in seconds]
    return Summary(statistics.median(millis), min(millis), max(millis), len(millis))


def timed(call: Callable[[], T]) -> tuple[float, T]:
    """Run ``call`` once and return its wall time in seconds with its result."""
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def ratio(numerator: Summary, denominator: Summary) -> float:
    """Return the ratio of two medians, rounded for reporting."""
    return round(numerator.median_ms / denominator.median_ms, 2)
