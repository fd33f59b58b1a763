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

// Put text into a slot (never HTML); an empty value hides the slot.
export function setField(root, name, value, { hideEmpty = true } = {}) {
  const slot = field(root, name);
  if (!slot) return null;
  const text = value === null || value === undefined ? '' : String(value);
  slot.textContent = text;
  if (hideEmpty) slot.hidden = text === '';
  return slot;
}

export function show(element, visible = true) {
  if (element) element.hidden = !visible;
}

export function announceLayout() {
  document.dispatchEvent(new CustomEvent('b24app:layout'));
}
