"""Many reports, one item: a report about content an open case already holds joins that case.

A popular item is reported many times. Each report is a notice in law (its own case number, PIN, receipt and
legal clock; every reporter hears the outcome), but moderators review the content once. So a new report
whose every item is already in an open case *joins* that case instead of opening its own review:

- **same location**: at intake, every link the report names (in canonical form) is an item of the case;
- **same media**: once fetched and hashed, every media item of the report is one of the case's media (the
  same SHA-256; media are stored once per SHA-256) or within ``TAKEDOWN_NEAR_DUPLICATE_PDQ_RADIUS`` of one
  by PDQ.

Only a case that nobody has started works on is joined (its own review task open, never claimed, no notes or
proposals), and only into a case received earlier and itself not joined, so joins never form a cycle. The
case it joins counts it (``Report.report_count``, shown and sorted on in the queue), takes its deadline if
that is earlier, and takes the priority of the combined reports. When the case is decided, the decision is
applied to every open joined report in the same transaction (``joined_decisions_create``): a decision per
report, audited, its items removed with the case's or kept, and its reporter told. When the case stops
standing for them without a final decision (its reporter withdraws it, or a moderator asks its reporter for
more information), the oldest joined report becomes a case of its own and the others join it
(``joined_promote``).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from moderation.audit import SYSTEM, audit_record
from moderation.models import CaseNote, Decision, MediaHash, ProposedDecision, Report, ReportedItem, ReviewTask
from moderation.services import enforcement
from moderation.services.mutes import reporter_is_muted
from moderation.services.triage import task_ensure, task_reprioritise

# The states of a case that reports may join, and of a joined report the case's decision applies to.
JOINABLE_STATUSES = (Report.Status.RECEIVED, Report.Status.IN_REVIEW)
SAME_LOCATION = "same location"


def _open_cases() -> QuerySet[Report]:
    """Cases a report may join: open, not joined themselves, with their review task undecided."""
    reviewing = ReviewTask.objects.filter(report_id=OuterRef("pk"), kind=ReviewTask.Kind.REPORT).exclude(
        state=ReviewTask.State.DECIDED)
    return Report.objects.filter(Exists(reviewing), status__in=JOINABLE_STATUSES, joined_to__isnull=True,
                                 notice_complete_at__isnull=False)


def may_join(report: Report) -> bool:
    """Whether ``report`` may join another case: a complete notice, open, and not joined already."""
    return (report.joined_to_id is None and report.status in JOINABLE_STATUSES
            and report.notice_complete_at is not None)


def _muted(report: Report) -> bool:
    """A muted reporter's reports stay in their own low-priority queue: they never add to another case's count,
    and no one else's report joins them there."""
    return bool(report.reporter_email) and reporter_is_muted(report.reporter_email)


def case_for_locations(locations: list[str], *, received_before: datetime) -> Report | None:
    """The oldest open case holding every one of ``locations`` (canonical forms), if any."""
    if not locations:
        return None
    wanted = set(locations)
    candidates = (_open_cases().filter(items__location__in=wanted, received_at__lte=received_before)
                  .order_by("received_at", "id").distinct())
    for case in candidates[:20]:
        held = set(case.items.filter(location__in=wanted).values_list("location", flat=True))
        if held == wanted and not _muted(case):
            return case
    return None


def case_for_media(report: Report) -> tuple[Report, str] | None:
    """The oldest open case, received before ``report``, holding every media item of ``report`` (the same
    SHA-256, or a PDQ hash within ``TAKEDOWN_NEAR_DUPLICATE_PDQ_RADIUS``); with the basis in words."""
    items = list(report.items.all())
    if not items or any(item.media_id is None for item in items):
        return None  # an item without media (unprocessable, not fetched yet) needs a person's look
    mine = {item.media_id for item in items if item.media_id is not None}
    earlier = _open_cases().exclude(pk=report.pk).filter(
        Q(received_at__lt=report.received_at) | Q(received_at=report.received_at, pk__lt=report.pk))
    exact = (earlier.filter(items__media_id__in=mine).order_by("received_at", "id").distinct())
    for case in exact[:20]:
        if mine <= set(case.items.exclude(media=None).values_list("media_id", flat=True)) and not _muted(case):
            return case, "same media (SHA-256)"
    radius = settings.TAKEDOWN_NEAR_DUPLICATE_PDQ_RADIUS
    own: dict[int, list[int]] = {}
    for media_id, value in MediaHash.objects.filter(media_id__in=mine, algorithm="pdq").values_list("media_id",
                                                                                                    "value"):
        own.setdefault(media_id, []).append(int(value, 16))
    if set(own) != mine:
        return None  # a media item without a PDQ hash (a video, a file PDQ could not read) joins only exactly
    # The PDQ hashes of open cases' media only: bounded by the open queue, not by every hash ever stored.
    theirs: dict[int, list[tuple[int, int]]] = {}
    for case_id, media_id, value in (MediaHash.objects.filter(
            algorithm="pdq", media__reported_items__report__in=earlier.values("pk"))
            .values_list("media__reported_items__report_id", "media_id", "value").distinct()):
        theirs.setdefault(case_id, []).append((media_id, int(value, 16)))
    best: tuple[datetime, int, Report, int] | None = None
    for case in Report.objects.filter(pk__in=list(theirs)):
        if _muted(case):
            continue
        worst = 0
        for hashes in own.values():
            distances = [(h ^ other).bit_count() for h in hashes for _, other in theirs[case.pk]]
            nearest = min(distances) if distances else radius + 1
            if nearest > radius:
                break
            worst = max(worst, nearest)
        else:
            key = (case.received_at, case.pk, case, worst)
            if best is None or key[:2] < best[:2]:
                best = key
    if best is None:
        return None
    return best[2], f"same media (PDQ distance {best[3]})"


