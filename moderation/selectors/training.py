"""The moderators' confirmed decisions as labelled examples: what `export_training_set` writes and the
embedding probe's retraining (`moderation.services.probe_training`) and nearest-example evidence read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from moderation.models import Decision, ReportedItem

# Which decisions say what about synthesis. A takedown for synthetic NCII is a moderator confirming
# "AI-made or altered"; a takedown for (ordinary) NCII is a moderator judging it a real recording.
# Other outcomes say nothing about synthesis and are not used.
LABELS: dict[tuple[str, str], str] = {
    (Decision.Outcome.TAKEDOWN, Decision.Reason.SYNTHETIC_NCII): "ai",
    (Decision.Outcome.TAKEDOWN, Decision.Reason.NCII): "real",
}


@dataclass(frozen=True)
class ConfirmedExample:
    media_id: int
    label: str  # "ai" or "real"
    decision_id: int
    decision: str  # what a moderator reads: "take down: AI-generated or altered ..."
    decided_at: datetime
    report_id: int
    case_number: str


def latest_human_decisions() -> dict[int, Decision]:
    """Each report's latest decision made by a person (later decisions replace earlier ones)."""
    latest: dict[int, Decision] = {}
    for decision in Decision.objects.filter(automated=False).select_related("report").order_by("created_at", "id"):
        latest[decision.report_id] = decision
    return latest


def confirmed_examples() -> list[ConfirmedExample]:
    """Media of reports whose latest human decision confirmed or rejected "synthetic", oldest decision first.
    A media item in reports with both labels is left out (the moderators disagree about it)."""
    latest = {rid: d for rid, d in latest_human_decisions().items() if (d.outcome, d.reason) in LABELS}
    rows = ReportedItem.objects.filter(report_id__in=list(latest), media__isnull=False).values_list(
        "report_id", "media_id")
    examples: dict[int, ConfirmedExample] = {}
    conflicts: set[int] = set()
    for report_id, media_id in sorted(rows, key=lambda r: (latest[r[0]].created_at, latest[r[0]].pk)):
        decision = latest[report_id]
        label = LABELS[(decision.outcome, decision.reason)]
        if media_id in examples and examples[media_id].label != label:
            conflicts.add(media_id)
        examples[media_id] = ConfirmedExample(
            media_id=media_id, label=label, decision_id=decision.pk,
            decision=f"{decision.get_outcome_display().lower()}: {decision.get_reason_display()}",
            decided_at=decision.created_at, report_id=report_id, case_number=decision.report.case_number)
    return sorted((e for m, e in examples.items() if m not in conflicts), key=lambda e: (e.decided_at, e.decision_id))
