"""Claiming cases, escalating, commenting, deciding them, and four-eyes review.

Which decisions need a second reviewer (four-eyes), and why:
- **Irreversible**: the child-safety procedure (reason ``possible_minor``). Handing a case to the
  child-safety procedure means reporting it outside this system, which cannot be recalled. The
  first reviewer's flag takes effect at once (the case leaves ordinary handling and its media is
  withheld from everyone in the console); the hand-over itself waits for a different senior.
- **Overrides of automation**: any human decision on a report that an automatic policy decided
  (a ``Decision`` with ``automated=True``). Only seniors may propose one; a different senior confirms.
- Takedowns, no-violation and needs-information decisions are reversible (an appeal restores content
  through the Enforcer and withdraws the hash; a closed case can be reopened), so one moderator decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.models import Bank
from moderation.audit import actor_for_user, audit_record
from moderation.models import (
    Action,
    CaseNote,
    ChildSafetyReferral,
    Decision,
    MediaHash,
    ProposedDecision,
    Report,
    ReportedItem,
    ReviewTask,
)
from moderation.platforms import get_enforcer
from moderation.roles import (
    PERM_COMMENT,
    PERM_DECIDE,
    PERM_ESCALATE,
    PERM_OVERRIDE_AUTOMATION,
    PERM_SECOND_REVIEW,
    PERM_VIEW_QUEUE,
    require,
)
from moderation.services.notices import decision_followup_enqueue
from moderation.services.video import report_videos_to_bank
from moderation.signals import decision_carried_out

TAKEDOWN_REASONS = {Decision.Reason.NCII, Decision.Reason.SYNTHETIC_NCII, Decision.Reason.KNOWN_COPY,
                    Decision.Reason.OTHER}
NO_VIOLATION_REASONS = {Decision.Reason.NOT_INTIMATE, Decision.Reason.NOT_SUBJECT, Decision.Reason.NOT_FOUND,
                        Decision.Reason.OTHER}
REASONS_BY_OUTCOME: dict[str, set[str]] = {
    Decision.Outcome.TAKEDOWN: set(TAKEDOWN_REASONS),
    Decision.Outcome.NO_VIOLATION: set(NO_VIOLATION_REASONS),
    Decision.Outcome.NEEDS_INFORMATION: {Decision.Reason.NEEDS_INFORMATION},
    Decision.Outcome.CHILD_SAFETY: {Decision.Reason.POSSIBLE_MINOR},
}
# Outcomes that cannot be undone; see the module docstring.
IRREVERSIBLE_OUTCOMES = {Decision.Outcome.CHILD_SAFETY}
UNDECIDED_STATES = (ReviewTask.State.OPEN, ReviewTask.State.CLAIMED, ReviewTask.State.ESCALATED,
                    ReviewTask.State.AWAITING_SECOND)
# Hashes of removed media that go into the confirmed bank, so re-uploads are blocked.
CONFIRMED_ALGORITHMS = ("pdq", "md5", "sha256")
NOTE_MAX_CHARS = 5000


class ReviewError(Exception):
    """A review step that cannot happen now (claimed by someone else, already decided...)."""


class FourEyesRequired(ReviewError):
    """The decision needs a second reviewer: propose it (``decision_propose``) instead."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(f"This decision needs a second reviewer because {why}. Propose it; a different "
                         "senior moderator confirms it.")


