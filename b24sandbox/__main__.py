"""Command line: ``python -m b24sandbox --port 5001 --app-url http://127.0.0.1:5000``."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading

from b24sandbox.config import SandboxConfig
from b24sandbox.server import start_sandbox
from b24sandbox.users import USERS


def parse_owner_types(text: str) -> tuple[int, ...]:
    """Parse ``2,31`` (and optionally 5) into owner type ids."""
    try:
        types = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("owner types are integers, e.g. 2,31") from None
    if not types or any(t not in (2, 5, 31) for t in types):
        raise argparse.ArgumentTypeError("owner types are a comma list of 2, 31 and 5")
    return types


def build_parser() -> argparse.ArgumentParser:
    """Describe the options."""
    defaults = SandboxConfig()
    parser = argparse.ArgumentParser(
        prog="python -m b24sandbox", description="A local stand-in Bitrix24 portal."
    )
    add = parser.add_argument
    add("--host", default=defaults.host, help="address to bind (default %(default)s)")
    add(
        "--port",
        type=int,
        default=defaults.port,
        help="first portal's port; portal N uses port+N-1; 0 picks free ports",
    )
    add("--app-url", default=defaults.app_url, help="the app's base URL (default %(default)s)")
    add("--client-id", default=defaults.client_id)
    add("--client-secret", default=defaults.client_secret)
    add("--seed", type=int, default=defaults.seed, help="seed of the generated data")
    add("--orders", type=int, default=defaults.orders, help="orders per portal")
    add("--deals", type=int, default=defaults.deals, help="deals per portal")
    add("--invoices", type=int, default=defaults.invoices, help="invoices per portal")
    add(
        "--owner-types",
        type=parse_owner_types,
        default=defaults.owner_types,
        help="order owner types the portal offers, e.g. 2,31 or 2,31,5",
    )
    add("--rps", type=float, default=defaults.rps, help="rate limit drain per second")
    add("--burst", type=int, default=defaults.burst, help="rate limit threshold")
    add("--portals", type=int, default=defaults.portals, help="how many portals to host")
    add(
        "--access-ttl",
        type=int,
        default=defaults.access_ttl,
        help="access token lifetime in seconds",
    )
    add(
        "--state",
        dest="state_file",
        default=None,
        help="SQLite file that keeps state across restarts (default: in memory)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the sandbox and serve until interrupted."""
    args = build_parser().parse_args(argv)
    if args.portals < 1:
        print("--portals must be at least 1", file=sys.stderr)
        return 2
    config = SandboxConfig(**{k: v for k, v in vars(args).items()})
    config.app_url = config.app_url.rstrip("/")
    try:
        running = start_sandbox(config)
    except OSError as exc:
        where = f"{config.host}:{config.port}" + (
            f" to {config.port + config.portals - 1}" if config.portals > 1 else ""
        )
        reason = "a port is already in use" if exc.errno == errno.EADDRINUSE else str(exc)
        print(f"Cannot listen on {where}: {reason}; pass another --port", file=sys.stderr)
        return 1
    print(f"Bitrix24 sandbox: OAuth server {running.oauth_url}/oauth/token/")
    for portal in running.sandbox.portals:
        print(f"  portal {portal.id}: {portal.base_url}/  (member_id {portal.member_id})")
    print(f"  app: {config.app_url}  client_id {config.client_id}")
    print("  users: " + ", ".join(f"{u.id} = {u.name} ({u.position})" for u in USERS.values()))
    print("Press Ctrl-C to stop.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
