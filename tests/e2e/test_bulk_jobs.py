"""Bulk binding in the browser, end to end: the deal tab, a real job worker, the sandbox.

The app runs a job worker in a thread of the process that serves it; the sandbox holds
the test seed's 120 orders (``tests/conftest.py``: created between July 2023 and June 2025,
about a quarter bound to deals and a few to smart invoices, orders 2 and 3 to deal 1), so a
date filter over those two years selects all 120, as the issue's scenario has it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import needs_chromium
from tests.e2e.harness import Portal, ServedApp, job_worker
from tests.e2e.pages import (
    contrast_failures,
    frame_of,
    horizontal_overflow,
    open_app,
    open_tab,
    pick_with_keyboard,
    walk_to_option,
)

pytestmark = [pytest.mark.e2e, needs_chromium]

DEAL, INVOICE = 2, 31
DEAL_PATH = "/crm/deal/details/1/"
AURORA_DEAL = "Espresso machines for Aurora Bakery"
ORDERS = 120
JOB_WAIT_MS = 60_000

# Every aria-valuenow the progress bar takes, in order (read in the frame as it changes).
RECORD_PROGRESS_JS = """
() => {
  window.__progress = [];
  const bar = document.querySelector('[data-testid="job-progress"]');
  const note = () => {
    const value = bar.getAttribute('aria-valuenow');
    if (value !== null && window.__progress.at(-1) !== Number(value)) {
      window.__progress.push(Number(value));
    }
  };
  new MutationObserver(note).observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
}
"""


@pytest.fixture(scope="module", autouse=True)
def worker(served: ServedApp, portal: Portal) -> Iterator[Any]:
    """One job worker for the module, polling every 0.2 s."""
    with job_worker(served) as running:
        yield running


def test_admin_binds_orders_by_date_in_the_deal_tab_and_undoes_the_job(
    portal: Portal, page: Any
) -> None:
    from playwright.sync_api import expect

    before = portal.all_owners()
    on_deal = sorted(order for order, owner in before.items() if owner == (DEAL, 1))
    elsewhere = sorted(order for order, owner in before.items() if owner != (DEAL, 1))
    assert on_deal and elsewhere, "the seed binds orders to deal 1 and to other owners"
    app = open_tab(page, portal, DEAL_PATH)

    # Open "Bind several orders" and filter by the creation date.
    toggle = app.get_by_role("button", name="Bind several orders")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(app.get_by_role("radio", name="By a filter")).to_be_checked()
    app.get_by_label("Created from").fill("2023-01-01")
    app.get_by_label("Created to").fill("2025-12-31")
    app.get_by_role("button", name="Check the orders").click()

    preview = app.get_by_test_id("job-preview")
    expect(preview).to_be_focused()
    expect(preview).to_contain_text(f"{ORDERS} orders match.")
    expect(preview).to_contain_text(
        f"{len(elsewhere)} orders already have another owner: it will be replaced."
    )
    expect(preview).to_contain_text(
        f"{len(on_deal)} orders are already bound there and stay as they are."
    )
    expect(preview).to_contain_text(f"Target: deal «{AURORA_DEAL}».")
    assert contrast_failures(page) == []

    # Confirm: the job starts at once and its progress follows it to 100 %.
    progress = app.get_by_test_id("job-progress")
    frame_of(page).evaluate(RECORD_PROGRESS_JS)
    app.get_by_role("button", name=f"Bind {ORDERS} orders").click()
    expect(app.get_by_test_id("bulk-started")).to_contain_text(re.compile(r"Job #\d+ started"))
    expect(progress).to_have_attribute("role", "progressbar")
    expect(progress).to_have_attribute("aria-valuemin", "0")
    expect(progress).to_have_attribute("aria-valuemax", "100")
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=JOB_WAIT_MS)
    job = app.locator("#job")
    expect(job.get_by_text("Done", exact=True)).to_be_visible()
    expect(job).to_contain_text(f"{ORDERS} of {ORDERS} orders")
    counts = app.get_by_test_id("job-counts")
    bound_now = ORDERS - len(on_deal) - len(elsewhere)
    for label, value in (
        ("Bound", bound_now),
        ("Already bound", len(on_deal)),
        ("Replaced", len(elsewhere)),
        ("Failed", 0),
        ("Remaining", 0),
    ):
        term = counts.get_by_text(label, exact=True)
        expect(term.locator("xpath=following-sibling::dd")).to_have_text(str(value))
    seen = frame_of(page).evaluate("() => window.__progress")
    assert seen == sorted(seen) and seen[-1] == 100, seen

    # Per-order results: a replaced order names the owner it had.
    results = app.get_by_test_id("job-results")
    replaced_order = elsewhere[0]
    number = str(portal.order(replaced_order)["accountNumber"])
    row = results.get_by_role("listitem").filter(has_text=re.compile(rf"Order {number}\b"))
    expect(row).to_contain_text("Replaced")
    expect(row).to_contain_text("Was: ")
    assert portal.all_owners() == dict.fromkeys(range(1, ORDERS + 1), (DEAL, 1))
    # The tab's own list follows once the job is done.
    expect(app.get_by_test_id("bindings-list").get_by_role("listitem")).not_to_have_count(
        len(on_deal)
    )

    # Close the app and open it again: the finished job is in the jobs list.
    page.goto(portal.page("/"))
    app = open_tab(page, portal, DEAL_PATH)
    listed = app.get_by_test_id("jobs-list").get_by_role("listitem").first
    expect(listed).to_contain_text("Done")
    expect(listed).to_contain_text(f"{ORDERS} orders: bound {bound_now}")
    expect(listed).to_contain_text(f"replaced {len(elsewhere)}")

    # Undo the whole job: asked first, then every order gets its previous owner back.
    listed.get_by_role("button", name=re.compile(r"^Undo job #\d+$")).click()
    dialog = app.get_by_role("dialog", name="Undo the whole job?")
    expect(dialog).to_contain_text(f"deal «{AURORA_DEAL}»")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Undo the job").click()
    expect(app.get_by_role("heading", name=re.compile(r"undoing job #\d+"))).to_be_visible()
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=JOB_WAIT_MS)
    expect(app.locator("#job").get_by_text("Done", exact=True)).to_be_visible()
    assert portal.all_owners() == before
    newest = app.get_by_test_id("jobs-list").get_by_role("listitem")
    expect(newest.first).to_contain_text(re.compile(r"Undoes\s*job #\d+"))
    expect(newest.nth(1)).to_contain_text(re.compile(r"Undone by job #\d+"))
    expect(newest.nth(1).get_by_role("button", name=re.compile("^Undo"))).to_be_hidden()
    assert contrast_failures(page) == []
    assert horizontal_overflow(page) == 0


def toggle_with_keyboard(page: Any, app: Any, combobox: Any, typed: str, wanted: str) -> None:
    """Search a multi-select picker, walk to ``wanted`` with ArrowDown and toggle it (Enter).

    The list stays open: choosing several is the point.
    """
    from playwright.sync_api import expect

    expect(combobox).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type(typed)
    listbox = app.locator(f'[id="{combobox.get_attribute("aria-controls")}"]')
    pattern = re.compile(rf"{re.escape(wanted)}\b")
    option = listbox.get_by_role("option", name=pattern).first
    expect(option).to_be_visible()
    expect(listbox).to_have_attribute("aria-busy", "false")
    before = option.get_attribute("aria-selected")
    walk_to_option(page, app, combobox, pattern, wanted)
    page.keyboard.press("Enter")
    expect(combobox).to_have_attribute("aria-expanded", "true")
    expect(option).to_have_attribute("aria-selected", "false" if before == "true" else "true")


def test_admin_picks_orders_one_by_one_on_the_app_page(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    for order_id in (1, 5, 10):
        portal.unbind(order_id)
    portal.bind(10, INVOICE, 1)
    numbers = {order_id: str(portal.order(order_id)["accountNumber"]) for order_id in (1, 5, 10)}
    app = open_app(page, portal)
    app.get_by_role("button", name="Bind several orders").click()

    # The target, then three orders toggled on with the keyboard, then one taken off.
    bulk = app.get_by_role("region", name="Bind several orders")
    deal = bulk.get_by_role("combobox", name="Deal")
    deal.focus()
    pick_with_keyboard(page, app, deal, "Aurora Bak", AURORA_DEAL)
    bulk.get_by_role("radio", name="Pick from the list").check()
    picker = bulk.get_by_role("combobox", name="Orders to bind")
    listbox = app.locator(f'[id="{picker.get_attribute("aria-controls")}"]')
    expect(listbox).to_have_attribute("aria-multiselectable", "true")
    picker.focus()
    for order_id in (1, 5, 10):
        toggle_with_keyboard(page, app, picker, numbers[order_id], f"Order {numbers[order_id]}")
    page.keyboard.press("Escape")
    expect(picker).to_have_attribute("aria-expanded", "false")
    chosen = bulk.get_by_test_id("bulk-chosen")
    expect(bulk.get_by_text("3 orders chosen", exact=True)).to_be_visible()
    expect(chosen.get_by_role("listitem")).to_have_count(3)
    chosen.get_by_role("button", name=f"Remove order {numbers[5]}").click()
    expect(chosen.get_by_role("button", name=f"Remove order {numbers[10]}")).to_be_focused()
    expect(bulk.get_by_text("2 orders chosen", exact=True)).to_be_visible()

    bulk.get_by_role("button", name="Check the orders").click()
    preview = app.get_by_test_id("job-preview")
    expect(preview).to_contain_text("2 orders match.")
    expect(preview).to_contain_text("1 order already has another owner: it will be replaced.")
    expect(preview).to_contain_text(f"Target: deal «{AURORA_DEAL}».")
    bulk.get_by_role("button", name="Bind 2 orders").click()

    progress = app.get_by_test_id("job-progress")
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=JOB_WAIT_MS)
    expect(app.locator("#job").get_by_text("Done", exact=True)).to_be_visible()
    for label, value in (("Bound", 1), ("Replaced", 1), ("Already bound", 0), ("Failed", 0)):
        term = app.get_by_test_id("job-counts").get_by_text(label, exact=True)
        expect(term.locator("xpath=following-sibling::dd")).to_have_text(str(value))
    results = app.get_by_test_id("job-results").get_by_role("listitem")
    expect(results).to_have_count(2)
    # A picked order is named by its number, or by its id while the job has not read it.
    replaced = results.filter(has_text=re.compile(rf"Order ({numbers[10]}|ID 10)$", re.M))
    expect(replaced).to_contain_text("Replaced")
    expect(replaced).to_contain_text("Was: invoice «")
    assert portal.owners_of(1) == [(DEAL, 1)]
    assert portal.owners_of(10) == [(DEAL, 1)]
    assert portal.owners_of(5) == []
    # The job's bindings are in the history too (reloaded when the job is done).
    entries = app.get_by_test_id("history").get_by_role("listitem")
    for newest in (entries.nth(0), entries.nth(1)):
        expect(newest).to_contain_text(AURORA_DEAL)
    shown = [entries.nth(index).inner_text() for index in (0, 1)]
    # One bound, one replaced the invoice (named by its title, or its id when unknown).
    assert sorted(text.split("\n", 1)[0] for text in shown) == ["Bound", "Replaced"]
    assert any(text.startswith("Replaced") and "Invoice" in text for text in shown)
