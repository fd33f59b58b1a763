"""The bulk screens' states, played by a stand-in for the jobs API (``fake_jobs.py``).

A real worker rarely pauses, fails an order or is refused on cue; here the frame's calls
to ``/api/jobs...`` are answered in the documented shapes, so each state can be put on
screen and read the way a person (and a screen reader) meets it. The polling pace is
checked with Playwright's fake clock: the test moves the page's time, never sleeps.
Everything else (the page, the pickers, ``/api/me``) is the real app beside the sandbox.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.browser import needs_chromium
from tests.e2e.fake_jobs import FakeJobsApi
from tests.e2e.harness import Portal
from tests.e2e.pages import contrast_failures, horizontal_overflow, open_app, open_tab

pytestmark = [pytest.mark.e2e, needs_chromium]

DEAL_PATH = "/crm/deal/details/1/"
AURORA_DEAL = "Espresso machines for Aurora Bakery"
OWNER = {"ownerTypeId": 2, "ownerId": 1, "title": AURORA_DEAL, "path": DEAL_PATH}
OTHER = {"ownerTypeId": 31, "ownerId": 4, "title": "<img src=x onerror=alert(1)>"}
PAUSED = "Bitrix24 no longer accepts your sign-in: reopen the app to continue."
ORDERS = [(order_id, str(1000 + order_id)) for order_id in range(1, 121)]


def orders(count: int) -> list[tuple[int, str]]:
    return ORDERS[:count]


def open_bulk(app: Any) -> None:
    """Open the "Bind several orders" form."""
    from playwright.sync_api import expect

    toggle = app.locator("#bulk-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")


def start_by_filter(app: Any, button: str) -> None:
    """Check the (empty) filter and confirm with the button named ``button``."""
    from playwright.sync_api import expect

    app.locator("#bulk-preview").click()
    expect(app.get_by_test_id("job-preview")).to_be_visible()
    app.get_by_role("button", name=button).click()


def count_in(app: Any, label: str) -> Any:
    """The number under a label in the job's counts."""
    term = app.get_by_test_id("job-counts").get_by_text(label, exact=True)
    return term.locator("xpath=following-sibling::dd")


