"""Carrying out decisions on the host platform: removals, restorations after appeals, and the copy sweep."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from moderation import jobs
from moderation.audit import SYSTEM, audit_record
from moderation.models import Action, Decision, MediaHash, Report, ReportedItem
from moderation.platforms import ContentNotFound, get_enforcer
from moderation.platforms.webhook import action_deliveries_dead
from moderation.services.dsa import statement_ensure

# PDQ distance within which stored media counts as a copy ("the same, or substantially the same",
# OSA s.10(3A)); 31 is Meta's recommended PDQ match threshold, as hashing.algorithms uses.
COPY_PDQ_DISTANCE = 31


def action_carry_out(action_id: int) -> Action:
    """Run one removal or restoration. Idempotent: a done action is left alone, and the platform is
    given the action's idempotency key. ``PlatformError`` propagates so the task retries with backoff;
    ``PlatformRefused`` propagates so it fails at once (:func:`action_failed`)."""
    action = Action.objects.select_related("item", "decision").get(pk=action_id)
    if action.status == Action.Status.DONE:
        return action
    Action.objects.filter(pk=action_id).update(attempts=action.attempts + 1)
    already_gone = False
    enforcer = get_enforcer()
    try:
        if action.kind == Action.Kind.RESTORE:
            reason = ("automated takedown overridden: no violation" if action.decision.outcome
                      == Decision.Outcome.NO_VIOLATION else "decision reversed on appeal")
            enforcer.restore(location=action.item.location, reason=reason, idempotency_key=action.idempotency_key)
        else:
            statement = statement_ensure(decision=action.decision, item=action.item).payload
            enforcer.remove(location=action.item.location, reason=action.decision.get_reason_display(),
                            idempotency_key=action.idempotency_key, statement=statement)
    except ContentNotFound:
        already_gone = True  # nothing left to act on: for a removal the goal holds
    with transaction.atomic():
        locked = Action.objects.select_for_update().get(pk=action_id)
        if locked.status == Action.Status.DONE:
            return locked
        now = timezone.now()
        locked.status = Action.Status.DONE
        locked.completed_at = now
        locked.last_error = "content was already gone" if already_gone else ""
        locked.save(update_fields=["status", "completed_at", "last_error"])
        if locked.kind == Action.Kind.RESTORE:
            ReportedItem.objects.filter(pk=locked.item_id).update(state=ReportedItem.State.KEPT, removed_at=None)
        else:
            ReportedItem.objects.filter(pk=locked.item_id).update(state=ReportedItem.State.REMOVED, removed_at=now)
        audit_record(actor=SYSTEM, action="action.done", object_type="action", object_id=locked.pk,
                     data={"kind": locked.kind, "enforcer": locked.enforcer, "item": locked.item_id,
                           "already_gone": already_gone})
        if locked.kind == Action.Kind.REMOVE:
            group = decision_group(locked.decision)
            if len(group) > 1:  # the same location named by the reports that joined the case is gone too
                ReportedItem.objects.filter(report__decisions__in=group, location=locked.item.location).exclude(
                    state=ReportedItem.State.REMOVED).update(state=ReportedItem.State.REMOVED, removed_at=now)
            for report in _reports_removed_if_done(group, now):
                audit_record(actor=SYSTEM, action="report.removed", object_type="report", object_id=report.pk,
                             data={"decision": locked.decision_id})
    return locked


def decision_group(decision: Decision) -> list[int]:
    """The decisions carried out together with ``decision``: a case's and those of the reports that joined it
    (services/joining.py: the same review task and batch), or ``decision`` alone."""
    if not decision.batch:
        return [decision.pk]
    return list(Decision.objects.filter(task_id=decision.task_id, batch=decision.batch).values_list("pk", flat=True))


def _reports_removed_if_done(group: list[int], now: datetime) -> list[Report]:
    """Once no removal of the group is pending, every report of it still "removal in progress" is removed."""
    if Action.objects.filter(decision_id__in=group, kind=Action.Kind.REMOVE).exclude(
            status=Action.Status.DONE).exists():
        return []
    done = list(Report.objects.select_for_update().filter(
        pk__in=Decision.objects.filter(pk__in=group).values("report_id"), status=Report.Status.ACTIONING)
        .order_by("id"))
    for report in done:
        report.status = Report.Status.REMOVED
        report.closed_at = now
        report.save(update_fields=["status", "closed_at", "updated_at"])
    return done


def action_failed(action_id: int, error: str) -> None:
    """Record that retries ran out (or the platform refused for good); the action stays visible to admins as
    failed, and its undelivered webhook, if it has one, becomes a dead letter they can replay."""
    with transaction.atomic():
        updated = Action.objects.filter(pk=action_id).exclude(status=Action.Status.DONE).update(
            status=Action.Status.FAILED, last_error=error[:500])
        if updated:
            audit_record(actor=SYSTEM, action="action.failed", object_type="action", object_id=action_id,
                         data={"error": error[:500]})
        action_deliveries_dead(action_id, error)


def action_retry(*, action_id: int) -> None:
    """Put a failed action back to pending and run it again through its task (an admin's replay)."""
    with transaction.atomic():
        updated = Action.objects.filter(pk=action_id).exclude(status=Action.Status.DONE).update(
            status=Action.Status.PENDING, last_error="")
        if updated:
            audit_record(actor=SYSTEM, action="action.retried", object_type="action", object_id=action_id)
            transaction.on_commit(lambda: jobs.actions_carry_out([action_id]))


def removals_create(*, decision: Decision, items: Iterable[ReportedItem]) -> list[Action]:
    """One removal action per item under a takedown decision, keyed so the platform sees a retry as the same
    request. Call inside the deciding transaction; the actions run once it commits (``jobs.actions_carry_out``)."""
    enforcer = get_enforcer()
    return [Action.objects.create(decision=decision, item=item, kind=Action.Kind.REMOVE, enforcer=enforcer.name,
                                  idempotency_key=f"decision-{decision.pk}-item-{item.pk}-remove")
            for item in items]


def restorations_create(*, decision: Decision, items: Iterable[ReportedItem]) -> list[Action]:
    """One restoration per item under ``decision`` (a person overriding an automated takedown), keyed like
    removals. Call inside the deciding transaction; the actions run once it commits."""
    enforcer = get_enforcer()
    return [Action.objects.get_or_create(idempotency_key=f"decision-{decision.pk}-item-{item.pk}-restore",
                                         defaults={"decision": decision, "item": item, "kind": Action.Kind.RESTORE,
                                                   "enforcer": enforcer.name})[0]
            for item in items]


def copies_find(*, report: Report) -> list[ReportedItem]:
    """Items elsewhere (other reports) whose media is an identical or near-identical copy of this report's media.

    Exact: same MD5 or SHA-256. Near: PDQ within ``COPY_PDQ_DISTANCE``. Items already removed are skipped.
    """
    own = list(MediaHash.objects.filter(media__reported_items__report=report,
                                        algorithm__in=("pdq", "md5", "sha256")).values_list("algorithm", "value",
                                                                                             "media_id"))
    own_media = {media_id for _, _, media_id in own}
    copy_media: set[int] = set(own_media)  # the same stored media, named elsewhere, is a copy too
    exact = {(algorithm, value) for algorithm, value, _ in own if algorithm != "pdq"}
    for algorithm, value in exact:
        copy_media.update(MediaHash.objects.filter(algorithm=algorithm, value=value)
                          .exclude(media_id__in=own_media).values_list("media_id", flat=True))
    pdqs = [int(value, 16) for algorithm, value, _ in own if algorithm == "pdq"]
    if pdqs:
        for media_id, value in (MediaHash.objects.filter(algorithm="pdq").exclude(media_id__in=own_media)
                                .values_list("media_id", "value").iterator()):
            candidate = int(value, 16)
            if any((candidate ^ q).bit_count() <= COPY_PDQ_DISTANCE for q in pdqs):
                copy_media.add(media_id)
    if not copy_media:
        return []  # nothing hashed
    return list(ReportedItem.objects.filter(media_id__in=copy_media).exclude(report=report).exclude(location="")
                .exclude(state=ReportedItem.State.REMOVED).order_by("id"))


def copies_sweep(*, decision_id: int) -> list[Action]:
    """After a takedown: remove known copies of the removed media found among stored media
    (TAKE IT DOWN Act: reasonable efforts to remove known identical copies; OSA s.10(3A)).

    Each copy gets a removal action under the same decision; running the sweep twice adds nothing.
    """
    decision = Decision.objects.select_related("report").get(pk=decision_id)
    if decision.outcome != Decision.Outcome.TAKEDOWN:
        return []
    enforcer = get_enforcer()
    created: list[Action] = []
    with transaction.atomic():
        # Locations this decision, or a joined report's decided with it, removes already.
        known = set(Action.objects.filter(decision_id__in=decision_group(decision)).values_list("item__location",
                                                                                               flat=True))
        for item in copies_find(report=decision.report):
            if item.location in known:
                continue
            action, made = Action.objects.get_or_create(
                idempotency_key=f"decision-{decision.pk}-copy-item-{item.pk}-remove",
                defaults={"decision": decision, "item": item, "kind": Action.Kind.REMOVE,
                          "enforcer": enforcer.name})
            known.add(item.location)
            if made:
                created.append(action)
        if created:
            audit_record(actor=SYSTEM, action="copies.swept", object_type="report", object_id=decision.report_id,
                         data={"decision": decision.pk, "copies": [a.item_id for a in created]})
            ids = [a.pk for a in created]
            transaction.on_commit(lambda: jobs.actions_carry_out(ids))
    return created
