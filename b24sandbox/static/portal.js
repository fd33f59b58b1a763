// The portal side of an app frame: posts the launch form into the iframe, then answers
// the frame's BX24.js over postMessage. Messages are accepted only from the iframe's own
// window, from the app's origin, and for the APP_SID this page rendered.
(function () {
  'use strict';

  var hosts = {};

  function setUp(element) {
    var iframe = element.querySelector('iframe');
    var initNode = element.querySelector('script[data-frame-init]');
    var host = {
      element: element,
      iframe: iframe,
      appSid: element.getAttribute('data-app-sid'),
      appOrigin: element.getAttribute('data-app-origin'),
      refreshUrl: element.getAttribute('data-refresh-url'),
      finishUrl: element.getAttribute('data-finish-url'),
      afterInstallUrl: element.getAttribute('data-after-install-url'),
      init: JSON.parse(initNode.textContent)
    };
    hosts[host.appSid] = host;
    element.querySelector('form[data-frame-form]').submit();
  }

  // Commands arrive as "command:params:callback:APP_SID" (params may hold ':' or be absent)
  // or, from newer libraries, as {method, params, callback, appSid}.
  function parse(data) {
    if (typeof data === 'string') {
      var parts = data.split(':');
      if (parts.length < 3) {
        return null;
      }
      var appSid = parts.pop();
      var callback = parts.pop();
      var command = parts.shift();
      var raw = parts.join(':');
      var params = raw;
      if (raw) {
        try { params = JSON.parse(raw); } catch (error) { params = raw; }
      }
      return { command: command, params: params, callback: callback, appSid: appSid };
    }
    if (data && typeof data === 'object' && typeof data.method === 'string') {
      return {
        command: data.method,
        params: data.params,
        callback: data.callback,
        appSid: data.appSid
      };
    }
    return null;
  }

  function reply(host, callback, value) {
    if (!callback) {
      return;
    }
    var message = value === undefined ? callback : callback + ':' + JSON.stringify(value);
    host.iframe.contentWindow.postMessage(message, host.appOrigin);
  }

  function postJson(url, body) {
    return fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin'
    }).then(function (response) {
      if (!response.ok) {
        throw new Error('portal answered ' + response.status);
      }
      return response.json();
    });
  }

  function size(value) {
    if (typeof value === 'number' || /^\d+$/.test(String(value))) {
      return value + 'px';
    }
    return String(value);
  }

  var handlers = {
    getInitData: function (host, params, callback) {
      reply(host, callback, host.init);
    },
    refreshAuth: function (host, params, callback) {
      postJson(host.refreshUrl, { APP_SID: host.appSid }).then(function (auth) {
        host.init.AUTH_ID = auth.AUTH_ID;
        host.init.REFRESH_ID = auth.REFRESH_ID;
        host.init.AUTH_EXPIRES = auth.AUTH_EXPIRES;
        reply(host, callback, auth);
      });
    },
    resizeWindow: function (host, params, callback) {
      var height = params && params.height;
      var width = params && params.width;
      if (height) {
        host.iframe.style.height = size(height);
      }
      if (width) {
        host.iframe.style.width = size(width);
      }
      reply(host, callback, { width: width, height: height });
    },
    setInstallFinish: function (host, params, callback) {
      if (!host.init.INSTALL || !host.finishUrl) {
        return;
      }
      postJson(host.finishUrl, { APP_SID: host.appSid }).then(function () {
        host.init.INSTALL = false;
        host.element.querySelector('[data-testid="install-finished"]').hidden = false;
        reply(host, callback, true);
        // Bitrix24 reloads into the installed app once the installer is done.
        window.setTimeout(function () {
          window.location.assign(host.afterInstallUrl || window.location.href);
        }, 1500);
      });
    },
    setInstall: function (host, params, callback) {
      reply(host, callback, true);
    },
    setAppOption: function (host, params, callback) {
      Object.assign(host.init.APP_OPTIONS, params && typeof params === 'object' ? params : {});
      reply(host, callback, host.init.APP_OPTIONS);
    },
    setUserOption: function (host, params, callback) {
      Object.assign(host.init.USER_OPTIONS, params && typeof params === 'object' ? params : {});
      reply(host, callback, host.init.USER_OPTIONS);
    },
    setTitle: function (host, params, callback) {
      var title = document.querySelector('[data-page-title]');
      if (title && params && params.title) {
        title.textContent = String(params.title);
      }
      reply(host, callback, true);
    },
    reloadWindow: function () {
      window.location.reload();
    }
  };

  window.addEventListener('message', function (event) {
    var message = parse(event.data);
    if (!message) {
      return;
    }
    var host = hosts[message.appSid];
    if (!host || event.origin !== host.appOrigin || event.source !== host.iframe.contentWindow) {
      return;
    }
    var handler = handlers[message.command];
    if (handler) {
      handler(host, message.params, message.callback);
    }
  });

  document.querySelectorAll('[data-frame-host]').forEach(setUp);
})();
