// The portal's binding history, newest first, paged, with Undo for store administrators.

import { api } from './api.js';
import { byId, field, part, setField, show, cloneTemplate } from './dom.js';
import { listLoader, refuseControl, showError, writesRefused } from './feedback.js';
import { dateTime, t } from './i18n.js';
import { ownerView } from './rows.js';

const OUTCOME_BADGE = {
  bound: 'b24-badge--success',
  replaced: 'b24-badge--success',
  already_bound: 'b24-badge--primary',
  unbound: 'b24-badge--warning',
  failed: 'b24-badge--alert',
};

function historyOwner(owner) {
  return owner ? { ...owner, id: owner.ownerId } : null;
}

function entryRow(entry, canUndo) {
  const fragment = cloneTemplate('tpl-history-entry');
  const row = fragment.firstElementChild;
  row.dataset.entryId = String(entry.id);
  const outcome = setField(fragment, 'outcome', t(`ui.outcome.${entry.outcome}`));
  outcome.classList.add(OUTCOME_BADGE[entry.outcome] || 'b24-badge--primary');
  setField(fragment, 'user', entry.user ? entry.user.name : '');
  const when = setField(fragment, 'when', dateTime(entry.createdAt));
  when.setAttribute('datetime', entry.createdAt);
  const number = entry.orderAccountNumber || (entry.order && entry.order.accountNumber);
  setField(fragment, 'order', number ? t('ui.order.option_label', { number }) : t('ui.history.order_id', { id: entry.orderId }));
  setField(fragment, 'owner-label', t(entry.action === 'unbind' ? 'ui.history.unbound_from' : 'ui.history.bound_to'));
  const owner = historyOwner(entry.owner);
  if (owner) field(fragment, 'owner').replaceChildren(ownerView(owner));
  const replaced = historyOwner(entry.replaced);
  if (replaced) {
    field(fragment, 'replaced').replaceChildren(ownerView(replaced));
    show(field(fragment, 'replaced'));
    show(field(fragment, 'replaced-label'));
  }
  if (entry.undoOf) {
    setField(fragment, 'undo-of', t('ui.history.entry_id', { id: entry.undoOf }));
    show(field(fragment, 'undo-label'));
  }
  if (entry.jobId) {
    setField(fragment, 'job', t('ui.jobs.job_ref', { id: entry.jobId }));
    show(field(fragment, 'job-label'));
  }
  if (entry.undoneBy) {
    setField(fragment, 'undone-by', t('ui.history.undone_by', { id: entry.undoneBy }));
  }
  if (entry.outcome === 'failed') {
    setField(fragment, 'reason', entry.reason || t('ui.history.failed_no_reason'));
  }
  const undo = part(row, 'undo');
  if (undo) {
    show(undo, Boolean(canUndo && entry.undoable));
    undo.setAttribute('aria-label', t('ui.history.undo_label', { id: entry.id, order: entry.orderId }));
    if (writesRefused()) refuseControl(undo);
  }
  return fragment;
}

export function createHistory({ canUndo, onChanged = () => {} }) {
  const root = byId('history');
  if (!root) return { reload() {} };
  const rows = part(root, 'rows');
  const more = part(root, 'more');
  const empty = part(root, 'empty');
  const loading = part(root, 'loading');
  const error = part(root, 'error');
  const status = part(root, 'status');
  const result = part(root, 'result');
  let cursor = null;

  const load = listLoader({ root, rows, loading, error }, async (reset, current) => {
    const page = await api('history', { query: { cursor: reset ? null : cursor } });
    if (!current()) return;
    const fragment = document.createDocumentFragment();
    for (const entry of page.items || []) fragment.append(entryRow(entry, canUndo));
    if (reset) rows.replaceChildren(fragment);
    else rows.append(fragment);
    cursor = page.nextCursor || null;
    show(more, Boolean(cursor));
    show(empty, rows.children.length === 0);
    status.textContent = rows.children.length ? '' : t('ui.history.empty');
  });

  rows.addEventListener('click', async (event) => {
    const button = event.target instanceof Element ? event.target.closest('[data-js-undo]') : null;
    if (!button || button.getAttribute('aria-busy') === 'true') return;
    const row = button.closest('li');
    const id = row.dataset.entryId;
    button.setAttribute('aria-busy', 'true');
    show(error, false);
    show(result, false);
    try {
      const answer = await api(`history/${encodeURIComponent(id)}/undo`, { method: 'POST', body: {} });
      const orderId = (answer.binding && answer.binding.orderId) || (answer.removed && answer.removed.orderId);
      result.textContent = t('ui.history.undone', { id });
      show(result);
      await load(true);
      root.focus();
      onChanged({ orderId: orderId ?? null });
    } catch (failure) {
      showError(error, failure);
      button.removeAttribute('aria-busy');
    }
  });
  more.addEventListener('click', () => load(false));
  byId('history-refresh')?.addEventListener('click', () => load(true));
  root.tabIndex = -1;
  load(true);
  return { reload: () => load(true) };
}
