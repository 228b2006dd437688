"""The queue in a real browser: ticking cases and deciding them at once (keyboard and mouse, with axe-core on the
page with rows and ticks), escalating a case to a named senior who alone draws it, and a muted reporter whose
reports are still acknowledged but go to the low-priority queue until a senior unmutes them.
The browser fixtures are test_console_browser.py's; the cases are made directly in the database or filed as
a person would (generated demo images only)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from moderation.models import AuditEvent, Decision, Report, ReviewTask
from moderation.roles import SENIOR
from tests.conftest import notice_payload
from tests.e2e.test_case_page_browser import blocking_violations
from tests.e2e.test_console_browser import browser, log_in, new_page, shot, submit  # noqa: F401
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MUTED_EMAIL = "noisy@example.org"


def row(page: Any, case_number: str) -> Any:
    return page.locator("#queue tbody tr", has=page.get_by_role("link", name=case_number, exact=True))


def test_a_moderator_ticks_two_of_three_cases_and_decides_them_no_violation_at_once(
        new_page: Any, moderator: User) -> None:  # noqa: F811
    from playwright.sync_api import expect

    first, second, third = (make_case(priority=p) for p in (30, 20, 10))
    numbers = [t.report.case_number for t in (first, second, third)]
    page = new_page()
    log_in(page, moderator)
    expect(page.locator("#queue tbody tr")).to_have_count(3)
    found = {"queue with rows": blocking_violations(page)}

    # Every case on the page, then the third unticked with the keyboard.
    page.get_by_label("Tick every case on this page that you may decide").check()
    expect(page.locator("#bulk-count")).to_have_text("3 cases ticked.")
    third_box = page.get_by_label(f"Tick case {numbers[2]}")
    third_box.focus()
    page.keyboard.press("Space")
    expect(third_box).not_to_be_checked()
    expect(page.locator("#bulk-count")).to_have_text("2 cases ticked.")
    found["queue with ticked rows"] = blocking_violations(page)

    # A reason of the other decision is refused on the page: nothing is sent.
    page.get_by_label("Reason for the ticked cases").select_option("ncii")
    page.get_by_role("button", name="No violation for the ticked cases").click()
    expect(page.locator("#bulk-problem")).to_contain_text("Choose a reason under “No violation”")
    expect(page.get_by_label("Reason for the ticked cases")).to_be_focused()
    assert not Decision.objects.exists()

    page.get_by_label("Reason for the ticked cases").select_option("not_intimate")
    page.get_by_label("Rationale (optional; needed for “Other”)").fill("Landscapes, not intimate images.")
    page.get_by_role("button", name="No violation for the ticked cases").focus()
    page.keyboard.press("Enter")
    expect(page.locator("ul.messages")).to_contain_text(f"Decided 2 cases: {numbers[0]}, {numbers[1]}.")
    expect(page.locator("#queue tbody tr")).to_have_count(1)
    expect(row(page, numbers[2])).to_have_count(1)
    shot(page, "queue-bulk-decided")
    found["queue after a bulk decision"] = blocking_violations(page)
    assert not any(found.values()), found

    decided = Decision.objects.filter(outcome=Decision.Outcome.NO_VIOLATION, reason="not_intimate",
                                      decided_by=moderator)
    assert sorted(decided.values_list("task_id", flat=True)) == [first.pk, second.pk]
    assert set(decided.values_list("note", flat=True)) == {"Landscapes, not intimate images."}
    assert ReviewTask.objects.get(pk=third.pk).state == ReviewTask.State.OPEN


def test_a_case_escalated_to_a_named_senior_is_drawn_by_that_senior_only(
        new_page: Any, demo: Any, moderator: User, other_moderator: User, senior: User) -> None:  # noqa: F811
    from playwright.sync_api import expect

    other_senior = user_with_role("sue-senior", SENIOR)
    case_number = submit("demo://content/20")
    mod = new_page()
    log_in(mod, moderator)
    mod.get_by_role("button", name="Next case (n)").click()
    expect(mod.get_by_role("heading", name=f"Case {case_number}")).to_be_visible()
    mod.locator("#more > summary").click()
    mod.locator("#queue-controls summary", has_text="Escalate to a named senior").click()
    mod.get_by_label("Escalate to", exact=True).select_option(label=senior.username)
    mod.get_by_label("Why escalate to them").fill("The platform says the uploader is a repeat offender.")
    mod.get_by_role("button", name="Escalate to them").click()
    expect(mod.locator("ul.messages")).to_contain_text(f"Escalated to {senior.username}.")
    expect(mod.locator("#escalated-to")).to_have_text(f"escalated to {senior.username}")

    for someone in (other_moderator, other_senior):  # neither draws it
        page = new_page()
        log_in(page, someone)
        page.get_by_role("button", name="Next case (n)").click()
        expect(page.get_by_text("There is no unclaimed case in the queue.")).to_be_visible()
    task = ReviewTask.objects.get(report__case_number=case_number)
    assert task.state == ReviewTask.State.ESCALATED and task.assignee is None

    lead = new_page()
    log_in(lead, senior)
    expect(row(lead, case_number).locator("td.queue-name")).to_contain_text(f"escalated to {senior.username}")
    lead.get_by_role("button", name="Next case (n)").click()
    expect(lead.get_by_role("heading", name=f"Case {case_number}")).to_be_visible()
    assert ReviewTask.objects.get(pk=task.pk).assignee == senior


def file_on_the_form(page: Any, location: str) -> str:
    """A report filed on the public form from the muted address; returns the case number it acknowledges."""
    from playwright.sync_api import expect

    page.goto("/report/")
    for label, text in {"Your name": "Noisy Example", "Your email address": MUTED_EMAIL,
                        "Where is the content? (optional)": location,
                        "Why should it be removed?": "An intimate image of me, posted without my consent.",
                        "Signature: type your full name": "Noisy Example"}.items():
        page.get_by_label(label, exact=True).fill(text)
    for label in ("I am the person depicted", "I believe in good faith", "The person shown is 18 or older."):
        page.get_by_label(label).check()
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("heading", name="We have your report")).to_be_visible()
    return str(page.locator("#case-number").inner_text().strip())


def test_a_muted_reporters_new_report_is_acknowledged_and_goes_to_the_low_priority_queue_until_unmuted(
        new_page: Any, demo: Any, senior: User) -> None:  # noqa: F811
    from playwright.sync_api import expect

    first = Report.objects.get(case_number=submit_from(MUTED_EMAIL, "demo://content/20"))
    lead = new_page()
    log_in(lead, senior)
    lead.goto(f"/console/case/{first.tasks.get().pk}")
    lead.locator("#more > summary").click()
    lead.locator("#queue-controls summary", has_text="Mute this case's reporter").click()
    lead.get_by_label("Why (abusive or bad-faith reports)").fill("Forty bad-faith reports in a day.")
    lead.get_by_role("button", name="Mute the reporter").click()
    expect(lead.locator("ul.messages")).to_contain_text("The reporter is muted")
    assert AuditEvent.objects.filter(action="reporter.muted").count() == 1

    muted_case = file_on_the_form(new_page(), "demo://content/21")  # acknowledged as anyone's report
    task = ReviewTask.objects.get(report__case_number=muted_case)
    assert task.queue is not None and task.queue.slug == "low-priority"
    lead.goto("/console/")
    lead.locator("#queue-tabs").get_by_role("link", name="Low priority").click()
    expect(lead).to_have_url(re.compile(r"queue=low-priority"))
    expect(row(lead, muted_case).locator("td.queue-name")).to_have_text("Low priority")
    expect(row(lead, first.case_number)).to_have_count(0)  # filed before the mute: routed as usual

    lead.goto("/console/mutes")
    lead.get_by_role("button", name=re.compile(r"^Unmute the address muted")).click()
    expect(lead.locator("ul.messages")).to_contain_text("Unmuted")
    expect(lead.locator("#mutes")).to_contain_text("No muted reporters.")

    api = new_page().request  # a person's report through the API, after the unmute
    response = api.post("/api/v1/reports", data=notice_payload(reporter_email=MUTED_EMAIL,
                                                               reporter_name="Noisy Example",
                                                               signature="Noisy Example",
                                                               locations=["demo://content/22"]))
    assert response.status == 201, response.text()
    routed = ReviewTask.objects.get(report__case_number=response.json()["case_number"])
    assert routed.queue is not None and routed.queue.slug == "ncii-adult"


def submit_from(email: str, location: str) -> str:
    from moderation.services.intake import Notice, report_submit

    notice = Notice(**notice_payload(reporter_email=email, locations=[location]))
    return report_submit(notice=notice).report.case_number
