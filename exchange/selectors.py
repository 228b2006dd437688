"""Reads of the exchange for other parts of the app (triage, the case page, the admin)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from exchange.models import HashFeedback


def partners_blocking(entry_ids: Iterable[int]) -> list[str]:
    """Names of enabled partners that report they block any of these bank entries, sorted."""
    return sorted(set(HashFeedback.objects.filter(
        entry_id__in=list(entry_ids), partner__enabled=True, verdict=HashFeedback.Verdict.BLOCKED,
    ).values_list("partner__name", flat=True)))


def feedback_by_entry(entry_ids: Iterable[int]) -> dict[int, list[HashFeedback]]:
    """Partner feedback on these entries, per entry, partners by name (for the case page and admin)."""
    result: dict[int, list[HashFeedback]] = defaultdict(list)
    for row in (HashFeedback.objects.filter(entry_id__in=list(entry_ids), partner__isnull=False)
                .select_related("partner").order_by("partner__name")):
        result[row.entry_id].append(row)
    return dict(result)
