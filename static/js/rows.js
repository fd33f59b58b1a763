// How orders and owners read on screen: option rows, owner views and sentence phrases.
// Every value is put in as text; the surrounding words come from server-translated templates.

import { cloneTemplate, field, isolated, setField } from './dom.js';
import { date, has, money, t } from './i18n.js';

const portalUrl = (document.body.dataset.portalUrl || '').replace(/\/$/, '');

export const ORDER_CARD_PATH = (id) => `/shop/orders/details/${id}/`;

export function orderLabel(order) {
  return t('ui.order.option_label', { number: order.accountNumber || String(order.id) });
}

function fillOrder(fragment, order) {
  setField(fragment, 'number', order.accountNumber || String(order.id));
  setField(fragment, 'date', date(order.date));
  setField(fragment, 'amount', money(order.amount, order.currency));
  setField(fragment, 'status', order.statusName || order.statusId);
  field(fragment, 'paid').hidden = !order.paid;
  field(fragment, 'cancelled').hidden = !order.cancelled;
  return fragment;
}

export function orderOption(order) {
  return fillOrder(cloneTemplate('tpl-order-option'), order);
}

export function boundOrderRow(order) {
  const fragment = fillOrder(cloneTemplate('tpl-bound-order'), order);
  const link = field(fragment, 'link');
  // The order card is not a slider path (PATH_NOT_AVAILABLE): a plain link to the portal.
  if (portalUrl) link.href = `${portalUrl}${ORDER_CARD_PATH(order.id)}`;
  else link.removeAttribute('href');
  return fragment;
}

export function ownerTitle(owner) {
  const title = owner && typeof owner.title === 'string' ? owner.title.trim() : '';
  return title || t('ui.owner.untitled', { id: owner.id ?? owner.ownerId });
}

export function ownerOption(owner) {
  const isDeal = owner.ownerTypeId === 2;
  const fragment = cloneTemplate(isDeal ? 'tpl-deal-option' : 'tpl-invoice-option');
  setField(fragment, 'title', ownerTitle(owner));
  setField(fragment, 'id', owner.id);
  const number = field(fragment, 'number');
  if (number) {
    number.textContent = owner.accountNumber || '';
    number.parentElement.hidden = !owner.accountNumber;
  }
  setField(fragment, 'amount', money(owner.amount, owner.currency));
  setField(fragment, 'stage', owner.stageName || owner.stageId);
  return fragment;
}

export function ownerLabel(owner) {
  return ownerTitle(owner);
}

export function typeName(ownerTypeId) {
  const key = `ui.owner_type.${ownerTypeId}`;
  return has(key) ? t(key) : String(ownerTypeId);
}

// Titles in sentences are cut short: a 10,000-character title would bury the sentence (the
// owner's own block shows it whole, clamped on screen).
const PHRASE_TITLE_MAX = 160;

function shortened(text) {
  const chars = [...text];
  return chars.length > PHRASE_TITLE_MAX ? `${chars.slice(0, PHRASE_TITLE_MAX - 1).join('')}…` : text;
}

// "deal «Title»" in a sentence; form is "name" (nominative) or "acc" (accusative: ru differs).
export function ownerPhrase(owner, form = 'name') {
  const typeId = owner.ownerTypeId;
  const key = `ui.owner.${form}.${typeId}`;
  const title = isolated(shortened(ownerTitle(owner)));
  return has(key) ? t(key, { title }) : `${typeName(typeId)} «${title}»`;
}

// Both forms of an owner for a message: {name} (nominative) and {name_acc} (accusative);
// each language's text picks the case its sentence needs.
export function ownerParams(name, owner) {
  return { [name]: ownerPhrase(owner, 'name'), [`${name}_acc`]: ownerPhrase(owner, 'acc') };
}

// Only a path on the portal itself ("/crm/..."), never another host ("//x", "@x").
function portalPath(path) {
  return typeof path === 'string' && /^\/[^/\\]/.test(path) ? path : null;
}

// An owner as one block: its type, its title linking to its card (in the slider), details.
// owner: {ownerTypeId, id | ownerId, title?, path?, amount?, currency?, stageName?}
export function ownerView(owner) {
  const fragment = cloneTemplate('tpl-owner');
  setField(fragment, 'type', typeName(owner.ownerTypeId));
  const link = field(fragment, 'link');
  const plain = field(fragment, 'plain');
  const title = ownerTitle(owner);
  const path = portalPath(owner.path);
  if (path && portalUrl) {
    field(link, 'title').textContent = title;
    link.href = `${portalUrl}${path}`;
    link.dataset.jsOpenPath = path;
    plain.remove();
  } else {
    plain.textContent = title;
    link.remove();
  }
  const details = [money(owner.amount, owner.currency), owner.stageName].filter(Boolean).join(' · ');
  setField(fragment, 'details', details);
  return fragment;
}

// The owner a binding names, as the views above take it (owner details when the API had them).
export function bindingOwner(binding) {
  if (!binding) return null;
  const owner = binding.owner || {};
  return { ...owner, ownerTypeId: binding.ownerTypeId, id: binding.ownerId, ownerId: binding.ownerId };
}

export function sameOwner(a, b) {
  return Boolean(a && b) && a.ownerTypeId === b.ownerTypeId && Number(a.id ?? a.ownerId) === Number(b.id ?? b.ownerId);
}
