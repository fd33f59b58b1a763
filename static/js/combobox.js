// An editable combobox with list autocomplete and manual selection (WAI-ARIA Authoring
// Practices), searching on the server as the user types.
//
// Markup (templates/macros/ui.html, `combobox`): an <input role="combobox"> with
// aria-autocomplete="list", aria-expanded and aria-controls; a <ul role="listbox">; a polite
// live region. Focus stays in the input: the active option is shown with
// aria-activedescendant.
//
// Keys: typing searches (debounced, stale answers dropped); ArrowDown/ArrowUp open the list
// and move through it (wrapping); Alt+ArrowDown opens it without moving; Home/End go to the
// first/last option while one is active; Enter picks the active option (or loads more on
// the "Load more" row); Escape closes the list, or clears the field when it is closed.
//
// With `multiple` (the listbox is aria-multiselectable) Enter or a click toggles the active
// option and the list stays open: the field keeps what was typed, onChange gets every
// chosen item, and aria-selected marks them.

import { announceLayout } from './dom.js';

const DEBOUNCE_MS = 250;
let instances = 0;

export class Combobox {
  // search(query, cursor, signal) -> Promise<{items, nextCursor}>
  // renderOption(item) -> Node; labelOf(item) -> string; keyOf(item) -> string
  // onChange(item | null); onError(error) -> message to show, or null when handled elsewhere
  // messages: {loading, nothing, loadMore, found(count, more), failed}
  // multiple: pick several (onChange(items[]) and onToggle(item, chosen) then)
  constructor(root, { search, renderOption, labelOf, keyOf, onChange, onError, messages, multiple = false, onToggle }) {
    this.root = root;
    this.input = root.querySelector('[data-js-input]');
    this.listbox = root.querySelector('[data-js-listbox]');
    this.toggleButton = root.querySelector('[data-js-toggle]');
    this.status = root.querySelector('[data-js-status]');
    this.search = search;
    this.renderOption = renderOption;
    this.labelOf = labelOf;
    this.keyOf = keyOf;
    this.onChange = onChange || (() => {});
    this.onError = onError || ((error) => error.message);
    this.messages = messages;
    this.prefix = `${this.listbox.id || `combobox-${++instances}`}-option`;

    this.items = [];
    this.nextCursor = null;
    this.loadedQuery = null;
    this.rows = []; // [{element, item}] for items, {element, more: true} for "Load more"
    this.active = -1;
    this.selected = null;
    this.sequence = 0;
    this.controller = null;
    this.loading = false;
    this.timer = null;
    this.pendingActive = null; // 'first' | 'last' | index, applied when results arrive
    this.disabled = false;
    this.multiple = multiple;
    this.onToggle = onToggle || (() => {});
    this.chosen = new Map(); // key -> item, with `multiple`

    this.input.addEventListener('input', () => this.onInput());
    this.input.addEventListener('keydown', (event) => this.onKeyDown(event));
    this.input.addEventListener('blur', () => this.close());
    // Keep the focus in the input while the pointer picks an option.
    this.listbox.addEventListener('pointerdown', (event) => event.preventDefault());
    this.listbox.addEventListener('click', (event) => this.onListClick(event));
    if (this.toggleButton) {
      this.toggleButton.addEventListener('pointerdown', (event) => event.preventDefault());
      this.toggleButton.addEventListener('click', () => {
        if (this.disabled) return;
        this.input.focus();
        if (this.isOpen()) this.close();
        else this.open();
      });
    }
  }

  // -- public -------------------------------------------------------------------------------

  get value() {
    return this.multiple ? [...this.chosen.values()] : this.selected;
  }

  // With `multiple`: choose exactly these items (onChange is not called).
  setChosen(items) {
    this.chosen = new Map((items || []).map((item) => [this.keyOf(item), item]));
    this.markSelected();
  }

  // Choose an item programmatically (null clears the field); onChange is not called.
  set(item) {
    if (this.multiple) {
      this.setChosen(item ? [item] : []);
      return;
    }
    this.selected = item;
    this.input.value = item ? this.labelOf(item) : '';
    this.markSelected();
  }

  // Forget loaded results (the search source changed, e.g. another owner type).
  reset() {
    this.cancel();
    this.set(null);
    this.items = [];
    this.nextCursor = null;
    this.loadedQuery = null;
    this.renderRows();
    this.close();
  }

  setDisabled(disabled) {
    this.disabled = disabled;
    this.input.disabled = disabled;
    if (disabled) this.close();
  }

  // -- events -------------------------------------------------------------------------------

