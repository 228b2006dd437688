"""The per-process match index: built from the banks once, then kept fresh by checkpoint.

Each process that matches (web processes, Celery workers) holds one :class:`Matcher`: a
:class:`~hashing.index.HammingIndex` per perceptual algorithm, keyed by ``BankEntry.id``. It is built
from the database on first use; after that :meth:`Matcher.refresh` reads only the ``BankChange`` rows
above its checkpoint (plus any open gaps) and applies exactly those entries: active ones are added,
withdrawn or deleted ones removed. ``hashing.matching`` refreshes before matching when the last
refresh is older than ``TAKEDOWN_MATCH_REFRESH_SECONDS`` (1 s by default, so a committed change is seen
within the 2 s bound; 0: every match sees every committed change).

Bank settings (enabled, thresholds) and entry status are also re-checked in the database for every
hit, so a withdrawn entry or a disabled bank stops matching at once, even in a process that has not
refreshed yet.

Change ids are allocated before commit, so a slow transaction can commit an id below the checkpoint.
Missing ids below the checkpoint are kept as *gaps* and re-read on each refresh until they appear or
are older than ``TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS`` (then they were rolled back). If the row at the
checkpoint is gone or different (a restored or reset database), the index is rebuilt. Entries created
without a change row (fixtures, code that bypasses ``hashing.banks``) are picked up too: each refresh
also applies entries above the highest entry id seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Min, Q
from django.utils import timezone

from hashing.algorithms import ALGORITHMS
from hashing.index import HammingIndex, hex_to_codes
from hashing.models import BankChange, BankEntry

logger = logging.getLogger(__name__)

PERCEPTUAL = tuple(a.name for a in ALGORITHMS.values() if a.perceptual)
# Rows read per query while building or replaying: bounded memory for banks of millions of entries.
_READ_CHUNK = 20_000
# On a rebuild, ids this far below the newest change are checked for gaps (in-flight transactions).
_GAP_LOOKBACK = 10_000
# Entries applied per query on replay, and the most id ranges such a query names before it lists the ids.
_APPLY_CHUNK = 100_000
_MAX_RANGES = 50


@dataclass(frozen=True)
class MatcherStatus:
    """How fresh this process's index is. ``stale_seconds``: age of the oldest change not applied."""

    built: bool
    checkpoint: int
    pending_changes: int
    stale_seconds: float
    open_gaps: int
    entries: dict[str, int]
    last_refresh_seconds_ago: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "built": self.built, "checkpoint": self.checkpoint, "pending_changes": self.pending_changes,
            "stale_seconds": round(self.stale_seconds, 3), "open_gaps": self.open_gaps, "entries": self.entries,
            "last_refresh_seconds_ago": (None if self.last_refresh_seconds_ago is None
                                         else round(self.last_refresh_seconds_ago, 3)),
        }


