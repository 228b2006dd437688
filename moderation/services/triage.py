"""Triage: a review task per report, with a priority and the reasons for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from detection.scoring import PRIOR as SCORE_PRIOR
from detection.versions import shadow_model_versions
from moderation.audit import SYSTEM, audit_record
from moderation.models import DetectionResult, Match, Report, ReviewTask, RoutingRule, VideoMatch
from moderation.services import routing

# Points per factor; the total orders the queue. Deadline dominates because the law fixes it
# (48 h / 24 h), then evidence that the item is a known copy, then synthesis evidence.
DEADLINE_BANDS: list[tuple[float, int, str]] = [
    # (hours left at most, points, label) — the first band that fits wins.
    (0, 60, "deadline passed"),
    (6, 50, "under 6 h to the deadline"),
    (12, 40, "under 12 h to the deadline"),
    (24, 30, "under 24 h to the deadline"),
    (36, 20, "under 36 h to the deadline"),
]
DEADLINE_FAR_POINTS = 10
MATCH_MAX_POINTS = 30           # scaled by the strongest match's strength (1.0 = identical hash)
BLOCKING_BANK_POINTS = 10       # the match is in a bank that blocks uploads (confirmed content)
# Partners report (exchange feedback) that they block a matched hash: other platforms confirmed it.
PARTNER_BLOCKED_POINTS = 10
SCORE_MAX_POINTS = 30           # scaled by how far the synthetic-media score rises above the prior
SOURCE_POINTS: dict[str, int] = {Report.Source.ESAFETY: 10}
# DSA Art. 22(1): trusted flaggers' notices are "given priority". Three deadline bands' worth: such a notice
# goes ahead of an ordinary notice with the same evidence unless that one's clock is much closer to the end.
TRUSTED_FLAGGER_POINTS = 30
SELF_REPORT_POINTS = 5          # the person depicted reported it themselves
# Many reports of one item (services/joining.py): the more people report it, the more it has spread.
REPORTS_POINTS_EACH = 5         # per report beyond the first
REPORTS_MAX_POINTS = 20
# A case past its deadline (escalated by services/deadlines.py) tops the queue: every other factor
# together stays under this. Derived from the report's escalation, so every recompute keeps it.
BREACH_PRIORITY_BOOST = 1000
BREACH_STATUSES = (Report.Status.RECEIVED, Report.Status.IN_REVIEW, Report.Status.ACTIONING)


@dataclass(frozen=True)
class Reason:
    code: str
    points: int
    detail: str


# Evidence about matched bank entries that other apps hold (the exchange: partners that report they block
# an entry). The interface is owned here, so moderation never imports the apps built on it; they register
# a provider when Django starts (``AppConfig.ready``). A provider takes the matched entries' ids and
# returns reasons; it must not write.
MatchEvidence = Callable[[list[int]], list["Reason"]]
_MATCH_EVIDENCE: dict[str, MatchEvidence] = {}


def match_evidence_register(name: str, provider: MatchEvidence) -> None:
    """Add (or replace, by ``name``) a provider of evidence about matched bank entries."""
    _MATCH_EVIDENCE[name] = provider


def deadline_reason(deadline_at: datetime | None, now: datetime) -> Reason | None:
    if deadline_at is None:
        return None
    hours_left = (deadline_at - now).total_seconds() / 3600
    for limit, points, label in DEADLINE_BANDS:
        if hours_left <= limit:
            return Reason("deadline", points, label)
    return Reason("deadline", DEADLINE_FAR_POINTS, "more than 36 h to the deadline")


def priority_reasons(report: Report, now: datetime | None = None, *,
                     media_ids: list[int] | None = None) -> list[Reason]:
    """Why this report's case sits where it does in the queue, largest factor first.

    ``media_ids``, the case's media when the caller knows them (a report being filed), saves the query.
    """
    now = now or timezone.now()
    reasons: list[Reason] = []
    if report.escalated_at is not None and report.status in BREACH_STATUSES:
        reasons.append(Reason("deadline_breached", BREACH_PRIORITY_BOOST,
                              f"deadline missed; escalated {report.escalated_at:%Y-%m-%d %H:%M} UTC"))
    deadline = deadline_reason(report.deadline_at, now)
    if deadline:
        reasons.append(deadline)
    if media_ids is None:
        media_ids = list(report.items.exclude(media=None).values_list("media_id", flat=True))
    reasons += _media_reasons(media_ids) if media_ids else []
    # A case stands for the reports that joined it too: their sources count as if they were its own.
    reports = [report, *(report.joined_reports.filter(status__in=BREACH_STATUSES).select_related("flagger_key")
                         if report.report_count > 1 else [])]
    source = max((r for r in reports if r.source in SOURCE_POINTS), key=lambda r: SOURCE_POINTS[r.source],
                 default=None)
    if source is not None:
        reasons.append(Reason("source", SOURCE_POINTS[source.source], f"reported via {source.get_source_display()}"))
    flagged = next((r for r in reports if r.source == Report.Source.TRUSTED_FLAGGER), None)
    if flagged is not None:
        flagger = flagged.flagger_key.name if flagged.flagger_key_id and flagged.flagger_key else "a trusted flagger"
        reasons.append(Reason("trusted_flagger", TRUSTED_FLAGGER_POINTS,
                              f"DSA Art. 22 priority: notice from trusted flagger {flagger}"))
    if any(r.relationship == Report.Relationship.SELF for r in reports):
        reasons.append(Reason("self_report", SELF_REPORT_POINTS, "reported by the person depicted"))
    if report.report_count > 1:
        reasons.append(Reason("reports", min(REPORTS_MAX_POINTS, REPORTS_POINTS_EACH * (report.report_count - 1)),
                              f"reported {report.report_count} times"))
    reasons.sort(key=lambda r: (-r.points, r.code))
    return reasons


def _media_reasons(media_ids: list[int]) -> list[Reason]:
    """The evidence about the case's media: hash matches, partners' verdicts, the synthetic-media score."""
    reasons: list[Reason] = []
    matches = list(Match.objects.filter(media_id__in=media_ids).select_related("bank_entry__bank"))
    video_matches = list(VideoMatch.objects.filter(media_id__in=media_ids).select_related("bank_video__bank"))
    # (strength, description, bank blocks uploads) per match; a video's strength is the larger share
    # of frames matched, the vPDQ rule's own measure.
    found = [(m.strength, f"{m.algorithm} match at distance {m.distance} in bank {m.bank_entry.bank.name}",
              m.bank_entry.bank.blocks_uploads) for m in matches]
    found += [(max(v.query_share, v.stored_share),
               f"video match: {v.query_matched} of {v.query_frames} frames in bank {v.bank_video.bank.name}",
               v.bank_video.bank.blocks_uploads) for v in video_matches]
    if found:
        strength, description, _blocks = max(found, key=lambda f: f[0])
        reasons.append(Reason("match", round(MATCH_MAX_POINTS * strength), description))
        if any(blocks for _s, _d, blocks in found):
            reasons.append(Reason("confirmed_bank", BLOCKING_BANK_POINTS, "matches confirmed content"))
        entry_ids = [m.bank_entry_id for m in matches]
        for provider in _MATCH_EVIDENCE.values():
            reasons += provider(entry_ids)
    top_score = (DetectionResult.objects.filter(media_id__in=media_ids)
                 .exclude(model_version__in=shadow_model_versions()).aggregate(top=Max("score"))["top"])
    if top_score is not None:
        # A score at the prior means "no evidence either way": it must not move the case up.
        evidence = max(0.0, (top_score - SCORE_PRIOR) / (1.0 - SCORE_PRIOR))
        points = round(SCORE_MAX_POINTS * evidence)
        if points > 0:
            reasons.append(Reason("score", points, f"synthetic-media score {top_score:.2f}"))
    return reasons


def task_create(report: Report, *, media_ids: list[int]) -> ReviewTask:
    """The review task of a report filed in this transaction (so it has none yet), whose media are
    ``media_ids``: ``task_ensure`` without its two lookups, for intake."""
    reasons = priority_reasons(report, media_ids=media_ids)
    task = ReviewTask(report=report, kind=ReviewTask.Kind.REPORT, priority=sum(r.points for r in reasons),
                      priority_reasons=[asdict(r) for r in reasons])
    task.queue, rule = routing.route(task, report, media_ids=media_ids)
    task.save()
    audit_record(actor=SYSTEM, action="task.created", object_type="task", object_id=task.pk,
                 data={"report": report.pk, "priority": task.priority, **_routed(task, rule)})
    return task


def _routed(task: ReviewTask, rule: RoutingRule | None) -> dict[str, object]:
    return {"queue": task.queue.slug if task.queue else None, "rule": rule.pk if rule else None}


def task_ensure(report: Report) -> ReviewTask:
    """The report's review task, created (with a deadline-only priority) if it has none yet."""
    reasons = priority_reasons(report)
    task, created = ReviewTask.objects.get_or_create(
        report=report, kind=ReviewTask.Kind.REPORT,
        defaults={"priority": sum(r.points for r in reasons), "priority_reasons": [asdict(r) for r in reasons]},
    )
    if created:
        task.queue, rule = routing.route(task, report)
        if task.queue is not None:
            task.save(update_fields=["queue"])
        audit_record(actor=SYSTEM, action="task.created", object_type="task", object_id=task.pk,
                     data={"report": report.pk, "priority": task.priority, **_routed(task, rule)})
    return task


