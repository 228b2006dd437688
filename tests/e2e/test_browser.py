"""In a real browser: a person reports content and follows the case; a moderator reviews and takes it down.

Playwright's sync API drives Debian's Chromium (/usr/bin/chromium) against pytest-django's live server.
Celery runs eagerly in the tests, so the pipeline finishes inside the request that submits the report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path(os.environ.get("TAKEDOWN_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = Path("/tmp/case-page.png")
CASE_NUMBER = re.compile(r"^TD-[A-Z0-9]{4}-[A-Z0-9]{4}$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module.

    Playwright's sync API keeps an asyncio loop current in this thread, and Django then refuses ORM calls
    here (SynchronousOnlyOperation) — fixtures and teardown included. DJANGO_ALLOW_ASYNC_UNSAFE is the
    accepted workaround for Playwright with pytest-django; the ORM is still used from one thread at a time.
    """
    if not CHROMIUM.exists():
        message = f"Chromium not installed at {CHROMIUM} (apt-get install chromium)"
        if settings.TAKEDOWN_REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                  headless=True)
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_person_reports_a_demo_item_with_the_keyboard_and_gets_a_case_number_and_pin(
        page: Any, demo: Any) -> None:
    from playwright.sync_api import expect

    page.goto("/report/")
    # Every control is found by its visible label: this fails if a label is not tied to its field.
    typed = {
        "Your name": "Alex Example",
        "Your email address": "alex@example.org",
        "Where is the content? (optional)": "demo://content/3",  # optional: a file may be attached instead
        "Why should it be removed?": "An AI-made intimate image of me, posted without my consent.",
        "Signature: type your full name": "Alex Example",
    }
    for label, text in typed.items():
        page.get_by_label(label, exact=True).focus()
        page.keyboard.type(text)
    for label in ("I am the person depicted", "I believe in good faith", "The person shown is 18 or older."):
        control = page.get_by_label(label)
        control.focus()
        page.keyboard.press("Space")
        expect(control).to_be_checked()
    for label, text in typed.items():
        expect(page.get_by_label(label, exact=True)).to_have_value(text)

    # From the last field, Tab reaches the submit button and Enter sends the report.
    page.get_by_label("Signature: type your full name", exact=True).focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send report")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="We have your report")).to_be_visible()
    case_number = page.locator("#case-number").inner_text().strip()
    pin = page.locator("#pin").inner_text().strip()
    assert CASE_NUMBER.match(case_number), case_number
    assert pin and page.locator("#pin").is_visible()

    page.get_by_role("link", name="Check the case").click()
    expect(page).to_have_url(re.compile(r"/status/$"))
    page.get_by_label("Case number").fill(case_number)
    page.get_by_label("PIN").fill(pin)
    page.get_by_label("PIN").press("Enter")
    expect(page.get_by_role("heading", name=re.compile(re.escape(case_number)))).to_be_visible()
    expect(page.locator("#case-status")).to_have_text("In review")
    expect(page.locator("td.hash")).to_have_text(["demo://content/3"])
    assert pin not in page.content()


def test_an_incomplete_report_shows_an_error_summary_that_links_to_the_fields(page: Any) -> None:
    from playwright.sync_api import expect

    page.goto("/report/")
    page.get_by_label("Your name", exact=True).fill("Alex Example")
    page.get_by_label("Your email address", exact=True).fill("not-an-email")
    page.get_by_label("I am the person depicted").check()
    page.get_by_label("Where is the content? (optional)", exact=True).fill("demo://content/3")
    page.get_by_label("Why should it be removed?", exact=True).fill("An intimate image of me, without consent.")
    page.get_by_label("The person shown is 18 or older.").check()
    page.get_by_label("Signature: type your full name", exact=True).fill("Alex Example")
    expect(page.get_by_label("I believe in good faith")).not_to_be_checked()
    page.get_by_role("button", name="Send report").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_have_attribute("role", "alert")
    links = summary.get_by_role("link")
    assert links.count() >= 1
    email_link = summary.get_by_role("link", name=re.compile("Your email address"))
    expect(email_link).to_have_attribute("href", "#id_reporter_email")
    # What the person typed survives the round trip, so they fix only what is wrong.
    expect(page.get_by_label("Your name", exact=True)).to_have_value("Alex Example")

    email_link.click()
    expect(page).to_have_url(re.compile(r"#id_reporter_email$"))
    assert page.evaluate("document.querySelector(':target') && document.querySelector(':target').id") \
        == "id_reporter_email"
    expect(page.get_by_label("Your email address", exact=True)).to_be_in_viewport()


def test_a_moderator_sees_media_blurred_until_revealed_then_takes_it_down(
        page: Any, demo: Any, moderator: User) -> None:
    from playwright.sync_api import expect

    notice = Notice(**{**notice_payload(), "locations": ["demo://content/12"]})  # type: ignore[arg-type]
    case_number = report_submit(notice=notice).report.case_number

    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(moderator.username)
    page.get_by_label("Password").fill("pw-" + moderator.username)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    page.get_by_role("link", name=case_number).click()
    expect(page.get_by_role("heading", name=f"Case {case_number}")).to_be_visible()

    wrap = page.locator(".media-wrap")
    expect(wrap).to_have_count(1)
    expect(wrap).to_have_class(re.compile(r"\bconcealed\b"))
    page.wait_for_function(
        "() => { const i = document.querySelector('.media-wrap img'); return i.complete && i.naturalWidth > 0; }")
    img_filter = ".media-wrap img"
    assert "blur" in page.eval_on_selector(img_filter, "img => getComputedStyle(img).filter")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    reveal = wrap.get_by_role("button", name="Reveal")
    expect(reveal).to_have_attribute("aria-pressed", "false")
    reveal.click()
    expect(wrap).not_to_have_class(re.compile(r"\bconcealed\b"))
    hide = wrap.get_by_role("button", name="Hide")
    expect(hide).to_have_attribute("aria-pressed", "true")
    page.wait_for_function(  # the filter has a short transition; wait for its end state
        "() => getComputedStyle(document.querySelector('.media-wrap img')).filter === 'none'")
    assert page.eval_on_selector(img_filter, "img => getComputedStyle(img).filter") == "none"

    claim = page.get_by_role("button", name="Claim this case (c)")
    if claim.count():
        claim.click()
    expect(page.get_by_text(f"by {moderator.username}")).to_be_visible()
    page.get_by_label("Decision reason").select_option("ncii")
    page.get_by_role("button", name="Take down (t)").click()
    expect(page.locator("#decide")).to_have_count(0)

    page.goto("/demo/content/12")
    expect(page.locator("#removed")).to_be_visible()
    expect(page.locator("#removed")).to_contain_text("removed")
    expect(page.locator("img")).to_have_count(0)
