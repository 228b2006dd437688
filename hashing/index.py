"""Exact Hamming-radius search over binary codes (PDQ 256-bit, pHash/dHash 64-bit): multi-index hashing.

Every code is cut into 16-bit chunks, one hash table per chunk. By the pigeonhole principle, if two codes
are within ``radius`` bits then for per-chunk budgets ``tau_t`` with ``sum(tau_t + 1) == radius + 1`` at
least one chunk ``t`` differs in at most ``tau_t`` bits (Norouzi, Punjani and Fleet, "Fast exact search
in Hamming space with multi-index hashing", 2014). A query therefore probes, in each table, every 16-bit
value within ``tau_t`` of its own chunk and verifies the rows found there with a full popcount; nothing
within the radius is missed (100% recall). For PDQ at radius 31 that is 16 tables with ``tau = 1``:
17 probes per table, the layout Meta's HMA uses with FAISS ``IndexBinaryMultiHash``.

The kernels are compiled with numba. Rows live in segments (log-structured, like Lucene):

* new codes go to a small *delta* that is scanned linearly;
* a full delta is frozen into an indexed segment; segments of similar size are merged, so a bank of
  ``n`` codes is held in about ``log2(n / DELTA_ROWS)`` segments and no add ever rebuilds the whole index;
* a removal clears the row's *alive* flag in place, so a withdrawn code stops matching at once; dead
  rows are dropped when their segment is merged or when more than half of it is dead.

Within an indexed segment rows are stored sorted by their first chunk, so the first table needs no
posting list of its own (only bucket offsets).

Not thread-safe: callers that share an index between threads hold a lock (``hashing.matcher`` does).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["HammingIndex", "brute_force_search", "hex_to_codes"]

CHUNK_BITS = 16
_BUCKETS = 1 << CHUNK_BITS
# Rows kept in the linearly scanned delta before it is frozen into an indexed segment. A linear scan
# of 8192 PDQ codes costs about as much as the 272 bucket probes of one indexed segment.
DELTA_ROWS = 8192
# Segments whose live rows are within this factor of each other are merged (binary-counter policy).
MERGE_RATIO = 2
# Candidates between the one being verified and the one being prefetched (measured: 16-32 best).
_PREFETCH_AHEAD = 32
# Initial room for results in the kernels; grows by doubling.
_RESULTS_START = 1024

# All 16-bit masks ordered by popcount: the first V(16, tau) of them flip at most tau bits.
_MASKS = np.array(sorted(range(_BUCKETS), key=lambda v: (v.bit_count(), v)), dtype=np.int64)
# _BALL[tau] = number of 16-bit masks with at most tau bits set.
_BALL = np.cumsum(np.bincount(np.array([v.bit_count() for v in range(_BUCKETS)]), minlength=CHUNK_BITS + 1))
_BALL = _BALL.astype(np.int64)


def _popcount_intrinsic(typingctx, x):  # type: ignore[no-untyped-def]
    """The CPU's popcount instruction (LLVM ctpop) on a uint64."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.ctpop(args[0])

    return sig, codegen


_popcount: Any = intrinsic(_popcount_intrinsic)


