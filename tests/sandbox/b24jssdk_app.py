"""A test app whose page drives the official JS SDK (b24jssdk) inside the sandbox portal.

Every frame POST (``/app``, ``/install``, ``/tab``) is answered with the same page. It loads
the vendored, unchanged b24jssdk bundle (``vendor/b24jssdk``) from this app, calls
``initializeB24Frame()`` and shows what the SDK reports; its buttons call the SDK's frame
methods (fitWindow, resizeWindow, openPath, installFinish, ...) and show their answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request, send_from_directory
from werkzeug.serving import BaseWSGIServer, make_server

from tests.sandbox.portal_test_app import QuietHandler

VENDOR = Path(__file__).parent / "vendor" / "b24jssdk"
BUNDLE = "b24jssdk.umd.min.js"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>b24jssdk test page</title>
<style>
  html, body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #333; }
  main { padding: 12px 16px; }
  h1 { font-size: 18px; margin: 0 0 8px; }
  pre { background: #f1f4f6; padding: 8px; margin: 4px 0 8px; white-space: pre-wrap;
        word-break: break-all; font-size: 12px; }
  button { margin: 0 4px 4px 0; }
  output { font-family: monospace; }
  #rows p { margin: 0; height: 24px; }
</style>
</head>
<body>
<main>
  <h1>b24jssdk test page ({{path}})</h1>
  <p>SDK status: <output aria-label="SDK status">loading</output></p>
  <pre aria-label="Init data">waiting</pre>
  <div>
    <button type="button" data-action="add-rows">Add rows</button>
    <button type="button" data-action="remove-rows">Remove rows</button>
    <button type="button" data-action="fit">Fit window</button>
    <button type="button" data-action="resize">Resize window</button>
    <button type="button" data-action="resize-auto">Resize to content</button>
  </div>
  <p>Resize answer: <output aria-label="Resize answer">none</output></p>
  <div>
    <button type="button" data-action="open-deal">Open deal 1</button>
    <button type="button" data-action="open-order">Open order 1</button>
    <button type="button" data-action="open-order-raw">Send openPath for order 1 as written</button>
  </div>
  <ol aria-label="Open path answers"></ol>
  <div>
    <button type="button" data-action="title">Set title</button>
    <button type="button" data-action="finish">Finish installation</button>
    <button type="button" data-action="refresh">Refresh auth</button>
    <button type="button" data-action="interface">Get interface</button>
    <button type="button" data-action="call">Call user.current</button>
  </div>
  <p>REST answer: <output aria-label="REST answer">none</output></p>
  <p>Title answer: <output aria-label="Title answer">none</output></p>
  <p>Install finish: <output aria-label="Install finish answer">none</output></p>
  <p>Refreshed auth: <output aria-label="Refreshed auth">none</output></p>
  <pre aria-label="Interface">none</pre>
  <section id="rows" aria-label="Rows"></section>
</main>
<script src="{{bundle_url}}"></script>
<script>
(function () {
  'use strict';
  function field(label) { return document.querySelector('[aria-label="' + label + '"]'); }
  function show(label, value) { field(label).textContent = JSON.stringify(value); }
  function failure(error) { return { error: String(error && error.message || error) }; }
  function addAnswer(value) {
    var item = document.createElement('li');
    item.textContent = JSON.stringify(value);
    field('Open path answers').appendChild(item);
  }

  B24Js.initializeB24Frame().then(function (b24) {
    var auth = b24.auth.getAuthData();
    show('Init data', {
      targetOrigin: b24.getTargetOrigin(),
      appSid: b24.getAppSid(),
      lang: b24.getLang(),
      auth: auth,
      memberId: auth && auth.member_id,
      isAdmin: b24.auth.isAdmin,
      isInstallMode: b24.isInstallMode,
      isFirstRun: b24.isFirstRun,
      placement: b24.placement.placement,
      placementOptions: b24.placement.options,
      isDefault: b24.placement.isDefault,
      isSliderMode: b24.placement.isSliderMode
    });
    field('SDK status').textContent = 'ready';

    function showAs(label) { return function (answer) { show(label, answer); }; }
    // The SDK's openPath takes an absolute URL on the portal.
    function openPath(path) {
      b24.slider.openPath(b24.slider.getUrl(path)).then(addAnswer, function (error) {
        addAnswer(failure(error));
      });
    }

    var actions = {
      'add-rows': function () {
        var rows = field('Rows');
        for (var i = 0; i < 40; i++) {
          var row = document.createElement('p');
          row.textContent = 'Row ' + (rows.children.length + 1);
          rows.appendChild(row);
        }
      },
      'remove-rows': function () { field('Rows').replaceChildren(); },
      fit: function () {
        b24.parent.fitWindow().then(function (answer) { show('Resize answer', answer); });
      },
      resize: function () {
        b24.parent.resizeWindow(700, 345).then(showAs('Resize answer'));
      },
      'resize-auto': function () {
        b24.parent.resizeWindowAuto(document.querySelector('main')).then(function (answer) {
          show('Resize answer', answer);
        });
      },
      'open-deal': function () { openPath('/crm/deal/details/1/'); },
      'open-order': function () { openPath('/shop/orders/details/1/'); },
      // The SDK's message layer sends the path as written, as BX24.openPath does.
      'open-order-raw': function () {
        b24.parent.message.send('openPath', { path: '/shop/orders/details/1/' }).then(addAnswer);
      },
      title: function () {
        b24.parent.setTitle('Orders seen by the SDK').then(showAs('Title answer'));
      },
      finish: function () {
        field('Install finish answer').textContent = 'sent';
        b24.installFinish().then(function (answer) {
          show('Install finish answer', { answer: answer });
        }, function (error) {
          show('Install finish answer', failure(error));
        });
      },
      refresh: function () {
        b24.auth.refreshAuth().then(function (answer) { show('Refreshed auth', answer); });
      },
      call: function () {
        b24.actions.v2.call.make({ method: 'user.current' }).then(function (result) {
          var answer = result.isSuccess ? result.getData().result : result.getErrorMessages();
          show('REST answer', answer);
        }, function (error) {
          show('REST answer', failure(error));
        });
      },
      'interface': function () {
        b24.placement.getInterface().then(function (answer) { show('Interface', answer); });
      }
    };
    // What each button's answer goes to: it reads "pending" until the answer arrives.
    var answers = {
      fit: 'Resize answer', resize: 'Resize answer', 'resize-auto': 'Resize answer',
      title: 'Title answer', refresh: 'Refreshed auth', 'interface': 'Interface',
      call: 'REST answer'
    };
    document.querySelectorAll('button[data-action]').forEach(function (button) {
      button.addEventListener('click', function () {
        var answer = answers[button.dataset.action];
        if (answer) {
          field(answer).textContent = 'pending';
        }
        actions[button.dataset.action]();
      });
    });
  }, function (error) {
    field('SDK status').textContent = 'failed: ' + String(error && error.message || error);
  });
})();
</script>
</body>
</html>
"""


