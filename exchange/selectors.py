"""Reads of the exchange for other parts of the app (triage, the partner API). Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Prefetch

from exchange.models import HashFeedback, KeyScope, PartnerPolicy
from hashing.models import Bank
from moderation.models import ApiKey, Partner
from moderation.services.triage import PARTNER_BLOCKED_POINTS, Reason


def partners_blocking(entry_ids: Iterable[int]) -> list[str]:
    """Names of enabled partners that report they block any of these bank entries, sorted."""
    return sorted(set(HashFeedback.objects.filter(
        entry_id__in=list(entry_ids), partner__enabled=True, verdict=HashFeedback.Verdict.BLOCKED,
    ).values_list("partner__name", flat=True)))


def partner_blocked_reasons(entry_ids: list[int]) -> list[Reason]:
    """Triage's evidence about matched bank entries (``moderation.services.triage.MatchEvidence``): a
    ``partner_blocked`` reason when enabled partners report they block one of them."""
    blocked_by = partners_blocking(entry_ids)
    if not blocked_by:
        return []
    return [Reason("partner_blocked", PARTNER_BLOCKED_POINTS,
                   f"partners report they block it: {', '.join(blocked_by)}")]


def key_readable_banks(api_key: ApiKey) -> list[Bank]:
    """Banks this key may read now: its scope, cut down to the partner's allow-list, enabled ones only."""
    scope = KeyScope.objects.filter(api_key=api_key).first()
    if scope is None or api_key.partner is None:
        return []
    policy = PartnerPolicy.objects.filter(partner=api_key.partner).first()
    if policy is None:  # no policy, nothing allow-listed
        return []
    allowed = set(policy.allowed_banks.values_list("pk", flat=True))
    return [b for b in scope.read_banks.all() if b.pk in allowed]


def partner_overview(partner_id: int | None = None) -> list[Partner]:
    """Partners (or the one ``partner_id``) by name, each with its policy, allow-listed banks, remote and API keys
    with their scopes prefetched, for the console's partner pages: the same few queries for any number."""
    keys = ApiKey.objects.select_related("exchange_scope__write_bank").prefetch_related(
        "exchange_scope__read_banks").order_by("revoked_at", "-created_at")
    partners = Partner.objects.select_related("exchange_policy", "remote__bank").prefetch_related(
        "exchange_policy__allowed_banks", Prefetch("api_keys", queryset=keys)).order_by("name")
    if partner_id is not None:
        partners = partners.filter(pk=partner_id)
    return list(partners)