class InvalidDecision(ValueError):
    """The decision's input does not fit; ``field`` names what to change."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def _snapshot(task: ReviewTask, report: Report | None = None) -> dict[str, Any]:
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
    return Q(state=ReviewTask.State.ESCALATED) & (Q(assignee=None) | Q(lease_expires_at__lt=now) | Q(assignee=user))


def task_claim(*, task_id: int, user: Any) -> ReviewTask:
    """Claim a case for ``user`` (a lease). Raises ``ReviewError`` if someone else holds it.

    An escalated case stays escalated while a senior holds it; only seniors may claim one.
    """
    require(user, PERM_VIEW_QUEUE, "claim cases")
    now = timezone.now()
    lease = now + timedelta(minutes=settings.TAKEDOWN_CLAIM_LEASE_MINUTES)
    with transaction.atomic():
        # A conditional update: zero rows means another moderator holds it or it is decided.
        updated = ReviewTask.objects.filter(Q(pk=task_id) & _ordinary_claimable(user)).update(
            state=ReviewTask.State.CLAIMED, assignee=user, claimed_at=now, lease_expires_at=lease, updated_at=now)
        if not updated and user.has_perm(PERM_SECOND_REVIEW):
            updated = ReviewTask.objects.filter(Q(pk=task_id) & _escalated_claimable(user)).update(
                assignee=user, claimed_at=now, lease_expires_at=lease, updated_at=now)
        task = ReviewTask.objects.get(pk=task_id)
        if not updated:
            if task.state == ReviewTask.State.DECIDED:
                raise ReviewError("This case has already been decided.")
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

    Seniors also get escalated cases nobody holds, in the same priority order.
    """
    require(user, PERM_VIEW_QUEUE, "claim cases")
    now = timezone.now()
    free = Q(state=ReviewTask.State.OPEN) | Q(state=ReviewTask.State.CLAIMED, lease_expires_at__lt=now)
    if user.has_perm(PERM_SECOND_REVIEW):
        free |= Q(state=ReviewTask.State.ESCALATED) & (Q(assignee=None) | Q(lease_expires_at__lt=now))
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


def _clean_note(note: str, *, required: bool, what: str) -> str:
    text = (note or "").strip()
    if required and not text:
        raise InvalidDecision("note", f"Please write a note: {what}.")
    if len(text) > NOTE_MAX_CHARS:
        raise InvalidDecision("note", f"The note is {len(text)} characters long; keep it under {NOTE_MAX_CHARS}.")
    return text


def case_comment(*, task_id: int, user: Any, text: str) -> CaseNote:
    """Add a comment to a case (any role from triage up). The text stays out of the audit log."""
    require(user, PERM_COMMENT, "comment on cases")
    body = _clean_note(text, required=True, what="the comment is empty")
    with transaction.atomic():
        task = ReviewTask.objects.get(pk=task_id)
        note = CaseNote.objects.create(task=task, author=user, kind=CaseNote.Kind.COMMENT, text=body)
        audit_record(actor=actor_for_user(user), action="task.commented", object_type="task", object_id=task.pk,
                     data={"note": note.pk})
    return note


def task_escalate(*, task_id: int, user: Any, note: str) -> ReviewTask:
    """Send a case to the senior moderators, with a note saying why. The escalating user lets go of it."""
    require(user, PERM_ESCALATE, "escalate cases")
    text = _clean_note(note, required=True, what="say why the case needs a senior moderator")
    now = timezone.now()
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(pk=task_id)
        before = _snapshot(task)
        updated = ReviewTask.objects.filter(Q(pk=task_id) & _ordinary_claimable(user)).update(
            state=ReviewTask.State.ESCALATED, assignee=None, claimed_at=None, lease_expires_at=None, updated_at=now)
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
                     data={"note": case_note.pk}, reason="escalated to a senior moderator",
                     before=before, after=_snapshot(task))
    return task


def task_reopen(*, task_id: int, actor: str, reason: str) -> ReviewTask:
    """Put a closed case back in the queue (e.g. the reporter sent the information asked for)."""
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(pk=task_id)
        if task.state != ReviewTask.State.DECIDED:
            return task
        before = _snapshot(task)
        task.state = ReviewTask.State.OPEN
        task.closed_at = None
        task.assignee = None
        task.lease_expires_at = None
        task.save(update_fields=["state", "closed_at", "assignee", "lease_expires_at", "updated_at"])
        audit_record(actor=actor, action="task.reopened", object_type="task", object_id=task.pk, reason=reason,
                     before=before, after=_snapshot(task))
    return task


@dataclass(frozen=True)
class DecisionResult:
    decision: Decision
    actions: list[Action]


@dataclass(frozen=True)
class SubmitResult:
    """What ``decision_submit`` did: decided at once, or proposed for a second reviewer."""

    decision: Decision | None = None
    proposal: ProposedDecision | None = None
    actions: list[Action] = field(default_factory=list)


def _check_templates(reporter_template: str, uploader_template: str) -> None:
    from moderation.services.message_templates import message_choice

    for field_name, key, audience in (("reporter_template", reporter_template, "reporter"),
                                      ("uploader_template", uploader_template, "uploader")):
        choice = message_choice(key) if key else None
        if key and (choice is None or choice.audience != audience):
            raise InvalidDecision(field_name, f"There is no {audience} message template called {key!r}; "
                                              "pick one from the list.")


