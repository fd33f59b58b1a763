// Binding one order to one owner: the chosen (or this card's) order, its current owner, the
// replace warning, Bind / Replace, the result, and Unbind with confirmation.

import { api } from './api.js';
import { byId, part, setText, show } from './dom.js';
import { clearMessage, confirmDialog, refuseControl, showError, showMessage, writesRefused } from './feedback.js';
import { date, money, t } from './i18n.js';
import { orderPicker, ownerPicker } from './pickers.js';
import { bindingOwner, ownerParams, ownerView, sameOwner } from './rows.js';

// orderId: the order card's order (no order picker); owner: the deal or invoice card's owner
// ({ownerTypeId, id, title?}, no owner picker). onChanged({orderId}) after every change.
export function createBinder({ orderId = null, owner = null, canBind, onChanged = () => {} }) {
  const current = byId('current-owner');
  const els = {
    current,
    currentText: part(current, 'owner-text'),
    unbind: byId('unbind-button'),
    bind: byId('bind-button'),
    warning: byId('replace-warning'),
    error: byId('action-error'),
    result: byId('bind-result'),
    summary: byId('order-summary'),
  };
  if (!current) return { reload() {}, setOwner() {} };
  current.tabIndex = -1;
  const state = {
    orderId,
    order: null,
    binding: undefined, // undefined: not known yet; null: the order has no owner
    owner: null,
    fixedOwner: owner,
    busy: false,
    sequence: 0,
  };

  const orderRoot = document.querySelector('[data-testid="order-picker"]');
  const ownerRoot = document.querySelector('[data-testid="owner-picker"]');
  const switchRoot = byId('owner-type');
  if (orderRoot && orderId === null) {
    orderPicker(orderRoot, (order) => {
      state.order = order;
      state.orderId = order ? order.id : null;
      clearMessage(els.result);
      clearMessage(els.error);
      loadBinding();
    });
  }
  if (ownerRoot && !owner) {
    ownerPicker(ownerRoot, switchRoot, (chosen) => {
      state.owner = chosen;
      clearMessage(els.result);
      render();
    });
  }

  const target = () => state.fixedOwner || state.owner;
  const orderNumber = () => (state.order && state.order.accountNumber) || String(state.orderId);

  async function loadBinding() {
    const sequence = ++state.sequence;
    state.binding = undefined;
    render();
    if (!state.orderId) return;
    try {
      const answer = await api('bindings', { query: { orderId: state.orderId } });
      if (sequence !== state.sequence) return;
      if (answer.order) state.order = answer.order;
      state.binding = answer.binding || null;
      if (!answer.order && orderId !== null) {
        showError(els.error, { code: 'order_not_found', message: t('ui.order.not_found') });
      }
    } catch (error) {
      if (sequence !== state.sequence) return;
      showError(els.error, error);
    }
    render();
  }

  function renderCurrent() {
    els.current.removeAttribute('aria-busy');
    if (!state.orderId) {
      els.currentText.textContent = t('ui.current_owner.choose_order');
    } else if (state.binding === undefined) {
      els.current.setAttribute('aria-busy', 'true');
      els.currentText.textContent = t('ui.loading');
    } else if (state.binding === null) {
      els.currentText.textContent = t('ui.current_owner.none');
    } else {
      els.currentText.replaceChildren(ownerView(bindingOwner(state.binding)));
    }
    show(els.unbind, Boolean(canBind && state.binding));
    if (els.summary && state.order) {
      els.summary.textContent = [
        t('ui.order.option_label', { number: orderNumber() }),
        date(state.order.date),
        money(state.order.amount, state.order.currency),
        state.order.statusName,
      ].filter(Boolean).join(' · ');
    }
  }

  function render() {
    renderCurrent();
    if (!els.bind) return;
    const chosen = target();
    const old = state.binding ? bindingOwner(state.binding) : null;
    const replaces = Boolean(old && chosen && !sameOwner(old, chosen));
    if (els.warning) {
      if (replaces) {
        setText(
          part(els.warning, 'text'),
          t('ui.bind.replace_warning', {
            ...ownerParams('old', old),
            ...ownerParams('new', chosen),
            order: orderNumber(),
          }),
        );
      }
      show(els.warning, replaces);
    }
    if (!canBind) return;
    if (writesRefused()) {
      refuseControl(els.bind);
      if (els.unbind) refuseControl(els.unbind);
      show(byId('bind-help'), false);
      return;
    }
    els.bind.textContent = replaces ? els.bind.dataset.replaceLabel : els.bind.dataset.bindLabel;
    const ready = Boolean(state.orderId && chosen && state.binding !== undefined);
    // While a request runs the button keeps its focus: busy, not disabled.
    els.bind.disabled = !ready && !state.busy;
    show(byId('bind-help'), !ready);
    els.bind.setAttribute('aria-busy', state.busy ? 'true' : 'false');
  }

  async function bind() {
    const chosen = target();
    if (state.busy || !chosen || !state.orderId || state.binding === undefined) return;
    state.busy = true;
    clearMessage(els.error);
    clearMessage(els.result);
    render();
    const orderIdNow = state.orderId;
    try {
      const answer = await api('bindings', {
        method: 'POST',
        body: {
          orderId: orderIdNow,
          ownerTypeId: chosen.ownerTypeId,
          ownerId: chosen.id,
          // What the user saw: if Bitrix24's first answer is lost, it names what was replaced.
          seenOwner: state.binding
            ? { ownerTypeId: state.binding.ownerTypeId, ownerId: state.binding.ownerId }
            : null,
        },
      });
      const binding = answer.binding || { orderId: orderIdNow, ownerTypeId: chosen.ownerTypeId, ownerId: chosen.id };
      state.binding = { ...binding, owner: binding.owner || { ...chosen } };
      const params = { order: orderNumber(), ...ownerParams('new', chosen) };
      let text;
      if (answer.outcome === 'replaced' && answer.replaced) {
        text = t('ui.result.replaced', { ...params, ...ownerParams('old', bindingOwner(answer.replaced)) });
      } else if (answer.outcome === 'already_bound') {
        text = t('ui.result.already_bound', params);
      } else {
        text = t('ui.result.bound', params);
      }
      showMessage(els.result, text);
      onChanged({ orderId: orderIdNow });
    } catch (error) {
      showError(els.error, error);
      if (error.code === 'binding_changed' || error.code === 'order_not_found') loadBinding();
    } finally {
      state.busy = false;
      render();
    }
  }

  async function unbind() {
    const binding = state.binding;
    if (state.busy || !binding) return;
    const old = bindingOwner(binding);
    const confirmed = await confirmDialog(
      t('ui.unbind.question', { order: orderNumber(), ...ownerParams('old', old) }),
    );
    if (!confirmed) return;
    state.busy = true;
    clearMessage(els.error);
    clearMessage(els.result);
    const orderIdNow = state.orderId;
    try {
      await api(`bindings/${encodeURIComponent(orderIdNow)}`, {
        method: 'DELETE',
        query: { ownerTypeId: binding.ownerTypeId, ownerId: binding.ownerId },
      });
      state.binding = null;
      showMessage(els.result, t('ui.result.unbound', { order: orderNumber(), ...ownerParams('old', old) }));
      onChanged({ orderId: orderIdNow });
    } catch (error) {
      showError(els.error, error);
      // The owner changed meanwhile (409 binding_changed): show who owns the order now.
      if (error.code === 'binding_changed') {
        state.busy = false;
        await loadBinding();
      }
    } finally {
      state.busy = false;
      render();
      els.current.focus();
    }
  }

  if (els.bind && canBind) els.bind.addEventListener('click', bind);
  if (els.unbind) els.unbind.addEventListener('click', unbind);
  if (state.orderId) loadBinding();
  else render();

  return {
    // Reload the shown order's owner when orderId (or any order) changed elsewhere.
    reload(changedOrderId = null) {
      if (state.orderId && (changedOrderId === null || Number(changedOrderId) === Number(state.orderId))) loadBinding();
    },
    setOwner(fixed) {
      state.fixedOwner = fixed;
      render();
    },
  };
}
