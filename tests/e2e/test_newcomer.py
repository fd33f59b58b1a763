"""A newcomer's first run: ``python -m b24app.devrun``, then the portal it prints.

Each test starts the command as a subprocess on free ports with its own database and keys,
so the developer's ``instance/`` folder and ``.env`` are never used. The browser test then
installs the app from the portal's start page and opens it as the administrator and as an
employee without access to the online store.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from b24app.config import ENVIRONMENT
from tests.browser import fresh_page, needs_chromium

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
WAIT_MS = 15_000


class DevRun:
    """``python -m b24app.devrun`` running as a subprocess, its output collected."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "b24app.devrun", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Drained all along: the request log must never fill the pipe and block the server.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Collect every output line until the process closes its output."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything printed so far."""
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT_S) -> re.Match[str]:
        """Wait for an output line matching ``pattern``; fail with the output otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    match = re.search(pattern, line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    break
                self._changed.wait(min(left, 0.5))
        pytest.fail(f"devrun never printed {pattern!r}; its output:\n{self.output}")

    def wait_exit(self, timeout: float = START_TIMEOUT_S) -> int:
        """Wait for the process to end by itself and return its status."""
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return status

    def stop(self) -> int:
        """Stop the command as a service manager does (SIGTERM); kill it if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def free_port() -> int:
    """Return a port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refuses_connections(port: int) -> bool:
    """Whether nothing accepts connections on the loopback port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose every app setting is this test's own, whatever ``.env`` holds."""
    env = dict(os.environ)
    # An empty variable hides the same name in .env; the app then uses its default.
    env.update({name: "" for name in ENVIRONMENT})
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}",
            # Given keys: development would otherwise keep generated ones in instance/.
            "SECRET_KEY": Fernet.generate_key().decode(),
            "TOKEN_KEYS": Fernet.generate_key().decode(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(autouse=True)
def instance_folder_untouched() -> Iterator[None]:
    """Fail if a test created files in the developer's instance folder or changed its keys."""
    instance = ROOT / "instance"
    keys = instance / "dev-secrets.json"

    def snapshot() -> tuple[set[str] | None, bytes | None]:
        """Name the folder's files and read the kept keys (None when absent)."""
        # Names, not times: the developer's own running app may be writing its database.
        names = {p.name for p in instance.iterdir()} if instance.is_dir() else None
        return names, keys.read_bytes() if keys.is_file() else None

    before = snapshot()
    yield
    assert snapshot() == before, "the test changed the developer's instance/ folder"


@pytest.fixture
def start_devrun(isolated_env: dict[str, str]) -> Iterator[Any]:
    """Start devrun with extra environment and arguments; stop every start at the end."""
    started: list[DevRun] = []

    def start(*args: str, **env: str) -> DevRun:
        """Start one devrun process."""
        run = DevRun({**isolated_env, **env}, *args)
        started.append(run)
        return run

    yield start
    for run in started:
        run.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """Open a fresh page; waits and assertions allow for a slow first request."""
    with fresh_page(
        browser, wait_ms=WAIT_MS, expect_ms=WAIT_MS, viewport={"width": 1280, "height": 900}
    ) as opened:
        yield opened


@pytest.mark.e2e
@needs_chromium
def test_newcomer_installs_the_app_in_the_printed_portal_and_opens_it(
    start_devrun: Any, page: Any
) -> None:
    from playwright.sync_api import expect

    run = start_devrun("--app-port", "0", "--sandbox-port", "0")
    portal = run.wait_for(r"^Portal: (http://localhost:\d+/)$").group(1)
    app_port = int(run.wait_for(r"^App: +http://127\.0\.0\.1:(\d+)").group(1))
    run.wait_for("Ctrl-C")

    # The start page offers the administrator the installation.
    page.goto(portal)
    expect(page.get_by_test_id("install-state")).to_have_attribute("data-state", "absent")
    page.get_by_test_id("install-button").click()
    page.get_by_test_id("install-confirm").click()
    # The app's installer calls BX24.installFinish(); the portal then opens the app.
    expect(page.get_by_test_id("install-finished")).to_be_visible()
    page.wait_for_url("**/marketplace/app/?user=1")
    app = page.frame_locator('[data-testid="app-frame"]')
    expect(app.get_by_test_id("current-user")).to_contain_text("Anna Admin")

    # Next time: the start page shows the app installed and opens its left-menu page.
    page.goto(portal)
    expect(page.get_by_test_id("install-state")).to_have_attribute("data-state", "installed")
    page.get_by_test_id("open-app").click()
    page.wait_for_url("**/marketplace/app/?user=1")
    app = page.frame_locator('[data-testid="app-frame"]')
    expect(app.get_by_test_id("current-user")).to_contain_text("Anna Admin")
    expect(app.get_by_test_id("user-rights")).to_contain_text("Online store administrator")
    expect(app.get_by_test_id("permission-denied").filter(visible=True)).to_have_count(0)
    expect(app.get_by_test_id("order-picker")).to_be_visible()

    # An employee without store access sees why the app cannot help them.
    page.goto(f"{portal}marketplace/app/?user=3")
    app = page.frame_locator('[data-testid="app-frame"]')
    expect(app.get_by_test_id("current-user")).to_contain_text("Eva Employee")
    denied = app.get_by_test_id("permission-denied").filter(visible=True)
    expect(denied).to_be_visible()
    expect(denied).to_have_attribute("data-kind", "no_access")
    expect(denied).to_contain_text("No access to the online store")
    expect(app.get_by_test_id("app-error")).to_be_hidden()

    # Stopping the command stops the portal and the app with it.
    assert run.stop() == 0
    assert run.lines[-1] == "Stopped."
    portal_port = int(portal.rstrip("/").rsplit(":", 1)[1])
    assert refuses_connections(portal_port)
    assert refuses_connections(app_port)


def test_with_a_client_id_configured_the_app_is_served_alone(start_devrun: Any) -> None:
    sandbox_port = free_port()
    run = start_devrun(
        "--app-port",
        "0",
        "--sandbox-port",
        str(sandbox_port),
        B24_CLIENT_ID="local.registered.app",
        B24_CLIENT_SECRET="registered-secret",
        APP_ENV="development",
    )
    assert "local.registered.app" in run.wait_for(r"^Serving the app alone").string
    app_port = int(run.wait_for(r"^App: +http://127\.0\.0\.1:(\d+)").group(1))
    run.wait_for("Ctrl-C")

    answer = httpx.get(f"http://127.0.0.1:{app_port}/healthz", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert "Portal:" not in run.output
    assert refuses_connections(sandbox_port)

    assert run.stop() == 0


@pytest.mark.parametrize("option", ["--app-port", "--sandbox-port"])
def test_a_busy_port_is_one_clear_line(start_devrun: Any, option: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = str(taken.getsockname()[1])
        ports = {"--app-port": "0", "--sandbox-port": "0", option: busy}
        run = start_devrun(*(part for pair in ports.items() for part in pair))
        assert run.wait_exit() == 1
    assert run.lines == [
        f"Cannot start: port {busy} is already in use: stop what listens there or pass "
        f"another {option}"
    ]