def _validate(outcome: str, reason: str, note: str) -> str:
    if outcome not in Decision.Outcome.values:
        raise InvalidDecision("decision", f"Unknown decision {outcome!r}; use one of "
                                          f"{', '.join(Decision.Outcome.values)}.")
    allowed = REASONS_BY_OUTCOME[outcome]
    if reason not in allowed:
        raise InvalidDecision("reason", f"Reason {reason!r} does not fit a {outcome} decision; use one of "
                                        f"{', '.join(sorted(allowed))}.")
    return _clean_note(note, required=reason == Decision.Reason.OTHER,
                       what="explain the decision when the reason is 'other'")


def four_eyes_reason(*, task: ReviewTask, outcome: str) -> str:
    """Why this decision needs a second reviewer ("" when it does not)."""
    if outcome in IRREVERSIBLE_OUTCOMES:
        return "handing a case to the child-safety procedure cannot be undone"
    if Decision.objects.filter(report_id=task.report_id, automated=True).exists():
        return "it overrides an automatic decision"
    return ""


def decision_make(*, task_id: int, user: Any, outcome: str, reason: str, note: str = "",
                  reporter_template: str = "", uploader_template: str = "") -> DecisionResult:
    """Decide a case and start carrying the decision out.

    A takedown creates one removal action per item on the platform (run by a task after commit,
    retried until done), and adds the removed media's hashes to the confirmed bank so copies and
    re-uploads match. Raises ``FourEyesRequired`` for decisions that need a second reviewer.
    """
    require(user, PERM_DECIDE, "decide cases")
    text = _validate(outcome, reason, note)
    _check_templates(reporter_template, uploader_template)
    task = ReviewTask.objects.get(pk=task_id)
    if task.state == ReviewTask.State.ESCALATED:
        require(user, PERM_SECOND_REVIEW, "decide escalated cases")
    why = four_eyes_reason(task=task, outcome=outcome)
    if why:
        raise FourEyesRequired(why)
    task_claim(task_id=task_id, user=user)  # decides only what this moderator holds
    return _decide(task_id=task_id, decided_by=user, confirmed_by=None, outcome=outcome, reason=reason, note=text,
                   reporter_template=reporter_template, uploader_template=uploader_template,
                   overrides_automation=False, acting_user=user)


def decision_submit(*, task_id: int, user: Any, outcome: str, reason: str, note: str = "",
                    reporter_template: str = "", uploader_template: str = "") -> SubmitResult:
    """The console's "decide": decide at once, or propose when a second reviewer is needed."""
    task = ReviewTask.objects.get(pk=task_id)
    _validate(outcome, reason, note)
    if four_eyes_reason(task=task, outcome=outcome):
        proposal = decision_propose(task_id=task_id, user=user, outcome=outcome, reason=reason, note=note,
                                    reporter_template=reporter_template, uploader_template=uploader_template)
        return SubmitResult(proposal=proposal)
    result = decision_make(task_id=task_id, user=user, outcome=outcome, reason=reason, note=note,
                           reporter_template=reporter_template, uploader_template=uploader_template)
    return SubmitResult(decision=result.decision, actions=result.actions)


