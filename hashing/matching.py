"""Match hashes against the active entries of enabled banks.

This is the linear first version: every active entry of the query's algorithm is compared. The
matching issue replaces the scan with an in-memory multi-index; the function's contract stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from hashing.algorithms import get_algorithm
from hashing.models import BankEntry


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


def _entries(algorithm: str) -> list[tuple[int, int, str, bool, str, str]]:
    return list(
        BankEntry.objects.filter(algorithm=algorithm, status=BankEntry.Status.ACTIVE, bank__enabled=True)
        .values_list("id", "bank_id", "bank__name", "bank__blocks_uploads", "value", "source")
        .order_by("id")
    )


def match_hashes(
    hashes: Iterable[tuple[str, str]], thresholds: Mapping[str, int] | None = None
) -> list[BankMatch]:
    """Every active bank entry within its algorithm's threshold of one of ``hashes``.

    ``hashes`` are ``(algorithm, hex value)`` pairs; ``thresholds`` overrides the algorithms'
    default thresholds (PDQ 31 as Meta recommends). Results are ordered nearest first.
    """
    found: list[BankMatch] = []
    for algorithm_name, value in hashes:
        algorithm = get_algorithm(algorithm_name)
        threshold = (thresholds or {}).get(algorithm.name, algorithm.default_threshold)
        value = value.lower()
        if algorithm.perceptual:
            query = int(value, 16)
            for entry_id, bank_id, bank_name, blocks, entry_value, source in _entries(algorithm.name):
                distance = (query ^ int(entry_value, 16)).bit_count()
                if distance <= threshold:
                    found.append(BankMatch(entry_id, bank_id, bank_name, blocks, algorithm.name, value,
                                           entry_value, source, distance, threshold))
        else:
            rows = (
                BankEntry.objects.filter(algorithm=algorithm.name, value=value,
                                         status=BankEntry.Status.ACTIVE, bank__enabled=True)
                .values_list("id", "bank_id", "bank__name", "bank__blocks_uploads", "source")
            )
            for entry_id, bank_id, bank_name, blocks, source in rows:
                found.append(BankMatch(entry_id, bank_id, bank_name, blocks, algorithm.name, value,
                                       value, source, 0, 0))
    found.sort(key=lambda m: (m.distance / (m.threshold + 1), m.entry_id))
    return found
