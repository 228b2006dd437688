"""Holds and escalation to a named senior: a held case is not drawn by "next" until its time passes, the
legal deadline keeps running and shows; escalating to one senior gives the case to them only; both audited."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from moderation.models import AuditEvent, ReviewTask
from moderation.roles import SENIOR
from moderation.services import claims, holds
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db


@contextmanager
def travel(when: datetime) -> Iterator[None]:
    """Django's clock (``timezone.now``) stands at ``when``."""
    with mock.patch("django.utils.timezone.now", return_value=when):
        yield


def test_a_held_case_is_not_drawn_by_next_until_its_time_passes(moderator: User, other_moderator: User) -> None:
    now = timezone.now()
    held = make_case(priority=90)
    later = make_case(priority=10)
    holds.task_hold(task_id=held.pk, user=moderator, until=now + timedelta(hours=3), reason="police asked to wait",
                    now=now)
    drawn = claims.task_next(user=other_moderator)
    assert drawn is not None and drawn.pk == later.pk
    assert claims.task_next(user=moderator) is None
    with travel(now + timedelta(hours=3, minutes=1)):
        drawn = claims.task_next(user=moderator)
    assert drawn is not None and drawn.pk == held.pk


def test_putting_a_case_on_hold_is_audited_and_lets_go_of_the_claim(moderator: User) -> None:
    task = make_case(hours_left=10)
    claims.task_claim(task_id=task.pk, user=moderator)
    until = timezone.now() + timedelta(hours=20)
    result = holds.task_hold(task_id=task.pk, user=moderator, until=until, reason="waiting for the platform")
    task.refresh_from_db()
    assert task.state == ReviewTask.State.OPEN and task.assignee is None
    assert task.held_until == until and task.hold_reason == "waiting for the platform"
    assert result.past_deadline  # 20 h of hold, 10 h to the deadline
    event = AuditEvent.objects.get(action="task.held", object_id=str(task.pk))
    assert event.reason == "waiting for the platform"
    assert event.data["past_deadline"] is True and event.data["deadline_at"] is not None


def test_lifting_a_hold_is_audited_and_the_case_can_be_drawn_again(moderator: User) -> None:
    task = make_case()
    holds.task_hold(task_id=task.pk, user=moderator, until=timezone.now() + timedelta(days=1), reason="wait")
    holds.task_unhold(task_id=task.pk, user=moderator)
    assert AuditEvent.objects.filter(action="task.hold_lifted", object_id=str(task.pk)).exists()
    drawn = claims.task_next(user=moderator)
    assert drawn is not None and drawn.pk == task.pk


def test_a_hold_needs_a_reason_a_future_time_and_a_role_that_decides(moderator: User, triage_user: User) -> None:
    task = make_case()
    soon = timezone.now() + timedelta(hours=1)
    with pytest.raises(claims.InvalidDecision):
        holds.task_hold(task_id=task.pk, user=moderator, until=soon, reason=" ")
    with pytest.raises(claims.ReviewError, match="future"):
        holds.task_hold(task_id=task.pk, user=moderator, until=timezone.now() - timedelta(minutes=1), reason="x")
    with pytest.raises(claims.ReviewError, match="at most"):
        holds.task_hold(task_id=task.pk, user=moderator, until=timezone.now() + timedelta(days=31), reason="x")
    with pytest.raises(PermissionDenied):
        holds.task_hold(task_id=task.pk, user=triage_user, until=soon, reason="x")


def test_a_case_escalated_to_a_named_senior_goes_to_them_only(moderator: User, senior: User) -> None:
    other_senior = user_with_role("sue-senior", SENIOR)
    task = make_case()
    claims.task_escalate(task_id=task.pk, user=moderator, note="needs Sam", to_user_id=senior.pk)
    task.refresh_from_db()
    assert task.state == ReviewTask.State.ESCALATED and task.escalated_to == senior
    assert claims.task_next(user=other_senior) is None
    with pytest.raises(claims.ReviewError, match="another senior"):
        claims.task_claim(task_id=task.pk, user=other_senior)
    drawn = claims.task_next(user=senior)
    assert drawn is not None and drawn.pk == task.pk
    event = AuditEvent.objects.get(action="task.escalated", object_id=str(task.pk))
    assert event.data["to"] == senior.pk and event.reason == "escalated to sam-senior"
    assert event.after is not None and event.after["escalated_to"] == senior.pk


def test_a_case_can_only_be_escalated_to_someone_who_decides_escalated_cases(moderator: User,
                                                                             other_moderator: User) -> None:
    task = make_case()
    with pytest.raises(claims.InvalidDecision, match="senior"):
        claims.task_escalate(task_id=task.pk, user=moderator, note="x", to_user_id=other_moderator.pk)
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.OPEN


def test_the_case_page_shows_the_hold_and_the_deadline_that_still_runs(client: Client, moderator: User) -> None:
    task = make_case(hours_left=5)
    client.force_login(moderator)
    response = client.post(f"/console/case/{task.pk}/hold", {"until": (timezone.now() + timedelta(hours=8)).strftime(
        "%Y-%m-%dT%H:%M"), "reason": "coordinating with the police"}, follow=True)
    html = response.content.decode()
    assert "after the case&#x27;s legal deadline" in html or "after the case's legal deadline" in html
    assert 'id="hold-state"' in html and "coordinating with the police" in html
    assert 'id="hold-deadline"' in html and "before the hold ends" in html
    html = client.post(f"/console/case/{task.pk}/hold/lift", follow=True).content.decode()
    assert 'id="hold-state"' not in html and 'id="hold-form"' in html


def test_the_case_page_escalates_to_a_senior_chosen_from_the_list(client: Client, moderator: User,
                                                                  senior: User) -> None:
    task = make_case()
    client.force_login(moderator)
    page = client.get(f"/console/case/{task.pk}").content.decode()
    assert f'<option value="{senior.pk}">sam-senior</option>' in page
    html = client.post(f"/console/case/{task.pk}/escalate-to", {"to": str(senior.pk), "note": "for Sam"},
                       follow=True).content.decode()
    assert "Escalated to sam-senior." in html and 'id="escalated-to"' in html
