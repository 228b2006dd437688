"""The lookups behind HMA's matching routes: our in-memory index and plain SQL, no ORM on the way.

- ``pdq``: an exact radius search of the index (``hashing.shards.get_searcher``: this process's matcher, or
  every shard) at the widest threshold of the banks shown, then one query that keeps the entries still
  active, then each bank's own threshold (``Bank.thresholds["pdq"]``, else 31 as HMA's fixed threshold).
- ``video_md5``: equal ``md5`` entries, one indexed query.

The banks (HMA name, enabled, ratio, thresholds) come from a snapshot read again when older than
``TAKEDOWN_MATCH_REFRESH_SECONDS``, as ``hashing.matching`` reads them, and at once when a hit names a bank it
does not know yet. Entries are checked in the database on every hit, so a content disabled or deleted
stops matching at once; a bank's settings apply within the refresh interval.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string

from hashing.algorithms import get_algorithm
from hashing.matcher import get_matcher
from hashing.models import Bank, BankEntry
from hashing.shards import get_searcher, shard_count
from moderation.hma.responses import HmaError
from moderation.observability import events
from moderation.selectors.hma import SIGNAL_TYPES, bank_name_for, hma_name_for

logger = logging.getLogger(__name__)

PDQ_DEFAULT_THRESHOLD = get_algorithm("pdq").default_threshold  # 31, HMA's fixed PDQ threshold
# What HMA writes as the distance of a match that has none (an exact hash).
NO_DISTANCE = "-"
_ACTIVE = BankEntry.Status.ACTIVE.value


@dataclass(frozen=True)
class BankState:
    id: int
    name: str
    hma_name: str
    enabled: bool
    ratio: float
    pdq_threshold: int


@dataclass(frozen=True)
class Snapshot:
    banks: dict[int, BankState]  # the banks HMA's routes show
    pdq_radius: int  # the widest PDQ threshold of an enabled bank shown; -1: none
    known: frozenset[int]  # every bank id read, shown or not: a hit on another one means a newer bank


@dataclass(frozen=True)
class Hit:
    content_id: int
    bank: BankState
    distance: str


def _read_banks() -> Snapshot:
    table = Bank._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, name, enabled, enabled_ratio, thresholds, deleted_at FROM {table} "  # noqa: S608
                       "ORDER BY id")
        rows = cursor.fetchall()
    shown: dict[str, BankState] = {}
    for bank_id, name, enabled, ratio, thresholds, deleted_at in rows:
        hma_name = hma_name_for(name)
        if deleted_at is not None:
            continue
        if hma_name is None or (hma_name in shown and name != bank_name_for(hma_name)):
            continue  # no HMA name, or another bank holds it (moderation.selectors.hma)
        own = json.loads(thresholds) if isinstance(thresholds, str) else (thresholds or {})
        shown[hma_name] = BankState(bank_id, name, hma_name, bool(enabled), float(ratio),
                                    int(own.get("pdq", PDQ_DEFAULT_THRESHOLD)))
    states = {state.id: state for state in shown.values()}
    radius = max((s.pdq_threshold for s in states.values() if s.enabled), default=-1)
    return Snapshot(states, radius, frozenset(int(row[0]) for row in rows))


class _Banks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._read_at = 0.0

    def get(self, *, fresh: bool = False) -> Snapshot:
        max_age = float(getattr(settings, "TAKEDOWN_MATCH_REFRESH_SECONDS", 1))
        with self._lock:
            if fresh or self._snapshot is None or time.monotonic() - self._read_at >= max_age:
                self._snapshot = _read_banks()
                self._read_at = time.monotonic()
            return self._snapshot

    def forget(self) -> None:
        with self._lock:
            self._snapshot = None


_banks = _Banks()


def banks_changed() -> None:
    """Read the banks again at the next lookup in this process (after a curation write)."""
    _banks.forget()


def index_changed() -> None:
    """Bring this process's index up to date now (after a curation write): a content banked here matches
    here at once; other processes see it within ``TAKEDOWN_MATCH_REFRESH_SECONDS``."""
    matcher = get_matcher()
    if shard_count() == 1 and matcher.built:  # an index not built yet is built, whole, at its first search
        matcher.refresh()


def check_signal(signal_type: str, signal: str) -> str:
    """The value in our form (lower-case hex), or ``HmaError`` 400 as HMA answers a bad one."""
    if signal_type not in SIGNAL_TYPES:
        raise HmaError(400, f"No such SignalType '{signal_type}'")
    algorithm = get_algorithm(SIGNAL_TYPES[signal_type])
    value = signal.strip().lower()
    if len(value) != algorithm.hex_length or any(c not in "0123456789abcdef" for c in value):
        raise HmaError(400, f"invalid signal: a {signal_type} signal is {algorithm.hex_length} hex characters")
    return value


def search(signal_type: str, value: str) -> list[Hit]:
    """The active contents of enabled banks shown to HMA that match ``value`` (checked by :func:`check_signal`),
    nearest first."""
    snapshot = _banks.get()
    if signal_type == "pdq":
        if snapshot.pdq_radius < 0:
            return []
        found = get_searcher().search("pdq", [value], snapshot.pdq_radius)[0]
        if not found:
            return []
        distances = dict(found)
        rows = _active_rows(list(distances))
    else:
        distances = {}
        rows = _md5_rows(value)
    if any(bank_id not in snapshot.known for _, bank_id in rows):
        snapshot = _banks.get(fresh=True)  # a bank created since the snapshot
    hits = []
    for entry_id, bank_id in rows:
        bank = snapshot.banks.get(bank_id)
        if bank is None or not bank.enabled:
            continue
        if signal_type == "pdq":
            if distances[entry_id] > bank.pdq_threshold:
                continue
            hits.append(Hit(entry_id, bank, str(distances[entry_id])))
        else:
            hits.append(Hit(entry_id, bank, NO_DISTANCE))
    hits.sort(key=lambda h: (int(h.distance) if h.distance != NO_DISTANCE else 0, h.content_id))
    return hits


def _active_rows(entry_ids: list[int]) -> list[tuple[int, int]]:
    table = BankEntry._meta.db_table
    marks = ", ".join(["%s"] * len(entry_ids))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, bank_id FROM {table} WHERE status = %s AND id IN ({marks})",  # noqa: S608
                       [_ACTIVE, *entry_ids])
        return [(int(a), int(b)) for a, b in cursor.fetchall()]


def _md5_rows(value: str) -> list[tuple[int, int]]:
    table = BankEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, bank_id FROM {table} "  # noqa: S608
                       "WHERE algorithm = %s AND value = %s AND status = %s", ["md5", value, _ACTIVE])
        return [(int(a), int(b)) for a, b in cursor.fetchall()]


def only_banks(hits: Iterable[Hit], banks: set[str] | None) -> list[Hit]:
    return [h for h in hits if banks is None or h.bank.hma_name in banks]


# --- Matches of confirmed NCII -------------------------------------------------------------------------


@dataclass(frozen=True)
class HmaConfirmedMatch:
    """What ``TAKEDOWN_HMA_MATCH_HOOK`` receives: a lookup matched a bank of confirmed NCII."""

    bank: str  # our bank name
    hma_name: str
    content_ids: list[int] = field(default_factory=list)
    api_key_id: int | None = None  # None: an anonymous caller from an allowed network
    route: str = ""


def confirmed_matches(hits: Iterable[Hit], *, api_key_id: int | None, route: str) -> None:
    """Count the hits on banks of confirmed NCII and hand them to the policy hook, if one is set.

    A failing hook is logged, never the caller's error: the answer stands.
    """
    confirmed = set(settings.TAKEDOWN_HMA_CONFIRMED_BANKS)
    if not confirmed:
        return
    by_bank: dict[int, list[Hit]] = {}
    for hit in hits:
        if hit.bank.name in confirmed:
            by_bank.setdefault(hit.bank.id, []).append(hit)
    if not by_bank:
        return
    hook = settings.TAKEDOWN_HMA_MATCH_HOOK
    for bank_hits in by_bank.values():
        bank = bank_hits[0].bank
        events.hma_confirmed_match(bank=bank.name, route=route)
        if hook:
            try:
                import_string(hook)(HmaConfirmedMatch(bank=bank.name, hma_name=bank.hma_name,
                                                      content_ids=[h.content_id for h in bank_hits],
                                                      api_key_id=api_key_id, route=route))
            except Exception:
                logger.exception("TAKEDOWN_HMA_MATCH_HOOK failed; the lookup was answered")


# --- Index state ----------------------------------------------------------------------------------------


def index_state() -> dict[str, Any]:
    """``{"ready", "stale", "size", "built_to"}`` of the PDQ index (every shard's when sharded)."""
    from hashing.shards import matcher_readiness

    now = time.time()
    ready, body = matcher_readiness()
    if shard_count() > 1:
        shards = body.get("shards", [])
        size = sum(int(s.get("entries", {}).get("pdq", 0)) for s in shards)
        built = all(s.get("built") for s in shards) and bool(shards)
        stale = float(body.get("stale_seconds", 0.0))
    else:
        size = int(body.get("entries", {}).get("pdq", 0))
        built = bool(body.get("built"))
        stale = float(body.get("stale_seconds", 0.0))
        if not body.get("pending_changes") and body.get("last_refresh_seconds_ago") is not None:
            stale = float(body["last_refresh_seconds_ago"])
    return {"ready": ready, "built": built, "size": size, "built_to": int(now - stale) if built else -1}


def md5_count() -> int:
    """Active ``md5`` entries in banks shown to HMA (what ``video_md5`` lookups search)."""
    snapshot = _banks.get()
    ids = list(snapshot.banks)
    if not ids:
        return 0
    table = BankEntry._meta.db_table
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE algorithm = %s AND status = %s "  # noqa: S608
                       f"AND bank_id IN ({marks})", ["md5", _ACTIVE, *ids])
        return int(cursor.fetchone()[0])
