// Telling the user what happened: API errors in words (the server's message is already in
// the user's language), the permission panels, results and the unbind confirmation.

import { byId, part, setText, show } from './dom.js';
import { has, t } from './i18n.js';

let reconnectUrl = null;
let refused = false;

// Whether the API refused a write on this page (the controls that write stay off).
export function writesRefused() {
  return refused;
}

// Turn a control that writes off, pointing at the explanation.
export function refuseControl(button) {
  const explanation = byId('denied-explanation');
  button.disabled = true;
  if (explanation) button.setAttribute('aria-describedby', explanation.id);
}

export function setReconnectUrl(url) {
  reconnectUrl = url || null;
  document.querySelectorAll('[data-js-reconnect]').forEach((link) => {
    if (reconnectUrl) link.href = reconnectUrl;
  });
}

export function messageOf(error) {
  if (!error) return t('ui.error.generic');
  if (error.code === 'network_error') return t('ui.error.network_error');
  if (error.message) return error.message;
  const key = `ui.error.${error.code}`;
  return has(key) ? t(key) : t('ui.error.generic');
}

export function isPermissionError(error) {
  return Boolean(error) && (error.code === 'permission_denied' || error.code === 'no_store_access');
}

// The same panel the server renders on opening; the controls that write stop working.
export function showPermissionPanel(code) {
  const kind = code === 'no_store_access' ? 'no_access' : 'read_only';
  const panel = byId(`denied-${kind}`);
  show(panel);
  refused = true;
  document.querySelectorAll('#bind-button, #unbind-button, [data-js-unbind], [data-js-undo], [data-js-write]').forEach(refuseControl);
  if (kind === 'no_access') show(byId('screen'), false);
  if (panel) panel.scrollIntoView({ block: 'nearest' });
}

// Show error in region (an alert with data-js-text, optionally data-js-reconnect).
export function showError(region, error) {
  if (isPermissionError(error)) {
    showPermissionPanel(error.code);
    return;
  }
  const target = region || byId('app-error');
  if (!target) return;
  part(target, 'text').textContent = messageOf(error);
  target.dataset.errorCode = error.code || 'error';
  const link = part(target, 'reconnect');
  if (link) {
    const reconnect = error.code === 'reauth_required' && reconnectUrl;
    if (reconnect) link.href = reconnectUrl;
    show(link, Boolean(reconnect));
  }
  show(target);
}

export function clearMessage(region) {
  if (region) show(region, false);
}

export function showMessage(region, text) {
  if (!region) return;
  setText(part(region, 'text'), text);
  show(region);
}

// Ask in a modal dialog (the unbind one unless another is named); resolves true when the
// user confirms.
export function confirmDialog(text, dialogId = 'unbind-dialog') {
  const dialog = byId(dialogId);
  if (!dialog || typeof dialog.showModal !== 'function') return Promise.resolve(false);
  setText(part(dialog, 'text'), text);
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
    dialog.showModal();
    // A destructive question starts on the harmless answer.
    part(dialog, 'cancel')?.focus();
  });
}

// The loads of one paged list: load(reset) runs work(reset, current), where current() turns
// false once a newer load has started (its answers are stale then). The list is busy while
// a load runs, its loading row shows on a reset of an empty list, and a failure of the
// newest load shows in the list's error region.
export function listLoader({ root, rows, loading, error }, work) {
  let sequence = 0;
  return async function load(reset) {
    const mine = ++sequence;
    const current = () => mine === sequence;
    root.setAttribute('aria-busy', 'true');
    show(error, false);
    if (reset) show(loading, !rows.children.length);
    try {
      await work(reset, current);
    } catch (failure) {
      if (current()) showError(error, failure);
    } finally {
      if (current()) {
        root.setAttribute('aria-busy', 'false');
        show(loading, false);
      }
    }
  };
}
