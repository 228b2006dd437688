"""Who works a case: claims (leases), "next case", release, escalation to seniors, comments, reopening."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from moderation.audit import actor_for_user, audit_record
from moderation.models import CaseNote, Report, ReviewTask
from moderation.roles import PERM_COMMENT, PERM_ESCALATE, PERM_SECOND_REVIEW, PERM_VIEW_QUEUE, require
from moderation.services import routing

NOTE_MAX_CHARS = 5000


class ReviewError(Exception):
    """A review step that cannot happen now (claimed by someone else, already decided...)."""


class InvalidDecision(ValueError):
    """The decision's input does not fit; ``field`` names what to change."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def task_snapshot(task: ReviewTask, report: Report | None = None) -> dict[str, Any]:
    shot: dict[str, Any] = {"task_state": task.state, "assignee": task.assignee_id}
    if report is not None:
        shot["report_status"] = report.status
    return shot


def _ordinary_claimable(user: Any) -> Q:
    now = timezone.now()
    return (Q(state=ReviewTask.State.OPEN) | Q(state=ReviewTask.State.CLAIMED, lease_expires_at__lt=now)
            | Q(state=ReviewTask.State.CLAIMED, assignee=user))


def _escalated_claimable(user: Any) -> Q:
    now = timezone.now()
    return (Q(state=ReviewTask.State.ESCALATED) & (Q(assignee=None) | Q(lease_expires_at__lt=now) | Q(assignee=user))
            & (Q(escalated_to=None) | Q(escalated_to=user)))


def task_claim(*, task_id: int, user: Any) -> ReviewTask:
    """Claim a case for ``user`` (a lease). Raises ``ReviewError`` if someone else holds it.

    An escalated case stays escalated while a senior holds it; only seniors may claim one.
    """
    require(user, PERM_VIEW_QUEUE, "claim cases")
    now = timezone.now()
    lease = now + timedelta(minutes=settings.TAKEDOWN_CLAIM_LEASE_MINUTES)
    queued = ReviewTask.objects.filter(pk=task_id).select_related("queue").only("queue").first()
    if queued is not None and not routing.user_may_work(user, queued.queue):
        raise ReviewError(f"This case is in the queue \"{queued.queue}\", which your role does not work.")
    with transaction.atomic():
        # A conditional update: zero rows means another moderator holds it or it is decided.
        updated = ReviewTask.objects.filter(Q(pk=task_id) & _ordinary_claimable(user)).update(
            state=ReviewTask.State.CLAIMED, assignee=user, claimed_at=now, lease_expires_at=lease, updated_at=now,
            first_claimed_at=Coalesce(F("first_claimed_at"), Value(now)))
        if not updated and user.has_perm(PERM_SECOND_REVIEW):
            updated = ReviewTask.objects.filter(Q(pk=task_id) & _escalated_claimable(user)).update(
                assignee=user, claimed_at=now, lease_expires_at=lease, updated_at=now,
                first_claimed_at=Coalesce(F("first_claimed_at"), Value(now)))
        task = ReviewTask.objects.get(pk=task_id)
        if not updated:
            if task.state == ReviewTask.State.DECIDED:
                raise ReviewError("This case has already been decided.")
            if task.state == ReviewTask.State.ESCALATED and task.escalated_to_id not in (None, user.pk):
                raise ReviewError("This case was escalated to another senior moderator.")
            if task.state == ReviewTask.State.ESCALATED and task.assignee_id in (None, user.pk):
                raise ReviewError("This case was escalated: a senior moderator decides it.")
            if task.state == ReviewTask.State.AWAITING_SECOND:
                raise ReviewError("This case is waiting for a second reviewer to confirm a proposed decision.")
            raise ReviewError("Another moderator is working on this case.")
        audit_record(actor=actor_for_user(user), action="task.claimed", object_type="task", object_id=task.pk,
                     data={"lease_expires_at": lease.isoformat()}, after={"task_state": task.state,
                                                                          "assignee": user.pk})
    return task


def task_next(*, user: Any) -> ReviewTask | None:
    """Claim the highest-priority case nobody holds; two moderators never get the same one.

    Seniors also get escalated cases nobody holds (not those escalated to another senior), in the same
    priority order. Only cases in queues the user may work, and none on hold until its time passes.
    """
    require(user, PERM_VIEW_QUEUE, "claim cases")
    now = timezone.now()
    free = Q(state=ReviewTask.State.OPEN) | Q(state=ReviewTask.State.CLAIMED, lease_expires_at__lt=now)
    if user.has_perm(PERM_SECOND_REVIEW):
        free |= (Q(state=ReviewTask.State.ESCALATED) & (Q(assignee=None) | Q(lease_expires_at__lt=now))
                 & (Q(escalated_to=None) | Q(escalated_to=user)))
    free &= routing.queues_workable(user) & (Q(held_until=None) | Q(held_until__lte=now))
    with transaction.atomic():
        task = (ReviewTask.objects.select_for_update(skip_locked=True).filter(free)
                .order_by("-priority", "created_at").first())
        if task is None:
            return None
        return task_claim(task_id=task.pk, user=user)


