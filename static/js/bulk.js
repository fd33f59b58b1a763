// "Bind several orders": choose the orders (by a filter, or picked in a multi-select list),
// see what the job would do (POST /api/jobs/preview: how many match, how many will have
// their owner replaced, the target), confirm, and the job starts in the background
// (POST /api/jobs/bind answers 202 with the job at once).

import { api } from './api.js';
import { byId, cloneTemplate, part, setField, setText, show } from './dom.js';
import { clearMessage, refuseControl, showError, showMessage, writesRefused } from './feedback.js';
import { t, tn } from './i18n.js';
import { multiOrderPicker, ownerPicker } from './pickers.js';
import { ownerPhrase } from './rows.js';

const orderNumber = (order) => order.accountNumber || String(order.id);

// owner: the card's owner on a deal or invoice tab ({ownerTypeId, id}); null on the app page
// (the panel's own owner picker chooses). onStarted(job) once the server took the job.
export function createBulkBinder({ owner = null, onStarted = () => {} }) {
  const root = byId('bulk');
  if (!root) return { setOwner() {} };
  const els = {
    choose: root.querySelector('[data-js-step="choose"]'),
    confirmStep: root.querySelector('[data-js-step="confirm"]'),
    facts: part(root, 'facts'),
    pickMode: root.querySelector('[data-js-mode="pick"]'),
    filterMode: root.querySelector('[data-js-mode="filter"]'),
    chosen: byId('bulk-chosen'),
    error: byId('bulk-error'),
    preview: byId('bulk-preview'),
    confirm: byId('bulk-confirm'),
    back: byId('bulk-back'),
    started: byId('bulk-started'),
  };
  const chips = part(els.chosen, 'chips');
  const count = part(els.chosen, 'count');
  const clear = part(els.chosen, 'clear');
  const status = part(els.chosen, 'status');
  const modes = [...root.querySelectorAll('input[name="bulk-mode"]')];
  const state = { fixedOwner: owner, owner: null, orders: [], body: null, busy: false };

  const ownerRoot = root.querySelector('[data-testid="bulk-owner-picker"]');
  if (ownerRoot && !owner) {
    ownerPicker(ownerRoot, byId('bulk-owner-type'), (chosen) => {
      state.owner = chosen;
    });
  }
  const picker = multiOrderPicker(root.querySelector('[data-testid="bulk-order-picker"]'), {
    onChange: (orders) => {
      state.orders = orders;
      renderChosen();
    },
    onToggle: (order, chosen) => {
      announce(t(chosen ? 'ui.bulk.chosen.added' : 'ui.bulk.chosen.removed', { number: orderNumber(order) }));
    },
  });

  const mode = () => (modes.find((radio) => radio.checked) || modes[0]).value;
  const target = () => state.fixedOwner || state.owner;

  function announce(text) {
    status.textContent = `${text} ${countText()}`;
  }

  function countText() {
    return state.orders.length ? tn('ui.bulk.chosen.count', state.orders.length) : t('ui.bulk.chosen.none');
  }

  function renderChosen() {
    count.textContent = countText();
    show(clear, state.orders.length > 0);
    const fragment = document.createDocumentFragment();
    for (const order of state.orders) {
      const row = cloneTemplate('tpl-chosen-order');
      setField(row, 'number', orderNumber(order));
      const remove = part(row, 'remove');
      remove.dataset.orderId = String(order.id);
      remove.setAttribute('aria-label', t('ui.bulk.chosen.remove', { number: orderNumber(order) }));
      fragment.append(row);
    }
    chips.replaceChildren(fragment);
  }

  function removeOrder(orderId) {
    const order = state.orders.find((item) => String(item.id) === orderId);
    state.orders = state.orders.filter((item) => String(item.id) !== orderId);
    picker.setChosen(state.orders);
    renderChosen();
    if (order) announce(t('ui.bulk.chosen.removed', { number: orderNumber(order) }));
  }

  chips.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('[data-js-remove]') : null;
    if (!button) return;
    const buttons = [...chips.querySelectorAll('[data-js-remove]')];
    const index = buttons.indexOf(button);
    removeOrder(button.dataset.orderId);
    // Focus stays in the list: on the next chip, else the previous, else the search field.
    const left = [...chips.querySelectorAll('[data-js-remove]')];
    (left[index] || left[index - 1] || picker.input).focus();
  });
  clear.addEventListener('click', () => {
    state.orders = [];
    picker.setChosen([]);
    renderChosen();
    announce('');
    picker.input.focus();
  });

  function showMode() {
    const picking = mode() === 'pick';
    show(els.pickMode, picking);
    show(els.filterMode, !picking);
    clearMessage(els.error);
  }
  modes.forEach((radio) => radio.addEventListener('change', showMode));

  // The filter as the API takes it: only the keys the user filled in.
  function filterBody() {
    const value = (name) => root.querySelector(`[data-js-filter][name="${name}"]`);
    const filter = {};
    for (const name of ['createdFrom', 'createdTo', 'statusId', 'accountNumber']) {
      const text = value(name).value.trim();
      if (text) filter[name] = text;
    }
    const paid = value('paid').value;
    if (paid) filter.paid = paid === 'true';
    if (value('unboundOnly').checked) filter.unboundOnly = true;
    return filter;
  }

  // The job's body, or an error to show ({code, message}) when something is missing.
  function jobBody() {
    const chosen = target();
    if (!chosen) return { problem: t('ui.bulk.error.no_owner'), focus: ownerRoot && ownerRoot.querySelector('input') };
    const body = { ownerTypeId: chosen.ownerTypeId, ownerId: Number(chosen.id ?? chosen.ownerId) };
    if (mode() === 'pick') {
      if (!state.orders.length) return { problem: t('ui.bulk.error.no_orders'), focus: picker.input };
      body.orderIds = state.orders.map((order) => Number(order.id));
    } else {
      const filter = filterBody();
      if (filter.createdFrom && filter.createdTo && filter.createdFrom > filter.createdTo) {
        return { problem: t('ui.bulk.error.dates'), focus: byId('bulk-created-from') };
      }
      body.filter = filter;
    }
    return { body };
  }

  function busy(button, on) {
    state.busy = on;
    button.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  function facts(preview) {
    const lines = [];
    const matched = Number(preview.matched) || 0;
    lines.push(matched ? tn('ui.bulk.preview.matched', matched) : t('ui.bulk.preview.none'));
    if (preview.replacing) lines.push(tn('ui.bulk.preview.replacing', preview.replacing));
    if (preview.alreadyThere) lines.push(tn('ui.bulk.preview.already', preview.alreadyThere));
    const owner = preview.owner || target();
    lines.push(t('ui.bulk.preview.target', { target: ownerPhrase(owner) }));
    return lines;
  }

  async function previewJob() {
    if (state.busy || writesRefused()) return;
    clearMessage(els.error);
    clearMessage(els.started);
    const { body, problem, focus } = jobBody();
    if (problem) {
      showMessage(els.error, problem);
      if (focus) focus.focus();
      return;
    }
    busy(els.preview, true);
    try {
      const preview = await api('jobs/preview', { method: 'POST', body });
      state.body = body;
      els.facts.replaceChildren(
        ...facts(preview).map((text) => {
          const item = document.createElement('li');
          setText(item, text);
          return item;
        }),
      );
      const matched = Number(preview.matched) || 0;
      els.confirm.textContent = tn('ui.bulk.confirm.count', matched);
      show(els.confirm, matched > 0);
      show(els.choose, false);
      show(els.confirmStep);
      els.confirmStep.focus();
    } catch (error) {
      showError(els.error, error);
    } finally {
      busy(els.preview, false);
    }
  }

  async function startJob() {
    if (state.busy || !state.body || writesRefused()) return;
    busy(els.confirm, true);
    try {
      const answer = await api('jobs/bind', { method: 'POST', body: state.body });
      const job = answer.job || answer;
      backToChoose({ focus: false });
      showMessage(els.started, t('ui.bulk.started', { id: job.id }));
      onStarted(job);
    } catch (error) {
      backToChoose({ focus: false });
      showError(els.error, error);
      els.preview.focus();
    } finally {
      busy(els.confirm, false);
    }
  }

  function backToChoose({ focus = true } = {}) {
    state.body = null;
    show(els.confirmStep, false);
    show(els.choose);
    if (focus) els.preview.focus();
  }

  const toggle = byId('bulk-toggle');
  const body = byId('bulk-body');
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    show(body, open);
    if (!open) clearMessage(els.started);
  });

  els.preview.addEventListener('click', previewJob);
  els.confirm.addEventListener('click', startJob);
  els.back.addEventListener('click', () => backToChoose());
  if (writesRefused()) [els.preview, els.confirm].forEach(refuseControl);
  showMode();
  renderChosen();

  return {
    setOwner(found) {
      if (state.fixedOwner) state.fixedOwner = found;
    },
  };
}
