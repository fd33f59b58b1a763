"""What the browser tests do on the app's screens: open a placement, pick with the keyboard."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.harness import Portal

FRAME = '[data-testid="app-frame"]'

# Every text on the page against the background it sits on (WCAG 2 relative luminance).
CONTRAST_FAILURES_JS = """
() => {
  const parse = (value) => {
    const match = value.match(/rgba?\\(([^)]+)\\)/);
    if (!match) return null;
    const parts = match[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  };
  const over = (top, base) => ({
    r: top.r * top.a + base.r * (1 - top.a),
    g: top.g * top.a + base.g * (1 - top.a),
    b: top.b * top.a + base.b * (1 - top.a),
  });
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour && colour.a > 0) {
        layers.push(colour);
        if (colour.a >= 1) break;
      }
    }
    return layers.reverse().reduce((base, layer) => over(layer, base), { r: 255, g: 255, b: 255 });
  };
  const luminance = ({ r, g, b }) => {
    const channel = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const element = node.parentElement;
    if (!text || !element || element.closest('template, script, style, noscript')) continue;
    if (!element.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    const style = getComputedStyle(element);
    const base = background(element);
    const colour = over(parse(style.color), base);
    const [light, dark] = [luminance(colour), luminance(base)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    if (ratio < 4.5) {
      failures.push({ text: text.slice(0, 40), ratio: ratio.toFixed(2), color: style.color });
    }
  }
  return failures;
}
"""

HORIZONTAL_OVERFLOW_JS = """
() => document.documentElement.scrollWidth - document.documentElement.clientWidth
"""


def app_frame(page: Any) -> Any:
    """The app's frame on a portal page."""
    return page.frame_locator(FRAME)


def ready(page: Any) -> Any:
    """Wait until the app's scripts have started in its frame, and return the frame."""
    from playwright.sync_api import expect

    app = app_frame(page)
    expect(app.locator("body")).to_have_attribute("data-state", "ready")
    return app


def open_app(page: Any, portal: Portal, user: int = 1, lang: str | None = None) -> Any:
    """Open the app's left-menu page as ``user`` and wait until it is ready."""
    page.goto(portal.page("/marketplace/app/", user=user, lang=lang))
    return ready(page)


def open_tab(
    page: Any, portal: Portal, card_path: str, user: int = 1, lang: str | None = None
) -> Any:
    """Open a CRM card and its app tab as ``user``."""

    page.goto(portal.page(card_path, user=user, lang=lang))
    page.get_by_test_id("app-tab").first.click()
    return ready(page)


def frame_of(page: Any) -> Any:
    """The app frame as a Frame (for evaluating scripts in it)."""
    handle = page.locator(FRAME).element_handle()
    frame = handle.content_frame()
    assert frame is not None
    return frame


def pick_with_keyboard(page: Any, app: Any, combobox: Any, typed: str, wanted: str) -> None:
    """Type into a focused combobox, walk the list with ArrowDown to ``wanted``, press Enter.

    Only keys reach the page; the option is found by its accessible name.
    """
    from playwright.sync_api import expect

    expect(combobox).to_be_focused()
    page.keyboard.type(typed)
    pattern = re.compile(re.escape(wanted))
    listbox = app.locator(f'[id="{combobox.get_attribute("aria-controls")}"]')
    expect(listbox.get_by_role("option", name=pattern).first).to_be_visible()
    expect(listbox).to_have_attribute("aria-busy", "false")
    walk_to_option(page, app, combobox, pattern, wanted)
    page.keyboard.press("Enter")
    expect(combobox).to_have_attribute("aria-expanded", "false")


def walk_to_option(
    page: Any, app: Any, combobox: Any, pattern: re.Pattern[str], wanted: str
) -> None:
    """Press ArrowDown until the active option's text matches ``pattern`` (60 presses at most)."""
    for _ in range(60):
        page.keyboard.press("ArrowDown")
        active = combobox.get_attribute("aria-activedescendant")
        if active and pattern.search(app.locator(f'[id="{active}"]').inner_text()):
            return
    raise AssertionError(f"no option named {wanted!r} was reached with ArrowDown")


def contrast_failures(page: Any) -> list[dict[str, Any]]:
    """Texts in the app frame below 4.5:1 against their background."""
    return list(frame_of(page).evaluate(CONTRAST_FAILURES_JS))


def horizontal_overflow(page: Any) -> int:
    """How many pixels the app's page is wider than its frame."""
    return int(frame_of(page).evaluate(HORIZONTAL_OVERFLOW_JS))
