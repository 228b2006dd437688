"""The case page: one case's evidence, history and near-duplicates, withheld media, display preferences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, Q
from django.shortcuts import get_object_or_404

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


@dataclass
class MediaEvidence:
    media: Media
    hashes: list[MediaHash]
    matches: list[Match]
    detection: DetectionResult | None
    video_frames: list[VideoFrameHash] = field(default_factory=list)  # a video's sampled frames
    video_matches: list[VideoMatch] = field(default_factory=list)  # known videos its frames match
    neighbours: list[Any] = field(default_factory=list)  # nearest confirmed cases (selectors.embedding), per viewer


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
    # Many reports, one item (services/joining.py): the reports that joined this case, oldest first.
    joined: list[Report] = field(default_factory=list)


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
        joined=list(Report.objects.filter(joined_to=report).order_by("received_at", "id"))
        if report.report_count > 1 else [],
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