def _prefetch_row_intrinsic(typingctx, array, row):  # type: ignore[no-untyped-def]
    """A prefetch hint (LLVM ``llvm.prefetch``, read, high locality) for ``array[row, 0]``; no effect on results."""
    sig = types.void(array, row)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = cgutils.get_item_pointer2(
            context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
            cgutils.unpack_tuple(builder, ary.strides), array_type.layout,
            [index, context.get_constant(types.intp, 0)])
        bytes_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [bytes_pointer, i32, i32, i32]), "llvm.prefetch.p0")
        builder.call(function, [builder.bitcast(pointer, bytes_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


_prefetch_row: Any = intrinsic(_prefetch_row_intrinsic)


@numba.njit(cache=True, nogil=True)
def _chunk(words: np.ndarray, t: int) -> int:
    return int((words[t >> 2] >> np.uint64((t & 3) * 16)) & np.uint64(0xFFFF))


@numba.njit(cache=True, nogil=True)
def _grow(buf: np.ndarray) -> np.ndarray:
    bigger = np.empty(buf.shape[0] * 2, dtype=buf.dtype)
    bigger[: buf.shape[0]] = buf
    return bigger


@numba.njit(cache=True, nogil=True)
def _search_linear(words, alive, n, queries, radius):  # type: ignore[no-untyped-def]
    """Every alive row of ``words[:n]`` within ``radius`` of each query: (query index, row, distance)."""
    out_q = np.empty(_RESULTS_START, dtype=np.int64)
    out_r = np.empty(_RESULTS_START, dtype=np.int64)
    out_d = np.empty(_RESULTS_START, dtype=np.int64)
    found = 0
    width = words.shape[1]
    for q in range(queries.shape[0]):
        for row in range(n):
            if alive[row] == 0:
                continue
            d = 0
            for w in range(width):
                d += _popcount(words[row, w] ^ queries[q, w])
            if d <= radius:
                if found == out_q.shape[0]:
                    out_q, out_r, out_d = _grow(out_q), _grow(out_r), _grow(out_d)
                out_q[found], out_r[found], out_d[found] = q, row, d
                found += 1
    return out_q[:found], out_r[:found], out_d[:found]


@numba.njit(cache=True, nogil=True)
def _search_mih(words, alive, offsets, postings, queries, radius, taus, masks, ball):  # type: ignore[no-untyped-def]
    """Multi-index search of one segment; same output as ``_search_linear``.

    Per query, the candidate rows of every probed bucket are first gathered (sequential reads of the
    posting lists), then verified with a popcount while the row ``_PREFETCH_AHEAD`` candidates further
    on is prefetched: the verification is a random memory access per candidate, and prefetching keeps
    many of them in flight instead of one or two (1.3-1.7x faster than verifying in place, most where
    the index outgrows the caches; docs/benchmarks.md). The popcount stops after the first half of
    the code when that alone exceeds the radius (most candidates).

    A row can sit in the probed buckets of several tables; it is reported only from the first table
    whose budget it meets, so each (query, row) pair appears once.
    """
    out_q = np.empty(_RESULTS_START, dtype=np.int64)
    out_r = np.empty(_RESULTS_START, dtype=np.int64)
    out_d = np.empty(_RESULTS_START, dtype=np.int64)
    cand = np.empty(4096, dtype=np.uint32)
    ctab = np.empty(4096, dtype=np.uint16)
    found = 0
    width = words.shape[1]
    half = (width + 1) // 2
    tables = width * 4
    for q in range(queries.shape[0]):
        query = queries[q]
        n = 0
        for t in range(tables):
            tau = taus[t]
            if tau < 0:
                continue
            qc = _chunk(query, t)
            for p in range(ball[tau]):
                v = qc ^ masks[p]
                start = offsets[t, v]
                end = offsets[t, v + 1]
                while n + (end - start) > cand.shape[0]:
                    cand, ctab = _grow(cand), _grow(ctab)
                if t == 0:
                    for j in range(start, end):
                        cand[n] = j
                        ctab[n] = 0
                        n += 1
                else:
                    for j in range(start, end):
                        cand[n] = postings[t - 1, j]
                        ctab[n] = t
                        n += 1
        for i in range(n):
            if i + _PREFETCH_AHEAD < n:
                _prefetch_row(words, cand[i + _PREFETCH_AHEAD])
            row = cand[i]
            d = 0
            for w in range(half):
                d += _popcount(words[row, w] ^ query[w])
            if d > radius:
                continue
            for w in range(half, width):
                d += _popcount(words[row, w] ^ query[w])
            # The alive flag is read only for hits: one random memory access less per candidate.
            if d > radius or alive[row] == 0:
                continue
            seen = False
            for s in range(ctab[i]):
                if taus[s] >= 0:
                    ds = _popcount(np.uint64(_chunk(words[row], s) ^ _chunk(query, s)))
                    if ds <= taus[s]:
                        seen = True
                        break
            if seen:
                continue
            if found == out_q.shape[0]:
                out_q, out_r, out_d = _grow(out_q), _grow(out_r), _grow(out_d)
            out_q[found], out_r[found], out_d[found] = q, row, d
            found += 1
    return out_q[:found], out_r[:found], out_d[:found]


@numba.njit(cache=True, nogil=True)
def _rows_of_ids(ids, order, wanted, alive):  # type: ignore[no-untyped-def]
    """Alive rows whose id is in ``wanted``, by binary search over ``ids`` in ``order`` (ascending id).

    Compiled so the uint32 ``order`` is used as it is: numpy's ``searchsorted(sorter=...)`` would copy
    it to int64 on every call (tens of milliseconds at 10M rows).
    """
    out = np.empty(len(wanted), dtype=np.int64)
    found = 0
    n = len(order)
    for w in wanted:
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) >> 1
            if ids[order[mid]] < w:
                lo = mid + 1
            else:
                hi = mid
        while lo < n and ids[order[lo]] == w:
            row = order[lo]
            if alive[row]:
                if found == out.shape[0]:
                    out = _grow(out)
                out[found] = row
                found += 1
            lo += 1
    return out[:found]


def chunk_budgets(tables: int, radius: int) -> np.ndarray:
    """Per-table bit budgets ``tau`` with ``sum(tau + 1) == radius + 1`` (-1: table not probed)."""
    base, extra = divmod(radius + 1, tables)
    taus = np.array([base if t < extra else base - 1 for t in range(tables)], dtype=np.int64)
    return np.minimum(taus, CHUNK_BITS)


def hex_to_codes(values: list[str], bits: int) -> np.ndarray:
    """Hex strings (``bits / 4`` characters each) as a uint8 array of shape (n, bits / 8)."""
    width = bits // 8
    if not values:
        return np.zeros((0, width), dtype=np.uint8)
    try:
        raw = bytes.fromhex("".join(values))
    except ValueError as exc:
        raise ValueError(f"not hex: {exc}") from None
    if any(len(v) != bits // 4 for v in values):
        raise ValueError(f"every value must be {bits // 4} hex characters")
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), width).copy()


def brute_force_search(codes: np.ndarray, ids: np.ndarray, queries: np.ndarray,
                       radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Reference answer by comparing every pair in numpy; for tests and benchmarks."""
    table = np.unpackbits(codes, axis=1)
    results = []
    for query in np.unpackbits(queries, axis=1):
        dist = np.count_nonzero(table != query, axis=1)
        hit = np.flatnonzero(dist <= radius)
        order = np.lexsort((ids[hit], dist[hit]))
        results.append((ids[hit][order].astype(np.int64), dist[hit][order].astype(np.int32)))
    return results


class _Segment:
    """Rows in one block of memory; indexed (multi-index tables) or linear (the delta)."""

    def __init__(self, words: np.ndarray, ids: np.ndarray, indexed: bool) -> None:
        self.indexed = indexed
        self.offsets: np.ndarray | None = None
        self.postings: np.ndarray | None = None
        if indexed:
            tables = words.shape[1] * 4
            chunks = [((words[:, t >> 2] >> np.uint64((t & 3) * 16)) & np.uint64(0xFFFF)).astype(np.uint16)
                      for t in range(tables)]
            # Row order = sorted by the first chunk, so table 0's postings are the rows themselves.
            order = np.argsort(chunks[0], kind="stable")
            words, ids = words[order], ids[order]
            chunks = [c[order] for c in chunks]
            self.offsets = np.zeros((tables, _BUCKETS + 1), dtype=np.uint32)
            self.postings = np.empty((tables - 1, len(ids)), dtype=np.uint32)
            for t, chunk in enumerate(chunks):
                np.cumsum(np.bincount(chunk, minlength=_BUCKETS), out=self.offsets[t, 1:])
                if t:
                    self.postings[t - 1] = np.argsort(chunk, kind="stable")
        self.words = np.ascontiguousarray(words)
        ids = np.asarray(ids, dtype=np.int64)
        # Ids that fit (bank entry ids do) are kept in 4 bytes in indexed segments: 4 bytes less per row.
        narrow = indexed and len(ids) and ids.min() >= 0 and ids.max() <= np.iinfo(np.uint32).max
        self.ids = np.ascontiguousarray(ids, dtype=np.uint32 if narrow else np.int64)
        self.size = len(self.ids)
        self.alive = np.ones(self.size, dtype=np.uint8)
        self.live = self.size
        self.id_order = np.argsort(self.ids, kind="stable").astype(np.uint32) if indexed else None

    @classmethod
    def empty_delta(cls, width: int) -> _Segment:
        seg = cls(np.zeros((DELTA_ROWS, width), dtype=np.uint64), np.zeros(DELTA_ROWS, dtype=np.int64), False)
        seg.size = seg.live = 0
        return seg

    def append(self, words: np.ndarray, ids: np.ndarray) -> None:
        end = self.size + len(ids)
        self.words[self.size:end] = words
        self.ids[self.size:end] = ids
        self.alive[self.size:end] = 1
        self.size = end
        self.live += len(ids)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Alive rows holding any of ``ids``."""
        if self.id_order is None:
            return np.flatnonzero(np.isin(self.ids[: self.size], ids) & (self.alive[: self.size] == 1))
        return _rows_of_ids(self.ids, self.id_order, ids, self.alive)

    def live_rows(self) -> tuple[np.ndarray, np.ndarray]:
        keep = self.alive[: self.size] == 1
        return self.words[: self.size][keep], self.ids[: self.size][keep].astype(np.int64)

    def nbytes(self) -> int:
        arrays = [self.words, self.ids, self.alive, self.offsets, self.postings, self.id_order]
        return sum(a.nbytes for a in arrays if a is not None)


@dataclass(frozen=True)
class _Stats:
    segments: int
    delta_rows: int
    rows: int  # stored rows, withdrawn ones not yet compacted included
    nbytes: int


class HammingIndex:
    """Exact Hamming-radius search over ``bits``-bit codes (a multiple of 64: PDQ 256, pHash/dHash 64).

    Ids are int64; adding an id that is already present replaces its code. Codes are uint8 arrays of
    shape ``(n, bits / 8)``, as ``hex_to_codes`` makes them from hex strings.
    """

    def __init__(self, bits: int) -> None:
        if bits <= 0 or bits % 64:
            raise ValueError(f"bits must be a positive multiple of 64; got {bits}")
        self.bits = bits
        self._width = bits // 64
        self._segments: list[_Segment] = []
        self._delta = _Segment.empty_delta(self._width)

    def __len__(self) -> int:
        return self._delta.live + sum(s.live for s in self._segments)

    # --- writes ------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Add (or replace) codes under ``ids``; they match from the next search on."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        words = self._words(codes)
        if len(ids) != len(words):
            raise ValueError(f"{len(ids)} ids but {len(words)} codes")
        if len(np.unique(ids)) != len(ids):
            # The last code given for an id wins, as if they were added one by one.
            _, last = np.unique(ids[::-1], return_index=True)
            keep = np.sort(len(ids) - 1 - last)
            ids, words = ids[keep], words[keep]
        if len(self):
            self.remove(ids)
        if len(ids) >= DELTA_ROWS:
            self._push(_Segment(words, ids, indexed=True))
            return
        start = 0
        while start < len(ids):
            room = DELTA_ROWS - self._delta.size
            take = min(room, len(ids) - start)
            self._delta.append(words[start:start + take], ids[start:start + take])
            start += take
            if self._delta.size == DELTA_ROWS:
                self._freeze_delta()

    def remove(self, ids: np.ndarray) -> int:
        """Withdraw ``ids`` (unknown ids are ignored); they stop matching at once. Returns how many went."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        removed = 0
        for seg in [*self._segments, self._delta]:
            if not seg.live:
                continue
            rows = seg.rows_of(ids)
            seg.alive[rows] = 0
            seg.live -= len(rows)
            removed += len(rows)
        compact = [s for s in self._segments if s.live * 2 < s.size]
        for seg in compact:
            self._segments.remove(seg)
            if seg.live:
                self._push(_Segment(*seg.live_rows(), indexed=True))
        return removed

    def _freeze_delta(self) -> None:
        delta = self._delta
        self._delta = _Segment.empty_delta(self._width)
        if delta.live:
            self._push(_Segment(*delta.live_rows(), indexed=True))

    def _push(self, segment: _Segment) -> None:
        self._segments.append(segment)
        self._segments.sort(key=lambda s: -s.live)
        while len(self._segments) >= 2 and self._segments[-2].live <= MERGE_RATIO * self._segments[-1].live:
            small, other = self._segments.pop(), self._segments.pop()
            parts = [other.live_rows(), small.live_rows()]
            merged = _Segment(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                              indexed=True)
            self._segments.append(merged)
            self._segments.sort(key=lambda s: -s.live)

    # --- reads -------------------------------------------------------------------------------
    def search(self, codes: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query code, ``(ids, distances)`` of every entry within ``radius`` bits.

        Exact: nothing within the radius is left out. Each query's results are ordered by distance,
        then id.
        """
        if radius < 0:
            raise ValueError(f"radius must be 0 or more; got {radius}")
        queries = self._words(codes)
        parts_q, parts_id, parts_d = [], [], []
        taus = chunk_budgets(self._width * 4, radius)
        probes = int(sum(_BALL[t] for t in taus if t >= 0))
        for seg in [*self._segments, self._delta]:
            if not seg.live or not len(queries):
                continue
            # Beyond this many expected candidates a linear scan of the segment is cheaper.
            if seg.indexed and probes * seg.size / _BUCKETS < seg.size / 2:
                q, r, d = _search_mih(seg.words, seg.alive, seg.offsets, seg.postings, queries, radius,
                                      taus, _MASKS, _BALL)
            else:
                q, r, d = _search_linear(seg.words, seg.alive, seg.size, queries, radius)
            parts_q.append(q)
            parts_id.append(seg.ids[r].astype(np.int64))
            parts_d.append(d)
        if not parts_q:
            empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32))
            return [empty for _ in range(len(queries))]
        q_all = np.concatenate(parts_q)
        id_all = np.concatenate(parts_id)
        d_all = np.concatenate(parts_d).astype(np.int32)
        order = np.lexsort((id_all, d_all, q_all))
        q_all, id_all, d_all = q_all[order], id_all[order], d_all[order]
        bounds = np.searchsorted(q_all, np.arange(len(queries) + 1))
        return [(id_all[a:b], d_all[a:b]) for a, b in itertools.pairwise(bounds)]

    def stats(self) -> _Stats:
        return _Stats(segments=len(self._segments), delta_rows=self._delta.size,
                      rows=self._delta.size + sum(s.size for s in self._segments),
                      nbytes=self._delta.nbytes() + sum(s.nbytes() for s in self._segments))

    def _words(self, codes: np.ndarray) -> np.ndarray:
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim == 1:
            codes = codes.reshape(1, -1)
        if codes.ndim != 2 or codes.shape[1] != self.bits // 8:
            raise ValueError(f"codes must have shape (n, {self.bits // 8}); got {codes.shape}")
        return codes.view(np.uint64).reshape(len(codes), self._width)
