// Small helpers around BX24.js (loaded from B24_JS_URL); the app still works without it.

export function withBX24(callback) {
  if (typeof window.BX24 === 'undefined' || !window.BX24) return false;
  window.BX24.init(() => callback(window.BX24));
  return true;
}

// The height the page's content needs: the bottom of the body, or of an open popup (a
// picker's list) that reaches below it. Unlike the document's scroll height, which never
// reports less than the frame, this can shrink.
function contentHeight() {
  let bottom = document.body.getBoundingClientRect().bottom;
  for (const popup of document.querySelectorAll('[role="listbox"]:not([hidden])')) {
    bottom = Math.max(bottom, popup.getBoundingClientRect().bottom);
  }
  return Math.ceil(bottom + window.scrollY);
}

// Size the frame to its content. BX24.fitWindow() measures the document's scroll height,
// so Bitrix24 can grow the frame with it but never shrink it (a list closing, a result
// going away); resizeWindow with the measured height does both, at the full width.
export function fitWindow() {
  withBX24((bx) => {
    if (typeof bx.resizeWindow === 'function') bx.resizeWindow('100%', contentHeight());
    else if (typeof bx.fitWindow === 'function') bx.fitWindow();
  });
}

// Let the frame follow its content: every change of the page's size (and every layout
// event a widget sends, such as a picker's list opening over the content) refits the frame,
// at most once per animation frame.
export function followContent() {
  let pending = false;
  const refit = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fitWindow();
    });
  };
  if (typeof ResizeObserver === 'function') new ResizeObserver(refit).observe(document.body);
  document.addEventListener('b24app:layout', refit);
  refit();
}

// Open a portal page (a deal or smart-invoice card) in the Bitrix24 slider. Links carry the
// portal address in href, so without BX24.openPath, or when the portal refuses the path,
// the card opens in a new tab instead.
function openInSlider(link) {
  const path = link.dataset.jsOpenPath;
  const bx = window.BX24;
  if (!path || !bx || typeof bx.openPath !== 'function') return false;
  bx.openPath(path, (answer) => {
    if (answer && answer.result === 'error') window.open(link.href, '_blank', 'noopener');
    // The portal moved focus into its slider; give it back to the link that opened it.
    else if (answer && answer.result === 'close' && link.isConnected) link.focus();
  });
  return true;
}

export function handleSliderLinks() {
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a[data-js-open-path]') : null;
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    if (openInSlider(link)) event.preventDefault();
  });
}
