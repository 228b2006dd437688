"""The Art. 15 transparency report: counts by notice type, ground and outcome, complaints, median times."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from moderation.models import Action, Appeal, Decision, Report, StatementOfReasons
from moderation.services.appeals import appeal_decide, appeal_submit
from moderation.services.decisions import decision_make
from moderation.services.transparency import transparency_report
from tests.moderation.legal_helpers import submit, take_down


@pytest.fixture
def activity(demo: Any, moderator: User, senior: User) -> dict[str, Any]:
    removed = submit(locations=["demo://content/26"]).report
    decision = take_down(removed, moderator, reason="synthetic_ncii")
    kept = submit(locations=["demo://content/27"], source="trusted_flagger").report
    decision_make(task_id=kept.tasks.get().pk, user=moderator, outcome="no_violation", reason="not_intimate")
    submit(locations=["demo://content/28"], source="esafety")
    # Known times, so the medians are checkable: decision 2 h after the notice was complete.
    complete = timezone.now() - timedelta(hours=5)
    Report.objects.filter(pk__in=[removed.pk, kept.pk]).update(notice_complete_at=complete)
    Decision.objects.filter(report__in=[removed, kept]).update(created_at=complete + timedelta(hours=2))
    Action.objects.filter(decision=decision).update(completed_at=complete + timedelta(hours=3))
    statement = StatementOfReasons.objects.get(decision=decision)
    appeal = appeal_submit(statement=statement, email="u@example.org", text="Please look again.")
    appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=True, note="Consent was shown.")
    Appeal.objects.filter(pk=appeal.pk).update(decided_at=appeal.created_at + timedelta(hours=6))
    return {"removed": removed}


def period() -> tuple[Any, Any]:
    now = timezone.now()
    return now - timedelta(days=1), now + timedelta(days=1)


@pytest.mark.django_db(transaction=True)
def test_the_report_counts_notices_actions_and_complaints(activity: dict[str, Any]) -> None:
    start, end = period()
    report = transparency_report(start=start, end=end)
    assert report["notices"]["received"] == 3
    assert report["notices"]["by_source"] == {"web": 1, "trusted_flagger": 1, "esafety": 1}
    assert report["actions"]["decisions"] == 2
    assert report["actions"]["by_outcome"] == {"takedown": 1, "no_violation": 1}
    assert report["actions"]["takedowns_legal_ground"] == 1 and report["actions"]["takedowns_terms_ground"] == 0
    assert report["actions"]["decided_by_automated_means"] == 0
    assert report["actions"]["median_hours_to_decision"] == 2.0
    assert report["actions"]["median_hours_to_removal"] == 3.0
    assert report["complaints"] == {"received": 1, "basis": {"synthetic_ncii": 1}, "by_outcome": {"reversed": 1},
                                    "reversed": 1, "median_hours_to_decide": 6.0}
    assert report["automated_means"][0]["purpose"]
    assert "Alex" not in json.dumps(report) and "@" not in json.dumps(report["notices"])


@pytest.mark.django_db(transaction=True)
def test_an_empty_period_reports_zeros_and_no_medians(activity: dict[str, Any]) -> None:
    now = timezone.now()
    report = transparency_report(start=now - timedelta(days=30), end=now - timedelta(days=20))
    assert report["notices"]["received"] == 0
    assert report["actions"]["median_hours_to_decision"] is None


@pytest.mark.django_db(transaction=True)
def test_the_command_writes_json_and_csv(activity: dict[str, Any]) -> None:
    start, end = period()
    out = io.StringIO()
    call_command("transparency_report", "--from", start.date().isoformat(), "--to",
                 (end + timedelta(days=1)).date().isoformat(), stdout=out)
    assert json.loads(out.getvalue())["notices"]["received"] == 3
    out_csv = io.StringIO()
    call_command("transparency_report", "--from", start.date().isoformat(), "--to",
                 (end + timedelta(days=1)).date().isoformat(), "--format", "csv", stdout=out_csv)
    rows = list(csv.reader(io.StringIO(out_csv.getvalue())))
    assert rows[0] == ["section", "metric", "key", "value"]
    assert ["notices", "by_source", "esafety", "1"] in rows
    assert ["complaints", "reversed", "", "1"] in rows


@pytest.mark.django_db
def test_the_command_refuses_a_period_that_ends_before_it_starts() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="after"):
        call_command("transparency_report", "--from", "2026-06-01", "--to", "2026-05-01")
