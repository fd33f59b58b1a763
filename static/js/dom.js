// DOM helpers: clone server-translated <template> rows and fill data-js-field slots as text.

export function byId(id) {
  return document.getElementById(id);
}

export function part(root, name) {
  return root ? root.querySelector(`[data-js-${name}]`) : null;
}

export function cloneTemplate(id) {
  const template = byId(id);
  return template ? template.content.cloneNode(true) : document.createDocumentFragment();
}

export function field(root, name) {
  return root.querySelector(`[data-js-field="${name}"]`);
}

// Text from Bitrix24 inside a sentence (a deal's title) is marked with the Unicode isolates
// FSI ... PDI (see isolated()); setText puts each marked part into a <bdi> element instead,
// so that a right-to-left override in a title cannot turn the rest of the sentence around.
const ISOLATE_OPEN = '\u2068';
const ISOLATE_CLOSE = '\u2069';
const ISOLATED = /\u2068([^\u2068\u2069]*)\u2069/g;

export function isolated(text) {
  return `${ISOLATE_OPEN}${String(text).replace(/[\u2068\u2069]/g, '')}${ISOLATE_CLOSE}`;
}

// Put text into an element (never HTML), isolating the parts marked by isolated().
export function setText(element, value) {
  const text = value === null || value === undefined ? '' : String(value);
  if (!text.includes(ISOLATE_OPEN)) {
    element.textContent = text;
    return;
  }
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(ISOLATED)) {
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    const bdi = document.createElement('bdi');
    bdi.textContent = match[1];
    nodes.push(bdi);
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  element.replaceChildren(...nodes);
}

// Put text into a slot (never HTML); an empty value hides the slot.
export function setField(root, name, value, { hideEmpty = true } = {}) {
  const slot = field(root, name);
  if (!slot) return null;
  const text = value === null || value === undefined ? '' : String(value);
  setText(slot, text);
  if (hideEmpty) slot.hidden = text === '';
  return slot;
}

export function show(element, visible = true) {
  if (element) element.hidden = !visible;
}

export function announceLayout() {
  document.dispatchEvent(new CustomEvent('b24app:layout'));
}
