"""Deciding cases: decisions, four-eyes review, deciding a group of cases, and what follows a decision.

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

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from moderation import jobs
from moderation.audit import actor_for_user, audit_record
from moderation.models import (
    Action,
    CaseNote,
    ChildSafetyReferral,
    Decision,
    ProposedDecision,
    Report,
    ReportedItem,
    ReviewTask,
    StatementOfReasons,
)
from moderation.platforms import get_enforcer
from moderation.roles import PERM_DECIDE, PERM_OVERRIDE_AUTOMATION, PERM_SECOND_REVIEW, require
from moderation.services import dsa, enforcement, joining
from moderation.services.banking import confirmed_hashes_bank
from moderation.services.claims import InvalidDecision, ReviewError, note_clean, task_claim, task_snapshot
from moderation.services.message_templates import message_choice
from moderation.services.notices import already_sent, chosen_message, notice_send, redress_options, statement_context
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
# The batch of the group decision being made (``decision_submit_group``), read by ``_decide``.
_BATCH: ContextVar[str] = ContextVar("decision_batch", default="")
UNDECIDED_STATES = (ReviewTask.State.OPEN, ReviewTask.State.CLAIMED, ReviewTask.State.ESCALATED,
                    ReviewTask.State.AWAITING_SECOND)


class FourEyesRequired(ReviewError):
    """The decision needs a second reviewer: propose it (``decision_propose``) instead."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(f"This decision needs a second reviewer because {why}. Propose it; a different "
                         "senior moderator confirms it.")


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
    return note_clean(note, required=reason == Decision.Reason.OTHER,
                       what="explain the decision when the reason is 'other'")


def four_eyes_reason(*, task: ReviewTask, outcome: str) -> str:
    """Why this decision needs a second reviewer ("" when it does not)."""
    if outcome in IRREVERSIBLE_OUTCOMES:
        return "handing a case to the child-safety procedure cannot be undone"
    if Decision.objects.filter(report_id=task.report_id, automated=True).exists():
        return "it overrides an automatic decision"
    return ""


def _checked(*, task_id: int, user: Any, outcome: str, reason: str, note: str, reporter_template: str,
             uploader_template: str) -> tuple[str, str]:
    """What deciding and proposing check first: the user may decide this case, the input fits. Returns the
    cleaned note and why the decision needs a second reviewer ("" when it does not)."""
    require(user, PERM_DECIDE, "decide cases")
    text = _validate(outcome, reason, note)
    _check_templates(reporter_template, uploader_template)
    task = ReviewTask.objects.get(pk=task_id)
    if task.state == ReviewTask.State.ESCALATED:
        require(user, PERM_SECOND_REVIEW, "decide escalated cases")
    return text, four_eyes_reason(task=task, outcome=outcome)


