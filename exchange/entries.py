"""Bank entries as the exchange shares them; the writes every channel (push, sync, StopNCII, feedback) shares.

- :func:`case_ref_for`: the opaque case reference we send in place of an entry's case number.
- :func:`entry_tags_set`: an entry's exchange metadata (tags, origin partner, the origin's case reference).
- :func:`hash_rows_apply`: a local bank brought to the state a partner's hash rows describe.
- :func:`feedback_record`: a verdict on an entry, a partner's or our own; a change to "blocked" re-triages
  the cases that matched the entry.

Writes go through ``hashing.banks`` (so matchers see them) and are audited (``moderation.audit``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import transaction

from exchange.models import HashFeedback, SharedEntry
from exchange.validation import ExchangeError, HashRow, clean_case_ref, clean_tags
from hashing.banks import ImportRow, bank_entries_changed, bank_import_entries, bank_withdraw_entries
from hashing.models import Bank, BankEntry
from moderation import jobs
from moderation.audit import SYSTEM, audit_record
from moderation.models import Match, Partner


def case_ref_for(source: str) -> str:
    """An opaque reference for an entry's source ("case:TD-…"): the same for every hash of one case, so a
    partner can group them, but it reveals neither the case number nor anything about the person."""
    if not source:
        return ""
    return hmac.new(_case_ref_key(settings.SECRET_KEY), source.encode(), hashlib.sha256).hexdigest()[:32]


@lru_cache(maxsize=2)
def _case_ref_key(secret: str) -> bytes:
    # As django.utils.crypto.salted_hmac derives its key, once per secret rather than once per record.
    return hashlib.sha256(b"takedown.exchange.case_ref" + secret.encode()).digest()


def entry_tags_set(*, entry: BankEntry, tags: Sequence[str], partner: Partner | None = None,
                   case_ref: str = "") -> SharedEntry:
    """Set the exchange metadata of one entry (its tags, the partner it came from, the origin's opaque case
    reference). Raises :class:`ExchangeError` for bad tags or case reference."""
    clean = clean_tags(list(tags))
    clean_case_ref(case_ref)
    shared, _ = SharedEntry.objects.update_or_create(
        entry=entry, defaults={"tags": clean, "partner": partner, "case_ref": case_ref})
    return shared


@dataclass
class ApplyResult:
    added: int = 0
    withdrawn: int = 0
    unchanged: int = 0


def hash_rows_apply(*, bank: Bank, rows: Sequence[HashRow], partner: Partner) -> ApplyResult:
    """Bring ``bank`` to the state the rows describe, through ``hashing.banks`` (so matchers see it), in the
    caller's transaction. The last row for one (signal type, value) wins. Idempotent."""
    latest: dict[tuple[str, str], HashRow] = {}
    for row in rows:
        latest.pop((row.signal_type, row.value), None)
        latest[(row.signal_type, row.value)] = row
    source = f"partner:{partner.name}"[:200]
    active = [r for r in latest.values() if r.status == BankEntry.Status.ACTIVE]
    result = ApplyResult()
    with transaction.atomic():
        if active:
            imported = bank_import_entries(bank=bank, rows=[ImportRow(line=0, algorithm=r.signal_type, value=r.value)
                                                            for r in active],
                                           source=source, batch_rows=len(active))
            result.added, result.unchanged = imported.added, imported.unchanged
        for status in (BankEntry.Status.WITHDRAWN, BankEntry.Status.DELETED):
            gone = [(r.signal_type, r.value) for r in latest.values() if r.status == status]
            if gone:
                changed = bank_withdraw_entries(bank=bank, hashes=gone, status=status)
                result.withdrawn += changed
                result.unchanged += len(gone) - changed
                _tombstones_add(bank, gone, status, source)
        _shared_entries_set(bank, list(latest.values()), partner)
    return result


