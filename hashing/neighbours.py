"""An in-process Hamming index over the hashes stored in an insert-only table (e.g. reported media's PDQ).

Built on first use, then refreshed by id high-water mark: each lookup first adds the rows above the
highest id seen, so the table is read once per process instead of once per lookup. It only proposes
candidates; callers re-read the candidate rows and recompute the distance, so a deleted row never
comes back. Rows are expected never to change their value (``MediaHash`` rows are created once, with
``get_or_create``). If the high-water row is gone or is another row than the one seen (a database
that was reset or restored), the index is rebuilt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import numpy as np

from hashing.index import HammingIndex, hex_to_codes

# rows_above(after_id) -> (id, hex value, created_at) rows with id > after_id, ordered by id.
RowSource = Callable[[int], Iterable[tuple[int, str, datetime]]]
# stamp_of(id) -> the created_at of that row, or None when it is gone.
StampSource = Callable[[int], datetime | None]

_BATCH = 20_000


class StoredHashIndex:
    """``HammingIndex`` over ``(id, hex)`` rows of one table, caught up by id before every search."""

    def __init__(self, bits: int, rows_above: RowSource, stamp_of: StampSource) -> None:
        self.bits = bits
        self._rows_above = rows_above
        self._stamp_of = stamp_of
        self._lock = threading.Lock()
        self._index = HammingIndex(bits)
        self._high = 0
        self._high_stamp: datetime | None = None

    def candidates(self, values: list[str], radius: int) -> set[int]:
        """Ids of rows within ``radius`` of any of ``values`` (as indexed; callers verify them)."""
        codes = hex_to_codes([v.lower() for v in values], self.bits)
        with self._lock:
            self._catch_up()
            found: set[int] = set()
            for ids, _ in self._index.search(codes, radius):
                found.update(ids.tolist())
            return found

    def _catch_up(self) -> None:
        if self._high and self._stamp_of(self._high) != self._high_stamp:
            self._index, self._high, self._high_stamp = HammingIndex(self.bits), 0, None
        batch: list[tuple[int, str, Any]] = []
        for row in self._rows_above(self._high):
            batch.append(row)
            if len(batch) >= _BATCH:
                self._add(batch)
                batch = []
        if batch:
            self._add(batch)

    def _add(self, rows: list[tuple[int, str, Any]]) -> None:
        good = [(i, v.lower()) for i, v, _ in rows if len(v) == self.bits // 4 and _is_hex(v)]
        self._index.add(np.array([i for i, _ in good], dtype=np.int64), hex_to_codes([v for _, v in good], self.bits))
        self._high, self._high_stamp = rows[-1][0], rows[-1][2]


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True
