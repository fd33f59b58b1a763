"""The app under gunicorn on PostgreSQL and Redis, against a sandbox portal process.

Everything runs on loopback in processes of its own, as in production: the sandbox
(``python -m b24sandbox``, seeded as asked), the app (``gunicorn -w 4 app:app``) on a
PostgreSQL schema created for the run (``flask db upgrade``) and dropped after it, with its
request bucket in Redis (a database number of its own; the app's keys there are deleted
before and after). The app is configured against the sandbox's OAuth server the way
``bench.stand`` configures the in-process app and installed through ``POST
/_sandbox/install``. Stopping sends SIGTERM and waits, whatever happened before.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import redis
from sqlalchemy import Engine, create_engine, select, text, update

from b24app.models import Portal, UserToken
from b24sandbox.config import SandboxConfig
from bench.gunicorn_hooks import OPEN_BUCKET_ENV
from bench.sandbox_lists import OPEN_LIMITS
from bench.stand import HTTP_TIMEOUT, HttpStand, app_database, sandbox_settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
# A database number of the stand's own, so that a developer's buckets in db 0 stay apart.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
REDIS_KEYS = "b24app:*"
WORKERS = 4
# gunicorn drops a keep-alive connection idle for 2 s by default. The load client keeps its
# connections across phases (seeding the unbind orders can pause it for longer on a busy
# machine), and reusing one just as gunicorn closes it gets "connection reset": so the stand
# keeps idle connections for as long as a proxy in front of it typically would.
KEEP_ALIVE_SECONDS = 75
# Seeding 100,000 rows per table takes seconds, more on a loaded machine.
START_TIMEOUT = 240.0
STOP_TIMEOUT = 30.0
_OAUTH_LINE = re.compile(r"OAuth server (\S+)/oauth/token/")
_PORTAL_LINE = re.compile(r"portal 1: (\S+)/ ")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class StandUnavailable(RuntimeError):
    """PostgreSQL or Redis cannot be reached: the stand cannot run on this machine."""


def check_services(postgres_url: str, redis_url: str) -> dict[str, str]:
    """Return the PostgreSQL and Redis server versions; raise when either does not answer."""
    engine = create_engine(postgres_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            postgres = str(conn.execute(text("SHOW server_version")).scalar_one())
    except Exception as exc:
        raise StandUnavailable(f"PostgreSQL does not answer: {type(exc).__name__}") from None
    finally:
        engine.dispose()
    client = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        version = str(client.info("server")["redis_version"])
    except redis.RedisError as exc:
        raise StandUnavailable(f"Redis does not answer: {type(exc).__name__}") from None
    finally:
        client.close()
    return {"postgresql": postgres.split()[0], "redis": version}


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def children(parent: int) -> list[int]:
    """Return the ids of the processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields follow the last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time a process has used, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Return a process's resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"process {pid} reports no VmRSS")


class LineReader:
    """Collects a child process's output lines in a thread, so reads can time out."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, marker: str, timeout: float) -> list[str]:
        """Return the lines up to the one containing ``marker``; raise on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"no {marker!r} within {timeout:.0f} s") from None
            if line is None:
                raise RuntimeError("the process ended: " + "".join(self.seen[-5:]))
            self.seen.append(line)
            if marker in line:
                return self.seen


