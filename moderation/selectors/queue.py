"""The moderation queue: its filters, pages in queue order with per-row figures, and counts per state."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, F, FloatField, Func, IntegerField, OuterRef, QuerySet, Subquery
from django.utils import timezone

from moderation.models import Queue, ReportedItem, ReviewTask

QUEUE_REASON_CODES = ("deadline", "match", "confirmed_bank", "score", "source", "self_report", "reports")
# Deadline bands for filters and the dashboard: (key, label, hours left from, hours left to).
DEADLINE_BANDS: tuple[tuple[str, str, float | None, float | None], ...] = (
    ("breached", "deadline passed", None, 0),
    ("under_12h", "under 12 h left", 0, 12),
    ("under_24h", "12-24 h left", 12, 24),
    ("under_48h", "24-48 h left", 24, 48),
    ("later", "more than 48 h left", 48, None),
)
# The queue's orders: (value of the filter's "sort", label). "" is queue order: priority, then age.
SORT_REPORTS = "reports"
QUEUE_SORTS: tuple[tuple[str, str], ...] = (("", "queue order"), (SORT_REPORTS, "most reports first"))
_QUEUE_ORDER = ("-priority", "created_at", "id")


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
    queue: str = ""  # a Queue's slug; "none" for cases in no queue
    sort: str = ""  # "" (queue order) or SORT_REPORTS: the cases that stand for most reports first


def _ordering(f: QueueFilters) -> tuple[str, ...]:
    """Queue order, or most reports first and then queue order (ties stay in the order "next" takes them)."""
    if f.sort == SORT_REPORTS:
        return ("-report__report_count", *_QUEUE_ORDER)
    return _QUEUE_ORDER


# What a queue row shows besides the task: joined, never queried per row.
_ROW_RELATED = ("report", "assignee", "queue", "escalated_to")


def _report_items() -> QuerySet[ReportedItem]:
    # Start every per-task subquery from the report's items (indexed by report), then follow the
    # item's media: the planner never scans all matches or scores to find one report's.
    return ReportedItem.objects.filter(report_id=OuterRef("report_id")).order_by()


def queue_tasks(*, state: str | None = None, assignee: Any = None, filters: QueueFilters | None = None,
                user: Any = None, now: datetime | None = None) -> QuerySet[ReviewTask]:
    """Tasks in queue order (priority, then age); undecided ones by default, with per-row figures."""
    f = filters or QueueFilters(state=state or "")
    qs = _queue_filtered(f, assignee=assignee, user=user, now=now or timezone.now())
    return _queue_annotated(qs.select_related(*_ROW_RELATED)).order_by(*_ordering(f))


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
    if f.queue == "none":
        qs = qs.filter(queue=None)
    elif f.queue:
        qs = qs.filter(queue__slug=f.queue)
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
    ids = list(base.order_by(*_ordering(filters)).values_list("id", flat=True)[offset:offset + size + 1])
    has_next = len(ids) > size
    ids = ids[:size]
    by_id = {t.pk: t for t in _queue_annotated(
        ReviewTask.objects.filter(pk__in=ids).select_related(*_ROW_RELATED))} if ids else {}
    total = None
    unfiltered = replace(filters, sort="") == QueueFilters(state=filters.state)  # an order filters nothing
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


def case_numbers(task_ids: list[int]) -> dict[int, tuple[str, str]]:
    """(case number, state) of each task that exists among ``task_ids``, by task id: one query."""
    rows = ReviewTask.objects.filter(pk__in=task_ids).values_list("pk", "report__case_number", "state")
    return {pk: (number, state) for pk, number, state in rows}


def queue_choices() -> list[tuple[str, str]]:
    """(slug, name) of every named queue, in their order: the queue filter's choices."""
    return list(Queue.objects.order_by("position", "name").values_list("slug", "name"))
