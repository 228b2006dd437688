"""Reads: the queue, a case, a report's public status. Views and the API call these, never .get()."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.shortcuts import get_object_or_404
from django.utils import timezone

from detection.versions import shadow_model_versions
from hashing.neighbours import StoredHashIndex
from moderation.models import (
    AuditEvent,
    CaseNote,
    ChildSafetyReferral,
    ConsolePreference,
    Decision,
    DetectionResult,
    Match,
    Media,
    MediaHash,
    ProposedDecision,
    Report,
    ReportedItem,
    ReviewTask,
    VideoFrameHash,
    VideoMatch,
)
from moderation.security.secrets import check_pin, dummy_pin_check, normalise_code

QUEUE_REASON_CODES = ("deadline", "match", "confirmed_bank", "score", "source", "self_report")
# Deadline bands for filters and the dashboard: (key, label, hours left from, hours left to).
DEADLINE_BANDS: tuple[tuple[str, str, float | None, float | None], ...] = (
    ("breached", "deadline passed", None, 0),
    ("under_12h", "under 12 h left", 0, 12),
    ("under_24h", "12-24 h left", 12, 24),
    ("under_48h", "24-48 h left", 24, 48),
    ("later", "more than 48 h left", 48, None),
)


@dataclass(frozen=True)
class QueueFilters:
    """What the queue shows. Empty values mean "any"; the default state is every undecided case."""

    state: str = ""
    reason: str = ""
    deadline_band: str = ""
    assignee: str = ""  # "me", "none" or a username
    source: str = ""
    has_match: bool | None = None
    score_min: float | None = None
    score_max: float | None = None


def _report_items() -> QuerySet[ReportedItem]:
    # Start every per-task subquery from the report's items (indexed by report), then follow the
    # item's media: the planner never scans all matches or scores to find one report's.
    return ReportedItem.objects.filter(report_id=OuterRef("report_id")).order_by()


def queue_tasks(*, state: str | None = None, assignee: Any = None, filters: QueueFilters | None = None,
                user: Any = None, now: datetime | None = None) -> QuerySet[ReviewTask]:
    """Tasks in queue order (priority, then age); undecided ones by default, with per-row figures."""
    qs = _queue_filtered(filters or QueueFilters(state=state or ""), assignee=assignee, user=user,
                         now=now or timezone.now())
    return _queue_annotated(qs.select_related("report", "assignee")).order_by("-priority", "created_at", "id")


def _queue_filtered(f: QueueFilters, *, assignee: Any, user: Any, now: datetime) -> QuerySet[ReviewTask]:
    """The filters: indexed columns, the report's columns, or EXISTS subqueries; nothing aggregated."""
    qs = ReviewTask.objects.all()
    if f.state:
        qs = qs.filter(state=f.state)
    else:
        qs = qs.exclude(state=ReviewTask.State.DECIDED)
    if assignee is not None:
        qs = qs.filter(assignee=assignee)
    if f.assignee == "me" and user is not None:
        qs = qs.filter(assignee=user)
    elif f.assignee == "none":
        qs = qs.filter(assignee=None)
    elif f.assignee:
        qs = qs.filter(assignee__username=f.assignee)
    if f.reason:
        if connection.vendor == "postgresql":
            qs = qs.filter(priority_reasons__contains=[{"code": f.reason}])  # jsonb @>, no text cast
        else:
            # SQLite has no JSON containment; codes come from QUEUE_REASON_CODES, quoted as in the JSON.
            qs = qs.filter(priority_reasons__icontains=f'"{f.reason}"')
    if f.source:
        qs = qs.filter(report__source=f.source)
    for key, _label, low, high in DEADLINE_BANDS:
        if f.deadline_band == key:
            if low is not None:
                qs = qs.filter(report__deadline_at__gte=now + timedelta(hours=low))
            if high is not None:
                qs = qs.filter(report__deadline_at__lt=now + timedelta(hours=high))
    if f.has_match is not None:
        matched = Exists(_report_items().filter(media__matches__isnull=False))
        qs = qs.filter(matched if f.has_match else ~matched)
    if f.score_min is not None or f.score_max is not None:
        scores = _report_items()
        if f.score_min is not None:
            scores = scores.filter(media__detections__score__gte=f.score_min)
        if f.score_max is not None:
            scores = scores.filter(media__detections__score__lte=f.score_max)
        qs = qs.filter(Exists(scores))
    return qs