def decision_propose(*, task_id: int, user: Any, outcome: str, reason: str, note: str = "",
                     reporter_template: str = "", uploader_template: str = "") -> ProposedDecision:
    """Propose a decision that needs a second reviewer. The case waits for a different senior.

    A possible minor takes effect at once: the case leaves ordinary handling and its media is withheld.
    """
    require(user, PERM_DECIDE, "decide cases")
    text = _validate(outcome, reason, note)
    _check_templates(reporter_template, uploader_template)
    task = ReviewTask.objects.get(pk=task_id)
    if task.state == ReviewTask.State.ESCALATED:
        require(user, PERM_SECOND_REVIEW, "decide escalated cases")
    why = four_eyes_reason(task=task, outcome=outcome)
    if not why:
        raise ReviewError("This decision does not need a second reviewer; decide it directly.")
    overrides = why.startswith("it overrides")
    if overrides:
        require(user, PERM_OVERRIDE_AUTOMATION, "override automatic decisions")
    task_claim(task_id=task_id, user=user)
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().select_related("report").get(pk=task_id)
        if task.state not in (ReviewTask.State.CLAIMED, ReviewTask.State.ESCALATED) or task.assignee_id != user.pk:
            raise ReviewError("You no longer hold this case; claim it again.")
        before = _snapshot(task, task.report)
        proposal = ProposedDecision.objects.create(
            task=task, proposed_by=user, outcome=outcome, reason=reason, note=text,
            reporter_template=reporter_template, uploader_template=uploader_template, why_four_eyes=why,
            overrides_automation=overrides)
        task.state = ReviewTask.State.AWAITING_SECOND
        task.assignee = None
        task.lease_expires_at = None
        task.save(update_fields=["state", "assignee", "lease_expires_at", "updated_at"])
        if outcome == Decision.Outcome.CHILD_SAFETY:
            ChildSafetyReferral.objects.create(report=task.report, task=task, flagged_by=user)
        audit_record(actor=actor_for_user(user), action="decision.proposed", object_type="task", object_id=task.pk,
                     data={"proposal": proposal.pk, "outcome": outcome}, reason=reason,
                     before=before, after=_snapshot(task, task.report))
    return proposal


def _pending_proposal(proposal_id: int, user: Any, verb: str) -> ProposedDecision:
    require(user, PERM_SECOND_REVIEW, f"{verb} proposed decisions")
    proposal = ProposedDecision.objects.select_related("task").get(pk=proposal_id)
    if proposal.proposed_by_id == user.pk:
        raise ReviewError("You proposed this decision; a different senior moderator must review it.")
    return proposal


def proposal_confirm(*, proposal_id: int, user: Any) -> DecisionResult:
    """A second, different senior confirms a proposed decision, which then takes effect."""
    proposal = _pending_proposal(proposal_id, user, "confirm")
    now = timezone.now()
    with transaction.atomic():
        # Conditional update: two seniors confirming at once produce one decision.
        if not ProposedDecision.objects.filter(pk=proposal.pk, state=ProposedDecision.State.PENDING).update(
                state=ProposedDecision.State.CONFIRMED, reviewed_by=user, reviewed_at=now):
            raise ReviewError("This proposal has already been reviewed.")
        result = _decide(task_id=proposal.task_id, decided_by=proposal.proposed_by, confirmed_by=user,
                         outcome=proposal.outcome, reason=proposal.reason, note=proposal.note,
                         reporter_template=proposal.reporter_template,
                         uploader_template=proposal.uploader_template,
                         overrides_automation=proposal.overrides_automation, acting_user=user)
        audit_record(actor=actor_for_user(user), action="decision.confirmed", object_type="task",
                     object_id=proposal.task_id, reason=proposal.reason,
                     data={"proposal": proposal.pk, "decision": result.decision.pk,
                           "proposed_by": actor_for_user(proposal.proposed_by)})
    return result


def proposal_reject(*, proposal_id: int, user: Any, note: str) -> ReviewTask:
    """A second senior disagrees: the proposal lapses and the case is escalated for a senior to decide."""
    proposal = _pending_proposal(proposal_id, user, "reject")
    text = _clean_note(note, required=True, what="say why you do not confirm the proposed decision")
    now = timezone.now()
    with transaction.atomic():
        if not ProposedDecision.objects.filter(pk=proposal.pk, state=ProposedDecision.State.PENDING).update(
                state=ProposedDecision.State.REJECTED, reviewed_by=user, reviewed_at=now):
            raise ReviewError("This proposal has already been reviewed.")
        task = ReviewTask.objects.select_for_update().get(pk=proposal.task_id)
        before = _snapshot(task)
        task.state = ReviewTask.State.ESCALATED
        task.save(update_fields=["state", "updated_at"])
        ChildSafetyReferral.objects.filter(task=task, state=ChildSafetyReferral.State.PENDING).update(
            state=ChildSafetyReferral.State.RETURNED)
        case_note = CaseNote.objects.create(task=task, author=user, kind=CaseNote.Kind.SECOND_REVIEW, text=text)
        audit_record(actor=actor_for_user(user), action="decision.rejected", object_type="task", object_id=task.pk,
                     data={"proposal": proposal.pk, "note": case_note.pk}, reason=proposal.reason,
                     before=before, after=_snapshot(task))
    return task


