"""Retroactive matching: when entries join a bank, stored media is checked against them.

This is the "known identical copies" sweep (DESIGN.md, step 8): media hashed before an entry existed
gets its ``Match`` rows now, so open cases are re-prioritised and moderators see the link. The new
entries (few) go into a throwaway index; the stored media hashes (many) stream through it in batches
by id, so the cost is one pass over ``MediaHash`` whatever the bank size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import transaction

from hashing.algorithms import ALGORITHMS
from hashing.index import HammingIndex, hex_to_codes
from hashing.matching import bank_thresholds
from hashing.models import BankEntry
from moderation.audit import SYSTEM, audit_record
from moderation.models import Match, MediaHash, ReportedItem

logger = logging.getLogger(__name__)

_CASE_SOURCE = "case:"


@dataclass
class SweepProgress:
    """What one run of the sweep did; ``next_after`` is the cursor to go on from (None: finished)."""

    matches: int = 0
    matched_media: set[int] = field(default_factory=set)
    next_after: int | None = None


def sweep_bank_entries(*, entry_ids: list[int], after_id: int = 0, batch_rows: int | None = None,
                       max_batches: int | None = None) -> SweepProgress:
    """Match stored media hashes with id above ``after_id`` against the given entries.

    Only entries that are active in enabled banks count. A case's own media is not recorded as a
    copy of the entries that case created (source ``case:<number>``). Idempotent: existing matches
    are left alone, so a retried or repeated sweep adds nothing.
    """
    batch_rows = batch_rows or settings.TAKEDOWN_SWEEP_BATCH_ROWS
    max_batches = max_batches or settings.TAKEDOWN_SWEEP_BATCHES_PER_TASK
    progress = SweepProgress()
    entries = list(BankEntry.objects.filter(id__in=entry_ids, status=BankEntry.Status.ACTIVE, bank__enabled=True)
                   .values_list("id", "bank_id", "algorithm", "value", "source"))
    if not entries:
        return progress
    entry_bank = {e[0]: e[1] for e in entries}
    own_media = _own_media({e[4][len(_CASE_SOURCE):] for e in entries if e[4].startswith(_CASE_SOURCE)})
    if after_id == 0:
        for algorithm in {e[2] for e in entries if not ALGORITHMS[e[2]].perceptual}:
            by_value: dict[str, list[int]] = {}
            for entry_id, _, alg, value, _ in entries:
                if alg == algorithm:
                    by_value.setdefault(value, []).append(entry_id)
            for hash_id, media_id, value in MediaHash.objects.filter(
                    algorithm=algorithm, value__in=list(by_value)).values_list("id", "media_id", "value"):
                for entry_id in by_value[value]:
                    _record(progress, own_media, hash_id, media_id, entry_id, algorithm, 0, 0)

    indexes: dict[str, tuple[HammingIndex, dict[int, int]]] = {}
    for algorithm in {e[2] for e in entries if ALGORITHMS[e[2]].perceptual}:
        banked = [(e[0], e[3]) for e in entries if e[2] == algorithm and len(e[3]) == ALGORITHMS[algorithm].bits // 4]
        index = HammingIndex(ALGORITHMS[algorithm].bits)
        index.add(np.array([b[0] for b in banked], dtype=np.int64),
                  hex_to_codes([b[1] for b in banked], ALGORITHMS[algorithm].bits))
        indexes[algorithm] = (index, bank_thresholds(algorithm))
    if not indexes:
        return progress
    cursor = after_id
    for _ in range(max_batches):
        batch = list(MediaHash.objects.filter(id__gt=cursor, algorithm__in=list(indexes)).order_by("id")
                     .values_list("id", "media_id", "algorithm", "value")[:batch_rows])
        if not batch:
            return progress
        cursor = batch[-1][0]
        for algorithm, (index, thresholds) in indexes.items():
            rows = [r for r in batch if r[2] == algorithm and len(r[3]) == ALGORITHMS[algorithm].bits // 4]
            if not rows:
                continue
            radius = max((thresholds[b] for b in entry_bank.values() if b in thresholds), default=0)
            results = index.search(hex_to_codes([r[3].lower() for r in rows], ALGORITHMS[algorithm].bits), radius)
            for (hash_id, media_id, _, _), (hit_ids, dists) in zip(rows, results, strict=True):
                for entry_id, distance in zip(hit_ids.tolist(), dists.tolist(), strict=True):
                    threshold = thresholds.get(entry_bank[entry_id])
                    if threshold is not None and distance <= threshold:
                        _record(progress, own_media, hash_id, media_id, entry_id, algorithm, distance, threshold)
    progress.next_after = cursor
    return progress


def _own_media(case_numbers: set[str]) -> set[int]:
    if not case_numbers:
        return set()
    return set(ReportedItem.objects.filter(report__case_number__in=case_numbers).exclude(media=None)
               .values_list("media_id", flat=True))


def _record(progress: SweepProgress, own_media: set[int], hash_id: int, media_id: int, entry_id: int,
            algorithm: str, distance: int, threshold: int) -> None:
    if media_id in own_media:
        return
    with transaction.atomic():
        _, created = Match.objects.get_or_create(
            media_hash_id=hash_id, bank_entry_id=entry_id,
            defaults={"media_id": media_id, "algorithm": algorithm, "distance": distance, "threshold": threshold})
        if created:
            audit_record(actor=SYSTEM, action="media.matched_retroactively", object_type="media",
                         object_id=media_id, data={"entry": entry_id, "algorithm": algorithm, "distance": distance})
    if created:
        progress.matches += 1
        progress.matched_media.add(media_id)