  onInput() {
    if (!this.multiple && this.selected && this.input.value !== this.labelOf(this.selected)) {
      this.selected = null;
      this.onChange(null);
    }
    this.setActive(-1);
    this.open({ load: false });
    this.schedule();
  }

  onKeyDown(event) {
    if (this.disabled) return;
    const open = this.isOpen();
    switch (event.key) {
      case 'ArrowDown':
        event.preventDefault();
        if (event.altKey) {
          this.open();
        } else if (!open || this.active < 0) {
          this.open();
          this.activate('first');
        } else {
          this.move(1);
        }
        break;
      case 'ArrowUp':
        event.preventDefault();
        if (event.altKey) {
          if (open && this.active >= 0) this.choose(this.active);
          else this.close();
        } else if (!open || this.active < 0) {
          this.open();
          this.activate('last');
        } else {
          this.move(-1);
        }
        break;
      case 'Enter':
        if (open && this.active >= 0) {
          event.preventDefault();
          this.choose(this.active);
        } else if (open) {
          // Enter in the field runs the pending search now rather than submitting anything.
          event.preventDefault();
          this.flush();
        }
        break;
      case 'Escape':
        if (open) {
          event.preventDefault();
          this.close();
        } else if (this.input.value) {
          event.preventDefault();
          this.input.value = '';
          this.onInput();
          this.close();
        }
        break;
      case 'Home':
      case 'End':
        if (open && this.active >= 0) {
          event.preventDefault();
          this.setActive(this.edgeIndex(event.key === 'Home' ? 'first' : 'last'));
        }
        break;
      case 'ArrowLeft':
      case 'ArrowRight':
        this.setActive(-1);
        break;
      case 'Tab':
        this.close();
        break;
      default:
        break;
    }
  }

  onListClick(event) {
    const option = event.target instanceof Element ? event.target.closest('[role="option"]') : null;
    if (!option) return;
    const index = this.rows.findIndex((row) => row.element === option);
    if (index >= 0) this.choose(index);
  }

  // -- opening and moving -------------------------------------------------------------------

  isOpen() {
    return this.input.getAttribute('aria-expanded') === 'true';
  }

  open({ load = true } = {}) {
    if (!this.isOpen()) {
      this.listbox.hidden = false;
      this.input.setAttribute('aria-expanded', 'true');
      if (this.toggleButton) this.toggleButton.setAttribute('aria-expanded', 'true');
      announceLayout();
    }
    if (load && !this.loading && this.loadedQuery !== this.query()) this.flush();
    this.renderRows({ keepActive: true });
  }

  close() {
    this.pendingActive = null;
    this.setActive(-1);
    if (!this.isOpen()) return;
    this.listbox.hidden = true;
    this.input.setAttribute('aria-expanded', 'false');
    if (this.toggleButton) this.toggleButton.setAttribute('aria-expanded', 'false');
    announceLayout();
  }

  edgeIndex(edge) {
    if (!this.rows.length) return -1;
    return edge === 'first' ? 0 : this.rows.length - 1;
  }

  // Activate an option now, or once the answer being waited for arrives.
  activate(which) {
    if (this.loading || this.loadedQuery !== this.query()) {
      this.pendingActive = which;
      return;
    }
    this.setActive(typeof which === 'number' ? which : this.edgeIndex(which));
  }

  move(step) {
    if (!this.rows.length) return;
    const count = this.rows.length;
    this.setActive((this.active + step + count) % count);
  }

  setActive(index) {
    const previous = this.rows[this.active];
    if (previous) previous.element.classList.remove('is-active');
    this.active = index >= 0 && index < this.rows.length ? index : -1;
    const row = this.rows[this.active];
    if (row) {
      row.element.classList.add('is-active');
      this.input.setAttribute('aria-activedescendant', row.element.id);
      row.element.scrollIntoView({ block: 'nearest' });
    } else {
      this.input.removeAttribute('aria-activedescendant');
    }
  }

  choose(index) {
    const row = this.rows[index];
    if (!row) return;
    if (row.more) {
      this.loadMore();
      return;
    }
    if (this.multiple) {
      this.toggle(row.item);
      if (this.active !== index) this.setActive(index);
      return;
    }
    this.selected = row.item;
    this.input.value = this.labelOf(row.item);
    this.markSelected();
    this.close();
    this.onChange(row.item);
  }

  toggle(item) {
    const key = this.keyOf(item);
    const chosen = !this.chosen.has(key);
    if (chosen) this.chosen.set(key, item);
    else this.chosen.delete(key);
    this.markSelected();
    this.onToggle(item, chosen);
    this.onChange(this.value);
  }

  // -- loading ------------------------------------------------------------------------------

