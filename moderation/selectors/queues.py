"""Reads for the queue controls on a case: its queue, its hold, and the seniors it can be escalated to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from moderation.models import Decision, Queue, ReporterMute, ReviewTask
from moderation.roles import PERM_SECOND_REVIEW


@dataclass(frozen=True)
class CaseQueueState:
    task: ReviewTask
    queue: Queue | None
    held: bool
    hold_past_deadline: bool
    escalated_to: Any
    seniors: list[Any]
    # A delayed takedown still waiting for its time, if the case has one.
    delayed: Decision | None = None
    delayed_past_deadline: bool = False


def seniors() -> list[Any]:
    """Active users who may decide escalated cases (the second-review permission, by role or directly)."""
    codename = PERM_SECOND_REVIEW.split(".", 1)[1]
    users = get_user_model().objects.filter(is_active=True).filter(
        Q(groups__permissions__codename=codename) | Q(user_permissions__codename=codename) | Q(is_superuser=True))
    return list(users.distinct().order_by("username"))


def case_queue_state(task_id: int, now: datetime | None = None) -> CaseQueueState:
    now = now or timezone.now()
    task = ReviewTask.objects.select_related("queue", "escalated_to", "report").get(pk=task_id)
    held = task.held_until is not None and task.held_until > now
    deadline = task.report.deadline_at
    delayed = Decision.objects.filter(task=task, effective_at__isnull=False, released_at=None).first()
    return CaseQueueState(task=task, queue=task.queue, held=held,
                          hold_past_deadline=held and deadline is not None and task.held_until is not None
                          and task.held_until > deadline,
                          escalated_to=task.escalated_to, seniors=seniors(), delayed=delayed,
                          delayed_past_deadline=bool(delayed and deadline and delayed.effective_at
                                                     and delayed.effective_at > deadline))


def mutes() -> list[ReporterMute]:
    return list(ReporterMute.objects.select_related("muted_by").order_by("-created_at"))
