"""The outbound feed: every change to the banks a partner may read, from a stable opaque cursor.

The feed replays ``hashing.BankChange`` (the change log matchers replay): each change row becomes the
*current* state of its entry, so new, withdrawn and deleted entries all appear, deleted ones as
tombstones (status "deleted", never dropped). Re-reading a record is harmless: applying one is idempotent.

Change ids are handed out before commit, so a slow transaction can commit an id below rows a partner has
already read. The cursor therefore carries, besides the highest id read, the *gaps* (missing ids below it
whose neighbours are recent); later pages re-read them until they appear or are older than any transaction
(``TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS``, as the matcher does). So a partner that follows ``next_cursor``
misses no change, and the cursor stays valid across restarts and key rotations: it is data, not a session.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Q

from exchange.entries import case_ref_for
from exchange.models import SharedEntry
from hashing.models import Bank, BankChange, BankEntry

CURSOR_VERSION = 1
# Gap runs a cursor carries at most; beyond this the oldest are dropped (only rolled-back bulk writes make
# many, and those never fill).
MAX_GAP_RUNS = 64


class BadCursor(ValueError):
    """A cursor this server did not hand out (or of an old version): start again without one."""


@dataclass
class Cursor:
    checkpoint: int = 0
    # [first id, last id, unix time first missed] per run of missing ids below the checkpoint.
    gaps: list[list[int]] = field(default_factory=list)

    def encode(self) -> str:
        raw = json.dumps({"v": CURSOR_VERSION, "c": self.checkpoint, "g": self.gaps}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        if not value:
            return cls()
        try:
            raw = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise BadCursor("this cursor is not one the feed handed out; start again without a cursor") from exc
        if not isinstance(raw, dict) or raw.get("v") != CURSOR_VERSION:
            raise BadCursor("this cursor is not one the feed handed out; start again without a cursor")
        checkpoint, gaps = raw.get("c"), raw.get("g")
        if (not isinstance(checkpoint, int) or checkpoint < 0 or not isinstance(gaps, list)
                or len(gaps) > MAX_GAP_RUNS
                or not all(isinstance(g, list) and len(g) == 3 and all(isinstance(x, int) for x in g)
                           and 0 < g[0] <= g[1] <= checkpoint for g in gaps)):
            raise BadCursor("this cursor is not one the feed handed out; start again without a cursor")
        return cls(checkpoint=checkpoint, gaps=gaps)


@dataclass
class FeedPage:
    records: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _record(algorithm: str, value: str, status: str, created_at: datetime, updated_at: datetime, source: str,
            bank: str, shared: tuple[list[str], str] | None) -> dict[str, Any]:
    """One feed record. No personal data: the case is an opaque reference, the source is not sent."""
    return {
        "signal_type": algorithm,
        "value": value,
        "status": status,
        "created_at": _iso(created_at),
        "updated_at": _iso(updated_at),
        "case_ref": (shared[1] if shared and shared[1] else case_ref_for(source)),
        "tags": shared[0] if shared else [],
        "bank": bank,
    }


def feed_page(*, banks: Iterable[Bank] | None, cursor: str = "", limit: int) -> FeedPage:
    """Up to ``limit`` changes after ``cursor`` (plus any gaps that filled), as records of the entries in
    ``banks`` (None: every bank). Raises :class:`BadCursor`."""
    state = Cursor.decode(cursor)
    now = int(time.time())
    timeout = settings.TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS
    gaps = [g for g in state.gaps if now - g[2] <= timeout]
    # Changes that filled a gap since the last page, then new ones above the checkpoint.
    filled: list[tuple[int, int]] = []
    if gaps:
        in_gaps = Q()
        for low, high, _ in gaps:
            in_gaps |= Q(id__gte=low, id__lte=high)
        filled = list(BankChange.objects.filter(in_gaps).order_by("id").values_list("id", "entry_id"))
    rows = list(BankChange.objects.filter(id__gt=state.checkpoint).order_by("id")
                .values_list("id", "entry_id", "created_at")[:limit])
    filled_ids = {i for i, _ in filled}
    gaps = _split_gaps(gaps, filled_ids)
    gaps.extend(_new_gaps(state.checkpoint, rows, now, timeout))
    gaps = gaps[-MAX_GAP_RUNS:]
    checkpoint = rows[-1][0] if rows else state.checkpoint
    # Latest change per entry wins; the record carries the entry's state now, so order within a page is free.
    entry_ids = list(dict.fromkeys([e for _, e in filled] + [e for _, e, _ in rows]))
    records = _records(entry_ids, banks)
    return FeedPage(records=records, next_cursor=Cursor(checkpoint=checkpoint, gaps=gaps).encode(),
                    has_more=len(rows) == limit)


def _records(entry_ids: list[int], banks: Iterable[Bank] | None) -> list[dict[str, Any]]:
    if not entry_ids:
        return []
    entries = BankEntry.objects.filter(id__in=entry_ids)
    if banks is not None:
        entries = entries.filter(bank__in=list(banks))
    # Plain rows, not model instances: a page holds thousands of records.
    rows = {row[0]: row[1:] for row in entries.values_list(
        "id", "algorithm", "value", "status", "created_at", "updated_at", "source", "bank__name")}
    shared = {entry_id: (list(tags), case_ref) for entry_id, tags, case_ref in
              SharedEntry.objects.filter(entry_id__in=list(rows)).values_list("entry_id", "tags", "case_ref")}
    return [_record(*rows[i], shared.get(i)) for i in entry_ids if i in rows]


def _split_gaps(gaps: list[list[int]], filled: set[int]) -> list[list[int]]:
    """The gap runs without the ids that have appeared."""
    if not filled:
        return gaps
    result: list[list[int]] = []
    for low, high, since in gaps:
        start = low
        for i in range(low, high + 1):
            if i in filled:
                if start < i:
                    result.append([start, i - 1, since])
                start = i + 1
        if start <= high:
            result.append([start, high, since])
    return result


def _new_gaps(checkpoint: int, rows: list[tuple[int, int, datetime]], now: int, timeout: int) -> list[list[int]]:
    """Runs of ids missing between the rows read (and below the first), when the row above the run is recent
    enough that a transaction holding those ids may still commit."""
    gaps: list[list[int]] = []
    previous = checkpoint
    for change_id, _, created_at in rows:
        if change_id > previous + 1 and now - created_at.timestamp() <= timeout:
            gaps.append([previous + 1, change_id - 1, now])
        previous = change_id
    return gaps
