"""A case past its deadline stays at the top of the queue: the breach boost is one of triage's computed
reasons (derived from the report's escalation), so a later recompute — a new match, a new score — keeps it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.models import Bank
from moderation.models import Match, MediaHash, Report, ReviewTask
from moderation.services.deadlines import BREACH_PRIORITY_BOOST, deadlines_check
from moderation.services.intake import Notice, report_submit
from moderation.services.triage import report_triage
from tests.conftest import notice_payload

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def codes(task: ReviewTask) -> list[str]:
    return [r["code"] for r in task.priority_reasons]


@pytest.mark.django_db(transaction=True)
def test_a_new_match_after_a_breach_recomputes_the_priority_and_keeps_the_escalation(demo: Any,
                                                                                    settings: Any) -> None:
    settings.TAKEDOWN_COMPLIANCE_EMAILS = ["compliance@example.org"]
    report = report_submit(notice=Notice(**notice_payload(locations=["demo://content/20"])), now=T0).report
    task = ReviewTask.objects.get(report=report)
    assert "deadline_breached" not in codes(task) and "match" not in codes(task)

    assert deadlines_check(now=T0 + timedelta(hours=48, seconds=1)).escalations == [report.case_number]
    task.refresh_from_db()
    breached = next(r for r in task.priority_reasons if r["code"] == "deadline_breached")
    assert breached["points"] == BREACH_PRIORITY_BOOST and "2026-06-03 09:00" in breached["detail"]
    assert task.priority == sum(r["points"] for r in task.priority_reasons) >= BREACH_PRIORITY_BOOST
    escalated_priority = task.priority

    # A partner's hash of the same image arrives: the retroactive sweep records a match and triage recomputes.
    pdq = MediaHash.objects.get(media__reported_items__report=report, algorithm="pdq").value
    bank = bank_get_or_create(name="partner-feed", kind=Bank.Kind.LOCAL)
    bank_add_entries(bank=bank, hashes=[("pdq", pdq)], source="partner:example")
    assert Match.objects.filter(media__reported_items__report=report).exists()
    task.refresh_from_db()
    assert "match" in codes(task) and "deadline_breached" in codes(task)
    assert task.priority > escalated_priority  # the match added points; the boost stayed
    assert task.priority == sum(r["points"] for r in task.priority_reasons)

    # Any later recompute keeps it too, and it tops every case that is not past its deadline.
    report_triage(report.pk)
    task.refresh_from_db()
    assert "deadline_breached" in codes(task)
    fresh = report_submit(notice=Notice(**notice_payload(locations=["demo://content/3"]))).report
    assert ReviewTask.objects.get(report=fresh).priority < BREACH_PRIORITY_BOOST
    assert ReviewTask.objects.order_by("-priority").first() == task


@pytest.mark.django_db(transaction=True)
def test_a_closed_case_carries_no_breach_boost(demo: Any, moderator: Any) -> None:
    from moderation.services.triage import priority_reasons

    report = report_submit(notice=Notice(**notice_payload(locations=["demo://content/20"])), now=T0).report
    deadlines_check(now=T0 + timedelta(hours=49))
    report.refresh_from_db()
    assert "deadline_breached" in [r.code for r in priority_reasons(report)]
    Report.objects.filter(pk=report.pk).update(status=Report.Status.REMOVED)
    report.refresh_from_db()
    assert "deadline_breached" not in [r.code for r in priority_reasons(report)]
