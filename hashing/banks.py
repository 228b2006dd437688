"""Writes to hash banks. Reads for matching live in ``hashing.matching``."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from hashing.algorithms import get_algorithm
from hashing.models import Bank, BankEntry


def bank_get_or_create(*, name: str, kind: str = Bank.Kind.LOCAL, description: str = "",
                       blocks_uploads: bool = True) -> Bank:
    bank, _ = Bank.objects.get_or_create(
        name=name, defaults={"kind": kind, "description": description, "blocks_uploads": blocks_uploads}
    )
    return bank


@transaction.atomic
def bank_add_entries(*, bank: Bank, hashes: Iterable[tuple[str, str]], source: str) -> list[BankEntry]:
    """Add ``(algorithm, value)`` pairs to ``bank``; an entry already there is re-activated, not duplicated.

    Returns the entries that were created or re-activated (empty when nothing changed).
    """
    changed: list[BankEntry] = []
    for algorithm_name, value in hashes:
        algorithm = get_algorithm(algorithm_name)
        value = value.lower()
        entry, created = BankEntry.objects.select_for_update().get_or_create(
            bank=bank, algorithm=algorithm.name, value=value, defaults={"source": source}
        )
        if created:
            changed.append(entry)
        elif entry.status != BankEntry.Status.ACTIVE:
            entry.status = BankEntry.Status.ACTIVE
            entry.source = source
            entry.save(update_fields=["status", "source", "updated_at"])
            changed.append(entry)
    return changed


def bank_withdraw_entries(*, bank: Bank, hashes: Iterable[tuple[str, str]]) -> int:
    """Withdraw entries so they stop matching at once. Returns how many changed."""
    total = 0
    for algorithm_name, value in hashes:
        total += BankEntry.objects.filter(
            bank=bank, algorithm=get_algorithm(algorithm_name).name, value=value.lower(),
            status=BankEntry.Status.ACTIVE,
        ).update(status=BankEntry.Status.WITHDRAWN)
    return total