def decision_make(*, task_id: int, user: Any, outcome: str, reason: str, note: str = "",
                  reporter_template: str = "", uploader_template: str = "",
                  effective_at: datetime | None = None) -> DecisionResult:
    """Decide a case and start carrying the decision out.

    A takedown creates one removal action per item on the platform (run by a task after commit,
    retried until done), and adds the removed media's hashes to the confirmed bank so copies and
    re-uploads match. Raises ``FourEyesRequired`` for decisions that need a second reviewer.
    With ``effective_at`` (a delayed takedown, checked by ``delayed_takedowns.takedown_schedule``) the
    removals and the notices wait until then (``delayed_takedowns.delayed_takedowns_release``).
    """
    text, why = _checked(task_id=task_id, user=user, outcome=outcome, reason=reason, note=note,
                         reporter_template=reporter_template, uploader_template=uploader_template)
    if why:
        raise FourEyesRequired(why)
    task_claim(task_id=task_id, user=user)  # decides only what this moderator holds
    return _decide(task_id=task_id, decided_by=user, confirmed_by=None, outcome=outcome, reason=reason, note=text,
                   reporter_template=reporter_template, uploader_template=uploader_template,
                   overrides_automation=False, acting_user=user, effective_at=effective_at)


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
    text, why = _checked(task_id=task_id, user=user, outcome=outcome, reason=reason, note=note,
                         reporter_template=reporter_template, uploader_template=uploader_template)
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
        before = task_snapshot(task, task.report)
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
                     before=before, after=task_snapshot(task, task.report))
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
    text = note_clean(note, required=True, what="say why you do not confirm the proposed decision")
    now = timezone.now()
    with transaction.atomic():
        if not ProposedDecision.objects.filter(pk=proposal.pk, state=ProposedDecision.State.PENDING).update(
                state=ProposedDecision.State.REJECTED, reviewed_by=user, reviewed_at=now):
            raise ReviewError("This proposal has already been reviewed.")
        task = ReviewTask.objects.select_for_update().get(pk=proposal.task_id)
        before = task_snapshot(task)
        task.state = ReviewTask.State.ESCALATED
        task.save(update_fields=["state", "updated_at"])
        ChildSafetyReferral.objects.filter(task=task, state=ChildSafetyReferral.State.PENDING).update(
            state=ChildSafetyReferral.State.RETURNED)
        case_note = CaseNote.objects.create(task=task, author=user, kind=CaseNote.Kind.SECOND_REVIEW, text=text)
        audit_record(actor=actor_for_user(user), action="decision.rejected", object_type="task", object_id=task.pk,
                     data={"proposal": proposal.pk, "note": case_note.pk}, reason=proposal.reason,
                     before=before, after=task_snapshot(task))
    return task


def _decide(*, task_id: int, decided_by: Any, confirmed_by: Any, outcome: str, reason: str, note: str,
            reporter_template: str, uploader_template: str, overrides_automation: bool,
            acting_user: Any, effective_at: datetime | None = None) -> DecisionResult:
    """Decide one case, and the reports that joined it (services/joining.py), in one transaction. Inside a
    group decision (``decision_submit_group``) the decisions join the group's batch and its follow-up;
    otherwise the case's own follow-up runs once everything commits."""
    actor = actor_for_user(acting_user)
    batch = _BATCH.get()
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().select_related("report").get(pk=task_id)
        if task.state == ReviewTask.State.DECIDED:
            raise ReviewError("This case has already been decided.")
        held = task.state != ReviewTask.State.AWAITING_SECOND and task.assignee_id == decided_by.pk
        if confirmed_by is None and not held:
            raise ReviewError("You no longer hold this case; claim it again.")
        report = task.report
        before = task_snapshot(task, report)
        joins = report.report_count > 1 and outcome != Decision.Outcome.NEEDS_INFORMATION
        decision = Decision.objects.create(task=task, report=report, outcome=outcome, reason=reason,
                                           note=note, decided_by=decided_by, confirmed_by=confirmed_by,
                                           overrides_automation=overrides_automation,
                                           reporter_template=reporter_template, uploader_template=uploader_template,
                                           effective_at=effective_at,
                                           batch=batch or (uuid.uuid4().hex if joins else ""))
        now = timezone.now()
        task.state = ReviewTask.State.DECIDED
        task.closed_at = now
        task.lease_expires_at = None
        task.save(update_fields=["state", "closed_at", "lease_expires_at", "updated_at"])
        actions: list[Action] = []
        if outcome == Decision.Outcome.TAKEDOWN:
            actions = enforcement.removals_create(decision=decision, items=report.items.exclude(location=""))
            confirmed_hashes_bank(report=report, actor=actor)
            report.status = Report.Status.ACTIONING if actions else Report.Status.REMOVED
            report.closed_at = None if actions else now
        elif outcome == Decision.Outcome.NO_VIOLATION:
            if overrides_automation:
                # A person found no violation in what an automatic policy took down: put it back.
                actions = enforcement.restorations_create(decision=decision, items=report.items.filter(
                    actions__decision__automated=True, actions__kind=Action.Kind.REMOVE).distinct())
            report.items.exclude(state=ReportedItem.State.REMOVED).update(state=ReportedItem.State.KEPT)
            report.status = Report.Status.NO_VIOLATION
            report.closed_at = now
        elif outcome == Decision.Outcome.NEEDS_INFORMATION:
            report.status = Report.Status.NEEDS_INFORMATION
            # Its reporter is asked; the reports that joined it need not wait: the oldest becomes a case.
            joining.joined_promote(case=report, why="the case waits for information from its reporter")
        elif outcome == Decision.Outcome.CHILD_SAFETY:
            # Out of ordinary handling for good: no takedown action, no bank entry from this case.
            ChildSafetyReferral.objects.filter(task=task, state=ChildSafetyReferral.State.PENDING).update(
                state=ChildSafetyReferral.State.REFERRED, confirmed_by=confirmed_by, referred_at=now)
            report.closed_at = now
        report.save(update_fields=["status", "closed_at", "updated_at"])
        audit_record(actor=actor, action="decision.made", object_type="report", object_id=report.pk,
                     data={"decision": decision.pk, "outcome": outcome, "reason": reason, "task": task.pk,
                           "decided_by": actor_for_user(decided_by),
                           "confirmed_by": actor_for_user(confirmed_by) if confirmed_by else None,
                           **({"effective_at": effective_at.isoformat()} if effective_at else {})},
                     reason=reason, before=before, after=task_snapshot(task, report))
        joined = joining.joined_decisions_create(decision=decision, case=report) if joins else []
        # The exchange records our verdict on partners' hashes this case matched (moderation/signals.py).
        decision_carried_out.send(sender=Decision, decision=decision)
        action_ids = [a.pk for a in actions] + list(Action.objects.filter(decision__in=joined).values_list(
            "pk", flat=True))
        if effective_at is None:
            transaction.on_commit(lambda: jobs.actions_carry_out(action_ids))
            # Notices, statements of reasons and the copy sweep, once committed: the group's follow-up
            # (decision_submit_group), the batch's, or this decision's own.
            if not _BATCH.get():
                if decision.batch:
                    transaction.on_commit(lambda: jobs.decisions_followup_batch(decision.batch))
                else:
                    transaction.on_commit(lambda: jobs.decision_followup(decision.pk))
    return DecisionResult(decision, actions)


