"""Service-level figures: how long cases wait for a first claim, a decision and the action on the platform.

Each clock starts when the case entered the review queue (``ReviewTask.created_at``) and stops at:
- first claim: ``ReviewTask.first_claimed_at`` (the first moderator who took it; later claims do not move it);
- decision: the case's first decision by a person (automated decisions are left out: they have no queue time);
- action: the last removal carried out on the platform for the case (``Action.completed_at`` of done removals).

A case counts in a period when the clock stopped inside it, so a period's figures describe the work done in
it. Figures are grouped per queue (``ReviewTask.kind`` until named queues exist) and per report source
(``Report.source``), as nearest-rank percentiles (p50, p90, p99) in hours.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max, Min, Q

from moderation.models import Action, Report, ReviewTask

PERCENTILES = (50, 90, 99)
MEASURES = ("first_claim", "decision", "action")
MEASURE_LABELS = {"first_claim": "Time to first claim", "decision": "Time to decision",
                  "action": "Time to action on the platform"}


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``: an observed value, never an
    interpolation, so p99 of a few cases is their slowest one. None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Spread:
    """One measure's percentiles in hours, over ``count`` cases."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None

    @classmethod
    def of(cls, seconds: list[float]) -> Spread:
        hours = [s / 3600 for s in seconds]
        p50, p90, p99 = (percentile(hours, q) for q in PERCENTILES)
        return cls(count=len(hours), p50=_round(p50), p90=_round(p90), p99=_round(p99))

    def as_dict(self) -> dict[str, float | int | None]:
        return {"count": self.count, "p50_hours": self.p50, "p90_hours": self.p90, "p99_hours": self.p99}


def _round(hours: float | None) -> float | None:
    return None if hours is None else round(hours, 2)


@dataclass(frozen=True)
class SlaRow:
    """The three measures for one group: ``grouping`` is "queue" or "source", ``key`` its value."""

    grouping: str
    key: str
    label: str
    first_claim: Spread
    decision: Spread
    action: Spread

    def spread(self, measure: str) -> Spread:
        return {"first_claim": self.first_claim, "decision": self.decision, "action": self.action}[measure]

    @property
    def measures(self) -> list[tuple[str, str, Spread]]:
        """``(measure, its label, its spread)`` in the order of ``MEASURES`` (for templates)."""
        return [(m, MEASURE_LABELS[m], self.spread(m)) for m in MEASURES]


@dataclass(frozen=True)
class SlaFigures:
    overall: SlaRow
    by_queue: list[SlaRow]
    by_source: list[SlaRow]

    @property
    def all_rows(self) -> list[SlaRow]:
        return [self.overall, *self.by_queue, *self.by_source]


# (queue, source, seconds) per measure.
_Samples = dict[str, list[tuple[str, str, float]]]


def _samples(start: datetime, end: datetime) -> _Samples:
    tasks = ReviewTask.objects.order_by()
    claimed = tasks.filter(first_claimed_at__gte=start, first_claimed_at__lt=end).values_list(
        "kind", "report__source", "created_at", "first_claimed_at")
    decided = (tasks.annotate(stop=Min("decisions__created_at", filter=Q(decisions__automated=False)))
               .filter(stop__gte=start, stop__lt=end).values_list("kind", "report__source", "created_at", "stop"))
    acted = (tasks.annotate(stop=Max("decisions__actions__completed_at", filter=Q(
                 decisions__actions__kind=Action.Kind.REMOVE, decisions__actions__status=Action.Status.DONE)))
             .filter(stop__gte=start, stop__lt=end).values_list("kind", "report__source", "created_at", "stop"))
    samples: _Samples = {}
    for measure, rows in (("first_claim", claimed), ("decision", decided), ("action", acted)):
        # A clock that stopped before it started (clock skew between workers) counts as no wait at all.
        samples[measure] = [(kind, source, max(0.0, (stop - begun).total_seconds()))
                            for kind, source, begun, stop in rows if stop is not None]
    return samples


def _row(grouping: str, key: str, label: str, samples: _Samples) -> SlaRow:
    def belongs(kind: str, source: str) -> bool:
        return grouping == "all" or (kind if grouping == "queue" else source) == key

    spreads = {m: Spread.of([s for kind, source, s in samples[m] if belongs(kind, source)]) for m in MEASURES}
    return SlaRow(grouping=grouping, key=key, label=label, **spreads)


def sla_figures(*, start: datetime, end: datetime) -> SlaFigures:
    """The SLA figures for clocks that stopped in ``start <= time < end``: overall, per queue, per source.

    Every queue and source appears (with a count of 0 when nothing happened), in their declared order."""
    samples = _samples(start, end)
    overall = _row("all", "", "All cases", samples)
    by_queue = [_row("queue", value, label, samples) for value, label in ReviewTask.Kind.choices]
    by_source = [_row("source", value, label, samples) for value, label in Report.Source.choices]
    return SlaFigures(overall=overall, by_queue=by_queue, by_source=by_source)


def sla_as_dict(figures: SlaFigures) -> dict[str, dict[str, dict[str, dict[str, float | int | None]]]]:
    """``{"all": {...}, "by_queue": {kind: {measure: spread}}, "by_source": {...}}`` for JSON and CSV."""
    def measures(row: SlaRow) -> dict[str, dict[str, float | int | None]]:
        return {m: row.spread(m).as_dict() for m in MEASURES}

    grouped: dict[str, dict[str, dict[str, dict[str, float | int | None]]]] = defaultdict(dict)
    grouped["all"] = {"all": measures(figures.overall)}
    for row in figures.by_queue:
        grouped["by_queue"][row.key] = measures(row)
    for row in figures.by_source:
        grouped["by_source"][row.key] = measures(row)
    return dict(grouped)
