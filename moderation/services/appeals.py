"""Internal complaints (DSA Art. 20), from either side; a different, senior reviewer decides.

- The **uploader** appeals a removal: the statement of reasons carries a signed link to the appeal form.
  A reversal restores the content through the Enforcer (a ``restore`` action) and withdraws the case's
  hashes from every bank, so the content stops matching; the reporter is told.
- The **reporter** (the notifier, Art. 16(5) / 20(1)) asks for a review of a "no violation" decision
  from the case's status page (case number + PIN). A reversal is a new takedown decision carried out as
  any takedown is: removal actions through the Enforcer, the hashes banked, the copy sweep, and a
  statement of reasons to the uploader (``notices.decision_followup``).
- Open for ``TAKEDOWN_APPEAL_WINDOW_DAYS`` (at least six months) after the decision, free and online.
- Decided by a person holding the senior moderator or admin role who did not take the decision; the
  appellant gets a reasoned answer with the Art. 21 out-of-court options.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from moderation import jobs
from moderation.audit import actor_for_user, audit_record
from moderation.models import Action, Appeal, Decision, Report, ReportedItem, StatementOfReasons
from moderation.platforms import get_enforcer
from moderation.roles import ADMIN, SENIOR
from moderation.services.banking import confirmed_hashes_bank, hashes_withdraw
from moderation.services.decisions import TAKEDOWN_REASONS
from moderation.services.enforcement import removals_create
from moderation.services.notices import notice_send, redress_options
from moderation.signals import decision_carried_out, decision_reversed

MAX_STATEMENT_CHARS = 5000


class AppealError(Exception):
    """The appeal cannot be made or decided now; the message says why in plain words."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


def appeal_deadline(decision: Decision) -> datetime:
    return decision.created_at + timedelta(days=settings.TAKEDOWN_APPEAL_WINDOW_DAYS)


def appeal_submit(*, statement: StatementOfReasons, email: str, text: str, now: datetime | None = None) -> Appeal:
    """Open an appeal against the decision behind ``statement``. ``now`` lets tests travel in time."""
    now = now or timezone.now()
    decision = statement.decision
    if now > appeal_deadline(decision):
        raise AppealError(_("The time to appeal this decision ended on %(date)s. You can still go to an "
                            "out-of-court dispute settlement body or to court.")
                          % {"date": appeal_deadline(decision).date().isoformat()})
    try:
        validate_email(email.strip())
    except ValidationError as exc:
        raise AppealError(_("Please give an email address we can send the answer to."), "email") from exc
    if not text.strip():
        raise AppealError(_("Please say why you think the decision is wrong."), "statement")
    if len(text) > MAX_STATEMENT_CHARS:
        raise AppealError(_("Please keep the explanation under %(n)d characters.") % {"n": MAX_STATEMENT_CHARS},
                          "statement")
    with transaction.atomic():
        if Appeal.objects.filter(statement_of_reasons=statement, state=Appeal.State.OPEN).exists():
            raise AppealError(_("An appeal against this decision is already open; we will write to you."))
        appeal = Appeal.objects.create(decision=decision, statement_of_reasons=statement,
                                       appellant_email=email.strip(), statement=text.strip())
        audit_record(actor="appellant", action="appeal.received", object_type="appeal", object_id=appeal.pk,
                     data={"decision": decision.pk, "statement": statement.puid})
        transaction.on_commit(lambda: notice_send(
            kind="appeal_received", to=[appeal.appellant_email], context={"puid": statement.puid},
            object_type="appeal", object_id=appeal.pk))
    return appeal


@dataclass(frozen=True)
class ReporterReview:
    """What the reporter's status page shows about asking for a review of a "no violation" decision."""

    decision: Decision | None  # the decision the reporter may challenge (None: nothing to challenge)
    appeal: Appeal | None  # the reporter's request for a review of it, if they made one
    deadline: datetime | None  # the last moment to ask
    can_ask: bool


def reporter_review(report: Report, now: datetime | None = None) -> ReporterReview:
    now = now or timezone.now()
    decision = report.decisions.order_by("-created_at", "-id").first()
    if decision is None or decision.outcome != Decision.Outcome.NO_VIOLATION:
        appeal = (Appeal.objects.filter(decision__report=report, appellant=Appeal.Appellant.REPORTER)
                  .order_by("-created_at").first())
        return ReporterReview(decision=None, appeal=appeal, deadline=None, can_ask=False)
    appeal = decision.appeals.filter(appellant=Appeal.Appellant.REPORTER).order_by("-created_at").first()
    deadline = appeal_deadline(decision)
    can_ask = appeal is None and report.status == Report.Status.NO_VIOLATION and now <= deadline
    return ReporterReview(decision=decision, appeal=appeal, deadline=deadline, can_ask=can_ask)


