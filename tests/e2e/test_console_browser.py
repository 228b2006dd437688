"""The review console in a real browser: log in, take the next case, reveal media, decide, see the audit trail;
four-eyes with two seniors; hold-to-reveal. Screenshots are kept under var/test-artifacts/ (CI keeps them).

Playwright's sync API drives Debian's Chromium (/usr/bin/chromium), as in test_browser.py.
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

from moderation.models import AuditEvent, ChildSafetyReferral, Decision, MediaExposure, ReviewTask
from moderation.roles import SENIOR
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload
from tests.moderation.console_helpers import user_with_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path(os.environ.get("TAKEDOWN_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (see test_browser.py for DJANGO_ALLOW_ASYNC_UNSAFE)."""
    if not CHROMIUM.exists():
        message = f"Chromium not installed at {CHROMIUM} (apt-get install chromium)"
        if settings.TAKEDOWN_REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.fixture
def new_page(browser: Any, live_server: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


def shot(page: Any, name: str) -> None:
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def log_in(page: Any, user: User) -> None:
    from playwright.sync_api import expect

    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("pw-" + user.username)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()


def submit(location: str) -> str:
    notice = Notice(**{**notice_payload(), "locations": [location]})  # type: ignore[arg-type]
    return report_submit(notice=notice).report.case_number


def test_a_moderator_takes_the_next_case_reveals_it_decides_and_sees_the_audit_trail(
        new_page: Any, demo: Any, moderator: User) -> None:
    from playwright.sync_api import expect

    low = submit("demo://content/20")
    top = submit("demo://content/3")  # in the demo bank and AI-made: the highest priority
    page = new_page()
    log_in(page, moderator)
    expect(page.locator("#queue tbody tr")).to_have_count(2)
    expect(page.locator("#queue tbody tr").first).to_contain_text(top)
    expect(page.locator("#queue tbody tr").nth(1)).to_contain_text(low)
    expect(page.locator("#queue tbody tr").first.locator("td.reasons")).to_contain_text("match")
    shot(page, "1-queue")

    page.get_by_role("button", name="Next case (n)").click()
    expect(page.get_by_role("heading", name=f"Case {top}")).to_be_visible()
    expect(page.get_by_text(f"by {moderator.username}")).to_be_visible()  # claimed for me
    expect(page.locator("#deadline")).to_contain_text(re.compile(r"\d+ h \d\d min to the deadline"))
    wrap = page.locator(".media-wrap")
    expect(wrap).to_have_class(re.compile(r"\bconcealed\b"))
    page.wait_for_function(
        "() => { const i = document.querySelector('.media-wrap img'); return i.complete && i.naturalWidth > 0; }")
    assert "blur(24px)" in page.eval_on_selector(".media-wrap img", "img => getComputedStyle(img).filter")
    shot(page, "2-case-concealed")

    wrap.get_by_role("button", name="Reveal").click()
    expect(wrap).not_to_have_class(re.compile(r"\bconcealed\b"))
    expect(page.locator("#exposure-count")).to_have_text("1")
    assert MediaExposure.objects.filter(user=moderator).count() == 1
    page.keyboard.press("r")  # the shortcut hides it again
    expect(wrap).to_have_class(re.compile(r"\bconcealed\b"))
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_have_attribute("open", "")

    page.get_by_label("Decision reason").select_option("synthetic_ncii")
    page.locator("#decision-reporter-template").select_option("reporter-removed-synthetic")
    expect(page.locator("#decision-note")).to_have_value(re.compile("digital forgery"))
    shot(page, "3-case-deciding")
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("t")  # focuses the take-down button; Enter submits
    expect(page.get_by_role("button", name="Take down (t)")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#decide")).to_have_count(0)
    expect(page.locator("ul.messages")).to_contain_text("Decided: Take down.")

    history = page.locator("#history tr.audit-event")
    decision_row = history.filter(has_text="decision.made")
    expect(decision_row).to_have_count(1)
    expect(decision_row).to_contain_text("moderator")
    expect(decision_row).to_contain_text("synthetic_ncii")
    expect(history.filter(has_text="media.revealed")).to_have_count(1)
    shot(page, "4-case-decided-audit-trail")
    decision = Decision.objects.get()
    assert decision.decided_by == moderator and decision.reporter_template == "reporter-removed-synthetic"
    event = AuditEvent.objects.get(action="decision.made")
    assert event.role == "moderator" and event.source_ip == "127.0.0.1"


def test_a_possible_minor_needs_a_second_senior_who_confirms_in_the_browser(
        new_page: Any, demo: Any, moderator: User) -> None:
    from playwright.sync_api import expect

    case_number = submit("demo://content/12")
    lead = user_with_role("lena-lead", SENIOR)
    page = new_page()
    log_in(page, moderator)
    page.get_by_role("link", name=case_number).click()
    page.get_by_role("button", name="Claim this case (c)").click()
    page.get_by_text("Other decisions").click()
    page.get_by_label("Why the person depicted may be a minor").fill("Looks under 18.")
    page.get_by_role("button", name="Possible minor: child-safety procedure").click()
    expect(page.locator("#proposal")).to_contain_text("A different senior moderator must confirm")
    expect(page.locator(".withheld")).to_have_count(1)
    expect(page.locator(".media-wrap")).to_have_count(0)
    shot(page, "5-four-eyes-proposed")

    second = new_page()
    log_in(second, lead)
    second.get_by_role("link", name=case_number).click()
    expect(second.locator("#proposal")).to_contain_text("cannot be undone")
    second.get_by_role("button", name="Confirm the decision").click()
    expect(second.locator("ul.messages")).to_contain_text("Confirmed")
    shot(second, "6-four-eyes-confirmed")
    assert ChildSafetyReferral.objects.get().state == ChildSafetyReferral.State.REFERRED
    assert ReviewTask.objects.get().state == ReviewTask.State.DECIDED

    second.get_by_role("link", name="Audit log").click()
    second.get_by_label("Action").fill("decision.")
    second.get_by_role("button", name="Filter").click()
    rows = second.locator("#audit tr.audit-event")
    expect(rows.filter(has_text="decision.confirmed")).to_have_count(1)
    expect(rows.filter(has_text="decision.proposed")).to_have_count(1)
    shot(second, "7-audit-log")

    second.get_by_role("link", name="Dashboard").click()
    expect(second.locator("svg.chart")).to_have_count(6)
    expect(second.locator("#median strong")).to_have_text(re.compile(r"^\d+\.\d h$"))
    shot(second, "8-dashboard")


def test_hold_to_reveal_shows_media_only_while_held(new_page: Any, demo: Any, moderator: User) -> None:
    from playwright.sync_api import expect

    case_number = submit("demo://content/20")
    page = new_page()
    log_in(page, moderator)
    page.get_by_role("link", name="Display preferences").click()
    page.get_by_label("How to reveal media").select_option("hold")
    page.get_by_label("Blur strength (pixels)").fill("40")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("ul.messages")).to_contain_text("Saved")
    page.goto("/console/")
    page.get_by_role("link", name=case_number).click()
    wrap = page.locator(".media-wrap")
    assert "blur(40px)" in page.eval_on_selector(".media-wrap img", "img => getComputedStyle(img).filter")
    button = wrap.get_by_role("button", name="Hold to reveal")
    button.hover()
    page.mouse.down()
    expect(wrap).not_to_have_class(re.compile(r"\bconcealed\b"))
    page.mouse.up()
    expect(wrap).to_have_class(re.compile(r"\bconcealed\b"))
