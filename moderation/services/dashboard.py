"""The dashboard's figures (reads only) and their charts as server-rendered SVG (no scripts, no CDN)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from moderation.models import Decision, ReviewTask
from moderation.selectors.queue import DEADLINE_BANDS
from moderation.selectors.sla import MEASURE_LABELS, MEASURES, SlaFigures, SlaRow, sla_figures

# How far back "recent" decisions reach for the median and breach figures: a month shows a trend
# without one unusual day dominating it.
WINDOW_DAYS = 30
CHART_WIDTH = 480
BAR_HEIGHT = 22
LABEL_WIDTH = 170


@dataclass(frozen=True)
class Dashboard:
    by_state: list[tuple[str, int]]
    by_band: list[tuple[str, int]]
    decided_recently: int
    median_hours_to_decision: float | None
    breaches_decided_late: int
    breaches_open_now: int
    per_day: list[tuple[str, int, int]]  # (day, decided, of which late)
    # Time to first claim, decision and action per queue and source, over the same window (selectors/sla.py).
    sla: SlaFigures | None = None


def dashboard_figures(*, now: datetime | None = None) -> Dashboard:
    """Open cases by state and deadline band, median time to decision and deadline breaches."""
    now = now or timezone.now()
    undecided = ReviewTask.objects.exclude(state=ReviewTask.State.DECIDED)
    counts = dict(undecided.order_by().values_list("state").annotate(n=Count("id")))
    by_state = [(label, counts.get(value, 0)) for value, label in ReviewTask.State.choices
                if value != ReviewTask.State.DECIDED]
    band_filters = {}
    for key, _label, low, high in DEADLINE_BANDS:
        q = Q()
        if low is not None:
            q &= Q(report__deadline_at__gte=now + timedelta(hours=low))
        if high is not None:
            q &= Q(report__deadline_at__lt=now + timedelta(hours=high))
        band_filters[key] = Count("id", filter=q)
    band_counts = undecided.aggregate(**band_filters, none=Count("id", filter=Q(report__deadline_at=None)))
    by_band = [(label, band_counts[key] or 0) for key, label, _l, _h in DEADLINE_BANDS]
    if band_counts["none"]:
        by_band.append(("no deadline", band_counts["none"]))

    since = now - timedelta(days=WINDOW_DAYS)
    recent = Decision.objects.filter(created_at__gte=since, automated=False)
    rows = list(recent.values_list("created_at", "report__received_at", "report__deadline_at"))
    hours = [(decided - received).total_seconds() / 3600 for decided, received, _d in rows]
    late = recent.filter(report__deadline_at__lt=F("created_at")).count()
    open_breached = undecided.filter(report__deadline_at__lt=now).count()
    per_day: dict[str, list[int]] = {}
    for offset in range(13, -1, -1):
        per_day[(timezone.localdate(now) - timedelta(days=offset)).isoformat()] = [0, 0]
    for decided, _received, deadline in rows:
        key = timezone.localdate(decided).isoformat()
        if key in per_day:
            per_day[key][0] += 1
            per_day[key][1] += int(deadline is not None and decided > deadline)
    return Dashboard(
        by_state=by_state, by_band=by_band, decided_recently=len(rows),
        median_hours_to_decision=round(statistics.median(hours), 1) if hours else None,
        breaches_decided_late=late, breaches_open_now=open_breached,
        per_day=[(day, v[0], v[1]) for day, v in per_day.items()],
        sla=sla_figures(start=since, end=now),
    )


def bar_chart_svg(*, title: str, rows: list[tuple[str, int]], colour: str = "#0b57d0") -> SafeString:
    """A horizontal bar chart with a title, labels and values; ``role="img"`` with a text alternative."""
    top = max([v for _l, v in rows] + [1])
    height = 30 + BAR_HEIGHT * len(rows)
    span = CHART_WIDTH - LABEL_WIDTH - 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{CHART_WIDTH}" height="{height}" '
             f'viewBox="0 0 {CHART_WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f'<title>{escape(title)}: ' + escape(", ".join(f"{lbl} {v}" for lbl, v in rows)) + "</title>",
             f'<text x="0" y="16" font-weight="600" font-size="14">{escape(title)}</text>']
    for index, (label, value) in enumerate(rows):
        y = 26 + index * BAR_HEIGHT
        width = round(span * value / top)
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{escape(label)}</text>')
        parts.append(f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width}" height="{BAR_HEIGHT - 6}" '
                     f'fill="{escape(colour)}" data-label="{escape(label)}" data-value="{value}"></rect>')
        parts.append(f'<text x="{LABEL_WIDTH + width + 6}" y="{y + 15}" font-size="12">{value}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated string above is escaped


def day_chart_svg(*, title: str, rows: list[tuple[str, int, int]]) -> SafeString:
    """Decisions per day as columns, the late ones in red on top of each column."""
    top = max([d for _day, d, _late in rows] + [1])
    width, height, plot = CHART_WIDTH, 200, 140
    column = (width - 20) // max(len(rows), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}: " + escape(", ".join(f"{d} {n} decided, {late} late" for d, n, late in rows))
             + "</title>",
             f'<text x="0" y="16" font-weight="600" font-size="14">{escape(title)}</text>']
    for index, (day, decided, late) in enumerate(rows):
        x = 10 + index * column
        on_time = decided - late
        h_total = round(plot * decided / top)
        h_late = round(plot * late / top)
        base = 30 + plot
        parts.append(f'<rect x="{x}" y="{base - h_total}" width="{column - 4}" height="{h_total - h_late}" '
                     f'fill="#0b57d0" data-day="{escape(day)}" data-value="{on_time}"></rect>')
        if late:
            parts.append(f'<rect x="{x}" y="{base - h_late}" width="{column - 4}" height="{h_late}" '
                         f'fill="#a50e0e" data-day="{escape(day)}" data-late="{late}"></rect>')
        parts.append(f'<text x="{x}" y="{base + 14}" font-size="10">{escape(day[5:])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated string above is escaped


SLA_COLOURS = {"p50": "#0b57d0", "p90": "#e37400", "p99": "#a50e0e"}


def sla_chart_svg(*, title: str, rows: list[SlaRow], measure: str) -> SafeString:
    """One measure's p50 / p90 / p99 per group as three bars each, in hours; groups with no case say so."""
    values = [(row.label, row.spread(measure)) for row in rows]
    top = max([s.p99 or 0.0 for _label, s in values] + [s.p90 or 0.0 for _label, s in values] + [0.01])
    height = 30 + (3 * 10 + 12) * len(values) + 20
    span = CHART_WIDTH - LABEL_WIDTH - 70
    summary = ", ".join(f"{label}: " + (f"p50 {s.p50} h, p90 {s.p90} h, p99 {s.p99} h of {s.count}" if s.count
                                        else "no cases") for label, s in values)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{CHART_WIDTH}" height="{height}" '
             f'viewBox="0 0 {CHART_WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}: {escape(summary)}</title>",
             f'<text x="0" y="16" font-weight="600" font-size="14">{escape(title)}</text>']
    y = 26
    for label, spread in values:
        parts.append(f'<text x="0" y="{y + 18}" font-size="12">{escape(label)} ({spread.count})</text>')
        for index, name in enumerate(("p50", "p90", "p99")):
            hours = getattr(spread, name)
            top_y = y + 2 + index * 10
            if hours is None:
                continue
            width = max(1, round(span * hours / top))
            parts.append(f'<rect x="{LABEL_WIDTH}" y="{top_y}" width="{width}" height="8" fill="{SLA_COLOURS[name]}" '
                         f'data-label="{escape(label)}" data-percentile="{name}" data-hours="{hours}"></rect>')
            parts.append(f'<text x="{LABEL_WIDTH + width + 4}" y="{top_y + 8}" font-size="9">{name} {hours} h</text>')
        y += 3 * 10 + 12
    legend = " ".join(f'<rect x="{LABEL_WIDTH + i * 70}" y="{y + 4}" width="10" height="8" fill="{colour}"></rect>'
                      f'<text x="{LABEL_WIDTH + i * 70 + 14}" y="{y + 12}" font-size="10">{name}</text>'
                      for i, (name, colour) in enumerate(SLA_COLOURS.items()))
    parts.append(legend)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated string above is escaped


def sla_charts(figures: SlaFigures) -> list[SafeString]:
    """One chart per measure, each with a bar group per queue and per source."""
    rows = [*figures.by_queue, *figures.by_source]
    return [sla_chart_svg(title=f"{MEASURE_LABELS[m]} (hours; per queue, then per source)", rows=rows, measure=m)
            for m in MEASURES]