def task_reprioritise(task: ReviewTask, report: Report, now: datetime | None = None) -> bool:
    """Recompute an undecided task's priority and reasons from the report as it is now (breach included).

    Call inside a transaction holding the report's row. Returns whether anything changed (then audited).
    """
    if task.state == ReviewTask.State.DECIDED:
        return False
    reasons = [asdict(r) for r in priority_reasons(report, now)]
    priority = sum(r["points"] for r in reasons)
    if priority == task.priority and reasons == task.priority_reasons and task.triaged_at is not None:
        return False
    task.priority = priority
    task.priority_reasons = reasons
    task.triaged_at = task.triaged_at or timezone.now()
    task.save(update_fields=["priority", "priority_reasons", "triaged_at", "updated_at"])
    audit_record(actor=SYSTEM, action="task.triaged", object_type="task", object_id=task.pk,
                 data={"priority": priority, "reasons": [r["code"] for r in reasons]})
    return True


def report_triage(report_id: int) -> ReviewTask | None:
    """Recompute the priority of the report's open task. Unchanged priority writes nothing."""
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report_id)
        if report.joined_to_id is not None:
            # Reviewed with the case it joined (services/joining.py): that case's priority is recomputed.
            if report.status == Report.Status.RECEIVED:
                report.status = Report.Status.IN_REVIEW
                report.save(update_fields=["status", "updated_at"])
            report = Report.objects.select_for_update().get(pk=report.joined_to_id)
            task = ReviewTask.objects.filter(report=report, kind=ReviewTask.Kind.REPORT).first()
            if task is not None:
                task_reprioritise(task, report)
            return task
        task = task_ensure(report)
        if task.state == ReviewTask.State.DECIDED:
            return task
        task_reprioritise(task, report)
        routing.task_route(task, report)
        if report.status == Report.Status.RECEIVED:
            report.status = Report.Status.IN_REVIEW
            report.save(update_fields=["status", "updated_at"])
        return task
