// The orders bound to this deal or invoice card, paged, each with Unbind.

import { api } from './api.js';
import { byId, part, setText, show } from './dom.js';
import { confirmDialog, listLoader, refuseControl, showError, writesRefused } from './feedback.js';
import { t, tn } from './i18n.js';
import { boundOrderRow, ownerParams } from './rows.js';

export function createBindingsList({ ownerTypeId, ownerId, owner, onChanged = () => {} }) {
  const root = byId('bindings');
  if (!root) return { reload() {} };
  const rows = part(root, 'rows');
  const more = part(root, 'more');
  const empty = part(root, 'empty');
  const loading = part(root, 'loading');
  const error = part(root, 'error');
  const status = part(root, 'status');
  const result = part(root, 'result');
  let cursor = null;
  let count = 0;
  let thisOwner = owner;

  function announce() {
    const bound = tn('ui.bindings.count', count);
    const text = count ? (cursor ? t('ui.bindings.count_more', { bound }) : bound) : t('ui.bindings.empty');
    status.textContent = text;
    part(root, 'count').textContent = count ? text : '';
  }

  const load = listLoader({ root, rows, loading, error }, async (reset, current) => {
    const page = await api('bindings', { query: { ownerTypeId, ownerId, cursor: reset ? null : cursor } });
    if (!current()) return;
    if (reset) {
      rows.replaceChildren();
      count = 0;
    }
    for (const entry of page.items || []) {
      const fragment = boundOrderRow(entry.order);
      const row = fragment.firstElementChild;
      row.dataset.orderId = String(entry.order.id);
      row.dataset.orderNumber = entry.order.accountNumber || String(entry.order.id);
      const unbind = row.querySelector('[data-js-unbind]');
      if (unbind && writesRefused()) refuseControl(unbind);
      rows.append(fragment);
      count += 1;
    }
    cursor = page.nextCursor || null;
    show(more, Boolean(cursor));
    show(empty, count === 0);
    announce();
  });

  rows.addEventListener('click', async (event) => {
    const button = event.target instanceof Element ? event.target.closest('[data-js-unbind]') : null;
    if (!button) return;
    const row = button.closest('li');
    const orderId = Number(row.dataset.orderId);
    const old = thisOwner || { ownerTypeId, id: ownerId };
    const confirmed = await confirmDialog(
      t('ui.unbind.question', { order: row.dataset.orderNumber, ...ownerParams('old', old) }),
    );
    if (!confirmed) return;
    button.setAttribute('aria-busy', 'true');
    try {
      await api(`bindings/${orderId}`, { method: 'DELETE', query: { ownerTypeId, ownerId } });
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      count -= 1;
      show(empty, count === 0);
      announce();
      setText(result, t('ui.result.unbound', { order: row.dataset.orderNumber, ...ownerParams('old', old) }));
      show(result);
      const focusTarget = next ? next.querySelector('[data-js-unbind], a') : null;
      (focusTarget || root).focus();
      onChanged({ orderId });
    } catch (failure) {
      showError(error, failure);
      if (failure.code === 'binding_changed') load(true);
    } finally {
      button.removeAttribute('aria-busy');
    }
  });
  more.addEventListener('click', () => load(false));
  root.tabIndex = -1;
  load(true);

  return {
    reload() {
      show(result, false);
      return load(true);
    },
    setOwner(found) {
      thisOwner = found;
    },
  };
}
