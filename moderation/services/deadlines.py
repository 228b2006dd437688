"""The deadline clock: per-source hours from a complete notice, reminders at 50 % and 80 %, escalation on breach.

LEGAL.md: 48 h for TAKE IT DOWN and UK reports, 24 h for eSafety removal notices; configurable per
source in ``TAKEDOWN_DEADLINE_HOURS``. The clock starts when every notice element is present
(``notice_complete_at``); a notice still missing information has no deadline yet.
Celery beat runs :func:`deadlines_check` every few minutes; each step happens once per case, claimed
with a conditional update, so overlapping runs never send twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from moderation.audit import SYSTEM, audit_record
from moderation.models import Report, ReviewTask
from moderation.services.notices import notice_send

# The priority a case gains when it passes its deadline: triage's "deadline_breached" reason, kept on recompute.
from moderation.services.triage import BREACH_PRIORITY_BOOST as BREACH_PRIORITY_BOOST
from moderation.services.triage import task_reprioritise

# Cases whose clock is running: removal not yet complete.
OPEN_STATUSES = (Report.Status.RECEIVED, Report.Status.IN_REVIEW, Report.Status.ACTIONING)


def deadline_hours(source: str) -> int:
    return int(settings.TAKEDOWN_DEADLINE_HOURS[source])


def deadline_for(*, source: str, complete_at: datetime) -> datetime:
    return complete_at + timedelta(hours=deadline_hours(source))


def fraction_used(report: Report, now: datetime) -> float | None:
    """How much of the allowed time has passed (0.0 at completion, 1.0 at the deadline)."""
    if report.notice_complete_at is None or report.deadline_at is None:
        return None
    total = (report.deadline_at - report.notice_complete_at).total_seconds()
    return (now - report.notice_complete_at).total_seconds() / total if total > 0 else 1.0


@dataclass
class DeadlineRun:
    reminders: list[tuple[str, int]] = field(default_factory=list)  # (case number, percent)
    escalations: list[str] = field(default_factory=list)


_REMINDER_FIELDS = {0.5: "reminder_50_at", 0.8: "reminder_80_at"}


def deadlines_check(*, now: datetime | None = None) -> DeadlineRun:
    """Send due reminders and escalate breaches. ``now`` lets tests travel in time."""
    now = now or timezone.now()
    run = DeadlineRun()
    # A joined report's clock is carried by the case it joined, which takes the earlier deadline
    # (services/joining.py): reminders and escalations come once, for the case under review.
    reports = Report.objects.filter(status__in=OPEN_STATUSES, deadline_at__isnull=False,
                                    notice_complete_at__isnull=False, escalated_at__isnull=True,
                                    joined_to__isnull=True)
    for report in reports.order_by("deadline_at"):
        used = fraction_used(report, now)
        if used is None:
            continue
        if used >= 1.0:
            if _escalate(report, now):
                run.escalations.append(report.case_number)
            continue
        for threshold in sorted(settings.TAKEDOWN_DEADLINE_REMINDERS, reverse=True):
            if used >= threshold:
                if _remind(report, threshold, now):
                    run.reminders.append((report.case_number, round(threshold * 100)))
                break  # one reminder per run: the highest threshold reached (a late run skips to 80 %)
    return run


def _staff_context(report: Report) -> dict[str, object]:
    task = report.tasks.filter(kind=ReviewTask.Kind.REPORT).first()
    path = reverse("console:case", args=[task.pk]) if task else reverse("console:queue")
    return {"case_number": report.case_number, "source": report.get_source_display(),
            "deadline_at": report.deadline_at, "console_url": settings.SITE_URL.rstrip("/") + path}


def _remind(report: Report, threshold: float, now: datetime) -> bool:
    field_name = _REMINDER_FIELDS.get(threshold, "reminder_80_at")
    with transaction.atomic():
        # Claim the step; a lower reminder not yet sent is marked too, so it is never sent late.
        claim = {field_name: now}
        if field_name == "reminder_80_at":
            Report.objects.filter(pk=report.pk, reminder_50_at__isnull=True).update(reminder_50_at=now)
        if not Report.objects.filter(pk=report.pk, **{f"{field_name}__isnull": True}).update(**claim):
            return False
        percent = round(threshold * 100)
        audit_record(actor=SYSTEM, action="deadline.reminder", object_type="report", object_id=report.pk,
                     data={"percent": percent, "deadline_at": report.deadline_at.isoformat() if report.deadline_at
                           else None})
        context = {**_staff_context(report), "percent": percent}
        transaction.on_commit(lambda: notice_send(kind="deadline_reminder", to=settings.TAKEDOWN_COMPLIANCE_EMAILS,
                                                  context=context, object_type="report", object_id=report.pk))
    return True


def _escalate(report: Report, now: datetime) -> bool:
    with transaction.atomic():
        if not Report.objects.filter(pk=report.pk, escalated_at__isnull=True).update(escalated_at=now):
            return False
        # The boost is a triage reason derived from escalated_at, so any later recompute keeps it.
        report = Report.objects.select_for_update().get(pk=report.pk)
        for task in ReviewTask.objects.select_for_update().filter(report=report).exclude(
                state=ReviewTask.State.DECIDED):
            task_reprioritise(task, report, now)
        audit_record(actor=SYSTEM, action="deadline.breached", object_type="report", object_id=report.pk,
                     data={"deadline_at": report.deadline_at.isoformat() if report.deadline_at else None,
                           "status": report.status})
        context = _staff_context(report)
        transaction.on_commit(lambda: notice_send(kind="deadline_breached", to=settings.TAKEDOWN_COMPLIANCE_EMAILS,
                                                  context=context, object_type="report", object_id=report.pk))
    return True
