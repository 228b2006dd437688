"""Reads: the queue, a case, a report's public status. Views and the API call these, never .get()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from moderation.models import (
    AuditEvent,
    DetectionResult,
    Match,
    Media,
    MediaHash,
    Report,
    ReportedItem,
    ReviewTask,
)
from moderation.services.secrets import check_pin, dummy_pin_check, normalise_code


def queue_tasks(*, state: str | None = None, assignee: Any = None) -> QuerySet[ReviewTask]:
    """Tasks in queue order (priority, then age). Undecided ones by default."""
    qs = ReviewTask.objects.select_related("report", "assignee")
    if state:
        qs = qs.filter(state=state)
    else:
        qs = qs.exclude(state=ReviewTask.State.DECIDED)
    if assignee is not None:
        qs = qs.filter(assignee=assignee)
    return qs.annotate(
        item_count=Count("report__items", distinct=True),
        match_count=Count("report__items__media__matches", distinct=True),
    ).order_by("-priority", "created_at", "id")


def queue_counts() -> dict[str, int]:
    rows = ReviewTask.objects.values("state").annotate(n=Count("id"))
    counts = {state: 0 for state in ReviewTask.State.values}
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


@dataclass
class MediaEvidence:
    media: Media
    hashes: list[MediaHash]
    matches: list[Match]
    detection: DetectionResult | None


@dataclass
class ItemEvidence:
    item: ReportedItem
    evidence: MediaEvidence | None


@dataclass
class CaseDetail:
    task: ReviewTask
    report: Report
    items: list[ItemEvidence]
    history: list[AuditEvent] = field(default_factory=list)


def case_detail(task_id: int) -> CaseDetail:
    """Everything a moderator needs to decide one case, in a fixed number of queries."""
    task = get_object_or_404(ReviewTask.objects.select_related("report", "assignee"), pk=task_id)
    report = task.report
    items = list(
        report.items.select_related("media").prefetch_related(
            Prefetch("media__hashes", queryset=MediaHash.objects.order_by("algorithm")),
            Prefetch("media__matches", queryset=Match.objects.select_related("bank_entry__bank")),
            Prefetch("media__detections", queryset=DetectionResult.objects.order_by("-created_at")),
        )
    )
    evidence = []
    for item in items:
        if item.media is None:
            evidence.append(ItemEvidence(item, None))
            continue
        detections = list(item.media.detections.all())
        evidence.append(ItemEvidence(item, MediaEvidence(
            media=item.media, hashes=list(item.media.hashes.all()), matches=list(item.media.matches.all()),
            detection=detections[0] if detections else None)))
    item_ids = [str(i.pk) for i in items]
    media_ids = [str(i.media_id) for i in items if i.media_id]
    history = list(AuditEvent.objects.filter(
        Q(object_type="report", object_id=str(report.pk)) | Q(object_type="task", object_id=str(task.pk))
        | Q(object_type="item", object_id__in=item_ids) | Q(object_type="media", object_id__in=media_ids)
        | Q(object_type="action", object_id__in=[
            str(pk) for pk in report.decisions.values_list("actions__id", flat=True) if pk])
    ).order_by("id"))
    return CaseDetail(task=task, report=report, items=evidence, history=history)


def report_lookup(case_number: str, pin: str) -> Report | None:
    """The report if the PIN is right; None for a wrong PIN or an unknown case, alike."""
    report = Report.objects.filter(case_number=normalise_code(case_number)).first()
    if report is None:
        dummy_pin_check()  # same work either way: the answer's timing tells nothing
        return None
    return report if check_pin(pin, report.pin_hash) else None


PUBLIC_ITEM_STATES = {
    ReportedItem.State.PENDING: "We are fetching this item.",
    ReportedItem.State.RESOLVED: "We have this item and it is being reviewed.",
    ReportedItem.State.UNPROCESSABLE: "We could not process this item; a moderator will look at it.",
    ReportedItem.State.REMOVED: "Removed.",
    ReportedItem.State.KEPT: "Not removed.",
}


def report_public_status(report: Report) -> dict[str, Any]:
    """What the reporter may see: states and dates, never the media or other people's data."""
    decision = report.decisions.order_by("-created_at").first()
    items = []
    for index, item in enumerate(report.items.order_by("id"), start=1):
        items.append({
            "number": index,
            "location": item.location or "uploaded file",
            "state": item.state,
            "state_text": PUBLIC_ITEM_STATES[ReportedItem.State(item.state)],
            "removed_at": item.removed_at.isoformat() if item.removed_at else None,
        })
    return {
        "case_number": report.case_number,
        "status": report.status,
        "status_text": report.get_status_display(),
        "received_at": report.received_at.isoformat(),
        "deadline_at": report.deadline_at.isoformat() if report.deadline_at else None,
        "closed_at": report.closed_at.isoformat() if report.closed_at else None,
        "decision": None if decision is None else {
            "outcome": decision.outcome,
            "reason": decision.get_reason_display(),
            "decided_at": decision.created_at.isoformat(),
            "automated": decision.automated,
        },
        "items": items,
    }
