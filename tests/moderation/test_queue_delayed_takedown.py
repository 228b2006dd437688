"""Delayed takedowns: decided now, carried out on the platform (and notified) at a set time by the beat task;
shown on the case and in the deadline logic; a time past the legal deadline needs explicit confirmation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from moderation.models import Action, AuditEvent, Decision, DemoContentItem, Report, ReviewTask, StatementOfReasons
from moderation.services import claims, deadlines
from moderation.services.delayed_takedowns import (
    PastDeadline,
    delayed_takedown_effective_now,
    delayed_takedowns_release,
    takedown_schedule,
)
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload
from tests.moderation.console_helpers import make_case


def reported(location: str = "demo://content/7") -> ReviewTask:
    notice = Notice(**{**notice_payload(), "locations": [location]})  # type: ignore[arg-type]
    return report_submit(notice=notice).report.tasks.get()


@pytest.mark.django_db(transaction=True)
def test_a_delayed_takedown_waits_for_its_time_then_the_beat_task_removes_the_content(
        demo: Any, moderator: User) -> None:
    task = reported()
    at = timezone.now() + timedelta(hours=3)
    result = takedown_schedule(task_id=task.pk, user=moderator, reason="ncii", effective_at=at)
    assert result.decision.effective_at == at and result.decision.released_at is None
    assert DemoContentItem.objects.get(number=7).status != DemoContentItem.Status.REMOVED
    assert Action.objects.get().status == Action.Status.PENDING
    assert Report.objects.get(pk=task.report_id).status == Report.Status.ACTIONING
    made = AuditEvent.objects.get(action="decision.made")
    assert made.data["effective_at"] == at.isoformat()

    assert delayed_takedowns_release(now=at - timedelta(minutes=1)) == []
    assert not StatementOfReasons.objects.exists()  # the uploader hears nothing before the time
    assert delayed_takedowns_release(now=at + timedelta(seconds=30)) == [result.decision.pk]
    assert StatementOfReasons.objects.filter(decision=result.decision).exists()
    assert DemoContentItem.objects.get(number=7).status == DemoContentItem.Status.REMOVED
    assert Action.objects.get().status == Action.Status.DONE
    assert Report.objects.get(pk=task.report_id).status == Report.Status.REMOVED
    assert AuditEvent.objects.filter(action="decision.took_effect", object_id=str(result.decision.pk)).exists()
    assert delayed_takedowns_release(now=at + timedelta(minutes=5)) == []  # released once


@pytest.mark.django_db(transaction=True)
def test_a_delayed_takedown_can_be_carried_out_now_and_that_is_audited(demo: Any, moderator: User) -> None:
    task = reported()
    result = takedown_schedule(task_id=task.pk, user=moderator, reason="ncii",
                               effective_at=timezone.now() + timedelta(days=1))
    delayed_takedown_effective_now(decision_id=result.decision.pk, user=moderator)
    assert DemoContentItem.objects.get(number=7).status == DemoContentItem.Status.REMOVED
    assert AuditEvent.objects.filter(action="decision.effective_now").exists()


@pytest.mark.django_db
def test_a_time_after_the_legal_deadline_is_refused_until_it_is_confirmed(moderator: User) -> None:
    task = make_case(hours_left=5)
    late = timezone.now() + timedelta(hours=8)
    with pytest.raises(PastDeadline, match="after the legal deadline"):
        takedown_schedule(task_id=task.pk, user=moderator, reason="ncii", effective_at=late)
    assert not Decision.objects.exists()
    result = takedown_schedule(task_id=task.pk, user=moderator, reason="ncii", effective_at=late,
                               past_deadline_confirmed=True)
    assert result.decision.effective_at == late


@pytest.mark.django_db
def test_a_delayed_takedown_past_its_deadline_is_escalated_as_late(moderator: User) -> None:
    task = make_case(hours_left=1)
    report = Report.objects.get(pk=task.report_id)
    Report.objects.filter(pk=report.pk).update(notice_complete_at=report.deadline_at - timedelta(hours=48))
    at = timezone.now() + timedelta(hours=6)
    takedown_schedule(task_id=task.pk, user=moderator, reason="ncii", effective_at=at, past_deadline_confirmed=True)
    deadlines.deadlines_check(now=timezone.now() + timedelta(hours=2))
    assert Report.objects.get(pk=task.report_id).escalated_at is not None


@pytest.mark.django_db
def test_a_delay_must_be_in_the_future_and_within_two_weeks(moderator: User) -> None:
    task = make_case()
    for when, message in ((timezone.now() - timedelta(minutes=1), "future"),
                          (timezone.now() + timedelta(days=15), "at most")):
        with pytest.raises(claims.InvalidDecision, match=message):
            takedown_schedule(task_id=task.pk, user=moderator, reason="ncii", effective_at=when)


@pytest.mark.django_db
def test_the_case_page_shows_the_delayed_takedown_and_warns_before_a_late_one(client: Client,
                                                                             moderator: User) -> None:
    task = make_case(hours_left=2)
    client.force_login(moderator)
    late = (timezone.now() + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M")
    html = client.post(f"/console/case/{task.pk}/takedown-later", {"reason": "ncii", "effective_at": late},
                       follow=True).content.decode()
    assert "after the legal deadline" in html and not Decision.objects.exists()
    html = client.post(f"/console/case/{task.pk}/takedown-later", {
        "reason": "ncii", "effective_at": late, "past_deadline_confirmed": "1"}, follow=True).content.decode()
    assert 'id="delayed-takedown"' in html and "the case will be late" in html