def test_the_job_reads_in_russian_with_its_plurals(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    fake = FakeJobsApi(
        OWNER, orders(21), step=21, replaced={1: OTHER, 2: OTHER}, already={3, 4, 5, 6, 7}
    )
    fake.install(page)
    app = open_tab(page, portal, DEAL_PATH, lang="ru")
    open_bulk(app)
    app.get_by_role("button", name="Проверить заказы").click()

    preview = app.get_by_test_id("job-preview")
    expect(preview).to_contain_text("Подходит 21 заказ.")
    expect(preview).to_contain_text("2 заказа уже привязаны к другим сделкам или счетам")
    expect(preview).to_contain_text("5 заказов уже привязаны сюда и не изменятся.")
    expect(preview).to_contain_text(f"Куда: сделка «{AURORA_DEAL}».")
    app.get_by_role("button", name="Привязать 21 заказ").click()

    progress = app.get_by_test_id("job-progress")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(progress).to_have_attribute("aria-valuetext", re.compile(r"21 из 21 заказа"))
    job = app.locator("#job")
    expect(job.get_by_role("heading", level=3)).to_have_text("Задание №1: привязка заказов")
    expect(job).to_contain_text("Готово")
    expect(count_in(app, "Заменено")).to_have_text("2")
    row = app.get_by_test_id("job-results").get_by_role("listitem").first
    expect(row).to_contain_text("Заказ 1001")
    expect(row).to_contain_text(f"Был: счёт «{OTHER['title']}»")
    listed = app.get_by_test_id("jobs-list").get_by_role("listitem").first
    expect(listed).to_contain_text("21 заказ: привязано 14, уже были привязаны 5, заменено 2")
    assert contrast_failures(page) == []


def test_a_paused_job_says_why_is_asked_less_often_and_is_cancelled(
    portal: Portal, page: Any
) -> None:
    from playwright.sync_api import expect

    fake = FakeJobsApi(OWNER, orders(120), step=30, pause_at=60, paused_reason=PAUSED)
    fake.install(page)
    page.clock.install(time=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    app = open_tab(page, portal, DEAL_PATH)
    open_bulk(app)
    # From here on the page's time moves only when the test moves it.
    page.clock.pause_at(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    start_by_filter(app, "Bind 120 orders")

    def polls_after(ms: int, expected: int) -> None:
        """Move the page's clock on and check how many times it asked for the job."""
        page.clock.run_for(ms)
        # Real time only lets the requests through (the fake answers while Playwright waits).
        for _ in range(40):
            if fake.polls.get(1, 0) >= expected:
                break
            page.wait_for_timeout(25)
        page.wait_for_timeout(250)  # the answer is taken in, and no other request follows
        assert fake.polls.get(1, 0) == expected

    # The job is shown (its first poll is due at once), then about once a second.
    expect(app.locator("#job")).to_be_visible()
    polls_after(1, 1)
    polls_after(990, 1)
    polls_after(10, 2)
    expect(count_in(app, "Bound")).to_have_text("30")
    polls_after(1000, 3)
    paused = app.get_by_test_id("job-paused")
    expect(paused).to_have_text(PAUSED)
    expect(app.locator("#job")).to_contain_text("Paused")
    expect(app.get_by_test_id("job-progress")).to_have_attribute("aria-valuenow", "50")

    # Paused: it asks after 2 s, then 4 s (nothing moves until the app is reopened).
    polls_after(1990, 3)
    polls_after(10, 4)
    polls_after(3990, 4)
    polls_after(10, 5)

    # Cancel stops it; nothing is asked any more.
    app.get_by_role("button", name="Cancel the job").click()
    expect(app.locator("#job")).to_contain_text("Cancelled")
    expect(app.locator("#job")).to_contain_text("Stopped between two batches")
    expect(app.get_by_role("button", name="Cancel the job")).to_be_hidden()
    expect(paused).to_be_hidden()
    assert ("POST", "1/cancel", {}) in fake.requests
    polls_after(60_000, 5)
    listed = app.get_by_test_id("jobs-list").get_by_role("listitem").first
    expect(listed).to_contain_text("Cancelled")
    expect(listed).to_contain_text("120 orders: bound 60")


def test_failed_orders_give_their_reason_and_are_retried(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    reason = "The order was not found on the portal."
    fake = FakeJobsApi(OWNER, orders(40), step=40, failing={7: reason, 9: reason})
    fake.install(page)
    app = open_tab(page, portal, DEAL_PATH)
    open_bulk(app)
    start_by_filter(app, "Bind 40 orders")

    job = app.locator("#job")
    expect(job).to_contain_text("Done with failures")
    expect(count_in(app, "Failed")).to_have_text("2")
    failed = app.get_by_test_id("job-results").get_by_role("listitem").filter(has_text="Order 1007")
    expect(failed).to_contain_text("Failed")
    expect(failed).to_contain_text(reason)
    retry = app.get_by_role("button", name="Retry failed")
    retry.click()
    expect(job.get_by_text("Done", exact=True)).to_be_visible()
    expect(count_in(app, "Failed")).to_have_text("0")
    expect(count_in(app, "Bound")).to_have_text("40")
    expect(retry).to_be_hidden()
    expect(failed).to_contain_text("Bound")
    assert [r for r in fake.requests if r[0] == "POST" and r[1] == "1/retry-failed"]


def test_reopening_the_app_follows_the_running_job(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    fake = FakeJobsApi(OWNER, orders(90), step=30)
    fake.add_job(state="done")
    running = fake.add_job(state="running", started_at="2026-01-01T10:00:00+00:00")
    fake.install(page)
    app = open_app(page, portal)

    job = app.locator("#job")
    expect(job.get_by_role("heading", level=3)).to_have_text(f"Job #{running.id}: binding orders")
    progress = app.get_by_test_id("job-progress")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(job).to_contain_text("90 of 90 orders")
    rows = app.get_by_test_id("jobs-list").get_by_role("listitem")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Done")
    # The older job opens on request, with its results.
    rows.nth(1).get_by_role("button", name="Show job #1").click()
    expect(job).to_be_focused()
    expect(job.get_by_role("heading", level=3)).to_have_text("Job #1: binding orders")
    expect(app.get_by_test_id("job-results").get_by_role("listitem")).to_have_count(50)
    app.get_by_role("button", name="Load more").click()
    expect(app.get_by_test_id("job-results").get_by_role("listitem")).to_have_count(90)


def test_a_store_manager_sees_the_jobs_without_the_controls(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    fake = FakeJobsApi(OWNER, orders(12), failing={3: "Access denied."})
    fake.add_job(state="done")
    fake.install(page)
    app = open_tab(page, portal, DEAL_PATH, user=2)

    expect(app.get_by_test_id("bulk-binder")).to_have_count(0)
    row = app.get_by_test_id("jobs-list").get_by_role("listitem").first
    expect(row).to_contain_text("Done with failures")
    expect(row.get_by_role("button")).to_have_count(1)
    row.get_by_role("button", name="Show job #1").click()
    expect(app.get_by_test_id("job-progress")).to_have_attribute("aria-valuenow", "100")
    expect(app.get_by_test_id("job-results")).to_contain_text("Access denied.")
    expect(app.locator("#job").get_by_role("button")).to_have_count(0)
    assert contrast_failures(page) == []


def test_a_refusal_and_too_many_orders_are_explained(portal: Portal, page: Any) -> None:
    from playwright.sync_api import expect

    too_many = "More than 10,000 orders match: narrow the filter down."
    fake = FakeJobsApi(OWNER, orders(5))
    fake.install(page)
    answers = iter(
        [
            (400, {"error": {"code": "too_many_orders", "message": too_many}}),
            (403, {"error": {"code": "permission_denied", "message": "Not allowed."}}),
        ]
    )

    def refuse(route: Any) -> None:
        status, body = next(answers)
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    page.route(re.compile(r"/api/jobs/preview$"), refuse)
    app = open_tab(page, portal, DEAL_PATH)
    open_bulk(app)

    # The dates are checked before anything is asked.
    app.get_by_label("Created from").fill("2025-02-01")
    app.get_by_label("Created to").fill("2025-01-01")
    check = app.get_by_role("button", name="Check the orders")
    check.click()
    error = app.get_by_test_id("bulk-error")
    expect(error).to_contain_text("date is after")
    expect(app.get_by_label("Created from")).to_be_focused()
    app.get_by_label("Created to").fill("")

    check.click()
    expect(error).to_have_text(too_many)
    expect(app.get_by_test_id("job-preview")).to_be_hidden()
    check.click()
    denied = app.get_by_test_id("permission-denied").filter(visible=True)
    expect(denied).to_have_attribute("data-kind", "read_only")
    expect(check).to_be_disabled()
    assert not [r for r in fake.requests if r[1] == "bind"]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_the_bulk_screens_fit_a_phone(portal: Portal, browser: Any, lang: str) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        fake = FakeJobsApi(OWNER, orders(60), step=30, replaced={2: OTHER}, failing={4: "No."})
        fake.add_job(state="done")
        fake.install(page)
        app = open_tab(page, portal, DEAL_PATH, lang=lang)
        open_bulk(app)
        assert horizontal_overflow(page) == 0
        app.locator("#bulk-preview").click()
        expect(app.get_by_test_id("job-preview")).to_be_visible()
        assert horizontal_overflow(page) == 0
        app.locator("#bulk-confirm").click()
        expect(app.get_by_test_id("job-progress")).to_have_attribute("aria-valuenow", "100")
        expect(app.get_by_test_id("job-results").get_by_role("listitem")).to_have_count(50)
        assert horizontal_overflow(page) == 0
        assert contrast_failures(page) == []
    finally:
        context.close()
