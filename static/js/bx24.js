// Small helpers around BX24.js (loaded from B24_JS_URL); the app still works without it.

export function withBX24(callback) {
  if (typeof window.BX24 === 'undefined' || !window.BX24) return false;
  window.BX24.init(() => callback(window.BX24));
  return true;
}

export function fitWindow() {
  withBX24((bx) => {
    if (typeof bx.fitWindow === 'function') bx.fitWindow();
  });
}
