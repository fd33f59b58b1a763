"""The command line: ``python -m bench [--quick] [--output PATH] [--database-url URL] ...``.

``--only sandbox|app|gunicorn|bulk|libraries`` runs one benchmark; ``--sizes`` and
``--bulk-sizes`` change what they measure. Each benchmark is one entry of ``REGISTRY``:
its ``--only`` name, its key in the record, and how it runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from b24app.jobs.orders import MAX_JOB_ORDERS
from bench.app_latency import run_app_latency
from bench.app_overhead import run_app_overhead
from bench.bulk_jobs import run_bulk_jobs
from bench.gunicorn_stand import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL
from bench.libraries import run_libraries
from bench.plan import FULL, QUICK, Plan
from bench.report import (
    DEFAULT_OUTPUT,
    SCHEMA_VERSION,
    machine_info,
    now_iso,
    render,
    render_markdown,
    write_json,
)
from bench.sandbox_lists import run_sandbox_lists
from bench.stand import database_kind

MAX_SEED = 100_000
# The plain page call asks for start=100: the small seed must still fill that page.
MIN_SEED = 200


def sizes(value: str) -> tuple[int, int]:
    """Parse ``SMALL,LARGE`` seed sizes."""
    try:
        small, large = (int(part.replace("_", "")) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected two numbers: SMALL,LARGE") from None
    if not MIN_SEED <= small < large <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"need {MIN_SEED} <= SMALL < LARGE <= {MAX_SEED:,}")
    return small, large


def bulk_sizes(value: str) -> tuple[int, ...]:
    """Parse ``N[,N...]`` orders per bulk job, each size once, smallest first."""
    try:
        found = tuple(int(part.replace("_", "")) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected numbers: N[,N...]") from None
    if not all(1 <= n <= MAX_JOB_ORDERS for n in found):
        raise argparse.ArgumentTypeError(f"each size must be 1 to {MAX_JOB_ORDERS:,}")
    if list(found) != sorted(set(found)):
        raise argparse.ArgumentTypeError("give each size once, smallest first")
    return found


def postgres_url(value: str) -> str:
    """Accept only a PostgreSQL URL (SQLite is the default and needs no URL)."""
    if database_kind(value) not in ("postgresql", "postgres"):
        raise argparse.ArgumentTypeError("expected a PostgreSQL URL, e.g. postgresql://...")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the sandbox's list calls, the app's latency over HTTP and bulk "
        "jobs at the portal's default limit.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small seeds and few runs: a check that takes seconds"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help="where to write the JSON result (default: bench/results/latest.json)",
    )
    parser.add_argument(
        "--database-url",
        type=postgres_url,
        default=None,
        metavar="URL",
        help="run the app on this PostgreSQL database, in a schema dropped afterwards "
        "(default: a temporary SQLite file)",
    )
    parser.add_argument(
        "--sizes",
        type=sizes,
        default=None,
        metavar="SMALL,LARGE",
        help="rows per table of the two sandboxes compared (default: 1000,100000; quick: 200,2000)",
    )
    parser.add_argument(
        "--bulk-sizes",
        type=bulk_sizes,
        default=None,
        metavar="N[,N...]",
        help="orders per bulk job (default: 1000,10000; quick: 100,200)",
    )
    parser.add_argument(
        "--postgres-url",
        type=postgres_url,
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        metavar="URL",
        help="PostgreSQL server of the gunicorn stand, which creates a schema there and drops "
        "it after the run (default: $BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        metavar="URL",
        help="Redis database of the gunicorn stand; the app's keys there are deleted before "
        "and after (default: $BENCH_REDIS_URL or %(default)s)",
    )
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="gthread",
        help="gunicorn worker class of the stand (default: %(default)s)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        metavar="PATH",
        help="where to write the markdown report (default: the JSON path with .md)",
    )
    parser.add_argument(
        "--only", choices=BENCHMARKS, default=None, help="run one benchmark instead of all"
    )
    args = parser.parse_args(argv)
    args.command = command_line(argv)
    return args


def progress(message: str) -> None:
    """Tell the person waiting what is being measured (on stderr, apart from the table)."""
    print(f"... {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its ``--only`` name, its key in the record, and how it runs."""

    name: str
    key: str
    run: Callable[[Plan, argparse.Namespace], dict[str, Any]]


# In the order of a full run; the bulk jobs come after the stands that open the limits.
REGISTRY: tuple[Benchmark, ...] = (
    Benchmark("sandbox", "sandbox_lists", lambda plan, args: run_sandbox_lists(plan, progress)),
    Benchmark("app", "app", lambda plan, args: run_app_latency(plan, args.database_url, progress)),
    Benchmark(
        "gunicorn",
        "gunicorn",
        lambda plan, args: run_app_overhead(
            plan, progress, args.postgres_url, args.redis_url, args.worker_class
        ),
    ),
    Benchmark("bulk", "bulk", lambda plan, args: run_bulk_jobs(plan, args.database_url, progress)),
    Benchmark("libraries", "libraries", lambda plan, args: run_libraries(plan, progress)),
)
BENCHMARKS = tuple(benchmark.name for benchmark in REGISTRY)


def command_line(argv: Sequence[str] | None) -> str:
    """Return the command that ran, as someone would type it."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python -m bench", *arguments])


def run(plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen benchmarks and return the whole JSON-ready record."""
    started = time.perf_counter()
    result: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "date": now_iso(),
        "mode": plan.mode,
        "command": args.command,
        "machine": machine_info(),
        "settings": plan.as_dict(),
    }
    for benchmark in REGISTRY:
        if args.only in (None, benchmark.name):
            result[benchmark.key] = benchmark.run(plan, args)
    result["duration_seconds"] = round(time.perf_counter() - started, 1)
    return result


def exit_on_terminate(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit, so that a stopped run still drops its PostgreSQL schema."""
    sys.exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table and write the JSON result."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_terminate)
    plan = QUICK if args.quick else FULL
    if args.sizes is not None:
        plan = plan.with_sizes(*args.sizes)
    if args.bulk_sizes is not None:
        plan = plan.with_bulk_sizes(args.bulk_sizes)
    result = run(plan, args)
    print(render(result))
    write_json(result, args.output)
    markdown = args.markdown or args.output.with_suffix(".md")
    markdown.write_text(render_markdown(result), encoding="utf-8")
    print(f"\nJSON written to {args.output}, markdown to {markdown}")
    return 0