def _decide(*, task_id: int, decided_by: Any, confirmed_by: Any, outcome: str, reason: str, note: str,
            reporter_template: str, uploader_template: str, overrides_automation: bool,
            acting_user: Any) -> DecisionResult:
    actor = actor_for_user(acting_user)
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().select_related("report").get(pk=task_id)
        if task.state == ReviewTask.State.DECIDED:
            raise ReviewError("This case has already been decided.")
        held = task.state != ReviewTask.State.AWAITING_SECOND and task.assignee_id == decided_by.pk
        if confirmed_by is None and not held:
            raise ReviewError("You no longer hold this case; claim it again.")
        report = task.report
        before = _snapshot(task, report)
        decision = Decision.objects.create(task=task, report=report, outcome=outcome, reason=reason,
                                           note=note, decided_by=decided_by, confirmed_by=confirmed_by,
                                           overrides_automation=overrides_automation,
                                           reporter_template=reporter_template, uploader_template=uploader_template)
        now = timezone.now()
        task.state = ReviewTask.State.DECIDED
        task.closed_at = now
        task.lease_expires_at = None
        task.save(update_fields=["state", "closed_at", "lease_expires_at", "updated_at"])
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
        elif outcome == Decision.Outcome.NO_VIOLATION:
            report.items.exclude(state=ReportedItem.State.REMOVED).update(state=ReportedItem.State.KEPT)
            report.status = Report.Status.NO_VIOLATION
            report.closed_at = now
        elif outcome == Decision.Outcome.NEEDS_INFORMATION:
            report.status = Report.Status.NEEDS_INFORMATION
        elif outcome == Decision.Outcome.CHILD_SAFETY:
            # Out of ordinary handling for good: no takedown action, no bank entry from this case.
            ChildSafetyReferral.objects.filter(task=task, state=ChildSafetyReferral.State.PENDING).update(
                state=ChildSafetyReferral.State.REFERRED, confirmed_by=confirmed_by, referred_at=now)
            report.closed_at = now
        report.save(update_fields=["status", "closed_at", "updated_at"])
        audit_record(actor=actor, action="decision.made", object_type="report", object_id=report.pk,
                     data={"decision": decision.pk, "outcome": outcome, "reason": reason, "task": task.pk,
                           "decided_by": actor_for_user(decided_by),
                           "confirmed_by": actor_for_user(confirmed_by) if confirmed_by else None},
                     reason=reason, before=before, after=_snapshot(task, report))
        # The exchange records our verdict on partners' hashes this case matched (moderation/signals.py).
        decision_carried_out.send(sender=Decision, decision=decision)
        action_ids = [a.pk for a in actions]
        transaction.on_commit(lambda: _enqueue_actions(action_ids))
        # Notices, statements of reasons and the copy sweep (services/notices.py), once committed.
        transaction.on_commit(lambda: decision_followup_enqueue(decision.pk))
    return DecisionResult(decision, actions)


def _bank_confirmed_hashes(report: Report, actor: str) -> None:
    bank = bank_get_or_create(name=settings.TAKEDOWN_CONFIRMED_BANK, kind=Bank.Kind.LOCAL,
                              description="Hashes of content removed after review; blocks re-uploads.")
    hashes = list(MediaHash.objects.filter(media__reported_items__report=report,
                                           algorithm__in=CONFIRMED_ALGORITHMS)
                  .values_list("algorithm", "value").distinct())
    added = bank_add_entries(bank=bank, hashes=hashes, source=f"case:{report.case_number}")
    # Videos also bank their frame signatures, so re-encoded copies and clips match (hashing.video).
    videos = report_videos_to_bank(report=report, bank=bank, source=f"case:{report.case_number}")
    if added or videos:
        audit_record(actor=actor, action="bank.entries_added", object_type="bank", object_id=bank.pk,
                     data={"entries": [e.pk for e in added], "case_number": report.case_number,
                           "videos": [v.pk for v in videos]})


def _enqueue_actions(action_ids: list[int]) -> None:
    from moderation.tasks import carry_out_action

    for action_id in action_ids:
        carry_out_action.delay(action_id)