class GroupDecisionError(ReviewError):
    """A case of the group could not be decided, so none was: ``task_id`` names it."""

    def __init__(self, task_id: int, why: Exception):
        self.task_id = task_id
        super().__init__(f"Case #{task_id} of the group could not be decided ({why}); nothing was decided. "
                         "Leave that case out of the group and decide again.")


def decision_submit_group(*, task_ids: list[int], user: Any, outcome: str, reason: str, note: str = "",
                          reporter_template: str = "", uploader_template: str = "") -> dict[int, SubmitResult]:
    """Decide a case and the near-duplicates shown with it the same way, in one transaction: all of them or
    none. ``task_ids[0]`` is the case on screen; its own errors are raised as they are, another case's as
    ``GroupDecisionError``. Each case is decided (or proposed, when it needs a second reviewer) and audited
    as if decided alone; the platform actions and notices follow once everything has committed. Returns the
    result per case, in the order given."""
    ordered = list(dict.fromkeys(task_ids))
    results: dict[int, SubmitResult] = {}
    batch = uuid.uuid4().hex
    token = _BATCH.set(batch)
    try:
        with transaction.atomic():
            for task_id in ordered:
                try:
                    results[task_id] = decision_submit(
                        task_id=task_id, user=user, outcome=outcome, reason=reason, note=note,
                        reporter_template=reporter_template, uploader_template=uploader_template)
                except (ReviewError, InvalidDecision, ReviewTask.DoesNotExist, PermissionDenied) as exc:
                    if task_id == ordered[0]:
                        raise
                    raise GroupDecisionError(task_id, exc) from exc
            if any(r.decision is not None for r in results.values()):
                # One follow-up for the whole group: each uploader gets one message for all of it.
                transaction.on_commit(lambda: jobs.decisions_followup_batch(batch))
    finally:
        _BATCH.reset(token)
    return results


