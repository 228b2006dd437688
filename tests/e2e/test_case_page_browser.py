"""The case page in one screen, decide-and-next by keyboard, and the axe-core accessibility check.

At 1280 x 800 the media, the evidence and the decision panel's buttons are all in the viewport without
scrolling (screenshot under var/test-artifacts/); at 1024 px wide nothing overflows sideways. axe-core (bundled
in the axe-playwright-python package, injected into the page: nothing is fetched) finds no serious or critical
violation on the report form, the status page, the queue and the case page. The browser fixtures are
test_console_browser.py's.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from moderation.models import Decision, ReviewTask
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload
from tests.e2e.test_console_browser import ARTIFACTS, browser, log_in, new_page, submit  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the check fails on: axe-core's two highest impacts (WCAG failures that block or seriously hinder).
BLOCKING_IMPACTS = {"serious", "critical"}


def sized_page(browser: Any, live_server: Any, width: int, height: int) -> Any:  # noqa: F811
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    return context.new_page()


def blocking_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] for n in v["nodes"][:5])
            for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]


def in_viewport(page: Any, locator: Any, name: str) -> None:
    box = locator.bounding_box()
    viewport = page.viewport_size
    assert box is not None, f"{name} is not rendered"
    assert box["x"] >= 0 and box["y"] >= 0, f"{name} starts outside the viewport: {box}"
    assert box["x"] + box["width"] <= viewport["width"], f"{name} ends right of the viewport: {box}"
    assert box["y"] + box["height"] <= viewport["height"], f"{name} ends below the viewport: {box}"


def open_claimed_case(page: Any, moderator: User) -> str:
    from playwright.sync_api import expect

    log_in(page, moderator)
    page.get_by_role("button", name="Next case (n)").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Case TD-"))).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('.media-wrap img'); return i && i.complete && i.naturalWidth > 0; }")
    return page.url


def assert_one_screen(page: Any) -> None:
    """The media, every part of the evidence and the decision panel's controls are in the viewport, unscrolled."""
    assert page.evaluate("window.scrollY") == 0
    item = page.locator(".case-item").first
    in_viewport(page, item.locator(".media-wrap").first, "the media")
    for i in range(item.locator(".evidence").count()):
        in_viewport(page, item.locator(".evidence").nth(i), f"evidence column {i}")
    for part in ("h3:text('Synthetic-media score')", "table.signals", "tr.match", "h3:text('Hashes')", "td.hash"):
        in_viewport(page, item.locator(part).first, f"the evidence's {part}")
    if item.locator("tr.neighbour").count():
        in_viewport(page, item.locator("tr.neighbour").first, "the nearest confirmed case")
    for name in ("Take down (t)", "No violation (k)", "Take down and next (Shift+T)",
                 "No violation and next (Shift+K)"):
        in_viewport(page, page.get_by_role("button", name=name, exact=True), f"the button {name!r}")
    for control in ("Decision reason", "Message to the reporter", "Statement to the uploader", "Rationale (optional)"):
        in_viewport(page, page.get_by_label(control, exact=True), control)
    in_viewport(page, page.locator("#more > summary"), "More")


def test_the_case_page_shows_media_evidence_and_the_decision_buttons_in_one_screen_at_1280_by_800(
        browser: Any, live_server: Any, demo: Any, moderator: User) -> None:  # noqa: F811
    from playwright.sync_api import expect

    submit("demo://content/3")  # in the demo bank and AI-made: a score with signals, a match, hashes
    second = submit("demo://content/4")  # in the demo bank too
    page = sized_page(browser, live_server, 1280, 800)
    try:
        open_claimed_case(page, moderator)
        assert_one_screen(page)
        path = ARTIFACTS / "case-page-1280x800.png"
        page.screenshot(path=str(path))  # the viewport only: what the moderator sees without scrolling
        assert path.stat().st_size > 1000

        # The panel stays in view while the page scrolls to the history below.
        page.locator("#history").scroll_into_view_if_needed()
        assert page.evaluate("window.scrollY") > 0
        in_viewport(page, page.get_by_role("button", name="Take down (t)"), "the sticky take-down button")

        # The next case, with the message of the decision above it and the first case now a confirmed neighbour.
        page.get_by_label("Decision reason").select_option("synthetic_ncii")
        page.get_by_role("button", name="Take down and next (Shift+T)").click()
        expect(page.get_by_role("heading", name=f"Case {second}")).to_be_visible()
        expect(page.locator("ul.messages")).to_contain_text("Decided: Take down.")
        page.wait_for_function(
            "() => { const i = document.querySelector('.media-wrap img'); return i.complete && i.naturalWidth > 0; }")
        assert_one_screen(page)
        page.screenshot(path=str(ARTIFACTS / "case-page-1280x800-after-decide-and-next.png"))
    finally:
        page.context.close()


