"""Writes to hash banks. Reads for matching live in ``hashing.matching`` and ``hashing.matcher``.

Every change to an entry also appends a ``BankChange`` row in the same transaction: matcher processes
replay those rows to keep their in-memory index fresh (``hashing.matcher``). Code that writes bank
entries anywhere else must call :func:`bank_entries_changed` in its transaction, or matchers will not
see the change until they restart.

When entries become active, the hook named by the ``TAKEDOWN_BANK_ENTRIES_ADDED_HOOK`` setting (a
dotted path, called on commit with the entry ids) starts the retroactive sweep of stored media; it is
a setting because ``hashing`` never imports ``moderation``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from hashing.algorithms import ALGORITHMS, get_algorithm
from hashing.models import Bank, BankChange, BankEntry

# Rows per transaction when importing: short transactions keep matchers' change replay moving and
# hold row locks briefly (see BankChange).
IMPORT_BATCH_ROWS = 5000


class InvalidThresholds(ValueError):
    """A bank threshold that cannot be used; the message names the algorithm and the allowed range."""


def bank_get_or_create(*, name: str, kind: str = Bank.Kind.LOCAL, description: str = "",
                       blocks_uploads: bool = True) -> Bank:
    bank, _ = Bank.objects.get_or_create(
        name=name, defaults={"kind": kind, "description": description, "blocks_uploads": blocks_uploads}
    )
    return bank


def bank_configure(*, bank: Bank, enabled: bool | None = None,
                   thresholds: dict[str, int] | None = None) -> Bank:
    """Enable or disable a bank, or set its per-algorithm thresholds. Takes effect on the next match."""
    fields = ["updated_at"]
    if enabled is not None:
        bank.enabled = enabled
        fields.append("enabled")
    if thresholds is not None:
        for name, value in thresholds.items():
            algorithm = ALGORITHMS.get(name)
            if algorithm is None or not algorithm.perceptual:
                raise InvalidThresholds(f"thresholds apply to perceptual hashes (pdq, phash, dhash), not {name!r}")
            if not isinstance(value, int) or not 0 <= value < algorithm.bits // 2:
                raise InvalidThresholds(
                    f"the {name} threshold must be a whole number from 0 to {algorithm.bits // 2 - 1}; got {value!r}")
        bank.thresholds = dict(thresholds)
        fields.append("thresholds")
    bank.save(update_fields=fields)
    return bank


def bank_entries_changed(entry_ids: Sequence[int]) -> None:
    """Record that these entries changed, for matchers to replay. Call inside the writing transaction."""
    BankChange.objects.bulk_create([BankChange(entry_id=entry_id) for entry_id in entry_ids])


def _on_entries_added(entry_ids: list[int]) -> None:
    hook = getattr(settings, "TAKEDOWN_BANK_ENTRIES_ADDED_HOOK", "")
    if hook and entry_ids:
        ids = list(entry_ids)
        transaction.on_commit(lambda: import_string(hook)(ids))


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
    bank_entries_changed([e.pk for e in changed])
    _on_entries_added([e.pk for e in changed])
    return changed


def bank_withdraw_entries(*, bank: Bank, hashes: Iterable[tuple[str, str]],
                          status: str = BankEntry.Status.WITHDRAWN) -> int:
    """Withdraw (or delete) entries so they stop matching at once. Returns how many changed."""
    if status not in (BankEntry.Status.WITHDRAWN, BankEntry.Status.DELETED):
        raise ValueError(f"entries are withdrawn or deleted, not {status!r}")
    total = 0
    with transaction.atomic():
        for algorithm_name, value in hashes:
            # Withdrawing touches active entries only; deleting also takes withdrawn ones.
            current = [BankEntry.Status.ACTIVE] if status == BankEntry.Status.WITHDRAWN else [
                BankEntry.Status.ACTIVE, BankEntry.Status.WITHDRAWN]
            ids = list(BankEntry.objects.select_for_update().filter(
                bank=bank, algorithm=get_algorithm(algorithm_name).name, value=value.lower(), status__in=current,
            ).values_list("id", flat=True))
            BankEntry.objects.filter(id__in=ids).update(status=status)
            bank_entries_changed(ids)
            total += len(ids)
    return total


@dataclass
class ImportRow:
    """One row of an import file, already checked: a known algorithm and a hex value of its length."""

    line: int
    algorithm: str
    value: str
    source: str = ""


@dataclass
class ImportResult:
    added: int = 0
    unchanged: int = 0
    entry_ids: list[int] = field(default_factory=list)


def bank_import_entries(*, bank: Bank, rows: Iterable[ImportRow], source: str,
                        batch_rows: int = IMPORT_BATCH_ROWS) -> ImportResult:
    """Add many entries, ``batch_rows`` per transaction. A row's own ``source`` wins over ``source``.

    Entries already active are left alone; withdrawn ones are re-activated. Returns the counts.
    """
    result = ImportResult()
    batch: list[ImportRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_rows:
            _import_batch(bank, batch, source, result)
            batch = []
    if batch:
        _import_batch(bank, batch, source, result)
    return result


@transaction.atomic
def _import_batch(bank: Bank, batch: list[ImportRow], source: str, result: ImportResult) -> None:
    wanted: dict[tuple[str, str], str] = {}
    for row in batch:
        wanted[(row.algorithm, row.value.lower())] = row.source or source
    existing: dict[tuple[str, str], tuple[int, str]] = {}
    for algorithm in {a for a, _ in wanted}:
        values = [v for a, v in wanted if a == algorithm]
        for entry_id, value, status in BankEntry.objects.select_for_update().filter(
                bank=bank, algorithm=algorithm, value__in=values).values_list("id", "value", "status"):
            existing[(algorithm, value)] = (entry_id, status)
    reactivate = [entry_id for key, (entry_id, status) in existing.items() if status != BankEntry.Status.ACTIVE]
    BankEntry.objects.filter(id__in=reactivate).update(status=BankEntry.Status.ACTIVE)
    created = BankEntry.objects.bulk_create([
        BankEntry(bank=bank, algorithm=algorithm, value=value, source=row_source[:200])
        for (algorithm, value), row_source in wanted.items() if (algorithm, value) not in existing
    ])
    ids = reactivate + [e.pk for e in created]
    bank_entries_changed(ids)
    _on_entries_added(ids)
    result.added += len(ids)
    result.unchanged += len(batch) - len(ids)
    result.entry_ids.extend(ids)
