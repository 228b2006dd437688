"""Reads for the console's admin pages: banks with their entry counts, API keys, users with their roles.

Each list is a fixed number of queries whatever its length (tests/moderation/test_admin_*.py bound them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, F, Prefetch

from hashing.algorithms import ALGORITHMS
from hashing.models import Bank, BankEntry
from moderation.models import ApiKey
from moderation.roles import ROLE_LABELS, ROLE_ORDER

STATUSES = tuple(BankEntry.Status.values)


@dataclass
class BankRow:
    """A bank with its entry counts: ``counts[algorithm][status]``, and totals per status."""

    bank: Bank
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def by_status(self) -> dict[str, int]:
        totals = dict.fromkeys(STATUSES, 0)
        for per_status in self.counts.values():
            for status, n in per_status.items():
                totals[status] = totals.get(status, 0) + n
        return totals

    @property
    def table(self) -> list[tuple[str, list[int]]]:
        """``(algorithm, [count per status in STATUSES order])`` for the algorithms the bank holds."""
        return [(algorithm, [self.counts[algorithm].get(s, 0) for s in STATUSES])
                for algorithm in sorted(self.counts, key=lambda a: (list(ALGORITHMS).index(a)
                                                                    if a in ALGORITHMS else 99, a))]

    @property
    def thresholds_text(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in sorted(self.bank.thresholds.items())) or "defaults"


def bank_rows(*, bank_id: int | None = None) -> list[BankRow]:
    """Banks not deleted through the HMA routes (or the one ``bank_id``, deleted or not), name order, each with
    its entry counts per algorithm and status. Two queries."""
    banks = Bank.objects.all() if bank_id is not None else Bank.objects.filter(deleted_at=None)
    if bank_id is not None:
        banks = banks.filter(pk=bank_id)
    rows = {bank.pk: BankRow(bank=bank) for bank in banks.order_by("name")}
    if not rows:
        return []
    counts: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    entries = BankEntry.objects.order_by()
    if bank_id is not None:
        entries = entries.filter(bank_id=bank_id)
    for pk, algorithm, status, n in entries.values_list("bank_id", "algorithm", "status").annotate(n=Count("id")):
        counts[pk][algorithm][status] = n
    for pk, row in rows.items():
        row.counts = {a: dict(s) for a, s in counts.get(pk, {}).items()}
    return list(rows.values())


def api_key_rows() -> list[ApiKey]:
    """Every API key, active ones first, newest first, with its partner. One query."""
    # Active keys first (no revocation time), then revoked ones: NULLs placed first on every database
    # (PostgreSQL sorts them last by default, SQLite first).
    return list(ApiKey.objects.select_related("partner").order_by(F("revoked_at").asc(nulls_first=True),
                                                                   "-created_at"))


@dataclass(frozen=True)
class UserRow:
    user: Any
    roles: list[str]  # role names held, highest first

    @property
    def role_labels(self) -> list[str]:
        return [ROLE_LABELS[r] for r in self.roles]

    @property
    def missing_roles(self) -> list[tuple[str, str]]:
        return [(r, ROLE_LABELS[r]) for r in ROLE_ORDER if r not in self.roles]


def user_rows() -> list[UserRow]:
    """Every account with the console roles it holds, active ones first, by username. Two queries."""
    model = get_user_model()
    users = model._default_manager.order_by("-is_active", "username").prefetch_related(
        Prefetch("groups", queryset=Group.objects.filter(name__in=ROLE_ORDER).order_by()))
    return [UserRow(user=u, roles=[r for r in ROLE_ORDER if r in {g.name for g in u.groups.all()}]) for u in users]
