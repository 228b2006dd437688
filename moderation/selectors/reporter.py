"""What a reporter sees: their report, found by case number and PIN, and its public status."""

from __future__ import annotations

from typing import Any

from moderation.models import Report, ReportedItem
from moderation.security.secrets import check_pin, dummy_pin_check, normalise_code


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
    ReportedItem.State.UNAVAILABLE: "The platform is not answering; we will fetch this item again. Your case "
                                    "is being handled in the meantime.",
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
            "problem": _problem(item),
        })
    return {
        "case_number": report.case_number,
        "status": report.status,
        "status_text": report.get_status_display(),
        "received_at": report.received_at.isoformat(),
        "deadline_at": report.deadline_at.isoformat() if report.deadline_at else None,
        "closed_at": report.closed_at.isoformat() if report.closed_at else None,
        # Others reported the same content first: it is reviewed once, with theirs (services/joining.py).
        # The other case is not named: it is someone else's.
        "reviewed_with_other_reports": report.joined_to_id is not None,
        "decision": None if decision is None else {
            "outcome": decision.outcome,
            "reason": decision.get_reason_display(),
            "decided_at": decision.created_at.isoformat(),
            "automated": decision.automated,
        },
        "items": items,
    }


def _problem(item: ReportedItem) -> str | None:
    """Why an item could not be fetched, as "unprocessable: <reason>" or "platform unavailable: <reason>"."""
    if item.state == ReportedItem.State.UNPROCESSABLE and item.error:
        return f"unprocessable: {item.error}"
    if item.state == ReportedItem.State.UNAVAILABLE:
        return f"platform unavailable: {item.error}" if item.error else "platform unavailable"
    return None
