"""Holds: a moderator parks a case until a time, with a reason (e.g. waiting for the platform or the police).

A held case stays in its queue and is shown there, but "next" does not draw it until the time passes; the
legal deadline runs on regardless (services/deadlines.py escalates a breach as for any case), and the hold
says so when it ends after the deadline. Whoever held the case lets go of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from moderation.audit import actor_for_user, audit_record
from moderation.models import ReviewTask
from moderation.roles import PERM_DECIDE, require
from moderation.services.claims import ReviewError, note_clean, task_snapshot

# A hold is for days, not for parking a case indefinitely: a longer one is refused (re-hold it if needed).
HOLD_MAX = timedelta(days=30)
HOLDABLE = (ReviewTask.State.OPEN, ReviewTask.State.CLAIMED, ReviewTask.State.ESCALATED)


@dataclass(frozen=True)
class HoldResult:
    task: ReviewTask
    # The hold ends after the case's legal deadline: the view warns about it (the deadline is not moved).
    past_deadline: bool


def task_hold(*, task_id: int, user: Any, until: datetime, reason: str, now: datetime | None = None) -> HoldResult:
    """Put a case on hold until ``until`` with ``reason``. Raises ``ReviewError`` / ``InvalidDecision``."""
    require(user, PERM_DECIDE, "put cases on hold")
    now = now or timezone.now()
    why = note_clean(reason, required=True, what="say why the case is on hold")
    if until <= now:
        raise ReviewError("Choose a time in the future for the hold to end.")
    if until - now > HOLD_MAX:
        raise ReviewError(f"A hold may last at most {HOLD_MAX.days} days; choose an earlier time.")
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().select_related("report").get(pk=task_id)
        if task.state not in HOLDABLE:
            raise ReviewError("Only a case still to be decided can be put on hold.")
        if task.assignee_id not in (None, user.pk) and task.lease_expires_at and task.lease_expires_at > now:
            raise ReviewError("Another moderator is working on this case; ask them, or wait until their claim "
                              "expires.")
        before = {**task_snapshot(task), "held_until": _iso(task.held_until)}
        task.held_until, task.hold_reason = until, why
        task.assignee, task.claimed_at, task.lease_expires_at = None, None, None
        if task.state == ReviewTask.State.CLAIMED:
            task.state = ReviewTask.State.OPEN
        task.save(update_fields=["held_until", "hold_reason", "assignee", "claimed_at", "lease_expires_at", "state",
                                 "updated_at"])
        deadline = task.report.deadline_at
        past = deadline is not None and until > deadline
        audit_record(actor=actor_for_user(user), action="task.held", object_type="task", object_id=task.pk,
                     reason=why, data={"until": until.isoformat(), "deadline_at": _iso(deadline),
                                       "past_deadline": past},
                     before=before, after={**task_snapshot(task), "held_until": until.isoformat()})
    return HoldResult(task=task, past_deadline=past)


def task_unhold(*, task_id: int, user: Any) -> ReviewTask:
    """Lift a case's hold now: "next" may draw it again."""
    require(user, PERM_DECIDE, "lift holds")
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(pk=task_id)
        if task.held_until is None:
            return task
        before = {"held_until": task.held_until.isoformat(), "hold_reason": task.hold_reason}
        task.held_until, task.hold_reason = None, ""
        task.save(update_fields=["held_until", "hold_reason", "updated_at"])
        audit_record(actor=actor_for_user(user), action="task.hold_lifted", object_type="task", object_id=task.pk,
                     before=before, after={"held_until": None})
    return task


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
