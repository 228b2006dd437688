"""The deadline clock with time travel: per-source hours, reminders at 50 % and 80 %, escalation on breach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail

from moderation.models import AuditEvent, Report, ReviewTask
from moderation.services.deadlines import BREACH_PRIORITY_BOOST, deadlines_check
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def report_at(now: datetime = T0, **overrides: Any) -> Report:
    return report_submit(notice=Notice(**notice_payload(**overrides)), now=now).report


@pytest.fixture(autouse=True)
def _compliance(settings: Any) -> None:
    settings.TAKEDOWN_COMPLIANCE_EMAILS = ["compliance@example.org"]


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "hours"), [("web", 48), ("api", 48), ("trusted_flagger", 48), ("esafety", 24)])
def test_the_deadline_depends_on_the_source(source: str, hours: int) -> None:
    report = report_at(source=source)
    assert report.notice_complete_at == T0
    assert report.deadline_at == T0 + timedelta(hours=hours)


@pytest.mark.django_db
def test_the_hours_per_source_are_configurable(settings: Any) -> None:
    settings.TAKEDOWN_DEADLINE_HOURS = {**settings.TAKEDOWN_DEADLINE_HOURS, "esafety": 12}
    assert report_at(source="esafety").deadline_at == T0 + timedelta(hours=12)


@pytest.mark.django_db(transaction=True)
def test_no_reminder_before_half_the_time_then_one_at_50_and_one_at_80_percent(demo: Any) -> None:
    report = report_at()  # 48 h
    mail.outbox.clear()
    assert deadlines_check(now=T0 + timedelta(hours=23)).reminders == []
    assert deadlines_check(now=T0 + timedelta(hours=24)).reminders == [(report.case_number, 50)]
    assert deadlines_check(now=T0 + timedelta(hours=30)).reminders == []  # 50 % already sent
    assert deadlines_check(now=T0 + timedelta(hours=38, minutes=24)).reminders == [(report.case_number, 80)]
    assert deadlines_check(now=T0 + timedelta(hours=40)).reminders == []
    subjects = [m.subject for m in mail.outbox]
    assert subjects == [f"50% of the deadline used: case {report.case_number}",
                        f"80% of the deadline used: case {report.case_number}"]
    assert all(m.to == ["compliance@example.org"] for m in mail.outbox)
    assert AuditEvent.objects.filter(action="deadline.reminder").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_late_run_sends_only_the_80_percent_reminder(demo: Any) -> None:
    report = report_at(source="esafety")  # 24 h
    mail.outbox.clear()
    assert deadlines_check(now=T0 + timedelta(hours=20)).reminders == [(report.case_number, 80)]
    assert deadlines_check(now=T0 + timedelta(hours=21)).reminders == []
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_breach_escalates_once_and_puts_the_case_at_the_top_of_the_queue(demo: Any) -> None:
    report = report_at(source="esafety")
    task = ReviewTask.objects.get(report=report)
    before = task.priority
    mail.outbox.clear()
    run = deadlines_check(now=T0 + timedelta(hours=24, seconds=1))
    assert run.escalations == [report.case_number]
    assert deadlines_check(now=T0 + timedelta(hours=30)).escalations == []
    task.refresh_from_db()
    assert task.priority == before + BREACH_PRIORITY_BOOST
    assert Report.objects.get(pk=report.pk).escalated_at == T0 + timedelta(hours=24, seconds=1)
    assert [m.subject for m in mail.outbox] == [f"Deadline missed: case {report.case_number}"]


@pytest.mark.django_db
def test_closed_cases_and_incomplete_notices_have_no_running_clock() -> None:
    removed = report_at()
    Report.objects.filter(pk=removed.pk).update(status=Report.Status.REMOVED)
    incomplete = report_at(source="trusted_flagger", signature="")
    assert incomplete.deadline_at is None
    run = deadlines_check(now=T0 + timedelta(days=10))
    assert run.escalations == [] and run.reminders == []


@pytest.mark.django_db
def test_the_beat_schedule_runs_the_deadline_check(settings: Any) -> None:
    import moderation.tasks  # noqa: F401 - registers the tasks, as a worker's autodiscovery does
    from moderation.celery import app

    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["deadlines-check"]["task"] == "moderation.tasks.deadlines_check"
    assert schedule["deadlines-check"]["task"] in app.tasks
    assert schedule["media-purge"]["task"] in app.tasks and schedule["dsa-submit"]["task"] in app.tasks