def reporter_appeal_submit(*, report: Report, text: str, now: datetime | None = None) -> Appeal:
    """The reporter asks for a review of the "no violation" decision on their case (DSA Art. 20).

    One request per decision, within the window. ``now`` lets tests travel in time.
    """
    now = now or timezone.now()
    if not text.strip():
        raise AppealError(_("Please say why you think the decision is wrong."), "statement")
    if len(text) > MAX_STATEMENT_CHARS:
        raise AppealError(_("Please keep the explanation under %(n)d characters.") % {"n": MAX_STATEMENT_CHARS},
                          "statement")
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        review = reporter_review(report, now)
        if review.decision is None or report.status != Report.Status.NO_VIOLATION:
            raise AppealError(_("There is no decision on this case that you can ask us to review."))
        if review.appeal is not None:
            raise AppealError(_("You already asked us to review this decision; we will write to you."))
        if not review.can_ask:
            raise AppealError(_("The time to ask for a review ended on %(date)s. You can still go to an "
                                "out-of-court dispute settlement body or to court.")
                              % {"date": review.deadline.date().isoformat() if review.deadline else ""})
        appeal = Appeal.objects.create(decision=review.decision, appellant=Appeal.Appellant.REPORTER,
                                       appellant_email=report.reporter_email, statement=text.strip())
        audit_record(actor="reporter", action="appeal.received", object_type="appeal", object_id=appeal.pk,
                     data={"decision": review.decision.pk, "appellant": Appeal.Appellant.REPORTER,
                           "case_number": report.case_number})
        context = {"reporter": True, "case_number": report.case_number}
        transaction.on_commit(lambda: notice_send(
            kind="appeal_received", to=[appeal.appellant_email], context=context,
            object_type="appeal", object_id=appeal.pk))
    return appeal


def _may_decide(user: Any, decision: Decision) -> None:
    if user is None or not user.is_authenticated:
        raise PermissionDenied(_("Please log in to decide appeals."))
    if not (user.is_superuser or user.groups.filter(name__in=[SENIOR, ADMIN]).exists()):
        raise PermissionDenied(_("Only senior moderators and admins decide appeals."))
    if decision.decided_by_id is not None and decision.decided_by_id == user.pk:
        raise PermissionDenied(_("You took the original decision; another senior reviewer must decide the appeal."))


def appeal_decide(*, appeal_id: int, user: Any, reverse_decision: bool, note: str,
                  takedown_reason: str = Decision.Reason.NCII) -> Appeal:
    """Uphold or reverse. Reversing an uploader's appeal restores each removed item and withdraws the
    case's hashes; reversing a reporter's appeal takes the content down (``takedown_reason``)."""
    if not note.strip():
        raise AppealError(_("Please give the reasons: the appellant receives them."), "note")
    actor = actor_for_user(user)
    with transaction.atomic():
        # Lock the case before the appeal, in the order withdrawal (intake.report_withdraw) takes them.
        report_id = Appeal.objects.filter(pk=appeal_id).values_list("decision__report_id", flat=True).get()
        list(Report.objects.select_for_update().filter(pk=report_id).values_list("pk", flat=True))
        appeal = (Appeal.objects.select_for_update(of=("self",))
                  .select_related("decision__report", "statement_of_reasons").get(pk=appeal_id))
        _may_decide(user, appeal.decision)
        if appeal.state != Appeal.State.OPEN:
            raise AppealError(_("This appeal has already been decided."))
        if appeal.appellant == Appeal.Appellant.REPORTER:
            return _reporter_appeal_decide(appeal, user=user, reverse_decision=reverse_decision,
                                           note=note.strip(), reason=takedown_reason)
        now = timezone.now()
        appeal.state = Appeal.State.REVERSED if reverse_decision else Appeal.State.UPHELD
        appeal.decided_by = user
        appeal.decided_at = now
        appeal.outcome_note = note.strip()
        appeal.save(update_fields=["state", "decided_by", "decided_at", "outcome_note"])
        audit_record(actor=actor, action="appeal.decided", object_type="appeal", object_id=appeal.pk,
                     data={"outcome": appeal.state, "decision": appeal.decision_id,
                           "appellant": appeal.appellant})
        action_ids: list[int] = []
        withdrawn = 0
        report = appeal.decision.report
        if reverse_decision:
            action_ids = _restore_actions(appeal)
            withdrawn = hashes_withdraw(case_number=report.case_number, actor=actor, why="appeal reversed")
            Report.objects.filter(pk=report.pk).update(status=Report.Status.RESTORED, updated_at=now)
            decision_reversed.send(sender=Decision, decision=appeal.decision, appeal=appeal)
            audit_record(actor=actor, action="report.restored", object_type="report", object_id=report.pk,
                         data={"appeal": appeal.pk, "restore_actions": action_ids, "hashes_withdrawn": withdrawn})
        answer = {"reversed": reverse_decision, "note": appeal.outcome_note, **redress_options()}
        reporter = {"case_number": report.case_number, "note": appeal.outcome_note, **redress_options()}

        def after() -> None:
            jobs.actions_carry_out(action_ids)
            notice_send(kind="appeal_decided", to=[appeal.appellant_email], context=answer,
                        object_type="appeal", object_id=appeal.pk)
            if reverse_decision:
                notice_send(kind="decision_changed", to=[report.reporter_email], context=reporter,
                            object_type="report", object_id=report.pk)

        transaction.on_commit(after)
    return appeal


