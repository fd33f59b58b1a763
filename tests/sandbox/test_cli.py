"""``python -m b24sandbox``: it prints its portals, serves them and stops on Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_cli(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Start the sandbox command and return it with its printed portal URLs."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "b24sandbox",
            "--port",
            "0",
            "--app-url",
            "http://127.0.0.1:9",
            "--orders",
            "20",
            "--deals",
            "10",
            "--invoices",
            "5",
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    urls: list[str] = []
    for line in process.stdout:
        match = re.search(r"portal \d+: (http://localhost:\d+)/", line)
        if match:
            urls.append(match.group(1))
        if "Ctrl-C" in line:
            return process, urls
    stop_cli(process)
    pytest.fail("the sandbox command exited before it was ready")


def stop_cli(process: subprocess.Popen[str]) -> int:
    """Interrupt the command as Ctrl-C does and return its exit status."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_command_serves_every_portal_and_stops_on_ctrl_c():
    process, urls = start_cli("--portals", "2", "--client-id", "local.cli.1")
    try:
        assert len(urls) == 2
        state = httpx.get(f"{urls[1]}/_sandbox/state", timeout=5).json()
        assert state["client_id"] == "local.cli.1"
        assert [p["url"] for p in state["portals"]] == urls
    finally:
        assert stop_cli(process) == 0


def test_state_file_keeps_tokens_and_installs_across_restarts(tmp_path):
    state_file = str(tmp_path / "sandbox.sqlite3")
    process, urls = start_cli("--state", state_file)
    try:
        pair = httpx.post(f"{urls[0]}/_sandbox/token", json={"user_id": 2}, timeout=5).json()
        before = httpx.get(f"{urls[0]}/_sandbox/state", timeout=5).json()["portals"][0]
    finally:
        stop_cli(process)
    process, urls = start_cli("--state", state_file)
    try:
        answer = httpx.post(
            f"{urls[0]}/rest/profile", json={"auth": pair["access_token"]}, timeout=5
        )
        assert answer.status_code == 200
        assert answer.json()["result"]["ID"] == "2"
        after = httpx.get(f"{urls[0]}/_sandbox/state", timeout=5).json()["portals"][0]
        assert after["application_token"] == before["application_token"]
        assert after["bindings"] == before["bindings"]
    finally:
        stop_cli(process)


def test_bad_owner_types_are_refused():
    result = subprocess.run(
        [sys.executable, "-m", "b24sandbox", "--owner-types", "2,7"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "owner types" in result.stderr


def test_a_busy_port_is_one_clear_line_and_exit_status_1():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-m", "b24sandbox", "--port", str(port), "--orders", "5"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert finished.returncode == 1
    assert finished.stdout == ""
    assert finished.stderr.strip().splitlines() == [
        f"Cannot listen on 127.0.0.1:{port}: a port is already in use; pass another --port"
    ]