def report_join(*, report: Report, case: Report, basis: str, now: datetime | None = None) -> None:
    """Attach ``report`` to ``case``: its own review task, if it has one, goes (nobody has worked on it), the
    case counts it, takes its deadline if earlier and is re-prioritised. Call inside a transaction holding both
    rows (``select_for_update``); audited."""
    now = now or timezone.now()
    removed_tasks = list(ReviewTask.objects.filter(report=report).values_list("pk", flat=True))
    ReviewTask.objects.filter(pk__in=removed_tasks).delete()
    report.joined_to = case
    report.joined_at = now
    report.join_basis = basis[:100]
    if report.status == Report.Status.RECEIVED:
        report.status = Report.Status.IN_REVIEW
    report.save(update_fields=["joined_to", "joined_at", "join_basis", "status", "updated_at"])
    # Reports that had joined ``report`` come along (it was itself a case until now).
    carried = list(Report.objects.filter(joined_to=report).values_list("pk", flat=True))
    Report.objects.filter(pk__in=carried).update(joined_to=case)
    before_deadline = case.deadline_at
    case.report_count += report.report_count
    report.report_count = 1
    Report.objects.filter(pk=report.pk).update(report_count=1)
    deadlines = [d for d in (case.deadline_at, report.deadline_at) if d is not None]
    case.deadline_at = min(deadlines) if deadlines else None
    case.save(update_fields=["report_count", "deadline_at", "updated_at"])
    audit_record(actor=SYSTEM, action="report.joined", object_type="report", object_id=report.pk,
                 data={"case": case.pk, "case_number": case.case_number, "basis": basis,
                       "removed_tasks": removed_tasks, "carried": carried, "report_count": case.report_count,
                       **({"deadline_advanced_to": case.deadline_at.isoformat()}
                          if case.deadline_at and case.deadline_at != before_deadline else {})})
    for task in ReviewTask.objects.select_for_update().filter(report=case).exclude(state=ReviewTask.State.DECIDED):
        task_reprioritise(task, case, now)


def _untouched(report: Report) -> bool:
    """Nobody has worked on the report's own review (so joining loses nothing a person did)."""
    tasks = list(ReviewTask.objects.filter(report=report))
    if any(t.kind != ReviewTask.Kind.REPORT or t.state != ReviewTask.State.OPEN or t.first_claimed_at
           or t.assignee_id or t.escalated_to_id or t.held_until for t in tasks):
        return False
    if Decision.objects.filter(report=report).exists():
        return False
    return not (CaseNote.objects.filter(task__in=tasks).exists()
                or ProposedDecision.objects.filter(task__in=tasks).exists())


def report_join_by_media(report_id: int) -> Report | None:
    """Join the report to an open case holding the same media, if there is one and nobody has worked on the
    report's own review yet. Returns the case joined. Triage calls this once the report's media are hashed."""
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report_id)
        if not may_join(report) or not _untouched(report):
            return None
        found = case_for_media(report)
        if found is None or _muted(report):
            return None
        case = Report.objects.select_for_update().get(pk=found[0].pk)
        if case.joined_to_id is not None or case.status not in JOINABLE_STATUSES:
            return None  # it changed while we looked; the report stays a case of its own
        report_join(report=report, case=case, basis=found[1])
        return case


def report_join_by_location(*, report: Report, locations: list[str], now: datetime) -> Report | None:
    """At intake, inside the filing transaction (before the report has a review task): join the oldest open case
    holding every location the report names. Returns the case joined."""
    if not may_join(report):
        return None
    found = case_for_locations(locations, received_before=now)
    if found is None or _muted(report):
        return None
    case = Report.objects.select_for_update().get(pk=found.pk)
    if case.joined_to_id is not None or case.status not in JOINABLE_STATUSES:
        return None
    report_join(report=report, case=case, basis=SAME_LOCATION, now=now)
    return case