def stop_process(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """Send SIGTERM and wait; SIGKILL only if it does not end in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass
class RunningSandboxProcess:
    """The sandbox process and the addresses it printed."""

    process: subprocess.Popen[str]
    oauth_url: str
    portal_url: str
    client_id: str
    client_secret: str


@contextmanager
def sandbox_process(config: SandboxConfig) -> Iterator[RunningSandboxProcess]:
    """Run ``python -m b24sandbox`` on a free port until the block ends."""
    command = [
        sys.executable,
        "-m",
        "b24sandbox",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--app-url",
        config.app_url,
        "--orders",
        str(config.orders),
        "--deals",
        str(config.deals),
        "--invoices",
        str(config.invoices),
        "--client-id",
        config.client_id,
        "--client-secret",
        config.client_secret,
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = "".join(LineReader(process.stdout).until("Press Ctrl-C", START_TIMEOUT))  # type: ignore[arg-type]
        oauth, portal = _OAUTH_LINE.search(lines), _PORTAL_LINE.search(lines)
        if oauth is None or portal is None:
            raise RuntimeError(f"the sandbox printed no addresses: {lines[-500:]}")
        yield RunningSandboxProcess(
            process, oauth.group(1), portal.group(1), config.client_id, config.client_secret
        )
    finally:
        stop_process(process)


def forget_redis_keys(redis_url: str) -> int:
    """Delete the app's keys (``b24app:*``) from the stand's Redis database."""
    client = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        keys = list(client.scan_iter(REDIS_KEYS))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def app_environment(
    sandbox: RunningSandboxProcess, app_url: str, database_url: str, redis_url: str
) -> dict[str, str]:
    """Return the environment of the app's processes: the sandbox's settings, as strings."""
    settings = sandbox_settings(
        sandbox.client_id, sandbox.client_secret, sandbox.oauth_url, sandbox.portal_url, app_url
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("B24_")}
    env.update(
        {
            key: ",".join(value) if isinstance(value, list) else str(value)
            for key, value in settings.items()
            if not isinstance(value, bool)
        }
    )
    env.update(
        {
            # Development mode is what lets a loopback portal speak plain http.
            "APP_ENV": "development",
            "ALLOW_HTTP_PORTALS": "1",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "RATE_LIMIT_STORE": "redis",
            "B24_HTTP_TIMEOUT": "10",
            "PROXY_FIX": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class GunicornStand(HttpStand):
    """The running stand: the HTTP calls of :class:`HttpStand` plus its processes."""

    oauth_url: str
    sandbox_pid: int
    master: subprocess.Popen[bytes]
    engine: Engine
    worker_class: str
    versions: dict[str, str]
    log_path: Path

    def workers(self) -> list[int]:
        """Return the pids of gunicorn's worker processes."""
        return children(self.master.pid)

    def worker_cpu(self) -> dict[int, float]:
        """Return each worker's CPU seconds so far."""
        return {pid: cpu_seconds(pid) for pid in self.workers()}

    def worker_rss(self) -> dict[int, int]:
        """Return each worker's resident set size in KiB."""
        return {pid: rss_kib(pid) for pid in self.workers()}

    def portal_id(self) -> int:
        """Return the app's id of the installed portal."""
        with self.engine.connect() as conn:
            found: int = conn.execute(select(Portal.id)).scalar_one()
            return found

    def expire_stored_token(self, user_id: int) -> None:
        """Make the app believe a user's stored access token expired five minutes ago."""
        with self.engine.begin() as conn:
            conn.execute(
                update(UserToken)
                .where(UserToken.user_id == user_id)
                .values(expires_at=datetime.now(UTC) - timedelta(minutes=5))
            )


def wait_until_serving(http: httpx.Client, app_url: str, master: subprocess.Popen[bytes]) -> None:
    """Wait for ``/healthz`` to answer 200 and for every worker to have started."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if master.poll() is not None:
            raise RuntimeError(f"gunicorn ended with status {master.returncode}")
        try:
            if (
                http.get(f"{app_url}/healthz", timeout=2).status_code == 200
                and len(children(master.pid)) >= WORKERS
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz in time")


@contextmanager
def gunicorn_stand(
    postgres_url: str = DEFAULT_POSTGRES_URL,
    redis_url: str = DEFAULT_REDIS_URL,
    *,
    orders: int = 120,
    deals: int = 80,
    worker_class: str = "sync",
    threads: int = 1,
    open_bucket: bool = True,
) -> Iterator[GunicornStand]:
    """Run the sandbox and the app under gunicorn until the block ends, installed.

    The sandbox's limit is opened wide; the app's client-side bucket too (still in Redis)
    unless ``open_bucket`` is false.
    """
    versions = check_services(postgres_url, redis_url)
    app_url = f"http://127.0.0.1:{free_port()}"
    config = SandboxConfig(host="127.0.0.1", port=0, app_url=app_url, orders=orders, deals=deals)
    with ExitStack() as stack:
        sandbox = stack.enter_context(sandbox_process(config))
        database_url = stack.enter_context(app_database(postgres_url))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="b24bench-")))
        forget_redis_keys(redis_url)
        stack.callback(forget_redis_keys, redis_url)
        env = app_environment(sandbox, app_url, database_url, redis_url)
        if open_bucket:
            env[OPEN_BUCKET_ENV] = "1"
        upgrade = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if upgrade.returncode != 0:
            raise RuntimeError(f"flask db upgrade failed: {upgrade.stderr[-2000:]}")
        log_path = folder / "gunicorn.log"
        log_file = stack.enter_context(log_path.open("wb"))
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:bench.gunicorn_hooks",
            "-w",
            str(WORKERS),
            "-k",
            worker_class,
            "--threads",
            str(threads),
            "--keep-alive",
            str(KEEP_ALIVE_SECONDS),
            "-b",
            app_url.split("://", 1)[1],
            "app:app",
        ]
        master = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        stack.callback(stop_process, master)
        engine = create_engine(database_url)
        stack.callback(engine.dispose)
        http = stack.enter_context(httpx.Client(timeout=HTTP_TIMEOUT))
        try:
            wait_until_serving(http, app_url, master)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {_tail(log_path)}") from None
        stand = GunicornStand(
            http=http,
            app_url=app_url,
            sandbox_url=sandbox.portal_url,
            oauth_url=sandbox.oauth_url,
            sandbox_pid=sandbox.process.pid,
            master=master,
            engine=engine,
            worker_class=worker_class if threads == 1 else f"{worker_class} x{threads}",
            versions=versions,
            log_path=log_path,
        )
        stand.control("limits", OPEN_LIMITS)
        stand.install()
        yield stand


def _tail(path: Path, size: int = 2000) -> str:
    """Return the end of a log file."""
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""
