// The page's texts (translated on the server, handed over in data-* attributes) and the
// browser-side formatting of numbers, money and dates for the page's language.

const body = document.body;
export const lang = document.documentElement.lang || 'en';
const strings = JSON.parse(body.dataset.strings || '{}');
const plurals = JSON.parse(body.dataset.plurals || '{}');
const pluralRules = new Intl.PluralRules(lang);
const numberFormat = new Intl.NumberFormat(lang);
const moneyFormats = new Map();
const dateFormat = new Intl.DateTimeFormat(lang, { dateStyle: 'medium' });
const dateTimeFormat = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' });

function fill(text, params) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function has(key) {
  return key in strings;
}

export function t(key, params = {}) {
  return fill(key in strings ? strings[key] : key, params);
}

// A plural message for count, its {count} formatted for the language (1 заказ, 5 заказов).
export function tn(key, count, params = {}) {
  const forms = plurals[key];
  if (!forms) return key;
  const text = forms[pluralRules.select(count)] ?? forms.other;
  return fill(text, { ...params, count: numberFormat.format(count) });
}

export function number(value) {
  return numberFormat.format(value);
}

const percentFormat = new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 0 });

// A share of 0..100 as the language writes it (37%, 37 %).
export function percent(value) {
  return percentFormat.format(value / 100);
}

export function money(amount, currency) {
  if (amount === null || amount === undefined || amount === '') return '';
  const value = Number(amount);
  if (!currency) return numberFormat.format(value);
  let format = moneyFormats.get(currency);
  if (!format) {
    try {
      format = new Intl.NumberFormat(lang, { style: 'currency', currency });
    } catch {
      return `${numberFormat.format(value)} ${currency}`;
    }
    moneyFormats.set(currency, format);
  }
  return format.format(value);
}

function parsed(iso) {
  const value = iso ? new Date(iso) : null;
  return value && !Number.isNaN(value.getTime()) ? value : null;
}

export function date(iso) {
  const value = parsed(iso);
  return value ? dateFormat.format(value) : '';
}

export function dateTime(iso) {
  const value = parsed(iso);
  return value ? dateTimeFormat.format(value) : '';
}
