"""The DSA Art. 15 transparency report for a period: counts and median times, no personal data."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from datetime import datetime
from typing import Any

from django.db.models import Max, Q

from moderation.models import Action, Appeal, Decision, Report, StatementOfReasons
from moderation.selectors.sla import sla_as_dict, sla_figures

LEGAL_GROUND_REASONS = {Decision.Reason.NCII, Decision.Reason.SYNTHETIC_NCII, Decision.Reason.KNOWN_COPY}
AUTOMATED_MEANS = [
    {"purpose": "Find copies of removed content and block re-uploads",
     "means": "Perceptual (PDQ) and exact (MD5, SHA-256) hash matching against hash banks",
     "accuracy": "PDQ matches within 31 of 256 bits (Meta's recommended threshold); exact hashes match only "
                 "identical files",
     "safeguards": "A person decides every notice; copies found by matching are removed only after a person "
                   "confirmed the original; uploaders can appeal; withdrawn hashes stop matching at once"},
    {"purpose": "Prioritise the review queue",
     "means": "Synthetic-media score from provenance metadata and other signals",
     "accuracy": "See docs/model-card.md for the evaluation figures",
     "safeguards": "Used only to order the queue and as evidence shown to the reviewer; never decides alone"},
]


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 2)


def _median_hours(values: list[float]) -> float | None:
    return _hours(statistics.median(values)) if values else None


def transparency_report(*, start: datetime, end: datetime) -> dict[str, Any]:
    """Counts for notices received, decisions and complaints with ``start <= time < end``."""
    reports = Report.objects.filter(received_at__gte=start, received_at__lt=end)
    decisions = list(Decision.objects.filter(created_at__gte=start, created_at__lt=end)
                     .select_related("report").annotate(removed_at=Max("actions__completed_at",
                                                filter=Q(actions__kind=Action.Kind.REMOVE))))
    takedowns = [d for d in decisions if d.outcome == Decision.Outcome.TAKEDOWN]
    to_decision = [(d.created_at - (d.report.notice_complete_at or d.report.received_at)).total_seconds()
                   for d in decisions]
    to_removal = [(d.removed_at - (d.report.notice_complete_at or d.report.received_at)).total_seconds()
                  for d in takedowns if d.removed_at]
    appeals = list(Appeal.objects.filter(created_at__gte=start, created_at__lt=end).select_related("decision"))
    decided_appeals = [a for a in appeals if a.decided_at]
    copies = Action.objects.filter(created_at__gte=start, created_at__lt=end, kind=Action.Kind.REMOVE,
                                   idempotency_key__contains="-copy-")
    statements = StatementOfReasons.objects.filter(created_at__gte=start, created_at__lt=end)
    return {
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "notices": {
            "received": reports.count(),
            "by_source": dict(Counter(reports.values_list("source", flat=True))),
            "still_needing_information": reports.filter(status=Report.Status.NEEDS_INFORMATION).count(),
            "withdrawn": reports.filter(status=Report.Status.WITHDRAWN).count(),
            "deadline_breaches": Report.objects.filter(escalated_at__gte=start, escalated_at__lt=end).count(),
        },
        "actions": {
            "decisions": len(decisions),
            "by_outcome": dict(Counter(d.outcome for d in decisions)),
            "takedowns_legal_ground": sum(1 for d in takedowns if d.reason in LEGAL_GROUND_REASONS),
            "takedowns_terms_ground": sum(1 for d in takedowns if d.reason not in LEGAL_GROUND_REASONS),
            "by_reason": dict(Counter(d.reason for d in decisions)),
            "decided_by_automated_means": sum(1 for d in decisions if d.automated),
            "statements_of_reasons": statements.count(),
            "statements_with_automated_detection": statements.filter(
                payload__automated_detection="Yes").count(),
            "median_hours_to_decision": _median_hours(to_decision),
            "median_hours_to_removal": _median_hours(to_removal),
        },
        "own_initiative": {
            "copies_removed_by_hash_matching": copies.filter(status=Action.Status.DONE).count(),
            "copies_found": copies.count(),
        },
        "complaints": {
            "received": len(appeals),
            "basis": dict(Counter(a.decision.reason for a in appeals)),
            "by_outcome": dict(Counter(a.state for a in appeals)),
            "reversed": sum(1 for a in appeals if a.state == Appeal.State.REVERSED),
            "median_hours_to_decide": _median_hours([(a.decided_at - a.created_at).total_seconds()
                                                     for a in decided_appeals if a.decided_at]),
        },
        # Time to first claim, decision and action on the platform, p50/p90/p99 in hours, per queue and source
        # (moderation/selectors/sla.py says where each clock starts and stops).
        "service_levels": sla_as_dict(sla_figures(start=start, end=end)),
        "automated_means": AUTOMATED_MEANS,
    }


def report_as_csv(report: dict[str, Any]) -> str:
    """One ``section,metric,key,value`` row per number (automated means as text rows)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "metric", "key", "value"])
    for section, values in report.items():
        if section == "period":
            for key, value in values.items():
                writer.writerow([section, key, "", value])
            continue
        if section == "automated_means":
            for index, entry in enumerate(values, start=1):
                for key, value in entry.items():
                    writer.writerow([section, str(index), key, value])
            continue
        for metric, value in values.items():
            if isinstance(value, dict):
                for key, count in sorted(_flatten(value).items()):
                    writer.writerow([section, metric, key, "" if count is None else count])
            else:
                writer.writerow([section, metric, "", "" if value is None else value])
    return out.getvalue()


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested figures as one level, keys joined with dots (``report.decision.p90_hours``)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
