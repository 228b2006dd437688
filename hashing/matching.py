"""Match hashes against the active entries of enabled banks.

Perceptual hashes (PDQ, pHash, dHash) are searched in this process's in-memory index
(``hashing.matcher``, exact multi-index Hamming search), or, with ``TAKEDOWN_MATCH_SHARDS`` above 1,
in every matcher shard (``hashing.shards``, scatter-gather); cryptographic ones by equality in the
database. Every hit is re-checked against the database (entry active, bank enabled, distance within
the bank's threshold), so a withdrawn entry or a disabled bank stops matching at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Q

from hashing.algorithms import get_algorithm, hamming_hex
from hashing.models import Bank, BankEntry
from hashing.shards import get_searcher


@dataclass(frozen=True)
class BankMatch:
    entry_id: int
    bank_id: int
    bank_name: str
    blocks_uploads: bool
    algorithm: str
    query_value: str
    entry_value: str
    entry_source: str
    distance: int
    threshold: int

    @property
    def strength(self) -> float:
        """1.0 for an identical hash, falling linearly to just above 0 at the threshold."""
        return round(1.0 - self.distance / (self.threshold + 1), 4)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["strength"] = self.strength
        return data


def bank_thresholds(algorithm: str, override: int | None = None) -> dict[int, int]:
    """Each enabled bank's threshold for ``algorithm``: ``override``, else the bank's own, else the default."""
    return _thresholds(list(Bank.objects.filter(enabled=True).values_list("id", "thresholds")), algorithm, override)


def match_hashes(
    hashes: Iterable[tuple[str, str]], thresholds: Mapping[str, int] | None = None
) -> list[BankMatch]:
    """Every active bank entry within its threshold of one of ``hashes``.

    ``hashes`` are ``(algorithm, hex value)`` pairs; ``thresholds`` overrides the per-bank and
    default thresholds (PDQ 31 as Meta recommends). Results are ordered nearest first. At most two
    queries whatever the number of hashes: one for the exact (cryptographic) hashes, one for the banks'
    thresholds, plus one to re-check perceptual hits when there are any.
    """
    found: list[BankMatch] = []
    perceptual: dict[str, list[str]] = {}
    exact = Q()
    for algorithm_name, value in hashes:
        algorithm = get_algorithm(algorithm_name)
        value = value.lower()
        if algorithm.perceptual:
            perceptual.setdefault(algorithm.name, []).append(value)
        else:
            exact |= Q(algorithm=algorithm.name, value=value)
    if exact:
        rows = (
            BankEntry.objects.filter(exact, status=BankEntry.Status.ACTIVE, bank__enabled=True)
            .values_list("id", "bank_id", "bank__name", "bank__blocks_uploads", "algorithm", "value", "source")
        )
        for entry_id, bank_id, bank_name, blocks, algorithm_name, value, source in rows:
            found.append(BankMatch(entry_id, bank_id, bank_name, blocks, algorithm_name, value,
                                   value, source, 0, 0))
    if perceptual:
        matcher = get_searcher()
        banks = list(Bank.objects.filter(enabled=True).values_list("id", "thresholds"))
        for algorithm_name, values in perceptual.items():
            per_bank = _thresholds(banks, algorithm_name, (thresholds or {}).get(algorithm_name))
            found.extend(_match_perceptual(matcher, algorithm_name, values, per_bank))
    found.sort(key=lambda m: (m.distance / (m.threshold + 1), m.entry_id))
    return found


def _thresholds(banks: list[tuple[int, Any]], algorithm: str, override: int | None) -> dict[int, int]:
    default = get_algorithm(algorithm).default_threshold
    return {bank_id: override if override is not None else int((own or {}).get(algorithm, default))
            for bank_id, own in banks}


def _match_perceptual(matcher: Any, algorithm: str, values: list[str], per_bank: dict[int, int]) -> list[BankMatch]:
    if not per_bank:
        return []
    hits = matcher.search(algorithm, values, max(per_bank.values()))
    entries = {
        row[0]: row for row in BankEntry.objects.filter(
            id__in={entry_id for value_hits in hits for entry_id, _ in value_hits},
            status=BankEntry.Status.ACTIVE, bank__enabled=True,
        ).values_list("id", "bank_id", "bank__name", "bank__blocks_uploads", "value", "source")
    }
    found = []
    for value, value_hits in zip(values, hits, strict=True):
        for entry_id, _ in value_hits:
            if entry_id not in entries:
                continue
            _, bank_id, bank_name, blocks, entry_value, source = entries[entry_id]
            threshold = per_bank.get(bank_id)
            # Recomputed from the stored value: the index can only suggest, the database decides.
            distance = hamming_hex(value, entry_value)
            if threshold is not None and distance <= threshold:
                found.append(BankMatch(entry_id, bank_id, bank_name, blocks, algorithm, value, entry_value,
                                       source, distance, threshold))
    return found