def _queue_annotated(qs: QuerySet[ReviewTask]) -> QuerySet[ReviewTask]:
    count_of = Func(F("id"), function="COUNT")
    return qs.annotate(
        item_count=Subquery(_report_items().annotate(n=count_of).values("n")[:1], output_field=IntegerField()),
        match_count=Subquery(_report_items().annotate(n=Func(F("media__matches__id"), function="COUNT"))
                             .values("n")[:1], output_field=IntegerField()),
        top_score=Subquery(_report_items().filter(media__detections__isnull=False)
                           .order_by("-media__detections__score").values("media__detections__score")[:1],
                           output_field=FloatField()),
    )


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue. ``total`` is known only without filters (from the per-state counts):
    counting a filtered 100k-row queue would cost more than showing it."""

    rows: list[ReviewTask]
    number: int
    size: int
    has_next: bool
    total: int | None

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def num_pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // self.size))

    def __iter__(self) -> Any:
        return iter(self.rows)


def queue_page(*, filters: QueueFilters, user: Any, number: int, size: int,
               counts: dict[str, int] | None = None, now: datetime | None = None) -> QueuePage:
    """A page in two queries: the ids in queue order (an index walk, no joins unless a filter needs
    one), then those rows with their figures. Deep pages never join or annotate the skipped rows."""
    number = max(1, number)
    base = _queue_filtered(filters, assignee=None, user=user, now=now or timezone.now())
    offset = (number - 1) * size
    ids = list(base.order_by("-priority", "created_at", "id").values_list("id", flat=True)[offset:offset + size + 1])
    has_next = len(ids) > size
    ids = ids[:size]
    by_id = {t.pk: t for t in _queue_annotated(
        ReviewTask.objects.filter(pk__in=ids).select_related("report", "assignee"))} if ids else {}
    total = None
    unfiltered = filters == QueueFilters(state=filters.state)
    if counts is not None and unfiltered:
        total = counts.get(filters.state) if filters.state else sum(
            n for state, n in counts.items() if state != ReviewTask.State.DECIDED)
    return QueuePage(rows=[by_id[i] for i in ids if i in by_id], number=number, size=size, has_next=has_next,
                     total=total)


def queue_counts() -> dict[str, int]:
    """Undecided tasks per state. Closed tasks are not counted: their number only grows with history,
    and counting them would make the queue page slower every year."""
    rows = ReviewTask.objects.exclude(state=ReviewTask.State.DECIDED).order_by().values("state").annotate(n=Count("id"))
    counts = {state: 0 for state in ReviewTask.State.values if state != ReviewTask.State.DECIDED}
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


@dataclass
class MediaEvidence:
    media: Media
    hashes: list[MediaHash]
    matches: list[Match]
    detection: DetectionResult | None
    video_frames: list[VideoFrameHash] = field(default_factory=list)  # a video's sampled frames
    video_matches: list[VideoMatch] = field(default_factory=list)  # known videos its frames match


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
    notes: list[CaseNote] = field(default_factory=list)
    pending_proposal: ProposedDecision | None = None
    near_duplicates: list[NearDuplicate] = field(default_factory=list)
    withheld_media: set[int] = field(default_factory=set)
    decisions: list[Decision] = field(default_factory=list)


def case_detail(task_id: int) -> CaseDetail:
    """Everything a moderator needs to decide one case, in a fixed number of queries."""
    task = get_object_or_404(ReviewTask.objects.select_related("report", "assignee"), pk=task_id)
    report = task.report
    items = list(
        report.items.select_related("media").prefetch_related(
            Prefetch("media__hashes", queryset=MediaHash.objects.order_by("algorithm")),
            Prefetch("media__matches", queryset=Match.objects.select_related("bank_entry__bank")
                     .prefetch_related("bank_entry__feedback__partner")),  # partner feedback (exchange)
            Prefetch("media__detections", queryset=DetectionResult.objects.exclude(
                model_version__in=shadow_model_versions()).order_by("-created_at")),
            Prefetch("media__video_frames", queryset=VideoFrameHash.objects.order_by("index")),
            Prefetch("media__video_matches", queryset=VideoMatch.objects.select_related("bank_video__bank")),
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
            detection=detections[0] if detections else None,
            video_frames=list(item.media.video_frames.all()), video_matches=list(item.media.video_matches.all()))))
    item_ids = [str(i.pk) for i in items]
    media_ids = [str(i.media_id) for i in items if i.media_id]
    history = list(AuditEvent.objects.filter(
        Q(object_type="report", object_id=str(report.pk)) | Q(object_type="task", object_id=str(task.pk))
        | Q(object_type="item", object_id__in=item_ids) | Q(object_type="media", object_id__in=media_ids)
        | Q(object_type="action", object_id__in=[
            str(pk) for pk in report.decisions.values_list("actions__id", flat=True) if pk])
    ).order_by("id"))
    media_pks = [int(pk) for pk in media_ids]
    return CaseDetail(
        task=task, report=report, items=evidence, history=history,
        notes=list(task.notes.select_related("author")),
        pending_proposal=task.proposals.filter(state=ProposedDecision.State.PENDING)
        .select_related("proposed_by").first(),
        near_duplicates=near_duplicates(report=report, media_ids=media_pks),
        withheld_media=withheld_media_ids(media_pks),
        decisions=list(report.decisions.select_related("decided_by", "confirmed_by")),
    )


@dataclass(frozen=True)
class NearDuplicate:
    """Another report whose media is identical (same SHA-256) or within the PDQ radius of this case's."""

    task: ReviewTask
    how: str  # "identical (sha256)" or "pdq distance N"
    distance: int

    @property
    def actionable(self) -> bool:
        return self.task.state in (ReviewTask.State.OPEN, ReviewTask.State.CLAIMED)