@dataclass
class SdkTestApp:
    """The running SDK test app: its base URL and the frame paths it was posted to."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread
    posted: list[str]

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def create_sdk_test_app(posted: list[str]) -> Flask:
    """Build the Flask app: the SDK page on every frame path, and the vendored bundle."""
    app = Flask(__name__)

    @app.route("/app", methods=["POST"])
    @app.route("/install", methods=["POST"])
    @app.route("/tab", methods=["POST"])
    def frame_page() -> str:
        """Answer a frame POST with the SDK page (event deliveries get a plain OK)."""
        if "APP_SID" not in request.args:
            return "OK"
        posted.append(request.path)
        return PAGE.replace("{{path}}", request.path).replace("{{bundle_url}}", f"/vendor/{BUNDLE}")

    @app.get("/vendor/<path:name>")
    def vendored(name: str) -> Response | tuple[str, int]:
        """Serve the vendored SDK bundle, unchanged."""
        if name != BUNDLE:
            return "Not found", 404
        response = send_from_directory(VENDOR, BUNDLE, max_age=0)
        response.headers["Content-Type"] = "text/javascript; charset=utf-8"
        return response

    return app


def start_sdk_test_app() -> SdkTestApp:
    """Serve the SDK test app on a free port of 127.0.0.1 (another site than ``localhost``)."""
    posted: list[str] = []
    server = make_server(
        "127.0.0.1", 0, create_sdk_test_app(posted), threaded=True, request_handler=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return SdkTestApp(
        url=f"http://127.0.0.1:{server.server_port}", server=server, thread=thread, posted=posted
    )
