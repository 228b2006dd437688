"""Queues and holds in a real browser: an admin adds a routing rule in the console, a new report lands in that
queue, a moderator filters the queue page by it, puts the case on hold (the deadline still shows), and "next"
skips it. Screenshots under var/test-artifacts/; the browser fixtures are test_console_browser.py's.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from moderation.models import AuditEvent, ReviewTask, RoutingRule
from moderation.roles import ADMIN
from tests.e2e.test_console_browser import browser, log_in, new_page, shot, submit  # noqa: F401
from tests.moderation.console_helpers import user_with_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_routes_web_reports_to_a_queue_and_a_moderator_holds_a_case_that_next_then_skips(
        new_page: Any, demo: Any, moderator: User) -> None:  # noqa: F811
    from playwright.sync_api import expect

    admin = user_with_role("ada-routing", ADMIN)
    page = new_page()
    log_in(page, admin)
    page.goto("/console/routing/")
    expect(page.get_by_role("heading", name="Queues and routing")).to_be_visible()
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name").fill("Web form reports to low priority")
    page.get_by_label("Order").fill("5")
    page.get_by_label("Send to queue").select_option(label="Low priority")
    page.get_by_label("Source").select_option(label="Web form")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#rules")).to_contain_text("Web form reports to low priority")
    shot(page, "queues-1-routing-rules")
    rule = RoutingRule.objects.get(name="Web form reports to low priority")
    assert AuditEvent.objects.filter(action="routing_rule.created", object_id=str(rule.pk)).exists()

    case_number = submit("demo://content/20")
    task = ReviewTask.objects.get(report__case_number=case_number)
    assert task.queue is not None and task.queue.slug == "low-priority"

    mod = new_page()
    log_in(mod, moderator)
    mod.locator("#queue-tabs").get_by_role("link", name="Low priority").click()
    expect(mod).to_have_url(re.compile(r"queue=low-priority"))
    row = mod.locator("#queue tbody tr")
    expect(row).to_have_count(1)
    expect(row.first.locator("td.queue-name")).to_have_text("Low priority")
    row.first.get_by_role("link", name=case_number).click()
    expect(mod.locator("#case-queue")).to_have_text("Low priority")

    mod.locator("#more > summary").click()  # the hold, escalate and delay controls are under "More"
    mod.locator("#queue-controls summary", has_text="Put on hold").click()
    until = timezone.now() + timedelta(hours=2)
    mod.get_by_label("Hold until (UTC)").fill(until.strftime("%Y-%m-%dT%H:%M"))
    mod.locator("#hold-form").get_by_label("Why").fill("The platform asked us to wait for the police")
    mod.get_by_role("button", name="Put on hold").click()
    expect(mod.locator("#hold-state")).to_contain_text("The platform asked us to wait for the police")
    expect(mod.locator("#hold-deadline")).to_contain_text("The legal deadline still runs")
    shot(mod, "queues-2-case-on-hold")
    assert AuditEvent.objects.filter(action="task.held", object_id=str(task.pk)).exists()

    mod.goto("/console/")
    expect(mod.locator("#queue tbody tr").first.locator("td.queue-name")).to_contain_text("on hold until")
    mod.get_by_role("button", name="Next case (n)").click()
    expect(mod.get_by_text("There is no unclaimed case in the queue.")).to_be_visible()