def prefix_shard(codes: np.ndarray, shards: int) -> np.ndarray:
    """The shard (0 to ``shards - 1``) of each code: its first 16 bits, cut into ``shards`` equal ranges.

    Any fixed function of the code would do for exactness, because every search asks every shard and
    the shards hold disjoint parts of the bank; a prefix keeps the split even for uniform codes and lets
    an operator read a shard's range off the hex.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    prefix = (codes[:, 0].astype(np.int64) << 8) | codes[:, 1].astype(np.int64)
    return (prefix * shards) >> 16


class Matcher:
    """Perceptual-hash indexes for every active bank entry, refreshed by replaying bank changes.

    ``Matcher(shard=k, shards=n)`` holds only the entries whose ``prefix_shard`` is ``k`` (a matcher
    worker's part of the bank, ``hashing.shards``); the default holds every entry.
    """

    def __init__(self, shard: int = 0, shards: int = 1) -> None:
        if shards < 1 or not 0 <= shard < shards:
            raise ValueError(f"shard must be in 0..{shards - 1}; got {shard}")
        self.shard, self.shards = shard, shards
        self._lock = threading.RLock()
        self._indexes: dict[str, HammingIndex] = {}
        self._checkpoint = 0
        self._checkpoint_stamp: datetime | None = None
        self._gaps: dict[int, float] = {}  # change id -> monotonic time it was first missed
        self._refreshed_at: float | None = None
        self._entry_high = 0  # highest BankEntry id applied, and its created_at: a second fingerprint
        self._entry_stamp: datetime | None = None
        self.built = False

    # --- refresh ----------------------------------------------------------------------------
    def refresh(self) -> int:
        """Bring the index up to date. Returns how many changes were applied (-1: rebuilt from scratch)."""
        with self._lock:
            if not self.built or not self._checkpoint_holds():
                self._rebuild()
                return -1
            return self._replay()

    def refresh_if_due(self, max_age: float | None = None) -> None:
        if max_age is None:
            max_age = float(getattr(settings, "TAKEDOWN_MATCH_REFRESH_SECONDS", 1))
        if self._refreshed_at is None or time.monotonic() - self._refreshed_at >= max_age:
            self.refresh()

    def _checkpoint_holds(self) -> bool:
        if self._entry_high:
            stamp = BankEntry.objects.filter(pk=self._entry_high).values_list("created_at", flat=True).first()
            if stamp is None or stamp != self._entry_stamp:
                return False
        if self._checkpoint == 0:
            return True
        stamp = BankChange.objects.filter(pk=self._checkpoint).values_list("created_at", flat=True).first()
        return stamp is not None and stamp == self._checkpoint_stamp

    def _rebuild(self) -> None:
        started = time.monotonic()
        head = BankChange.objects.order_by("-id").values_list("id", "created_at").first()
        checkpoint, stamp = head if head else (0, None)
        present = set(BankChange.objects.filter(id__gt=checkpoint - _GAP_LOOKBACK, id__lte=checkpoint)
                      .values_list("id", flat=True))
        now = time.monotonic()
        gaps = {i: now for i in range(max(1, checkpoint - _GAP_LOOKBACK + 1), checkpoint + 1) if i not in present}
        entry_head = BankEntry.objects.order_by("-id").values_list("id", "created_at").first()
        indexes = {name: HammingIndex(ALGORITHMS[name].bits) for name in PERCEPTUAL}
        for name, index in indexes.items():
            rows = (BankEntry.objects.filter(algorithm=name, status=BankEntry.Status.ACTIVE)
                    .order_by().values_list("id", "value").iterator(chunk_size=_READ_CHUNK))
            _add_rows(index, name, rows, self.shard, self.shards)
        self._indexes, self._checkpoint, self._checkpoint_stamp, self._gaps = indexes, checkpoint, stamp, gaps
        self._entry_high, self._entry_stamp = entry_head if entry_head else (0, None)
        self._refreshed_at = time.monotonic()
        self.built = True
        logger.info("match index built: %s entries, checkpoint %s, %.2f s",
                    {k: len(v) for k, v in indexes.items()}, checkpoint, self._refreshed_at - started)

    def _replay(self) -> int:
        # Ids only: a bulk import commits tens of thousands of changes at once, and reading a timestamp per
        # row costs more than applying the row. The checkpoint's stamp is read for the newest change alone.
        changes = list(self._pending().values_list("id", "entry_id").order_by("id"))
        changed = {entry_id for _, entry_id in changes}
        created = list(BankEntry.objects.filter(id__gt=self._entry_high).order_by("id").values_list("id", flat=True))
        entry_ids = sorted(changed.union(created))
        for start in range(0, len(entry_ids), _APPLY_CHUNK):
            self._apply(entry_ids[start:start + _APPLY_CHUNK])
        now = time.monotonic()
        seen = {change_id for change_id, _ in changes}
        for change_id in seen:
            self._gaps.pop(change_id, None)
        newest = changes[-1][0] if changes and changes[-1][0] > self._checkpoint else None
        if newest is not None:
            for missing in range(self._checkpoint + 1, newest):
                if missing not in seen:
                    self._gaps[missing] = now
            self._checkpoint = newest
            self._checkpoint_stamp = BankChange.objects.filter(pk=newest).values_list("created_at", flat=True).first()
        timeout = float(getattr(settings, "TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS", 600))
        for change_id, first_missed in list(self._gaps.items()):
            if now - first_missed > timeout:
                del self._gaps[change_id]  # rolled back: no transaction stays open this long
        if created:
            self._entry_high = created[-1]
            self._entry_stamp = BankEntry.objects.filter(pk=created[-1]).values_list("created_at", flat=True).first()
        self._refreshed_at = now
        return len(changes)

    def _apply(self, entry_ids: Sequence[int]) -> None:
        """Bring these entries (ascending ids) to their state in the database."""
        active: dict[str, list[tuple[int, str]]] = {name: [] for name in PERCEPTUAL}
        runs = _runs(list(entry_ids))
        if len(runs) <= _MAX_RANGES:
            # A bulk import's entries have consecutive ids: a few id ranges make a far shorter query than
            # thousands of ids. Entries in a range that did not change are applied as they are: harmless.
            where = Q()
            for low, high in runs:
                where |= Q(id__gte=low, id__lte=high)
        else:
            where = Q(id__in=entry_ids)
        for entry_id, algorithm, value, status in BankEntry.objects.filter(where).values_list(
                "id", "algorithm", "value", "status"):
            if status == BankEntry.Status.ACTIVE and algorithm in active:
                active[algorithm].append((entry_id, value))
        ids = np.asarray(entry_ids, dtype=np.int64)
        for name, index in self._indexes.items():
            if len(index):
                index.remove(ids)
            # In one piece: one new index segment per replayed chunk, not one per 20,000 rows.
            _add_rows(index, name, active[name], self.shard, self.shards, chunk=max(1, len(active[name])))

    def _pending(self) -> Any:
        """Change rows this process has not applied: above the checkpoint, or in an open gap."""
        condition = Q(id__gt=self._checkpoint)
        for low, high in _runs(sorted(self._gaps)):
            condition |= Q(id__gte=low, id__lte=high)
        return BankChange.objects.filter(condition)

    # --- reads ------------------------------------------------------------------------------
    def search(self, algorithm: str, values: Sequence[str], radius: int) -> list[list[tuple[int, int]]]:
        """For each hex value, ``(entry id, distance)`` of every indexed entry within ``radius``."""
        codes = hex_to_codes([v.lower() for v in values], ALGORITHMS[algorithm].bits)
        with self._lock:
            if not self.built:
                self._rebuild()
            results = self._indexes[algorithm].search(codes, radius)
        return [list(zip(ids.tolist(), dists.tolist(), strict=True)) for ids, dists in results]

    def status(self) -> MatcherStatus:
        """Freshness as seen from the database now; does not refresh."""
        with self._lock:
            pending = self._pending().aggregate(oldest=Min("created_at"))
            count = self._pending().count()
            oldest = pending["oldest"]
            stale = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
            return MatcherStatus(
                built=self.built, checkpoint=self._checkpoint, pending_changes=count, stale_seconds=stale,
                open_gaps=len(self._gaps), entries={k: len(v) for k, v in self._indexes.items()},
                last_refresh_seconds_ago=(None if self._refreshed_at is None
                                          else time.monotonic() - self._refreshed_at))


def _add_rows(index: HammingIndex, algorithm: str, rows: Iterable[tuple[int, str]], shard: int = 0,
              shards: int = 1, chunk: int = _READ_CHUNK) -> None:
    bits = ALGORITHMS[algorithm].bits
    batch: list[tuple[int, str]] = []

    def flush() -> None:
        good = [(i, v.lower()) for i, v in batch if len(v) == bits // 4]
        try:
            codes = hex_to_codes([v for _, v in good], bits)
        except ValueError:
            good = [(i, v) for i, v in good if _is_hex(v)]
            codes = hex_to_codes([v for _, v in good], bits)
        if len(good) < len(batch):
            logger.warning("%s %s bank entries are not valid hex and cannot match", len(batch) - len(good), algorithm)
        ids = np.array([i for i, _ in good], dtype=np.int64)
        if shards > 1:
            mine = prefix_shard(codes, shards) == shard
            ids, codes = ids[mine], codes[mine]
        index.add(ids, codes)

    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            flush()
            batch = []
    if batch:
        flush()


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted ids as inclusive ranges of consecutive ids."""
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


_MATCHER = Matcher()


def get_matcher() -> Matcher:
    """This process's matcher."""
    return _MATCHER


def local_readiness() -> tuple[bool, dict[str, Any]]:
    """Refresh if due, then whether this process's index is built and no staler than the setting allows.

    Unsharded only; ``hashing.shards.matcher_readiness`` picks this or every shard's readiness.
    """
    matcher = get_matcher()
    try:
        matcher.refresh_if_due()
        state = matcher.status()
    except DatabaseError:
        logger.exception("match index refresh failed")
        return False, {"status": "unavailable", "error": "the bank database cannot be read"}
    limit = float(getattr(settings, "TAKEDOWN_MATCH_MAX_STALENESS_SECONDS", 2))
    ready = state.built and state.stale_seconds <= limit
    return ready, {"status": "ready" if ready else "stale", "max_staleness_seconds": limit, **state.as_dict()}
