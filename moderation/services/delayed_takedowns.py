"""Delayed takedowns: a takedown decided now that takes effect at a set time (e.g. to coordinate with the
police, who ask that the uploader is not alerted before a given moment).

The decision, its removal actions and the confirmed-bank entries are made at once (re-uploads are blocked from
then on); the removals on the platform, the statement of reasons and the notices wait until ``effective_at``,
when the beat task ``moderation.tasks.delayed_takedowns_release`` sends them. The case shows "removal in
progress" meanwhile and the legal deadline keeps running: a takedown set to take effect after the deadline must
be confirmed explicitly, and if the deadline passes first the case is escalated as late (services/deadlines.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from moderation import jobs
from moderation.audit import SYSTEM, actor_for_user, audit_record
from moderation.models import Action, Decision, ReviewTask
from moderation.roles import PERM_DECIDE, require
from moderation.services.claims import InvalidDecision
from moderation.services.decisions import DecisionResult, decision_make
from moderation.services.enforcement import decision_group

# Long enough for a coordinated action, short enough that a forgotten one is noticed.
DELAY_MAX = timedelta(days=14)


class PastDeadline(InvalidDecision):
    """The takedown would take effect after the case's legal deadline: it needs explicit confirmation."""

    def __init__(self, deadline: datetime, effective_at: datetime):
        self.deadline = deadline
        super().__init__("effective_at", f"The takedown would take effect {effective_at:%Y-%m-%d %H:%M} UTC, after "
                                         f"the legal deadline ({deadline:%Y-%m-%d %H:%M} UTC): the case will be "
                                         "late. Tick the confirmation to decide it anyway, or choose an earlier "
                                         "time.")


def takedown_schedule(*, task_id: int, user: Any, reason: str, effective_at: datetime, note: str = "",
                      reporter_template: str = "", uploader_template: str = "", past_deadline_confirmed: bool = False,
                      now: datetime | None = None) -> DecisionResult:
    """Decide a takedown that takes effect at ``effective_at``. Raises ``PastDeadline`` when that is after the
    legal deadline and not confirmed, ``InvalidDecision`` / ``ReviewError`` as ``decision_make`` does."""
    require(user, PERM_DECIDE, "decide cases")
    now = now or timezone.now()
    if effective_at <= now:
        raise InvalidDecision("effective_at", "Choose a time in the future, or take the content down now.")
    if effective_at - now > DELAY_MAX:
        raise InvalidDecision("effective_at", f"A takedown may be delayed by at most {DELAY_MAX.days} days.")
    task = ReviewTask.objects.select_related("report").get(pk=task_id)
    if not task.report.items.exclude(location="").exists():
        raise InvalidDecision("effective_at", "This case has nothing on the platform to remove later; take it "
                                              "down now.")
    deadline = task.report.deadline_at
    if deadline is not None and effective_at > deadline and not past_deadline_confirmed:
        raise PastDeadline(deadline, effective_at)
    return decision_make(task_id=task_id, user=user, outcome=Decision.Outcome.TAKEDOWN, reason=reason, note=note,
                         reporter_template=reporter_template, uploader_template=uploader_template,
                         effective_at=effective_at)


def delayed_takedowns_release(*, now: datetime | None = None) -> list[int]:
    """Send the removals and notices of every delayed takedown whose time has come (beat, every minute).
    Each is released once (a conditional update), so overlapping beats never send one twice. Returns their ids."""
    now = now or timezone.now()
    released: list[int] = []
    due = Decision.objects.filter(effective_at__lte=now, released_at=None).order_by("effective_at")
    for decision_id in due.values_list("id", flat=True)[:500]:
        with transaction.atomic():
            if not Decision.objects.filter(pk=decision_id, released_at=None).update(released_at=now):
                continue
            action_ids = list(Action.objects.filter(decision_id=decision_id, status=Action.Status.PENDING)
                              .values_list("id", flat=True))
            audit_record(actor=SYSTEM, action="decision.took_effect", object_type="decision", object_id=decision_id,
                         data={"actions": action_ids})
            transaction.on_commit(_sender(action_ids, decision_id))
        released.append(decision_id)
    return released


def _sender(action_ids: list[int], decision_id: int) -> Callable[[], None]:
    def send() -> None:
        jobs.actions_carry_out(action_ids)
        jobs.decision_followup(decision_id)  # statements of reasons, notices, the copy sweep
    return send


def delayed_takedown_effective_now(*, decision_id: int, user: Any) -> Decision:
    """Carry a delayed takedown out now rather than at its time (e.g. the police gave the go-ahead early)."""
    require(user, PERM_DECIDE, "carry out delayed takedowns")
    with transaction.atomic():
        decision = Decision.objects.select_for_update().get(pk=decision_id)
        if decision.effective_at is None or decision.released_at is not None:
            return decision
        before = {"effective_at": decision.effective_at.isoformat()}
        now = timezone.now()
        # With it, the decisions of the reports that joined the case (services/joining.py) take effect too.
        Decision.objects.filter(pk__in=decision_group(decision), released_at=None).update(effective_at=now)
        audit_record(actor=actor_for_user(user), action="decision.effective_now", object_type="decision",
                     object_id=decision.pk, before=before, after={"effective_at": now.isoformat()})
    delayed_takedowns_release(now=now)
    decision.refresh_from_db()
    return decision
