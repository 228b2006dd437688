"""In Chromium: a reporter whose report was closed without removal asks for a review from the status page
(case number + PIN); a different senior sees who appealed, reverses in the console, and the content comes
down; the reporter sees the outcome on the status page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from moderation.models import Appeal, DemoContentItem, ReviewTask
from moderation.services.decisions import decision_make
from tests.e2e.test_console_browser import browser, log_in, new_page  # noqa: F401 - the shared Chromium fixtures
from tests.moderation.legal_helpers import submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reporter_asks_for_a_review_and_a_different_senior_reverses_it(
        new_page: Any, demo: Any, moderator: User, senior: User) -> None:  # noqa: F811
    from playwright.sync_api import expect

    submitted = submit(locations=["demo://content/25"])
    task = submitted.report.tasks.get(kind=ReviewTask.Kind.REPORT)
    decision_make(task_id=task.pk, user=moderator, outcome="no_violation", reason="not_intimate")

    reporter = new_page()
    reporter.goto("/status/")
    reporter.get_by_label("Case number").fill(submitted.report.case_number)
    reporter.get_by_label("PIN").fill(submitted.pin)
    reporter.get_by_role("button", name="Show the case").click()
    expect(reporter.get_by_role("heading", name="Ask us to look again")).to_be_visible()
    reporter.get_by_role("button", name="Ask for a review").click()  # empty: the browser asks for the text
    assert not Appeal.objects.exists()
    reporter.get_by_label("Why should we look again?").fill("The image is intimate and it is me.")
    reporter.get_by_role("button", name="Ask for a review").click()
    expect(reporter.locator("#review-received")).to_be_visible()
    expect(reporter.locator("#review-state")).to_have_attribute("data-state", "open")
    expect(reporter.get_by_role("button", name="Ask for a review")).to_have_count(0)
    appeal = Appeal.objects.get()
    assert appeal.appellant == Appeal.Appellant.REPORTER
    assert submitted.pin not in reporter.content()

    console = new_page()
    log_in(console, senior)
    console.goto("/console/appeals/")
    row = console.get_by_role("row").filter(has_text=submitted.report.case_number)
    expect(row).to_contain_text("Reporter: asks us to remove")
    row.get_by_role("link", name=str(appeal.pk)).click()
    expect(console.get_by_role("heading", name="The reporter asks us to look again")).to_be_visible()
    console.get_by_role("radio", name=re.compile("take the content down")).check()
    console.get_by_label("Reason for removal (when reversing)").select_option("ncii")
    console.get_by_label("Reasons (sent to the reporter)").fill("Intimate, and the reporter is the person shown.")
    console.get_by_role("button", name="Decide appeal").click()
    expect(console.get_by_role("heading", name="Open appeals")).to_be_visible()
    assert Appeal.objects.get().state == Appeal.State.REVERSED
    assert DemoContentItem.objects.get(number=25).status == DemoContentItem.Status.REMOVED

    reporter.goto("/status/")  # the case stays open in this browser for an hour
    expect(reporter.locator("#review-state")).to_have_attribute("data-state", "reversed")
    expect(reporter.locator("#case-status")).to_have_text("Content removed")
