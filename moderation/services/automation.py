"""What Takedown does on its own when proactive scanning finds known content: the per-bank policy.

A post found by the firehose scanner (``services/atproto_scan.py``) whose images matched banks becomes a case
with ``Report.Source.SCANNER`` (no reporter; the legal clock of ``TAKEDOWN_DEADLINE_HOURS["scanner"]``), one item
per matching image. What happens next is each matched bank's ``on_stream_match``:

- ``takedown`` (any matched bank asks for it; meant for banks of confirmed NCII): the post is taken down at once
  with no human step. An automated ``Decision`` (``automated=True``, nobody's), reason "known copy", removal
  actions through the enforcer as any takedown has, statements of reasons and the copy sweep
  (``decision_followup``), all audited. A share of them, ``TAKEDOWN_ATPROTO_SCAN_REVIEW_SAMPLE``, keeps its
  review task open for a human to look at after the fact; changing such a decision is an override of automation,
  which needs two seniors (``services/decisions.py``). Automated takedowns add nothing to the banks: only a human
  decision grows them, so a false match cannot spread itself.
- ``case`` (every other match): a case in the review queue, ranked by triage, for moderators to decide.

Idempotent at the database: a ``ScannerFinding`` per ``(post URI, image blob CID)`` is created in the same
transaction as the case, under a unique constraint, so the same post processed twice (an event replayed after
a restart, two scanners at once) never opens a second case or a second takedown.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from hashing.matching import BankMatch
from hashing.models import Bank
from moderation import jobs
from moderation.audit import audit_record
from moderation.models import Decision, Match, MediaHash, Report, ReportedItem, ReviewTask, ScannerFinding
from moderation.observability import events
from moderation.services import enforcement
from moderation.services.intake import report_open_without_notice
from moderation.services.triage import Reason, priority_reasons, task_create
from moderation.signals import decision_carried_out

# The audit log's actor for what the scanner does (no user acts).
SCANNER = "scanner"
# Queue points of an automated takedown sampled for review: behind every case still waiting for a decision
# of the same deadline band, since the content is already down.
SAMPLED_REVIEW_POINTS = 0


@dataclass(frozen=True)
class FoundImage:
    """One image of the post that matched: its blob, the stored media (hashed) and the bank matches."""

    blob_cid: str
    part: int  # its place among the post's images
    media_id: int
    content_type: str
    size: int
    matches: Sequence[BankMatch]


@dataclass(frozen=True)
class FindingOutcome:
    """What :func:`scanner_finding_act` did. ``created`` is False when the post was handled before (nothing done)."""

    report_id: int
    policy: str
    created: bool
    decision_id: int | None = None
    review_sampled: bool = False


def stream_policy(matches: Sequence[BankMatch]) -> str:
    """``takedown`` when any matched bank asks for it, else ``case``."""
    bank_ids = {m.bank_id for m in matches}
    wants = set(Bank.objects.filter(pk__in=bank_ids).values_list("on_stream_match", flat=True))
    return Bank.OnStreamMatch.TAKEDOWN if Bank.OnStreamMatch.TAKEDOWN in wants else Bank.OnStreamMatch.CASE


def scanner_finding_act(*, uri: str, uploader: str, posted_at: datetime | None, images: Sequence[FoundImage],
                        seq: int | None = None, event_time: datetime | None = None) -> FindingOutcome:
    """Open a case for the post at ``uri`` (canonical, ``at://...``) whose ``images`` matched, or take it down,
    as the matched banks' policy says (module docstring). Idempotent; see :class:`FindingOutcome`."""
    if not images:
        raise ValueError("scanner_finding_act needs at least one matching image")
    done = _already(uri, images)
    if done is not None:
        return done
    matches = [m for image in images for m in image.matches]
    policy = stream_policy(matches)
    try:
        with transaction.atomic():
            return _act(uri=uri, uploader=uploader, posted_at=posted_at, images=images, matches=matches,
                        policy=policy, seq=seq, event_time=event_time)
    except IntegrityError:
        done = _already(uri, images)  # another scanner recorded it first
        if done is None:
            raise
        return done


def _already(uri: str, images: Sequence[FoundImage]) -> FindingOutcome | None:
    found = ScannerFinding.objects.filter(uri=uri, blob_cid__in=[i.blob_cid for i in images]).first()
    if found is None:
        return None
    return FindingOutcome(report_id=found.report_id, policy=found.policy, created=False)


def _act(*, uri: str, uploader: str, posted_at: datetime | None, images: Sequence[FoundImage],
         matches: list[BankMatch], policy: str, seq: int | None, event_time: datetime | None) -> FindingOutcome:
    now = timezone.now()
    banks = sorted({m.bank_name for m in matches})
    nearest = min(matches, key=lambda m: (m.distance / (m.threshold + 1), m.entry_id))
    report = _create_report(now=now, banks=banks, seq=seq, event_time=event_time)
    items = []
    for image in images:
        item = ReportedItem.objects.create(
            report=report, location=uri, part=image.part, media_id=image.media_id,
            state=ReportedItem.State.RESOLVED, content_type=image.content_type[:100], size_bytes=image.size,
            uploader_ref=uploader[:200], posted_at=posted_at, fetched_at=now)
        _record_matches(image)
        # The unique (uri, blob) row: a second attempt at this post fails here and rolls everything back.
        ScannerFinding.objects.create(uri=uri, blob_cid=image.blob_cid, report=report, item=item, policy=policy,
                                      banks=banks, seq=seq, event_time=event_time)
        items.append(item)
    media_ids = sorted({image.media_id for image in images})
    audit_record(actor=SCANNER, action="report.received", object_type="report", object_id=report.pk,
                 data={"case_number": report.case_number, "source": report.source, "location": uri,
                       "uploader": uploader[:200], "images": [i.blob_cid for i in images], "banks": banks,
                       "policy": policy, "seq": seq,
                       "nearest": {"bank": nearest.bank_name, "entry": nearest.entry_id,
                                   "algorithm": nearest.algorithm, "distance": nearest.distance},
                       "deadline_at": report.deadline_at.isoformat() if report.deadline_at else None})
    events.report_received(report.source)
    if policy == Bank.OnStreamMatch.TAKEDOWN:
        return _takedown(report=report, items=items, media_ids=media_ids, banks=banks, nearest=nearest, now=now)
    task_create(report, media_ids=media_ids)
    report.status = Report.Status.IN_REVIEW
    report.save(update_fields=["status", "updated_at"])
    # The synthetic-media score, then triage again with it, as reported media get (hashes are already in).
    for media_id in media_ids:
        transaction.on_commit(lambda media_id=media_id: jobs.media_score_then_triage(media_id))  # type: ignore[misc]
    return FindingOutcome(report_id=report.pk, policy=policy, created=True)


def _create_report(*, now: datetime, banks: list[str], seq: int | None, event_time: datetime | None) -> Report:
    return report_open_without_notice(
        source=Report.Source.SCANNER, now=now,
        statement=f"Found by proactive scanning of the platform's event stream: an image in this post matches "
                  f"{', '.join(banks)}.",
        context={"scanner": {"seq": seq, "banks": banks,
                             "event_time": event_time.isoformat() if event_time else None}})


def _record_matches(image: FoundImage) -> None:
    """The bank matches as ``Match`` rows of the stored media (the case page's evidence), once each. Media
    stored before a bank entry existed has no such row from its own hashing, so they are written here."""
    rows = dict(MediaHash.objects.filter(media_id=image.media_id).values_list("algorithm", "id"))
    for m in image.matches:
        if m.algorithm in rows:
            Match.objects.get_or_create(
                media_hash_id=rows[m.algorithm], bank_entry_id=m.entry_id,
                defaults={"media_id": image.media_id, "algorithm": m.algorithm, "distance": m.distance,
                          "threshold": m.threshold})


def _takedown(*, report: Report, items: list[ReportedItem], media_ids: list[int], banks: list[str],
              nearest: BankMatch, now: datetime) -> FindingOutcome:
    sampled = random.random() < float(settings.TAKEDOWN_ATPROTO_SCAN_REVIEW_SAMPLE)
    reasons = priority_reasons(report, now, media_ids=media_ids)
    if sampled:
        reasons.append(Reason("automated_review", SAMPLED_REVIEW_POINTS,
                              "taken down automatically; sampled for review by a person"))
    task = ReviewTask.objects.create(
        report=report, kind=ReviewTask.Kind.REPORT, priority=sum(r.points for r in reasons),
        priority_reasons=[asdict(r) for r in reasons], triaged_at=now,
        # Not sampled: closed with the automated decision. Sampled: open in the queue, the decision stands.
        state=ReviewTask.State.OPEN if sampled else ReviewTask.State.DECIDED, closed_at=None if sampled else now)
    decision = Decision.objects.create(
        task=task, report=report, outcome=Decision.Outcome.TAKEDOWN, reason=Decision.Reason.KNOWN_COPY,
        automated=True, decided_by=None,
        note=(f"Automated takedown by proactive scanning: matches {', '.join(banks)} (nearest: "
              f"{nearest.algorithm} distance {nearest.distance} of {nearest.threshold} in {nearest.bank_name}), "
              f"a bank whose policy is to take matches down."))
    actions = enforcement.removals_create(decision=decision, items=items)
    report.status = Report.Status.ACTIONING if actions else Report.Status.REMOVED
    report.closed_at = None if actions else now
    report.save(update_fields=["status", "closed_at", "updated_at"])
    audit_record(actor=SCANNER, action="task.created", object_type="task", object_id=task.pk,
                 data={"report": report.pk, "priority": task.priority, "state": task.state,
                       "review_after_automation": sampled})
    audit_record(actor=SCANNER, action="decision.automated", object_type="report", object_id=report.pk,
                 reason=decision.reason,
                 data={"decision": decision.pk, "outcome": decision.outcome, "reason": decision.reason,
                       "task": task.pk, "banks": banks, "actions": [a.pk for a in actions],
                       "sampled_for_review": sampled})
    decision_carried_out.send(sender=Decision, decision=decision)
    action_ids = [a.pk for a in actions]
    transaction.on_commit(lambda: jobs.actions_carry_out(action_ids))
    transaction.on_commit(lambda: jobs.decision_followup(decision.pk))
    return FindingOutcome(report_id=report.pk, policy=Bank.OnStreamMatch.TAKEDOWN, created=True,
                          decision_id=decision.pk, review_sampled=sampled)