def joined_open(case: Report) -> list[Report]:
    """The joined reports a decision on ``case`` applies to: those still waiting for it, oldest first."""
    return list(Report.objects.select_for_update().filter(joined_to=case, status__in=JOINABLE_STATUSES)
                .order_by("received_at", "id"))


def joined_promote(*, case: Report, why: str) -> Report | None:
    """``case`` no longer stands for the reports that joined it (withdrawn, or waiting for its reporter): the
    oldest open one becomes a case of its own, with a new review task, and the others join it. Call inside
    the transaction that changes ``case``. Returns the new case, if any."""
    waiting = joined_open(case)
    Report.objects.filter(joined_to=case).exclude(pk__in=[r.pk for r in waiting]).update(report_count=1)
    if not waiting:
        if case.report_count != 1:
            Report.objects.filter(pk=case.pk).update(report_count=1)
        return None
    first, rest = waiting[0], waiting[1:]
    first.joined_to = None
    first.report_count = 1 + len(rest)
    deadlines = [r.deadline_at for r in waiting if r.deadline_at is not None]
    first.deadline_at = min(deadlines) if deadlines else first.deadline_at
    first.save(update_fields=["joined_to", "report_count", "deadline_at", "updated_at"])
    Report.objects.filter(pk__in=[r.pk for r in rest]).update(joined_to=first)
    Report.objects.filter(pk=case.pk).update(report_count=1)
    task = task_ensure(first)
    task_reprioritise(task, first)
    audit_record(actor=SYSTEM, action="report.promoted", object_type="report", object_id=first.pk,
                 data={"from_case": case.pk, "why": why, "joined": [r.pk for r in rest], "task": task.pk})
    return first


def report_leaves(*, report: Report) -> None:
    """A joined report was withdrawn: the case no longer counts it. Call inside the withdrawing transaction."""
    if report.joined_to_id is None:
        return
    case = Report.objects.select_for_update().get(pk=report.joined_to_id)
    case.report_count = max(1, case.report_count - 1)
    case.save(update_fields=["report_count", "updated_at"])


def joined_decisions_create(*, decision: Decision, case: Report) -> list[Decision]:
    """Apply the case's decision to each open joined report, inside the deciding transaction: a decision per
    report (the same outcome, reason, deciders, batch and effective time), audited one per report. A takedown
    removes the joined report's own items at other locations (actions under its decision); an item at a
    location the case's removal already covers is removed by that action (``items_removed_with``). Returns
    the joined reports' decisions. Needs-information decisions are not applied (see ``joined_promote``)."""
    if decision.outcome == Decision.Outcome.NEEDS_INFORMATION:
        return []
    made: list[Decision] = []
    covered = set(case.items.exclude(location="").values_list("location", flat=True))
    now = timezone.now()
    for report in joined_open(case):
        joined = Decision.objects.create(
            task=decision.task, report=report, outcome=decision.outcome, reason=decision.reason, note=decision.note,
            decided_by=decision.decided_by, confirmed_by=decision.confirmed_by, automated=decision.automated,
            reporter_template=decision.reporter_template, uploader_template=decision.uploader_template,
            effective_at=decision.effective_at, batch=decision.batch)
        before = {"status": report.status}
        if decision.outcome == Decision.Outcome.TAKEDOWN:
            own = report.items.exclude(location="").exclude(location__in=covered)
            actions = enforcement.removals_create(decision=joined, items=own)
            covered.update(own.values_list("location", flat=True))
            report.status = Report.Status.ACTIONING
            report.closed_at = None
            if not actions and not case.items.exclude(location="").exists():
                report.status, report.closed_at = Report.Status.REMOVED, now
        elif decision.outcome == Decision.Outcome.NO_VIOLATION:
            report.items.exclude(state=ReportedItem.State.REMOVED).update(state=ReportedItem.State.KEPT)
            report.status = Report.Status.NO_VIOLATION
            report.closed_at = now
        else:  # the child-safety procedure takes the content, and with it every report of it
            report.closed_at = now
        report.save(update_fields=["status", "closed_at", "updated_at"])
        audit_record(actor=SYSTEM, action="decision.made", object_type="report", object_id=report.pk,
                     data={"decision": joined.pk, "outcome": joined.outcome, "reason": joined.reason,
                           "task": decision.task_id, "joined_to": case.pk, "case_decision": decision.pk},
                     reason=joined.reason, before=before, after={"status": report.status})
        made.append(joined)
    return made