  query() {
    return this.input.value.trim();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), DEBOUNCE_MS);
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    this.load(this.query(), null);
  }

  loadMore() {
    if (this.nextCursor && !this.loading) {
      this.pendingActive = this.items.length; // the first new row
      this.load(this.loadedQuery ?? this.query(), this.nextCursor);
    }
  }

  cancel() {
    clearTimeout(this.timer);
    this.sequence += 1;
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.setLoading(false);
  }

  async load(query, cursor) {
    this.cancel();
    const sequence = this.sequence;
    const controller = new AbortController();
    this.controller = controller;
    this.setLoading(true);
    this.failure = null;
    if (!cursor) this.renderRows();
    this.announce(this.messages.loading);
    let page;
    try {
      page = await this.search(query, cursor, controller.signal);
    } catch (error) {
      if (sequence !== this.sequence || (error && error.name === 'AbortError')) return;
      this.setLoading(false);
      this.failure = this.onError(error);
      this.pendingActive = null;
      if (!cursor) {
        this.items = [];
        this.nextCursor = null;
        this.loadedQuery = query;
      }
      this.renderRows({ keepActive: true });
      this.announce(this.failure || '');
      return;
    }
    if (sequence !== this.sequence) return; // a newer search was started meanwhile
    this.controller = null;
    this.setLoading(false);
    const items = (page && page.items) || [];
    this.items = cursor ? this.items.concat(items) : items;
    this.nextCursor = (page && page.nextCursor) || null;
    this.loadedQuery = query;
    this.renderRows();
    const pending = this.pendingActive;
    this.pendingActive = null;
    if (pending !== null && this.isOpen()) {
      this.setActive(typeof pending === 'number' ? Math.min(pending, this.rows.length - 1) : this.edgeIndex(pending));
    }
    this.announce(
      this.items.length ? this.messages.found(this.items.length, Boolean(this.nextCursor)) : this.messages.nothing,
    );
  }

  setLoading(loading) {
    this.loading = loading;
    this.listbox.setAttribute('aria-busy', loading ? 'true' : 'false');
    this.root.setAttribute('aria-busy', loading ? 'true' : 'false');
  }

  announce(text) {
    // Re-set so that the same words (two searches with one count) are announced again.
    this.status.textContent = '';
    if (text) requestAnimationFrame(() => { this.status.textContent = text; });
  }

  // -- rendering ----------------------------------------------------------------------------

  renderRows({ keepActive = false } = {}) {
    const activeKey = keepActive && this.rows[this.active] ? this.rows[this.active] : null;
    this.listbox.replaceChildren();
    this.rows = [];
    this.active = -1;
    this.input.removeAttribute('aria-activedescendant');
    const stale = this.loadedQuery !== this.query() && !this.loading;
    if (this.loading && !this.items.length) {
      this.listbox.append(this.note(this.messages.loading));
    } else if (this.failure) {
      this.listbox.append(this.note(this.failure));
    } else if (!this.items.length && this.loadedQuery !== null && !stale) {
      this.listbox.append(this.note(this.messages.nothing));
    }
    this.items.forEach((item, index) => {
      const element = document.createElement('li');
      element.id = `${this.prefix}-${index}`;
      element.className = 'b24-option';
      element.setAttribute('role', 'option');
      element.append(this.renderOption(item));
      this.listbox.append(element);
      this.rows.push({ element, item });
    });
    if (this.nextCursor) {
      const element = document.createElement('li');
      element.id = `${this.prefix}-more`;
      element.className = 'b24-option b24-option--more';
      element.setAttribute('role', 'option');
      element.textContent = this.loading ? this.messages.loading : this.messages.loadMore;
      this.listbox.append(element);
      this.rows.push({ element, more: true });
    }
    this.markSelected();
    if (activeKey) this.setActive(this.rows.findIndex((row) => row.item === activeKey.item && row.more === activeKey.more));
    announceLayout();
  }

  note(text) {
    const element = document.createElement('li');
    element.className = 'b24-option b24-option--note';
    element.setAttribute('role', 'option');
    element.setAttribute('aria-disabled', 'true');
    element.setAttribute('aria-selected', 'false');
    element.textContent = text;
    return element;
  }

  markSelected() {
    const key = this.selected ? this.keyOf(this.selected) : null;
    for (const row of this.rows) {
      const selected = this.multiple
        ? Boolean(row.item) && this.chosen.has(this.keyOf(row.item))
        : Boolean(row.item) && key !== null && this.keyOf(row.item) === key;
      row.element.setAttribute('aria-selected', selected ? 'true' : 'false');
    }
  }
}
