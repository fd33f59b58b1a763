// The order picker and the owner (deal / invoice) picker: comboboxes over the app's API.

import { api } from './api.js';
import { Combobox } from './combobox.js';
import { byId, part } from './dom.js';
import { isPermissionError, messageOf, showError, showPermissionPanel } from './feedback.js';
import { t, tn } from './i18n.js';
import { ownerLabel, ownerOption, orderLabel, orderOption } from './rows.js';

// A picker's failure shows in its list; a refusal or a dead sign-in also in the page's panels.
function pickerError(error) {
  if (isPermissionError(error)) showPermissionPanel(error.code);
  else if (error.code === 'reauth_required') showError(byId('app-error'), error);
  return messageOf(error);
}

function foundText(found, more) {
  return more ? t('ui.picker.found_more', { found }) : found;
}

function messages(foundKey) {
  return {
    loading: t('ui.loading'),
    nothing: t('ui.picker.nothing'),
    loadMore: t('ui.load_more'),
    found: (count, more) => foundText(tn(foundKey, count), more),
  };
}

// What both order pickers search, show and say.
function orderOptions(onChange) {
  return {
    search: (q, cursor, signal) => api('orders', { query: { q, cursor }, signal }),
    renderOption: orderOption,
    labelOf: orderLabel,
    keyOf: (order) => String(order.id),
    onChange,
    onError: pickerError,
    messages: messages('ui.found.orders'),
  };
}

export function orderPicker(root, onChange) {
  return new Combobox(root, orderOptions(onChange));
}

// The owner picker searches the type chosen in the switch; switching relabels and resets it.
export function ownerPicker(root, switchRoot, onChange) {
  const radios = switchRoot ? [...switchRoot.querySelectorAll('input[type="radio"]')] : [];
  const checked = () => radios.find((radio) => radio.checked) || radios[0];
  const typeId = () => Number(checked() ? checked().value : 0);
  const foundKey = () => `ui.found.owners.${typeId()}`;
  const picker = new Combobox(root, {
    search: (q, cursor, signal) => api('owners', { query: { type: typeId(), q, cursor }, signal }),
    renderOption: ownerOption,
    labelOf: ownerLabel,
    keyOf: (owner) => `${owner.ownerTypeId}:${owner.id}`,
    onChange,
    onError: pickerError,
    messages: {
      ...messages('ui.found.owners.2'),
      found: (count, more) => foundText(tn(foundKey(), count), more),
    },
  });
  const relabel = () => {
    const radio = checked();
    if (!radio) return;
    part(root, 'label').textContent = radio.dataset.label;
    part(root, 'hint').textContent = radio.dataset.hint || '';
  };
  for (const radio of radios) {
    radio.addEventListener('change', () => {
      relabel();
      picker.reset();
      onChange(null);
    });
  }
  relabel();
  picker.typeId = typeId;
  return picker;
}

// The order picker of "Bind several orders": a multi-select list (Enter or a click toggles
// an order and keeps the list open). onChange(orders[]); onToggle(order, chosen).
export function multiOrderPicker(root, { onChange, onToggle }) {
  return new Combobox(root, {
    ...orderOptions(onChange),
    onToggle,
    multiple: true,
  });
}