def decision_followup(*, decision_id: int) -> None:
    """What follows a committed decision, each step idempotent:

    1. a takedown removes copies of the removed media found among stored media (``enforcement.copies_sweep``);
    2. a statement of reasons per removed item (DSA Art. 17, ``dsa.statements_for_decision``);
    3. the reporter hears the decision with the redress options (Art. 16(5), 16(6));
    4. each uploader the platform can name gets the statement of reasons with an appeal link.
    """
    decision = Decision.objects.select_related("report").get(pk=decision_id)
    _uploaders_notify([(decision, statement) for statement in _followup_steps(decision)])


def decisions_followup_batch(*, batch: str) -> None:
    """What follows decisions made together (a group or bulk decision, a case and the reports that joined it):
    steps 1-3 of ``decision_followup`` for each, then one message per uploader for the whole batch, carrying
    the statement of reasons of each of their items (each statement stays one per item, as the DSA database
    takes them). Each step idempotent."""
    made = list(Decision.objects.filter(batch=batch).select_related("report").order_by("id")) if batch else []
    pairs: list[tuple[Decision, StatementOfReasons]] = []
    for decision in made:
        pairs += [(decision, statement) for statement in _followup_steps(decision)]
    _uploaders_notify(pairs)


def _followup_steps(decision: Decision) -> list[StatementOfReasons]:
    """Steps 1-3 of ``decision_followup``. Returns the decision's statements of reasons."""
    report = decision.report
    takedown = decision.outcome == Decision.Outcome.TAKEDOWN
    if takedown:
        # services/sweep.py already records Match rows for stored media when the confirmed hashes join
        # the bank (TAKEDOWN_BANK_ENTRIES_ADDED_HOOK); this step removes the copies on the platform.
        enforcement.copies_sweep(decision_id=decision.pk)
    statements = dsa.statements_for_decision(decision_id=decision.pk)
    if decision.outcome not in (Decision.Outcome.TAKEDOWN, Decision.Outcome.NO_VIOLATION):
        return []  # needs-information and child-safety outcomes have their own messages
    if not already_sent("decision", decision.pk):
        notice_send(kind="decision", to=[report.reporter_email], object_type="decision", object_id=decision.pk,
                    context={"case_number": report.case_number, "takedown": takedown,
                             "reason": decision.get_reason_display(), "automated": decision.automated,
                             "message": chosen_message(decision.reporter_template, report.case_number),
                             **redress_options()})
    return statements


def _uploaders_notify(pairs: list[tuple[Decision, StatementOfReasons]]) -> None:
    """Step 4: each uploader the platform can name gets their statements of reasons with appeal links, in one
    message per uploader. A statement is claimed (``uploader_notified_at``) before it is sent, so a retry
    never sends it twice."""
    enforcer = get_enforcer()
    by_contact: dict[str, list[tuple[Decision, StatementOfReasons]]] = {}
    for decision, statement in pairs:
        if statement.uploader_notified_at is not None:
            continue
        contact = enforcer.uploader_contact(statement.item.location)
        claimed = StatementOfReasons.objects.filter(pk=statement.pk, uploader_notified_at__isnull=True).update(
            uploader_notified_at=timezone.now())
        if claimed and contact:
            by_contact.setdefault(contact, []).append((decision, statement))
    for contact, theirs in by_contact.items():
        contexts = []
        for decision, statement in theirs:
            context = statement_context(statement, appeal_link=dsa.appeal_url(statement))
            context["message"] = chosen_message(decision.uploader_template, "")
            contexts.append(context)
        if len(contexts) == 1:
            notice_send(kind="statement_of_reasons", to=[contact], object_type="statement",
                        object_id=theirs[0][1].pk, context=contexts[0])
        else:
            notice_send(kind="statements_of_reasons", to=[contact], object_type="statement",
                        object_id=theirs[0][1].pk,
                        context={"statements": contexts, "message": contexts[0]["message"], **redress_options()})