def _reporter_appeal_decide(appeal: Appeal, *, user: Any, reverse_decision: bool, note: str,
                            reason: str) -> Appeal:
    """Inside ``appeal_decide``'s transaction, the appeal row locked. A reversal is a new takedown decision
    by the senior, carried out as any takedown: removal actions through the Enforcer, the removed media's
    hashes in the confirmed bank, then (after commit) the copy sweep and the uploader's statement of reasons."""
    if reverse_decision and reason not in TAKEDOWN_REASONS:
        raise AppealError(_("Choose the reason for removing the content."), "takedown_reason")
    actor = actor_for_user(user)
    now = timezone.now()
    report = Report.objects.select_for_update().get(pk=appeal.decision.report_id)
    if report.status != Report.Status.NO_VIOLATION:
        raise AppealError(_("The case is no longer closed without removal (it is %(status)s); this request "
                            "cannot change it.") % {"status": report.get_status_display()})
    appeal.state = Appeal.State.REVERSED if reverse_decision else Appeal.State.UPHELD
    appeal.decided_by = user
    appeal.decided_at = now
    appeal.outcome_note = note
    action_ids: list[int] = []
    decision: Decision | None = None
    if reverse_decision:
        decision = Decision.objects.create(task_id=appeal.decision.task_id, report=report,
                                           outcome=Decision.Outcome.TAKEDOWN, reason=reason, note=note,
                                           decided_by=user)
        items = report.items.exclude(location="").exclude(state=ReportedItem.State.REMOVED)
        action_ids = [action.pk for action in removals_create(decision=decision, items=items)]
        confirmed_hashes_bank(report=report, actor=actor)
        report.status = Report.Status.ACTIONING if action_ids else Report.Status.REMOVED
        report.closed_at = None if action_ids else now
        report.save(update_fields=["status", "closed_at", "updated_at"])
        appeal.resulting_decision = decision
        decision_carried_out.send(sender=Decision, decision=decision)
    appeal.save(update_fields=["state", "decided_by", "decided_at", "outcome_note", "resulting_decision"])
    audit_record(actor=actor, action="appeal.decided", object_type="appeal", object_id=appeal.pk,
                 data={"outcome": appeal.state, "decision": appeal.decision_id, "appellant": appeal.appellant,
                       "resulting_decision": decision.pk if decision else None})
    if decision is not None:
        audit_record(actor=actor, action="decision.made", object_type="report", object_id=report.pk,
                     data={"decision": decision.pk, "outcome": decision.outcome, "reason": reason,
                           "appeal": appeal.pk, "decided_by": actor, "actions": action_ids},
                     reason=reason)
    answer = {"reporter": True, "reversed": reverse_decision, "note": note, "case_number": report.case_number,
              **redress_options()}
    decision_id = decision.pk if decision else None

    def after() -> None:
        jobs.actions_carry_out(action_ids)
        if decision_id is not None:
            jobs.decision_followup(decision_id)  # copy sweep, statements of reasons, the uploader's notice
        notice_send(kind="appeal_decided", to=[appeal.appellant_email], context=answer,
                    object_type="appeal", object_id=appeal.pk)

    transaction.on_commit(after)
    return appeal


def _restore_actions(appeal: Appeal) -> list[int]:
    enforcer = get_enforcer()
    items = ReportedItem.objects.filter(actions__decision=appeal.decision, actions__kind=Action.Kind.REMOVE)
    if appeal.statement_of_reasons_id:
        items = items.filter(pk=appeal.statement_of_reasons.item_id)  # type: ignore[union-attr]
    ids = []
    for item in items.distinct():
        action, _created = Action.objects.get_or_create(
            idempotency_key=f"decision-{appeal.decision_id}-item-{item.pk}-restore-appeal-{appeal.pk}",
            defaults={"decision": appeal.decision, "item": item, "kind": Action.Kind.RESTORE,
                      "enforcer": enforcer.name})
        ids.append(action.pk)
    return ids


def open_appeals() -> list[Appeal]:
    return list(Appeal.objects.filter(state=Appeal.State.OPEN).select_related(
        "decision__report", "decision__decided_by", "statement_of_reasons__item").order_by("created_at"))