def _tombstones_add(bank: Bank, hashes: list[tuple[str, str]], status: str, source: str) -> None:
    """Keep a withdrawn or deleted hash we never held active as a tombstone, so this bank mirrors the origin
    (and our own feed passes the tombstone on). Tombstones never match; the change is logged for matchers."""
    existing: set[tuple[str, str]] = set()
    for algorithm in {a for a, _ in hashes}:
        values = [v for a, v in hashes if a == algorithm]
        for start in range(0, len(values), 5000):
            existing.update((algorithm, v) for v in BankEntry.objects.filter(
                bank=bank, algorithm=algorithm, value__in=values[start:start + 5000]).values_list("value", flat=True))
    created = BankEntry.objects.bulk_create([
        BankEntry(bank=bank, algorithm=a, value=v, status=status, source=source)
        for a, v in hashes if (a, v) not in existing])
    bank_entries_changed([e.pk for e in created])


def _shared_entries_set(bank: Bank, rows: list[HashRow], partner: Partner) -> None:
    """Upsert the exchange metadata (origin partner, tags, origin's case reference) of these entries."""
    wanted = {(r.signal_type, r.value): r for r in rows}
    ids: dict[tuple[str, str], int] = {}
    for algorithm in {a for a, _ in wanted}:
        values = [v for a, v in wanted if a == algorithm]
        for start in range(0, len(values), 5000):
            for entry_id, value in BankEntry.objects.filter(
                    bank=bank, algorithm=algorithm, value__in=values[start:start + 5000]).values_list("id", "value"):
                ids[(algorithm, value)] = entry_id
    SharedEntry.objects.bulk_create(
        [SharedEntry(entry_id=entry_id, partner=partner, tags=wanted[key].tags, case_ref=wanted[key].case_ref)
         for key, entry_id in ids.items()],
        update_conflicts=True, unique_fields=["entry"], update_fields=["partner", "tags", "case_ref"],
        batch_size=2000)


def feedback_record(*, entry: BankEntry, partner: Partner | None, verdict: str,
                    tags: Sequence[str] = (), actor: str = SYSTEM) -> HashFeedback:
    """Record (or update) ``partner``'s verdict on ``entry``; ``partner=None`` is this instance's own verdict.

    Idempotent: one row per (entry, partner); the same verdict and tags again change nothing and write no
    audit event. Raises :class:`ExchangeError` for an unknown verdict or bad tags.
    """
    if verdict not in HashFeedback.Verdict.values:
        raise ExchangeError({"verdict": f"must be one of {', '.join(HashFeedback.Verdict.values)}"})
    clean = clean_tags(list(tags))
    with transaction.atomic():
        row = HashFeedback.objects.select_for_update().filter(entry=entry, partner=partner).first()
        if row is not None and row.verdict == verdict and row.tags == clean:
            return row
        before = {"verdict": row.verdict, "tags": row.tags} if row is not None else None
        if row is None:
            row = HashFeedback.objects.create(entry=entry, partner=partner, verdict=verdict, tags=clean)
        else:
            row.verdict, row.tags = verdict, clean
            row.save(update_fields=["verdict", "tags", "updated_at"])
        audit_record(actor=actor, action="exchange.feedback_recorded", object_type="bank_entry", object_id=entry.pk,
                     data={"partner": partner.name if partner else None, "verdict": verdict, "tags": clean},
                     before=before, after={"verdict": verdict, "tags": clean})
        if partner is not None and HashFeedback.Verdict.BLOCKED in (verdict, (before or {}).get("verdict")):
            # Partners blocking a matched hash moves the case up (triage); re-rank the cases that match it.
            _retriage_on_commit(entry)
    return row


def _retriage_on_commit(entry: BankEntry) -> None:
    media_ids = sorted(set(Match.objects.filter(bank_entry=entry).values_list("media_id", flat=True)))
    if media_ids:
        transaction.on_commit(lambda: jobs.media_triage(media_ids))
