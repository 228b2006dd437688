"""Claiming cases and deciding them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.models import Bank
from moderation.models import Action, Decision, MediaHash, Report, ReportedItem, ReviewTask
from moderation.platforms import get_enforcer
from moderation.services.audit import actor_for_user, audit_record
from moderation.services.roles import PERM_DECIDE, PERM_VIEW_QUEUE, require

TAKEDOWN_REASONS = {Decision.Reason.NCII, Decision.Reason.SYNTHETIC_NCII, Decision.Reason.KNOWN_COPY,
                    Decision.Reason.OTHER}
NO_VIOLATION_REASONS = {Decision.Reason.NOT_INTIMATE, Decision.Reason.NOT_SUBJECT, Decision.Reason.NOT_FOUND,
                        Decision.Reason.OTHER}
# Hashes of removed media that go into the confirmed bank, so re-uploads are blocked.
CONFIRMED_ALGORITHMS = ("pdq", "md5", "sha256")


class ReviewError(Exception):
    """A review step that cannot happen now (claimed by someone else, already decided...)."""


class InvalidDecision(ValueError):
    """The decision's input does not fit; ``field`` names what to change."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def _claimable(user: Any) -> Q:
    now = timezone.now()
    return (Q(state=ReviewTask.State.OPEN) | Q(state=ReviewTask.State.CLAIMED, lease_expires_at__lt=now)
            | Q(state=ReviewTask.State.CLAIMED, assignee=user))


def task_claim(*, task_id: int, user: Any) -> ReviewTask:
    """Claim a case for ``user`` (a lease). Raises ``ReviewError`` if someone else holds it."""
    require(user, PERM_VIEW_QUEUE, "claim cases")
    now = timezone.now()
    lease = now + timedelta(minutes=settings.TAKEDOWN_CLAIM_LEASE_MINUTES)
    with transaction.atomic():
        # A conditional update: zero rows means another moderator holds it or it is decided.
        updated = ReviewTask.objects.filter(Q(pk=task_id) & _claimable(user)).update(
            state=ReviewTask.State.CLAIMED, assignee=user, claimed_at=now, lease_expires_at=lease, updated_at=now)
        task = ReviewTask.objects.get(pk=task_id)
        if not updated:
            if task.state == ReviewTask.State.DECIDED:
                raise ReviewError("This case has already been decided.")
            raise ReviewError("Another moderator is working on this case.")
        audit_record(actor=actor_for_user(user), action="task.claimed", object_type="task", object_id=task.pk,
                     data={"lease_expires_at": lease.isoformat()})
    return task


def task_next(*, user: Any) -> ReviewTask | None:
    """Claim the highest-priority case nobody holds; two moderators never get the same one."""
    require(user, PERM_VIEW_QUEUE, "claim cases")
    now = timezone.now()
    with transaction.atomic():
        task = (ReviewTask.objects.select_for_update(skip_locked=True)
                .filter(Q(state=ReviewTask.State.OPEN) | Q(state=ReviewTask.State.CLAIMED, lease_expires_at__lt=now))
                .order_by("-priority", "created_at").first())
        if task is None:
            return None
        return task_claim(task_id=task.pk, user=user)


def task_release(*, task_id: int, user: Any) -> ReviewTask:
    with transaction.atomic():
        updated = ReviewTask.objects.filter(pk=task_id, state=ReviewTask.State.CLAIMED, assignee=user).update(
            state=ReviewTask.State.OPEN, assignee=None, claimed_at=None, lease_expires_at=None,
            updated_at=timezone.now())
        if updated:
            audit_record(actor=actor_for_user(user), action="task.released", object_type="task", object_id=task_id)
    return ReviewTask.objects.get(pk=task_id)


@dataclass(frozen=True)
class DecisionResult:
    decision: Decision
    actions: list[Action]


def decision_make(*, task_id: int, user: Any, outcome: str, reason: str, note: str = "") -> DecisionResult:
    """Decide a case and start carrying the decision out.

    A takedown creates one removal action per item on the platform (run by a task after commit,
    retried until done), and adds the removed media's hashes to the confirmed bank so copies and
    re-uploads match.
    """
    require(user, PERM_DECIDE, "decide cases")
    if outcome not in Decision.Outcome.values:
        raise InvalidDecision("decision", f"Unknown decision {outcome!r}; use 'takedown' or 'no_violation'.")
    allowed = TAKEDOWN_REASONS if outcome == Decision.Outcome.TAKEDOWN else NO_VIOLATION_REASONS
    if reason not in allowed:
        raise InvalidDecision("reason", f"Reason {reason!r} does not fit a {outcome} decision; use one of "
                                        f"{', '.join(sorted(allowed))}.")
    if reason == Decision.Reason.OTHER and not note.strip():
        raise InvalidDecision("note", "Please explain the decision in the note when the reason is 'other'.")
    task_claim(task_id=task_id, user=user)  # decides only what this moderator holds
    actor = actor_for_user(user)
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().select_related("report").get(pk=task_id)
        if task.state == ReviewTask.State.DECIDED:
            raise ReviewError("This case has already been decided.")
        report = task.report
        decision = Decision.objects.create(task=task, report=report, outcome=outcome, reason=reason,
                                           note=note.strip(), decided_by=user)
        now = timezone.now()
        task.state = ReviewTask.State.DECIDED
        task.closed_at = now
        task.lease_expires_at = None
        task.save(update_fields=["state", "closed_at", "lease_expires_at", "updated_at"])
        audit_record(actor=actor, action="decision.made", object_type="report", object_id=report.pk,
                     data={"decision": decision.pk, "outcome": outcome, "reason": reason, "task": task.pk})
        actions: list[Action] = []
        if outcome == Decision.Outcome.TAKEDOWN:
            enforcer = get_enforcer()
            for item in report.items.exclude(location=""):
                actions.append(Action.objects.create(
                    decision=decision, item=item, kind=Action.Kind.REMOVE, enforcer=enforcer.name,
                    idempotency_key=f"decision-{decision.pk}-item-{item.pk}-remove"))
            _bank_confirmed_hashes(report, actor)
            report.status = Report.Status.ACTIONING if actions else Report.Status.REMOVED
            report.closed_at = None if actions else now
        else:
            report.items.exclude(state=ReportedItem.State.REMOVED).update(state=ReportedItem.State.KEPT)
            report.status = Report.Status.NO_VIOLATION
            report.closed_at = now
        report.save(update_fields=["status", "closed_at", "updated_at"])
        action_ids = [a.pk for a in actions]
        transaction.on_commit(lambda: _enqueue_actions(action_ids))
    return DecisionResult(decision, actions)


def _bank_confirmed_hashes(report: Report, actor: str) -> None:
    bank = bank_get_or_create(name=settings.TAKEDOWN_CONFIRMED_BANK, kind=Bank.Kind.LOCAL,
                              description="Hashes of content removed after review; blocks re-uploads.")
    hashes = list(MediaHash.objects.filter(media__reported_items__report=report,
                                           algorithm__in=CONFIRMED_ALGORITHMS)
                  .values_list("algorithm", "value").distinct())
    added = bank_add_entries(bank=bank, hashes=hashes, source=f"case:{report.case_number}")
    if added:
        audit_record(actor=actor, action="bank.entries_added", object_type="bank", object_id=bank.pk,
                     data={"entries": [e.pk for e in added], "case_number": report.case_number})


def _enqueue_actions(action_ids: list[int]) -> None:
    from moderation.tasks import carry_out_action

    for action_id in action_ids:
        carry_out_action.delay(action_id)