def test_the_case_page_works_at_1024_pixels_wide(
        browser: Any, live_server: Any, demo: Any, moderator: User) -> None:  # noqa: F811
    submit("demo://content/3")
    page = sized_page(browser, live_server, 1024, 768)
    try:
        open_claimed_case(page, moderator)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1024  # nothing overflows sideways
        card = page.locator(".case-item").first.bounding_box()
        for i in range(page.locator(".case-item .evidence table").count()):  # nor out of the evidence column
            table = page.locator(".case-item .evidence table").nth(i).bounding_box()
            assert table["x"] + table["width"] <= card["x"] + card["width"], f"table {i} overflows its card"
        in_viewport(page, page.locator(".media-wrap").first, "the media")
        in_viewport(page, page.get_by_role("button", name="Take down (t)"), "the take-down button")
        in_viewport(page, page.get_by_role("button", name="No violation (k)"), "the no-violation button")
        page.screenshot(path=str(ARTIFACTS / "case-page-1024x768.png"))
    finally:
        page.context.close()


def test_a_moderator_decides_and_takes_the_next_case_with_the_keyboard_alone(
        new_page: Any, demo: Any, moderator: User) -> None:  # noqa: F811
    from playwright.sync_api import expect

    first = submit("demo://content/3")  # the highest priority: "next" takes it first
    second = submit("demo://content/20")
    page = new_page()
    log_in(page, moderator)
    page.get_by_role("button", name="Next case (n)").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Case {first}")).to_be_visible()
    expect(page.locator("#shortcuts")).to_contain_text("claim the next case")  # the shortcuts are on the page

    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("m")  # "More" opens with the focus on it, and closes again
    expect(page.locator("#more")).to_have_attribute("open", "")
    expect(page.locator("#more > summary")).to_be_focused()
    page.keyboard.press("m")
    expect(page.locator("#more")).not_to_have_attribute("open", "")
    left_panel = False
    for _ in range(6):  # Tab leaves the sticky panel: no keyboard trap
        page.keyboard.press("Tab")
        if page.evaluate("() => !document.activeElement.closest('#decision-panel')"):
            left_panel = True
            break
    assert left_panel, "Tab never left the decision panel"

    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("d")  # the reason select
    reason = page.get_by_label("Decision reason")
    expect(reason).to_be_focused()
    reason.select_option("synthetic_ncii")  # as the arrow keys would; the key stays on the select
    page.keyboard.press("Shift+T")  # focuses "Take down and next"; Enter decides
    button = page.get_by_role("button", name="Take down and next (Shift+T)")
    expect(button).to_be_focused()
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), "the focused button shows no focus outline"
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name=f"Case {second}")).to_be_visible()  # claimed in the same request
    expect(page.locator("ul.messages")).to_contain_text("Decided: Take down.")
    expect(page.get_by_text(f"by {moderator.username}")).to_be_visible()
    decision = Decision.objects.get()
    assert decision.report.case_number == first and decision.reason == "synthetic_ncii"
    assert ReviewTask.objects.get(report__case_number=second).assignee == moderator

    # A reason of the other decision is refused on the page, with the way out.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("d")
    page.get_by_label("Decision reason").select_option("synthetic_ncii")
    page.keyboard.press("K")
    page.keyboard.press("Enter")
    expect(page.locator("#decision-mismatch")).to_contain_text("Choose a reason under “No violation”")
    assert Decision.objects.count() == 1

    page.get_by_label("Decision reason").select_option("not_intimate")
    page.keyboard.press("Shift+K")
    expect(page.get_by_role("button", name="No violation and next (Shift+K)")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()  # none left: back to the queue
    expect(page.get_by_text("There is no unclaimed case in the queue.")).to_be_visible()
    assert Decision.objects.get(report__case_number=second).outcome == Decision.Outcome.NO_VIOLATION

    # On a decided case too, "?" opens the list of shortcuts.
    page.goto(f"/console/case/{ReviewTask.objects.get(report__case_number=first).pk}")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_have_attribute("open", "")


def test_axe_finds_no_serious_or_critical_violation_on_the_report_status_queue_and_case_pages(
        new_page: Any, demo: Any, moderator: User) -> None:  # noqa: F811
    from playwright.sync_api import expect

    submitted = report_submit(notice=Notice(**{**notice_payload(), "locations": ["demo://content/3"]}))
    found: dict[str, list[str]] = {}
    page = new_page()
    page.goto("/report/")
    found["report form"] = blocking_violations(page)
    page.get_by_role("button", name="Send report").click()  # with its error summary
    expect(page.locator("#error-summary")).to_be_visible()
    found["report form with errors"] = blocking_violations(page)
    page.goto("/status/")
    found["status lookup"] = blocking_violations(page)
    page.get_by_label("Case number").fill(submitted.report.case_number)
    page.get_by_label("PIN").fill(submitted.pin)
    page.get_by_label("PIN").press("Enter")
    expect(page.locator("#case-status")).to_be_visible()
    found["status page"] = blocking_violations(page)

    console = new_page()
    log_in(console, moderator)
    found["queue"] = blocking_violations(console)
    console.get_by_role("button", name="Next case (n)").click()
    expect(console.get_by_role("heading", name=f"Case {submitted.report.case_number}")).to_be_visible()
    found["case page"] = blocking_violations(console)
    console.locator("#more > summary").click()
    found["case page with More open"] = blocking_violations(console)
    console.get_by_label("Decision reason").select_option("synthetic_ncii")
    console.get_by_role("button", name="Take down (t)").click()
    expect(console.locator("ul.messages")).to_contain_text("Decided: Take down.")
    found["decided case page"] = blocking_violations(console)
    console.screenshot(path=str(ARTIFACTS / "case-page-decided.png"), full_page=True)
    assert not any(found.values()), found
