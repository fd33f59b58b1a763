"""A tiny app for the portal tests: it shows what the portal posted and what BX24.js says.

Every POST to ``/app``, ``/install`` or ``/tab`` is recorded (method, query, form) and
answered with a page that lists the posted fields and loads BX24.js from the portal named
by ``DOMAIN``/``PROTOCOL``, the way an app would build its ``B24_JS_URL``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, render_template_string, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Test app</title></head>
<body>
<h1 data-testid="test-app">{{ path }}</h1>
<dl>
{% for name, value in fields %}
  <dt>{{ name }}</dt><dd data-field="{{ name }}">{{ value }}</dd>
{% endfor %}
</dl>
<pre data-testid="bx24-state">waiting</pre>
<button type="button" data-testid="finish" onclick="BX24.installFinish()">Finish</button>
<button type="button" data-testid="resize" onclick="BX24.resizeWindow(640, 345)">Resize</button>
<button type="button" data-testid="refresh" onclick="refresh()">Refresh</button>
<button type="button" data-testid="call" onclick="call()">Call</button>
<pre data-testid="refreshed">pending</pre>
<pre data-testid="call-result">pending</pre>
<label>Path <input data-testid="path" value="/crm/deal/details/1/"></label>
<button type="button" data-testid="open-path" onclick="openPath()">Open path</button>
<ol data-testid="open-path-results"></ol>
<script src="{{ bx24_url }}"></script>
<script>
  function show(testid, value) {
    document.querySelector('[data-testid="' + testid + '"]').textContent = JSON.stringify(value);
  }
  function refresh() {
    BX24.refreshAuth(function (auth) { show('refreshed', auth); });
  }
  // Each answer BX24.openPath's callback gets, in order, as one list item of JSON.
  function openPath() {
    var path = document.querySelector('[data-testid="path"]').value;
    BX24.openPath(path, function (answer) {
      var item = document.createElement('li');
      item.textContent = JSON.stringify(answer);
      document.querySelector('[data-testid="open-path-results"]').appendChild(item);
    });
  }
  function call() {
    BX24.callMethod('user.current', {}, function (result) {
      show('call-result', result.error() ? {error: String(result.error())} : result.data());
    });
  }
  BX24.init(function () {
    show('bx24-state', {
      auth: BX24.getAuth(),
      placement: BX24.placement.info(),
      isAdmin: BX24.isAdmin(),
      lang: BX24.getLang(),
      domain: BX24.getDomain()
    });
  });
</script>
</body>
</html>
"""


@dataclass
class Received:
    """One frame POST as the app received it."""

    path: str
    method: str
    content_type: str
    query: dict[str, str]
    form: dict[str, str]


@dataclass
class RecordingApp:
    """The running test app: its base URL and every request it received."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread
    received: list[Received] = field(default_factory=list)

    def last(self, path: str) -> Received:
        """Return the newest request received on ``path``."""
        matches = [r for r in self.received if r.path == path]
        assert matches, f"the app received nothing on {path}"
        return matches[-1]

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class QuietHandler(WSGIRequestHandler):
    """Serve without an access log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log."""


def create_test_app(received: list[Received]) -> Flask:
    """Build the Flask app that records frame POSTs into ``received``."""
    app = Flask(__name__)

    @app.route("/app", methods=["POST"])
    @app.route("/install", methods=["POST"])
    @app.route("/tab", methods=["POST"])
    def frame_page() -> str:
        """Record the frame POST and show its fields."""
        received.append(
            Received(
                path=request.path,
                method=request.method,
                content_type=request.mimetype,
                query=request.args.to_dict(),
                form=request.form.to_dict(),
            )
        )
        scheme = "https" if request.args.get("PROTOCOL") == "1" else "http"
        bx24_url = f"{scheme}://{request.args.get('DOMAIN', '')}/api/v1/"
        fields: list[tuple[str, Any]] = [
            *request.args.items(),
            *request.form.items(),
        ]
        return render_template_string(PAGE, path=request.path, fields=fields, bx24_url=bx24_url)

    return app


def start_test_app() -> RecordingApp:
    """Serve the test app on a free port of 127.0.0.1 (another site than ``localhost``)."""
    received: list[Received] = []
    server = make_server(
        "127.0.0.1", 0, create_test_app(received), threaded=True, request_handler=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return RecordingApp(
        url=f"http://127.0.0.1:{server.server_port}",
        server=server,
        thread=thread,
        received=received,
    )
