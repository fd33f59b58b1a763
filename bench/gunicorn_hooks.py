"""Gunicorn settings of the benchmark stand: ``gunicorn -c python:bench.gunicorn_hooks``.

One hook: with ``BENCH_OPEN_BUCKET=1`` each worker, once it has loaded the app, gives the
app's web REST client a client-side bucket that never fills, still kept in Redis. The app
keeps itself under a portal's 2 requests per second on purpose; a latency benchmark sends
far more and measures the app's own cost, not the bucket's sleeps. Every call still pays
for its reservation in Redis, as in production.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import redis

from b24app.bitrix.client import BitrixClient
from b24app.bitrix.ratelimit import SharedRateLimiter
from b24app.services.gateway import interactive_policy

OPEN_BUCKET_ENV = "BENCH_OPEN_BUCKET"
WIDE = 1_000_000.0

# Settings gunicorn reads from this module (the command line adds workers and the bind).
accesslog = None
graceful_timeout = 10


def post_worker_init(worker: Any) -> None:
    """Open the app's client-side bucket wide when the stand asks for it."""
    if os.environ.get(OPEN_BUCKET_ENV) != "1":
        return
    app = worker.wsgi
    gateway = app.extensions["b24_gateway"]
    client = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=0.5, socket_connect_timeout=0.5
    )
    gateway.rest = BitrixClient(
        gateway.http,
        limiter=SharedRateLimiter(client, rate=WIDE, threshold=WIDE),
        retry=interactive_policy(app.config),
        endpoint_guard=gateway.guard,
        timeout=httpx.Timeout(float(app.config["B24_HTTP_TIMEOUT"]), connect=5.0),
    )


PROFILE_ENV = "BENCH_PROFILE_DIR"
_profiler: Any = None


def pre_request(worker: Any, req: Any) -> None:
    """With ``BENCH_PROFILE_DIR`` set, profile every request the worker serves."""
    global _profiler
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        return
    if _profiler is None:
        import cProfile

        _profiler = cProfile.Profile()
    _profiler.enable()


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """Stop the worker's profiler after a request (it resumes with the next one)."""
    if _profiler is not None:
        _profiler.disable()


def worker_exit(server: Any, worker: Any) -> None:
    """Write the worker's profile to ``BENCH_PROFILE_DIR/worker-<pid>.pstats``."""
    folder = os.environ.get(PROFILE_ENV)
    if _profiler is not None and folder:
        _profiler.dump_stats(os.path.join(folder, f"worker-{os.getpid()}.pstats"))
