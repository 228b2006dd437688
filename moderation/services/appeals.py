"""Internal complaints (DSA Art. 20): the uploader appeals a removal; a different, senior reviewer decides.

- Open for ``TAKEDOWN_APPEAL_WINDOW_DAYS`` (at least six months) after the decision, free and online:
  the statement of reasons carries a signed link to the appeal form.
- Decided by a person holding the senior moderator or admin role who did not take the decision.
- A reversal restores the content through the Enforcer (a ``restore`` action) and withdraws the
  case's hashes from every bank, so the content stops matching; the appellant gets a reasoned answer
  with the Art. 21 out-of-court options, and the reporter is told.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from moderation.models import Action, Appeal, Decision, Report, ReportedItem, StatementOfReasons
from moderation.platforms import get_enforcer
from moderation.services.audit import actor_for_user, audit_record
from moderation.services.notices import notice_send, redress_options
from moderation.services.roles import ADMIN, SENIOR

APPEAL_SALT = "takedown.appeal"
MAX_STATEMENT_CHARS = 5000


class AppealError(Exception):
    """The appeal cannot be made or decided now; the message says why in plain words."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


def appeal_token(statement: StatementOfReasons) -> str:
    return signing.dumps({"s": statement.pk}, salt=APPEAL_SALT)


def appeal_url(statement: StatementOfReasons) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("appeal-new", args=[appeal_token(statement)])


def statement_from_token(token: str) -> StatementOfReasons | None:
    try:
        data = signing.loads(token, salt=APPEAL_SALT)
    except signing.BadSignature:
        return None
    return StatementOfReasons.objects.select_related("decision", "item").filter(pk=data.get("s")).first()


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


def _may_decide(user: Any, decision: Decision) -> None:
    if user is None or not user.is_authenticated:
        raise PermissionDenied(_("Please log in to decide appeals."))
    if not (user.is_superuser or user.groups.filter(name__in=[SENIOR, ADMIN]).exists()):
        raise PermissionDenied(_("Only senior moderators and admins decide appeals."))
    if decision.decided_by_id is not None and decision.decided_by_id == user.pk:
        raise PermissionDenied(_("You took the original decision; another senior reviewer must decide the appeal."))


def appeal_decide(*, appeal_id: int, user: Any, reverse_decision: bool, note: str) -> Appeal:
    """Uphold or reverse. A reversal restores each removed item and withdraws the case's hashes."""
    if not note.strip():
        raise AppealError(_("Please give the reasons: the appellant receives them."), "note")
    actor = actor_for_user(user)
    with transaction.atomic():
        appeal = (Appeal.objects.select_for_update(of=("self",))
                  .select_related("decision__report", "statement_of_reasons").get(pk=appeal_id))
        _may_decide(user, appeal.decision)
        if appeal.state != Appeal.State.OPEN:
            raise AppealError(_("This appeal has already been decided."))
        now = timezone.now()
        appeal.state = Appeal.State.REVERSED if reverse_decision else Appeal.State.UPHELD
        appeal.decided_by = user
        appeal.decided_at = now
        appeal.outcome_note = note.strip()
        appeal.save(update_fields=["state", "decided_by", "decided_at", "outcome_note"])
        audit_record(actor=actor, action="appeal.decided", object_type="appeal", object_id=appeal.pk,
                     data={"outcome": appeal.state, "decision": appeal.decision_id})
        action_ids: list[int] = []
        withdrawn = 0
        report = appeal.decision.report
        if reverse_decision:
            action_ids = _restore_actions(appeal)
            withdrawn = hashes_withdraw(case_number=report.case_number, actor=actor, why="appeal reversed")
            Report.objects.filter(pk=report.pk).update(status=Report.Status.RESTORED, updated_at=now)
            audit_record(actor=actor, action="report.restored", object_type="report", object_id=report.pk,
                         data={"appeal": appeal.pk, "restore_actions": action_ids, "hashes_withdrawn": withdrawn})
        answer = {"reversed": reverse_decision, "note": appeal.outcome_note, **redress_options()}
        reporter = {"case_number": report.case_number, "note": appeal.outcome_note, **redress_options()}

        def after() -> None:
            from moderation.services.enforcement import _enqueue

            _enqueue(action_ids)
            notice_send(kind="appeal_decided", to=[appeal.appellant_email], context=answer,
                        object_type="appeal", object_id=appeal.pk)
            if reverse_decision:
                notice_send(kind="decision_changed", to=[report.reporter_email], context=reporter,
                            object_type="report", object_id=report.pk)

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


def hashes_withdraw(*, case_number: str, actor: str, why: str) -> int:
    """Withdraw every bank entry that came from this case, in every bank (local, victim-submitted and the
    outbound banks partners pull), so it stops matching everywhere. Returns how many changed."""
    from hashing.banks import bank_entries_changed
    from hashing.models import BankEntry
    from hashing.video_banks import bank_withdraw_videos_by_source

    source = f"case:{case_number}"
    with transaction.atomic():
        entries = BankEntry.objects.select_for_update().filter(source=source, status=BankEntry.Status.ACTIVE)
        ids = list(entries.values_list("pk", flat=True))
        count = BankEntry.objects.filter(pk__in=ids).update(status=BankEntry.Status.WITHDRAWN,
                                                             updated_at=timezone.now())
        bank_entries_changed(ids)  # matchers drop them from their in-memory index on the next refresh
        videos = bank_withdraw_videos_by_source(source=source)
        if count or videos:
            audit_record(actor=actor, action="bank.entries_withdrawn", object_type="case", object_id=case_number,
                         data={"entries": ids, "videos": videos, "why": why})
    return count + len(videos)


def open_appeals() -> list[Appeal]:
    return list(Appeal.objects.filter(state=Appeal.State.OPEN).select_related(
        "decision__report", "decision__decided_by", "statement_of_reasons__item").order_by("created_at"))
