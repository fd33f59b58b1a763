"""The portal keeps HTTP/1.1 connections open between requests, as Bitrix24's servers do.

Werkzeug's own handler closes every connection; the sandbox's reads each request body
before answering, so that the next request on the connection starts where it should.
Driven with ``http.client``, whose connection object shows whether its socket was kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.client import HTTPConnection, HTTPResponse
from typing import Any
from urllib.parse import urlsplit

import pytest

import b24sandbox.server
from b24sandbox.server import start_sandbox
from tests.conftest import SandboxHandle, sandbox_test_config


def connect(url: str) -> HTTPConnection:
    """Open an HTTP/1.1 connection to a portal's base URL."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    return HTTPConnection(parts.hostname, parts.port, timeout=5)


def send(
    conn: HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> tuple[HTTPResponse, bytes]:
    """Send one request on ``conn`` and read its whole answer."""
    conn.request(method, path, body=body, headers=headers or {}, **options)
    response = conn.getresponse()
    return response, response.read()


@pytest.fixture
def conn(sandbox: SandboxHandle) -> Iterator[HTTPConnection]:
    """A connection to the first portal, opened by its first request."""
    opened = connect(sandbox.url)
    yield opened
    opened.close()


def test_one_connection_carries_call_after_call(conn: HTTPConnection) -> None:
    response, body = send(conn, "GET", "/_sandbox/clock")
    assert response.status == 200 and not response.will_close
    first_socket = conn.sock
    for _ in range(3):
        response, body = send(conn, "GET", "/_sandbox/clock")
        assert response.status == 200 and not response.will_close
        assert "offset" in json.loads(body)
    assert conn.sock is first_socket
    assert response.getheader("Connection") is None


def test_a_body_the_portal_never_read_does_not_spill_into_the_next_request(
    conn: HTTPConnection,
) -> None:
    # The home page takes no POST: Flask answers 405 without reading the 100 KB.
    response, _ = send(conn, "POST", "/", body=b"GET /_sandbox/state HTTP/1.1\r\n\r\n" * 3000)
    assert response.status == 405
    kept = conn.sock
    response, body = send(conn, "GET", "/_sandbox/clock")
    assert response.status == 200
    assert "offset" in json.loads(body)
    assert conn.sock is kept


def test_a_chunked_body_is_read_to_its_end(conn: HTTPConnection) -> None:
    chunks = iter([b'{"adv', b'ance": ', b"1.5}"])
    response, body = send(
        conn,
        "POST",
        "/_sandbox/clock",
        body=chunks,
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    assert response.status == 200, body
    assert json.loads(body)["offset"] == 1.5
    kept = conn.sock
    response, body = send(conn, "GET", "/_sandbox/clock")
    assert json.loads(body)["offset"] == 1.5
    assert conn.sock is kept


def test_a_client_that_asks_to_close_gets_its_connection_closed(conn: HTTPConnection) -> None:
    response, _ = send(conn, "GET", "/_sandbox/clock", headers={"Connection": "close"})
    assert response.status == 200
    assert response.getheader("Connection") == "close"
    assert response.will_close


def test_a_body_too_large_to_hold_closes_the_connection_after_the_answer(
    conn: HTTPConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(b24sandbox.server, "KEEP_ALIVE_MAX_BODY", 1000)
    response, body = send(
        conn,
        "POST",
        "/_sandbox/clock",
        body=json.dumps({"advance": 0, "pad": "x" * 2000}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 200, body
    assert response.getheader("Connection") == "close"
    assert response.will_close


def test_a_stopped_sandbox_closes_the_connections_it_kept() -> None:
    running = start_sandbox(sandbox_test_config())
    conn = connect(running.url)
    try:
        response, _ = send(conn, "GET", "/_sandbox/clock")
        assert response.status == 200 and not response.will_close
        assert conn.sock is not None
        running.stop()
        # The idle connection ends: the socket reads end-of-stream, not a hang.
        assert conn.sock.recv(1) == b""
    finally:
        conn.close()


def test_a_chunked_body_too_large_to_hold_reaches_the_portal_whole(
    conn: HTTPConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(b24sandbox.server, "KEEP_ALIVE_MAX_BODY", 10)
    body = json.dumps({"advance": 2, "pad": "x" * 500}).encode()
    response, answer = send(
        conn,
        "POST",
        "/_sandbox/clock",
        body=iter([body[:7], body[7:300], body[300:]]),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    assert response.status == 200, answer
    assert json.loads(answer)["offset"] == 2
    assert response.will_close
