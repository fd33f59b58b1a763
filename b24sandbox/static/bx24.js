// BX24.js as the sandbox portal serves it: the subset of Bitrix24's frame library an app
// needs. It finds the portal from window.name ("DOMAIN|PROTOCOL|APP_SID"), talks to the
// portal page only with postMessage, and calls the portal's REST API with the frame's auth.
(function (window) {
  'use strict';

  if (window.BX24) {
    return;
  }

  var nameParts = String(window.name || '').split('|');
  var framed = nameParts.length === 3 && window.parent !== window;
  var domain = framed ? nameParts[0] : '';
  var protocol = framed ? nameParts[1] : '';
  var appSid = framed ? nameParts[2] : '';
  var portalOrigin = (protocol === '1' ? 'https' : 'http') + '://' + domain;

  var callbacks = {};
  var sequence = 0;
  var data = null;
  var authExpiresAt = 0;
  var initQueue = [];

  function send(command, params, callback) {
    if (!framed) {
      return;
    }
    var id = 'cb' + (++sequence) + '_' + Date.now().toString(36);
    if (callback) {
      callbacks[id] = callback;
    }
    var encoded = params === undefined || params === null ? '' : JSON.stringify(params);
    var message = [command, encoded, id, appSid].filter(function (part) {
      return part !== '';
    }).join(':');
    window.parent.postMessage(message, portalOrigin);
  }

  window.addEventListener('message', function (event) {
    if (event.origin !== portalOrigin || event.source !== window.parent) {
      return;
    }
    if (typeof event.data !== 'string') {
      return;
    }
    var split = event.data.indexOf(':');
    var id = split < 0 ? event.data : event.data.slice(0, split);
    var raw = split < 0 ? '' : event.data.slice(split + 1);
    var callback = callbacks[id];
    if (!callback) {
      return;
    }
    delete callbacks[id];
    callback(raw ? JSON.parse(raw) : undefined);
  });

  function setAuth(auth) {
    data.AUTH_ID = auth.AUTH_ID;
    data.REFRESH_ID = auth.REFRESH_ID;
    data.AUTH_EXPIRES = auth.AUTH_EXPIRES;
    authExpiresAt = Date.now() + parseInt(auth.AUTH_EXPIRES, 10) * 1000;
  }

  function getAuth() {
    if (!data || Date.now() >= authExpiresAt) {
      return false;
    }
    return {
      access_token: data.AUTH_ID,
      refresh_token: data.REFRESH_ID,
      expires_in: parseInt(data.AUTH_EXPIRES, 10),
      domain: data.DOMAIN,
      member_id: data.MEMBER_ID
    };
  }

  function refreshAuth(callback) {
    send('refreshAuth', null, function (auth) {
      setAuth(auth);
      if (typeof callback === 'function') {
        callback(getAuth());
      }
    });
  }

  // PHP-style form fields (fields[orderId]=1): a simple request, so no CORS preflight.
  function encode(value, prefix, pairs) {
    if (value === null || value === undefined) {
      return pairs;
    }
    if (typeof value === 'object') {
      Object.keys(value).forEach(function (key) {
        encode(value[key], prefix ? prefix + '[' + key + ']' : key, pairs);
      });
    } else {
      pairs.push(encodeURIComponent(prefix) + '=' + encodeURIComponent(value));
    }
    return pairs;
  }

  function Result(answer, status) {
    this.answer = answer;
    this.status = status;
  }
  Result.prototype.data = function () { return this.answer.result; };
  Result.prototype.error = function () {
    if (!this.answer.error) {
      return null;
    }
    var answer = this.answer;
    var status = this.status;
    return {
      ex: { error: answer.error, error_description: answer.error_description },
      status: status,
      getError: function () { return this.ex; },
      getStatus: function () { return status; },
      toString: function () { return answer.error + ': ' + answer.error_description; }
    };
  };
  Result.prototype.error_description = function () { return this.answer.error_description; };
  Result.prototype.more = function () { return this.answer.next !== undefined; };
  Result.prototype.total = function () { return this.answer.total; };

  function callMethod(method, params, callback, retried) {
    var auth = getAuth();
    var post = function (token) {
      var body = encode(params || {}, '', []);
      body.push('auth=' + encodeURIComponent(token));
      return fetch(portalOrigin + '/rest/' + method + '.json', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: body.join('&')
      }).then(function (response) {
        return response.json().then(function (answer) {
          return new Result(answer, response.status);
        });
      });
    };
    var run = function () {
      post(getAuth().access_token).then(function (result) {
        if (!retried && result.answer.error === 'expired_token') {
          refreshAuth(function () { callMethod(method, params, callback, true); });
        } else if (typeof callback === 'function') {
          callback(result);
        }
      });
    };
    if (auth) {
      run();
    } else {
      refreshAuth(run);
    }
  }

  function getScrollSize() {
    var root = document.documentElement;
    return {
      scrollWidth: Math.max(root.scrollWidth, root.offsetWidth),
      scrollHeight: Math.max(root.scrollHeight, root.offsetHeight)
    };
  }

  function init(callback) {
    if (typeof callback !== 'function') {
      return;
    }
    if (data) {
      callback();
    } else {
      initQueue.push(callback);
    }
  }

  window.BX24 = {
    init: init,
    ready: init,
    isAdmin: function () { return !!(data && data.IS_ADMIN); },
    getLang: function () { return data ? data.LANG : 'en'; },
    getDomain: function () { return data ? data.DOMAIN : domain; },
    getAuth: getAuth,
    refreshAuth: refreshAuth,
    installFinish: function () { send('setInstallFinish', null); },
    resizeWindow: function (width, height, callback) {
      send('resizeWindow', { width: width, height: height }, callback);
    },
    // The frame's content size as Bitrix24 measures it: the document's scroll size, which is
    // never less than the frame itself, so fitWindow can grow the frame but not shrink it.
    getScrollSize: getScrollSize,
    fitWindow: function (callback) {
      send('resizeWindow', { width: '100%', height: getScrollSize().scrollHeight }, callback);
    },
    reloadWindow: function () { send('reloadWindow', null); },
    setTitle: function (title, callback) { send('setTitle', { title: String(title) }, callback); },
    // A portal page in the slider. The callback gets {result: 'close'} when the slider is
    // closed, or {result: 'error', errorCode: 'PATH_NOT_AVAILABLE'} when the portal refuses.
    openPath: function (path, callback) { send('openPath', { path: String(path) }, callback); },
    placement: {
      info: function () {
        return {
          placement: data ? data.PLACEMENT : '',
          options: data ? data.PLACEMENT_OPTIONS : {}
        };
      }
    },
    callMethod: callMethod
  };

  send('getInitData', null, function (initData) {
    data = initData;
    setAuth(initData);
    var queued = initQueue;
    initQueue = [];
    queued.forEach(function (callback) { callback(); });
  });
})(window);
