"""The run's record: machine facts, a readable table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.app_overhead import render_gunicorn
from bench.libraries import render_libraries

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"
SCHEMA_VERSION = 1


def git_commit() -> str | None:
    """Return the checked-out commit, when this is a git working tree."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def cpu_model() -> str | None:
    """Return the CPU's model name, where ``/proc/cpuinfo`` tells it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """Describe the machine and interpreter the numbers come from."""
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average": load,
        "commit": git_commit(),
    }


def now_iso() -> str:
    """Return the current UTC time as ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write the result as indented JSON, creating the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int) -> str:
    """Lay out rows in aligned columns: the first ``text_columns`` left, numbers right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            str(cell).ljust(width) if index < text_columns else str(cell).rjust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def ms(value: float) -> str:
    """Format milliseconds."""
    return f"{value:.2f}"


def render_sandbox(result: dict[str, Any]) -> str:
    """Render benchmark 1 as a table with a verdict."""
    small, large = result["sizes"]["small"], result["sizes"]["large"]
    runs = result["cases"][0]["small"]["runs"] if result["cases"] else 0
    target = result["target_ratio"]
    rows = [
        [
            case["method"],
            case["entity"],
            case["shape"],
            ms(case["small"]["median_ms"]),
            ms(case["large"]["median_ms"]),
            f"{case['ratio']:.2f}",
            "met" if case["within_target"] else "NOT MET",
        ]
        for case in result["cases"]
    ]
    over = sum(1 for case in result["cases"] if not case["within_target"])
    verdict = (
        "met for every call"
        if result["target_met"]
        else f"NOT met: {over} of {len(result['cases'])} calls above {target:.1f}x"
    )
    seeds = ", ".join(
        f"{int(size):,} rows: {sec:.1f} s" for size, sec in result["seed_seconds"].items()
    )
    return "\n".join(
        [
            f"Sandbox list calls: median ms of {runs} interleaved runs, "
            f"{small:,} vs {large:,} rows per table",
            table(
                [
                    "method",
                    "table",
                    "call",
                    f"{small:,}",
                    f"{large:,}",
                    "ratio",
                    f"<= {target:.1f}x",
                ],
                rows,
                text_columns=3,
            ),
            f"Target ({large:,} rows within {target:.1f}x of {small:,}): {verdict}",
            f"Seeding: {seeds}",
        ]
    )


def render_app(result: dict[str, Any]) -> str:
    """Render benchmark 2 as two tables."""
    opens, me, refresh = result["open"], result["me"], result["refresh"]
    latency = table(
        ["request", "cold", "warm", "cold/warm", "calls cold/warm"],
        [
            [
                "POST /app (open)",
                ms(opens["cold"]["median_ms"]),
                ms(opens["warm"]["median_ms"]),
                f"{opens['cold_over_warm']:.2f}",
                "app.info {cold:g}/{warm:g}".format(**opens["app_info_calls_per_open"]),
            ],
            [
                "GET /api/me",
                ms(me["cold"]["median_ms"]),
                ms(me["warm"]["median_ms"]),
                f"{me['cold_over_warm']:.2f}",
                "portal {cold:g}/{warm:g}".format(**me["portal_calls_per_request"]),
            ],
        ],
        text_columns=1,
    )
    bursts = table(
        ["token chain", "wall ms", "max ms", "vs fresh", "refreshes", "portal calls", "failed"],
        [
            [
                mode.replace("_", " "),
                ms(refresh[mode]["wall"]["median_ms"]),
                ms(refresh[mode]["wall"]["max_ms"]),
                f"{refresh[mode]['over_fresh']:.2f}",
                ",".join(str(n) for n in refresh[mode]["refreshes"]),
                ",".join(str(n) for n in refresh[mode]["portal_calls"]),
                str(refresh[mode]["failed_requests"]),
            ]
            for mode in ("fresh", "expired_in_store", "expired_at_portal")
        ],
        text_columns=1,
    )
    return "\n".join(
        [
            f"App over HTTP on {result['database']}: median ms "
            f"({opens['cold']['runs']} opens, {me['cold']['runs']} /api/me calls per column)",
            latency,
            "",
            f"{refresh['concurrency']} concurrent GET /api/me, "
            f"median wall time of {refresh['bursts']} burst(s) per chain state",
            bursts,
        ]
    )


def seconds(millis: float) -> str:
    """Format milliseconds as seconds."""
    return f"{millis / 1000.0:.2f}"


def render_bulk(result: dict[str, Any]) -> str:
    """Render benchmark 3 as a table against the lower bound."""
    limits = result["limits"]
    rows = [
        [
            f"{size['orders']:,}",
            str(size["batches"]),
            str(size["runs"]),
            seconds(size["wall"]["median_ms"]),
            f"{seconds(size['wall']['min_ms'])}-{seconds(size['wall']['max_ms'])}",
            seconds(size["bound_ms"]),
            f"{size['over_bound']:.2f}",
            f"{size['over_job_share_bound']:.2f}",
            str(size["requests"]),
            f"{size['requests_per_50_orders']:.3f}",
            str(size["refused"]),
            "yes" if size["all_bound"] else "NO",
        ]
        for size in result["sizes"]
    ]
    trip = result["round_trip"]
    return "\n".join(
        [
            f"Bulk jobs on {result['database']} at {limits['rps']:g} requests/s, burst "
            f"{limits['burst']}: seconds from POST /api/jobs/bind to done (median of runs)",
            table(
                [
                    "orders",
                    "batches",
                    "runs",
                    "median s",
                    "range s",
                    "bound s",
                    "vs bound",
                    f"vs {result['job_threshold']:g}",
                    "requests",
                    "per 50",
                    "refused",
                    "all bound",
                ],
                rows,
                text_columns=0,
            ),
            f"Bound: max((batches - {limits['burst']}) / {limits['rps']:g}, "
            f"(batches - 1) x round trip) + round trip; round trip of one batch "
            f"{ms(trip['median_ms'])} ms (median of {trip['runs']}). "
            f"'vs {result['job_threshold']:g}': against the same bound with the app's own "
            f"threshold ({result['job_threshold']:g}, what a job fills on a quiet portal) "
            f"instead of {limits['burst']}.",
            f"Requests: what the sandbox answered per job (median run), 'per 50': per 50 "
            f"orders (target <= 1.05), refused: "
            f"{REFUSED_CODE} over all runs; {result['seeded_orders']:,} orders seeded.",
        ]
    )


REFUSED_CODE = "503 QUERY_LIMIT_EXCEEDED"


# Each benchmark's renderer, by its key in the record, in the order of the report.
SECTIONS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("sandbox_lists", render_sandbox),
    ("app", render_app),
    ("gunicorn", render_gunicorn),
    ("bulk", render_bulk),
    ("libraries", render_libraries),
)


def render(result: dict[str, Any]) -> str:
    """Render the whole run for a terminal."""
    machine = result["machine"]
    parts = [
        f"Benchmark ({result['mode']}) {result['date']}: {machine['cpu_count']} CPUs, "
        f"Python {machine['python']}, {result['duration_seconds']:.0f} s",
    ]
    parts += [renderer(result[key]) for key, renderer in SECTIONS if key in result]
    return "\n\n".join(parts)


def render_markdown(result: dict[str, Any]) -> str:
    """Render the whole run as markdown: the machine, the commit, the command, the tables."""
    machine = result["machine"]
    versions = result.get("gunicorn", {}).get("server", {}).get("versions", {})
    services = ", ".join(f"{name} {version}" for name, version in versions.items())
    load = machine.get("load_average")
    lines = [
        f"# Benchmark results ({result['mode']})",
        "",
        f"- Date: {result['date']}; the whole run took {result['duration_seconds']:.0f} s",
        f"- Command: `{result.get('command', 'python -m bench')}`",
        f"- Commit: `{machine.get('commit') or 'unknown'}`",
        f"- Machine: {machine.get('cpu_model') or 'unknown CPU'}, {machine['cpu_count']} CPUs, "
        f"{machine['platform']}",
        f"- Python: {machine['implementation']} {machine['python']}"
        + (f"; {services}" if services else ""),
    ]
    if load:
        lines.append(f"- Load average at the start (1, 5, 15 min): {', '.join(map(str, load))}")
    for key, renderer in SECTIONS:
        if key in result:
            text = renderer(result[key])
            # Sections that render markdown tables already stay as they are; the aligned
            # terminal tables go in as preformatted text.
            body = [text] if "\n|---" in text else ["```text", text, "```"]
            lines += ["", f"## {key}", "", *body]
    return "\n".join(lines) + "\n"