def task_release(*, task_id: int, user: Any) -> ReviewTask:
    with transaction.atomic():
        updated = ReviewTask.objects.filter(pk=task_id, state=ReviewTask.State.CLAIMED, assignee=user).update(
            state=ReviewTask.State.OPEN, assignee=None, claimed_at=None, lease_expires_at=None,
            updated_at=timezone.now())
        if not updated:
            updated = ReviewTask.objects.filter(pk=task_id, state=ReviewTask.State.ESCALATED, assignee=user).update(
                assignee=None, claimed_at=None, lease_expires_at=None, updated_at=timezone.now())
        if updated:
            audit_record(actor=actor_for_user(user), action="task.released", object_type="task", object_id=task_id)
    return ReviewTask.objects.get(pk=task_id)


def note_clean(note: str, *, required: bool, what: str) -> str:
    text = (note or "").strip()
    if required and not text:
        raise InvalidDecision("note", f"Please write a note: {what}.")
    if len(text) > NOTE_MAX_CHARS:
        raise InvalidDecision("note", f"The note is {len(text)} characters long; keep it under {NOTE_MAX_CHARS}.")
    return text


def case_comment(*, task_id: int, user: Any, text: str) -> CaseNote:
    """Add a comment to a case (any role from triage up). The text stays out of the audit log."""
    require(user, PERM_COMMENT, "comment on cases")
    body = note_clean(text, required=True, what="the comment is empty")
    with transaction.atomic():
        task = ReviewTask.objects.get(pk=task_id)
        note = CaseNote.objects.create(task=task, author=user, kind=CaseNote.Kind.COMMENT, text=body)
        audit_record(actor=actor_for_user(user), action="task.commented", object_type="task", object_id=task.pk,
                     data={"note": note.pk})
    return note


def task_escalate(*, task_id: int, user: Any, note: str, to_user_id: int | None = None) -> ReviewTask:
    """Send a case to the senior moderators, with a note saying why. The escalating user lets go of it.

    With ``to_user_id`` the case goes to that one senior moderator: only they draw or claim it.
    """
    require(user, PERM_ESCALATE, "escalate cases")
    text = note_clean(note, required=True, what="say why the case needs a senior moderator")
    now = timezone.now()
    senior = None
    if to_user_id is not None:
        senior = get_user_model().objects.filter(pk=to_user_id, is_active=True).first()
        if senior is None or not senior.has_perm(PERM_SECOND_REVIEW):
            raise InvalidDecision("to", "Choose a senior moderator to escalate the case to.")
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(pk=task_id)
        before = task_snapshot(task)
        updated = ReviewTask.objects.filter(Q(pk=task_id) & _ordinary_claimable(user)).update(
            state=ReviewTask.State.ESCALATED, assignee=None, claimed_at=None, lease_expires_at=None, updated_at=now,
            escalated_to=senior)
        if not updated:
            if task.state == ReviewTask.State.ESCALATED:
                raise ReviewError("This case is already escalated.")
            if task.state in (ReviewTask.State.DECIDED, ReviewTask.State.AWAITING_SECOND):
                raise ReviewError("Only an open case can be escalated.")
            raise ReviewError("Another moderator is working on this case; ask them to escalate it or wait "
                              "until their claim expires.")
        task.refresh_from_db()
        case_note = CaseNote.objects.create(task=task, author=user, kind=CaseNote.Kind.ESCALATION, text=text)
        audit_record(actor=actor_for_user(user), action="task.escalated", object_type="task", object_id=task.pk,
                     data={"note": case_note.pk, **({"to": senior.pk} if senior else {})},
                     reason=f"escalated to {senior.get_username()}" if senior else "escalated to a senior moderator",
                     before=before, after={**task_snapshot(task), **({"escalated_to": senior.pk} if senior else {})})
    return task


def task_reopen(*, task_id: int, actor: str, reason: str) -> ReviewTask:
    """Put a closed case back in the queue (e.g. the reporter sent the information asked for)."""
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(pk=task_id)
        if task.state != ReviewTask.State.DECIDED:
            return task
        before = task_snapshot(task)
        task.state = ReviewTask.State.OPEN
        task.closed_at = None
        task.assignee = None
        task.lease_expires_at = None
        task.save(update_fields=["state", "closed_at", "assignee", "lease_expires_at", "updated_at"])
        audit_record(actor=actor, action="task.reopened", object_type="task", object_id=task.pk, reason=reason,
                     before=before, after=task_snapshot(task))
    return task
