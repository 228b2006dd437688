"""Deciding a case with its near-duplicates in one transaction, and a case sent back for information
returning to the queue when the reporter answers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from moderation.models import AuditEvent, Decision, Report, ReviewTask
from moderation.roles import MODERATOR
from moderation.services import claims, decisions
from moderation.services.intake import report_complete
from tests.moderation.console_helpers import make_case, user_with_role
from tests.moderation.legal_helpers import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def mods() -> tuple[User, User]:
    return user_with_role("mo", MODERATOR), user_with_role("mo2", MODERATOR)


def test_a_group_is_decided_together_with_one_audit_event_per_case(mods: tuple[User, User]) -> None:
    mo, _ = mods
    cases = [make_case() for _ in range(3)]
    results = decisions.decision_submit_group(task_ids=[c.pk for c in cases], user=mo, outcome="no_violation",
                                              reason="not_intimate")
    assert list(results) == [c.pk for c in cases]
    assert all(ReviewTask.objects.get(pk=c.pk).state == ReviewTask.State.DECIDED for c in cases)
    made = AuditEvent.objects.filter(action="decision.made").values_list("object_id", flat=True)
    assert sorted(made) == sorted(str(c.report_id) for c in cases)


def test_a_group_with_a_case_another_moderator_holds_decides_nothing_and_names_that_case(
        mods: tuple[User, User]) -> None:
    mo, other = mods
    shown, free, held = make_case(), make_case(), make_case()
    claims.task_claim(task_id=held.pk, user=other)
    with pytest.raises(decisions.GroupDecisionError, match=f"Case #{held.pk} of the group") as err:
        decisions.decision_submit_group(task_ids=[shown.pk, free.pk, held.pk], user=mo, outcome="takedown",
                                        reason="ncii")
    assert err.value.task_id == held.pk
    assert not Decision.objects.exists()
    assert ReviewTask.objects.get(pk=shown.pk).state == ReviewTask.State.OPEN
    assert ReviewTask.objects.get(pk=free.pk).state == ReviewTask.State.OPEN
    assert ReviewTask.objects.get(pk=held.pk).assignee == other
    assert not AuditEvent.objects.filter(action="decision.made").exists()


def test_an_error_on_the_case_on_screen_is_raised_as_it_is(mods: tuple[User, User]) -> None:
    mo, other = mods
    shown, near = make_case(), make_case()
    claims.task_claim(task_id=shown.pk, user=other)
    with pytest.raises(claims.ReviewError, match="Another moderator") as err:
        decisions.decision_submit_group(task_ids=[shown.pk, near.pk], user=mo, outcome="takedown", reason="ncii")
    assert not isinstance(err.value, decisions.GroupDecisionError)
    assert ReviewTask.objects.get(pk=near.pk).state == ReviewTask.State.OPEN


def test_a_case_sent_back_for_information_returns_to_the_queue_when_the_reporter_answers(
        mods: tuple[User, User]) -> None:
    mo, _ = mods
    report = submit(locations=["demo://content/1"]).report
    task = report.tasks.get(kind=ReviewTask.Kind.REPORT)
    decisions.decision_make(task_id=task.pk, user=mo, outcome="needs_information", reason="needs_information",
                            note="Which of the posts shows you?")
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.DECIDED
    report_complete(report=Report.objects.get(pk=report.pk), statement="The second post shows me.")
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.OPEN
    assert Report.objects.get(pk=report.pk).status == Report.Status.RECEIVED
    assert AuditEvent.objects.filter(action="task.reopened", object_id=str(task.pk)).exists()