_MEDIA_PDQ_INDEX = StoredHashIndex(
    256,
    rows_above=lambda after: MediaHash.objects.filter(algorithm="pdq", id__gt=after).order_by("id")
    .values_list("id", "value", "created_at").iterator(chunk_size=5000),
    stamp_of=lambda pk: MediaHash.objects.filter(pk=pk).values_list("created_at", flat=True).first(),
)


def near_duplicates(*, report: Report, media_ids: list[int]) -> list[NearDuplicate]:
    """Other reports' tasks whose media shares this case's media or a PDQ within the radius.

    Identical media is one ``Media`` row (deduplicated by SHA-256). PDQ neighbours come from this
    process's Hamming index over the stored PDQ hashes (``hashing.neighbours``, caught up by id before
    each lookup); its candidates are re-read and their distance recomputed here.
    """
    if not media_ids:
        return []
    radius = settings.TAKEDOWN_NEAR_DUPLICATE_PDQ_RADIUS
    best: dict[int, tuple[int, str]] = {}  # report id -> (distance, how)
    same = ReportedItem.objects.filter(media_id__in=media_ids).exclude(report=report)
    for report_id in same.values_list("report_id", flat=True):
        best[report_id] = (0, "identical (sha256)")
    own_values = list(MediaHash.objects.filter(media_id__in=media_ids, algorithm="pdq").values_list("value", flat=True))
    own = [int(v, 16) for v in own_values]
    if own:
        near_media: dict[int, int] = {}
        candidates = _MEDIA_PDQ_INDEX.candidates([v for v in own_values if len(v) == 64], radius)
        for media_id, value in (MediaHash.objects.filter(id__in=candidates, algorithm="pdq")
                                .exclude(media_id__in=media_ids).values_list("media_id", "value")):
            number = int(value, 16)
            distance = min((number ^ mine).bit_count() for mine in own)
            if distance <= radius:
                near_media[media_id] = min(distance, near_media.get(media_id, distance))
        for report_id, media_id in (ReportedItem.objects.filter(media_id__in=list(near_media))
                                    .exclude(report=report).values_list("report_id", "media_id")):
            distance = near_media[media_id]
            if report_id not in best or distance < best[report_id][0]:
                best[report_id] = (distance, f"pdq distance {distance}")
    tasks = ReviewTask.objects.filter(report_id__in=list(best), kind=ReviewTask.Kind.REPORT).select_related(
        "report", "assignee")
    group = [NearDuplicate(task=t, how=best[t.report_id][1], distance=best[t.report_id][0]) for t in tasks]
    return sorted(group, key=lambda d: (d.distance, d.task.pk))


def withheld_media_ids(media_ids: list[int]) -> set[int]:
    """Media of cases handed to (or awaiting) the child-safety procedure: nobody sees it in the console."""
    if not media_ids:
        return set()
    return set(ReportedItem.objects.filter(
        media_id__in=media_ids,
        report__child_safety_referrals__state__in=[ChildSafetyReferral.State.PENDING,
                                                   ChildSafetyReferral.State.REFERRED],
    ).values_list("media_id", flat=True))


def console_preference(user: Any) -> ConsolePreference:
    """The user's media display preferences; the concealing defaults when they never set any."""
    pref = ConsolePreference.objects.filter(user=user).first()
    return pref or ConsolePreference(user=user)


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    role: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_events(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Audit events, newest first, narrowed by the viewer's filters."""
    qs = AuditEvent.objects.all()
    if filters.actor:
        qs = qs.filter(actor=filters.actor)
    if filters.role:
        qs = qs.filter(role=filters.role)
    if filters.action:
        qs = qs.filter(action__startswith=filters.action)
    if filters.object_type:
        qs = qs.filter(object_type=filters.object_type)
    if filters.object_id:
        qs = qs.filter(object_id=filters.object_id)
    if filters.since:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until:
        qs = qs.filter(created_at__lt=filters.until)
    return qs.order_by("-id")


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
