"""Match hashes against the active entries of enabled banks.

Perceptual hashes (PDQ, pHash, dHash) are searched in this process's in-memory index
(``hashing.matcher``, exact multi-index Hamming search), or, with ``TAKEDOWN_MATCH_SHARDS`` above 1,
in every matcher shard (``hashing.shards``, scatter-gather); cryptographic ones by equality in the
database. Every hit is re-checked against the database (entry active, bank enabled, distance within
the bank's threshold), so a withdrawn entry, a disabled bank or a lowered threshold applies at once.

The enabled banks' thresholds, which set how far the index searches, are read at most every
``TAKEDOWN_MATCH_REFRESH_SECONDS`` (as the index itself is refreshed), so a scan that finds nothing costs
no query for its perceptual hashes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import connection

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
    return _thresholds(_enabled_banks(), algorithm, override)


def _enabled_banks() -> list[tuple[int, Any]]:
    """``(id, thresholds)`` of every enabled bank."""
    return list(Bank.objects.filter(enabled=True).values_list("id", "thresholds"))


class _BankSettings:
    """The enabled banks' ``(id, thresholds)``, read again when older than ``TAKEDOWN_MATCH_REFRESH_SECONDS``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[tuple[int, Any]] = []
        self._read_at: float | None = None

    def get(self) -> list[tuple[int, Any]]:
        max_age = float(getattr(settings, "TAKEDOWN_MATCH_REFRESH_SECONDS", 1))
        with self._lock:
            if self._read_at is None or time.monotonic() - self._read_at >= max_age:
                self._rows = _enabled_banks()
                self._read_at = time.monotonic()
            return self._rows


_bank_settings = _BankSettings()


def match_hashes(
    hashes: Iterable[tuple[str, str]], thresholds: Mapping[str, int] | None = None
) -> list[BankMatch]:
    """Every active bank entry within its threshold of one of ``hashes``.

    ``hashes`` are ``(algorithm, hex value)`` pairs; ``thresholds`` overrides the per-bank and
    default thresholds (PDQ 31 as Meta recommends). Results are ordered nearest first. At most three
    queries whatever the number of hashes: one for the exact (cryptographic) hashes, one for the banks'
    thresholds (at most once per refresh interval), and one to re-check perceptual hits when there are any.
    """
    found: list[BankMatch] = []
    perceptual: dict[str, list[str]] = {}
    exact: list[tuple[str, str]] = []
    for algorithm_name, value in hashes:
        algorithm = get_algorithm(algorithm_name)
        value = value.lower()
        if algorithm.perceptual:
            perceptual.setdefault(algorithm.name, []).append(value)
        else:
            exact.append((algorithm.name, value))
    for entry_id, bank_id, bank_name, blocks, algorithm_name, value, source in _exact_rows(exact):
        found.append(BankMatch(entry_id, bank_id, bank_name, bool(blocks), algorithm_name, value,
                               value, source, 0, 0))
    if perceptual:
        matcher = get_searcher()
        banks = _bank_settings.get()
        searches = []
        for algorithm_name, values in perceptual.items():
            override = (thresholds or {}).get(algorithm_name)
            per_bank = _thresholds(banks, algorithm_name, override)
            if per_bank:
                hits = matcher.search(algorithm_name, values, max(per_bank.values()))
                searches.append((algorithm_name, values, hits, override))
        found.extend(_recheck(searches))
    found.sort(key=lambda m: (m.distance / (m.threshold + 1), m.entry_id))
    return found


def _exact_rows(pairs: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """Active entries of enabled banks equal to one of ``(algorithm, value)``: ``(id, bank id, bank name,
    bank blocks uploads, algorithm, value, source)``. Plain SQL: it runs on every scan, and building the
    ORM query cost more than running it (the ``(algorithm, value)`` index answers it)."""
    if not pairs:
        return []
    entries, banks = BankEntry._meta.db_table, Bank._meta.db_table
    wanted = " OR ".join(["(e.algorithm = %s AND e.value = %s)"] * len(pairs))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.id, e.bank_id, b.name, b.blocks_uploads, e.algorithm, e.value, e.source "  # noqa: S608
            f"FROM {entries} e JOIN {banks} b ON b.id = e.bank_id "
            f"WHERE e.status = %s AND b.enabled = %s AND ({wanted})",
            [BankEntry.Status.ACTIVE, True, *[x for pair in pairs for x in pair]])
        return list(cursor.fetchall())


def _thresholds(banks: list[tuple[int, Any]], algorithm: str, override: int | None) -> dict[int, int]:
    default = get_algorithm(algorithm).default_threshold
    return {bank_id: override if override is not None else int((own or {}).get(algorithm, default))
            for bank_id, own in banks}


def _recheck(searches: list[tuple[str, list[str], list[list[tuple[int, int]]], int | None]]) -> list[BankMatch]:
    """Keep the index's hits that the database confirms, in one query for every algorithm: the entry is
    active, its bank enabled, and the distance from its stored value within the bank's threshold as it
    is now. ``searches``: ``(algorithm, query values, hits per value, threshold override)``."""
    wanted = {entry_id for _, _, hits, _ in searches for value_hits in hits for entry_id, _ in value_hits}
    if not wanted:
        return []
    entries = {
        row[0]: row for row in BankEntry.objects.filter(
            id__in=wanted, status=BankEntry.Status.ACTIVE, bank__enabled=True,
        ).values_list("id", "bank_id", "bank__name", "bank__blocks_uploads", "value", "source", "bank__thresholds")
    }
    found = []
    for algorithm, values, hits, override in searches:
        default = get_algorithm(algorithm).default_threshold
        for value, value_hits in zip(values, hits, strict=True):
            for entry_id, _ in value_hits:
                if entry_id not in entries:
                    continue
                _, bank_id, bank_name, blocks, entry_value, source, own = entries[entry_id]
                threshold = override if override is not None else int((own or {}).get(algorithm, default))
                # Recomputed from the stored value: the index can only suggest, the database decides.
                distance = hamming_hex(value, entry_value)
                if distance <= threshold:
                    found.append(BankMatch(entry_id, bank_id, bank_name, blocks, algorithm, value, entry_value,
                                           source, distance, threshold))
    return found
