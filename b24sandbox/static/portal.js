// The portal side of an app frame: posts the launch form into the iframe, then answers
// the frame's BX24.js over postMessage. Messages are accepted only from the iframe's own
// window, from the app's origin, and for the APP_SID this page rendered.
(function () {
  'use strict';

  var hosts = {};
  var page = document.body ? document.body.dataset : {};

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
    // "callback:JSON", or "callback:" when there is nothing to say, as Bitrix24 answers.
    var message = callback + ':' + (value === undefined ? '' : JSON.stringify(value));
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

  // Commands Bitrix24 answers only on an app's own page (DEFAULT): a widget such as a card
  // tab may not retitle or scroll the portal page nor reload it, so they go unanswered.
  var DEFAULT_ONLY = ['setTitle', 'setScroll', 'reloadWindow'];

  function allowed(host, command) {
    return host.init.PLACEMENT === 'DEFAULT' || DEFAULT_ONLY.indexOf(command) < 0;
  }

  // The option a command names, as BX24.js and b24jssdk send it: {name, value}.
  function option(params) {
    return params && typeof params === 'object' && typeof params.name === 'string'
      ? params
      : null;
  }

  var handlers = {
    getInitData: function (host, params, callback) {
      reply(host, callback, host.init);
      // FIRST_RUN is reported once per frame, as Bitrix24 does.
      host.init.FIRST_RUN = false;
    },
    // A placement's own commands and events (a call card's getStatus, ...), not the ones
    // every frame has: the placements the sandbox serves add none.
    getInterface: function (host, params, callback) {
      reply(host, callback, { command: [], event: [] });
    },
    refreshAuth: function (host, params, callback) {
      postJson(host.refreshUrl, { APP_SID: host.appSid }).then(function (auth) {
        host.init.AUTH_ID = auth.AUTH_ID;
        host.init.REFRESH_ID = auth.REFRESH_ID;
        host.init.AUTH_EXPIRES = auth.AUTH_EXPIRES;
        reply(host, callback, auth);
      });
    },
    // Bitrix24 parses both values as integers: a width of '100%' stays, any other width is
    // pixels (100 when it is no number), a height that is no number leaves the height alone.
    // The answer is the frame's size once resized, in pixels.
    resizeWindow: function (host, params, callback) {
      var width = params ? params.width : undefined;
      var height = parseInt(params ? params.height : '', 10);
      host.iframe.style.width = width === '100%' ? '100%' : (parseInt(width, 10) || 100) + 'px';
      if (height) {
        host.iframe.style.height = height + 'px';
      }
      reply(host, callback, { width: host.iframe.offsetWidth, height: host.iframe.offsetHeight });
    },
    // Bitrix24 does not answer installFinish: it records the install, then reloads the page
    // into the installed app.
    setInstallFinish: function (host) {
      if (!host.init.INSTALL || !host.finishUrl) {
        return;
      }
      postJson(host.finishUrl, { APP_SID: host.appSid }).then(function () {
        host.init.INSTALL = false;
        host.element.querySelector('[data-testid="install-finished"]').hidden = false;
        window.setTimeout(function () {
          window.location.assign(host.afterInstallUrl || window.location.href);
        }, 1500);
      });
    },
    setInstall: function (host, params, callback) {
      reply(host, callback, params);
    },
    // Application options are the administrator's to set; anyone sets their own options.
    setAppOption: function (host, params, callback) {
      var named = option(params);
      if (!named || !host.init.IS_ADMIN) {
        return;
      }
      host.init.APP_OPTIONS[named.name] = named.value;
      reply(host, callback, named);
    },
    setUserOption: function (host, params, callback) {
      var named = option(params);
      if (!named) {
        return;
      }
      host.init.USER_OPTIONS[named.name] = named.value;
      reply(host, callback, named);
    },
    setTitle: function (host, params, callback) {
      var title = document.querySelector('[data-page-title]');
      if (title && params && params.title) {
        title.textContent = String(params.title);
      }
      reply(host, callback, params);
    },
    setScroll: function (host, params, callback) {
      var scroll = parseInt(params && params.scroll, 10);
      if (scroll >= 0) {
        window.scrollTo(window.scrollX, scroll);
      }
      reply(host, callback, params);
    },
    reloadWindow: function () {
      window.location.reload();
    },
    openPath: function (host, params, callback) {
      var url = sliderUrl(params && params.path);
      if (!url) {
        reply(host, callback, { result: 'error', errorCode: 'PATH_NOT_AVAILABLE' });
        return;
      }
      slider.open(url, function () {
        reply(host, callback, { result: 'close' });
      });
    }
  };

  // -- the side slider (BX24.openPath) -------------------------------------------------------

  // The pages Bitrix24 opens in its slider, by the start of their path
  // (sdk/bx24-js-sdk/additional-functions/bx24-open-path.md): CRM deals, leads, contacts,
  // companies and smart processes, the Market, a user's profile, a workgroup.
  var SLIDER_PATHS = new RegExp(
    '^/(?:crm/(?:deal|lead|contact|company|type)|marketplace' +
      '|company/personal/user/[0-9]+|workgroups/group/[0-9]+)/'
  );

  // The address the slider loads for an app's path, or null when the path is refused. The
  // prefix is checked on the path as given and again once "..", "\" and "%2e" are resolved,
  // so that a path can neither leave the list nor the portal.
  function sliderUrl(path) {
    if (typeof path !== 'string' || !SLIDER_PATHS.test(path)) {
      return null;
    }
    var url;
    try {
      url = new URL(path, window.location.origin);
    } catch (error) {
      return null;
    }
    if (url.origin !== window.location.origin || !SLIDER_PATHS.test(url.pathname)) {
      return null;
    }
    var query = url.searchParams;
    // What Bitrix24's slider adds: the slider mode and where the page was opened from.
    query.set('IFRAME', 'Y');
    query.set('IFRAME_TYPE', 'SIDE_SLIDER');
    query.set('from', 'rest_placement');
    query.set('from_app', page.appId || '');
    // The page opens for the user who is looking, in their language.
    query.set('user', page.user || '1');
    if (page.lang && page.lang !== 'en') {
      query.set('lang', page.lang);
    } else {
      query.delete('lang');
    }
    return url.pathname + url.search + url.hash;
  }

  // One stack of sliders per browser tab: a page shown inside a slider opens its own
  // sliders on the top page, as Bitrix24 stacks them.
  function createSliders() {
    var stack = [];
    var layout = document.querySelector('.b24-layout');

    function element(tag, className, attributes) {
      var node = document.createElement(tag);
      node.className = className;
      Object.keys(attributes || {}).forEach(function (name) {
        node.setAttribute(name, attributes[name]);
      });
      return node;
    }

    function background(level) {
      return level === 0 ? layout : stack[level - 1].root;
    }

    function label(entry) {
      var title = 'Page';
      try {
        var doc = entry.frame.contentDocument;
        var heading = doc && doc.querySelector('[data-page-title]');
        title = (heading ? heading.textContent : doc && doc.title) || title;
      } catch (error) {
        title = 'Page';
      }
      title = title.replace(/\s+/g, ' ').trim();
      entry.panel.setAttribute('aria-label', title);
      entry.frame.setAttribute('title', title);
    }

    function open(url, onClose) {
      var level = stack.length;
      var root = element('div', 'b24-slider', { 'data-testid': 'portal-slider' });
      root.style.setProperty('--b24-slider-level', String(level));
      var panel = element('div', 'b24-slider-panel', {
        role: 'dialog',
        'aria-modal': 'true',
        'aria-label': 'Loading page',
        tabindex: '-1'
      });
      var close = element('button', 'b24-slider-close', {
        type: 'button',
        'aria-label': 'Close',
        'data-testid': 'slider-close'
      });
      close.textContent = '\u00d7';
      var frame = element('iframe', 'b24-slider-frame', {
        title: 'Loading page',
        'data-testid': 'slider-frame',
        'data-slider-frame': ''
      });
      frame.src = url;
      panel.appendChild(close);
      panel.appendChild(frame);
      root.appendChild(panel);
      var entry = {
        root: root,
        panel: panel,
        frame: frame,
        opener: document.activeElement,
        onClose: onClose
      };
      frame.addEventListener('load', function () { label(entry); });
      close.addEventListener('click', function () { closeEntry(entry); });
      // A click beside the panel, on the shaded page, closes the slider as well.
      root.addEventListener('click', function (event) {
        if (event.target === root) {
          closeEntry(entry);
        }
      });
      var behind = background(level);
      if (behind) {
        behind.inert = true;
      }
      stack.push(entry);
      document.body.appendChild(root);
      close.focus();
    }

    function closeEntry(entry) {
      var level = stack.indexOf(entry);
      if (level < 0) {
        return;
      }
      // Sliders opened on top of this one go first.
      while (stack.length > level + 1) {
        closeEntry(stack[stack.length - 1]);
      }
      stack.pop();
      entry.root.remove();
      var behind = background(level);
      if (behind) {
        behind.inert = false;
      }
      if (entry.opener && entry.opener.isConnected && typeof entry.opener.focus === 'function') {
        entry.opener.focus();
      }
      try {
        entry.onClose();
      } catch (error) {
        // The page that asked for the slider is gone: nobody is left to tell.
      }
    }

    function closeTop() {
      if (!stack.length) {
        return false;
      }
      closeEntry(stack[stack.length - 1]);
      return true;
    }

    document.addEventListener('keydown', function (event) {
      if (event.key === 'Escape' && !event.defaultPrevented && closeTop()) {
        event.preventDefault();
      }
    });

    return { open: open, closeTop: closeTop };
  }

  // Inside a slider's frame, the top page's sliders; on a page of its own, a new stack.
  function findSliders() {
    try {
      var outer = window.frameElement;
      if (outer && outer.hasAttribute('data-slider-frame') && window.parent.B24SandboxSliders) {
        var shared = window.parent.B24SandboxSliders;
        // Escape pressed inside the slider's page closes the slider too.
        document.addEventListener('keydown', function (event) {
          if (event.key === 'Escape' && !event.defaultPrevented && shared.closeTop()) {
            event.preventDefault();
          }
        });
        return shared;
      }
    } catch (error) {
      // Not framed by a portal page of the same origin.
    }
    return createSliders();
  }

  var slider = findSliders();
  window.B24SandboxSliders = slider;

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
    if (handler && allowed(host, message.command)) {
      handler(host, message.params, message.callback);
    }
  });

  document.querySelectorAll('[data-frame-host]').forEach(setUp);
})();
