import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from b24app.bitrix.client import BitrixClient, Credentials
from b24app.bitrix.endpoints import EndpointGuard
from b24app.bitrix.errors import UnsafeEndpoint
from b24app.bitrix.http import make_http_client


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        payload = json.dumps({"result": True, "time": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_portal():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class StaticAuth:
    def __init__(self, endpoint):
        self.creds = Credentials("tok", "ref", 1e12, endpoint, "m", 1, "crm")

    def current(self):
        return self.creds

    def refresh(self, stale):
        raise AssertionError("no refresh expected")

    def moved(self, endpoint):
        raise AssertionError("no move expected")


def test_guarded_client_reaches_an_allowed_loopback_portal(local_portal):
    guard = EndpointGuard(True)
    port = local_portal.server_address[1]
    with make_http_client(guard) as http:
        client = BitrixClient(http, endpoint_guard=guard)
        result = client.call(StaticAuth(f"http://127.0.0.1:{port}/rest/"), "user.admin")
    assert result.result is True
    assert local_portal.bodies == [{"auth": "tok"}]


def test_a_name_that_rebinds_to_loopback_is_refused_at_connect(local_portal):
    # The pre-call check sees a public address; the real connection lands on loopback.
    lying_guard = EndpointGuard(False, resolver=lambda host, port: ["93.184.216.34"])
    port = local_portal.server_address[1]
    with make_http_client(lying_guard) as http:
        client = BitrixClient(http, endpoint_guard=lying_guard)
        with pytest.raises(UnsafeEndpoint):
            client.call(StaticAuth(f"https://localhost:{port}/rest/"), "user.admin")
    assert local_portal.bodies == []


def test_shared_client_has_timeouts_and_never_follows_redirects():
    with make_http_client(EndpointGuard(False)) as http:
        assert http.follow_redirects is False
        assert http.timeout.connect is not None and http.timeout.read is not None
        assert isinstance(http, httpx.Client)
