"""How much to measure: the full run and the quick one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Plan:
    """Seed sizes and repetitions of one benchmark run."""

    mode: str
    small_size: int
    large_size: int
    list_runs: int
    me_runs: int
    open_runs: int
    bursts: int
    burst_size: int = 20
    warmup_runs: int = 2
    # Orders per bulk job; a size that fits in one burst (<= 50 batches) is run
    # ``bulk_runs`` times, a larger one once (10,000 orders take about 90 s).
    bulk_sizes: tuple[int, ...] = (1_000, 10_000)
    bulk_runs: int = 5
    # Batches timed straight against the sandbox before each job, for the lower bound's
    # round trips (taken while the bucket drains, so next to the jobs and at no cost).
    round_trips_per_job: int = 2
    # The gunicorn stand: rows per table of its sandbox, pairs (app request + its upstream
    # twin) per action and round, rounds, client threads, requests per calls/CPU window,
    # refresh storms (size and how many per chain state), RSS checkpoints.
    gunicorn_seed: int = 100_000
    gunicorn_pairs: int = 150
    gunicorn_rounds: int = 3
    gunicorn_clients: int = 2
    window_requests: int = 200
    storm_size: int = 100
    storms: int = 3
    memory_checkpoints: tuple[int, ...] = (10_000, 20_000)
    # Requests before the first RSS reading (connections, caches, the allocator's arenas).
    memory_warmup: int = 200

    def with_sizes(self, small: int, large: int) -> Plan:
        """Return the plan with other seed sizes."""
        return replace(self, small_size=small, large_size=large)

    def with_bulk_sizes(self, sizes: tuple[int, ...]) -> Plan:
        """Return the plan with other bulk job sizes."""
        return replace(self, bulk_sizes=sizes)

    def as_dict(self) -> dict[str, Any]:
        """Return the plan as JSON-ready settings."""
        return asdict(self)


FULL = Plan(
    mode="full",
    small_size=1_000,
    large_size=100_000,
    list_runs=30,
    me_runs=50,
    open_runs=20,
    bursts=7,
)

QUICK = Plan(
    mode="quick",
    # 200 rows, not fewer: the plain page (start=100) must still return a full page.
    small_size=200,
    large_size=2_000,
    list_runs=5,
    me_runs=10,
    open_runs=5,
    bursts=1,
    warmup_runs=1,
    bulk_sizes=(100, 200),
    bulk_runs=1,
    round_trips_per_job=2,
    gunicorn_seed=2_000,
    gunicorn_pairs=20,
    gunicorn_rounds=1,
    window_requests=20,
    storms=1,
    memory_checkpoints=(100, 200),
    memory_warmup=50,
)
