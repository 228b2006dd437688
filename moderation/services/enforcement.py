"""Carrying out decisions on the host platform."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from moderation.models import Action, Report, ReportedItem
from moderation.platforms import ContentNotFound, get_enforcer
from moderation.services.audit import SYSTEM, audit_record


def action_carry_out(action_id: int) -> Action:
    """Run one removal. Idempotent: a done action is left alone, and the platform is given the
    action's idempotency key. ``PlatformError`` propagates so the task retries with backoff."""
    action = Action.objects.select_related("item", "decision").get(pk=action_id)
    if action.status == Action.Status.DONE:
        return action
    Action.objects.filter(pk=action_id).update(attempts=action.attempts + 1)
    already_gone = False
    try:
        get_enforcer().remove(location=action.item.location, reason=action.decision.get_reason_display(),
                              idempotency_key=action.idempotency_key)
    except ContentNotFound:
        already_gone = True  # nothing left to remove: the goal of the action holds
    with transaction.atomic():
        locked = Action.objects.select_for_update().get(pk=action_id)
        if locked.status == Action.Status.DONE:
            return locked
        now = timezone.now()
        locked.status = Action.Status.DONE
        locked.completed_at = now
        locked.last_error = "content was already gone" if already_gone else ""
        locked.save(update_fields=["status", "completed_at", "last_error"])
        ReportedItem.objects.filter(pk=locked.item_id).update(state=ReportedItem.State.REMOVED, removed_at=now)
        audit_record(actor=SYSTEM, action="action.done", object_type="action", object_id=locked.pk,
                     data={"kind": locked.kind, "enforcer": locked.enforcer, "item": locked.item_id,
                           "already_gone": already_gone})
        report = Report.objects.select_for_update().get(pk=locked.decision.report_id)
        pending = Action.objects.filter(decision=locked.decision).exclude(status=Action.Status.DONE).exists()
        if not pending and report.status == Report.Status.ACTIONING:
            report.status = Report.Status.REMOVED
            report.closed_at = now
            report.save(update_fields=["status", "closed_at", "updated_at"])
            audit_record(actor=SYSTEM, action="report.removed", object_type="report", object_id=report.pk,
                         data={"decision": locked.decision_id})
    return locked


def action_failed(action_id: int, error: str) -> None:
    """Record that retries ran out; the action stays visible to admins as failed."""
    with transaction.atomic():
        updated = Action.objects.filter(pk=action_id).exclude(status=Action.Status.DONE).update(
            status=Action.Status.FAILED, last_error=error[:500])
        if updated:
            audit_record(actor=SYSTEM, action="action.failed", object_type="action", object_id=action_id,
                         data={"error": error[:500]})
