"""hashing.index: exact Hamming-radius search, checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from hashing import index as index_module
from hashing.index import HammingIndex, brute_force_search, chunk_budgets, hex_to_codes


def flip_bits(codes: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row of ``codes`` with ``counts[i]`` distinct random bits flipped."""
    bits = np.unpackbits(codes, axis=1)
    for row, count in enumerate(counts):
        bits[row, rng.choice(bits.shape[1], size=int(count), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def queries_near(codes: np.ndarray, radius: int, rng: np.random.Generator, count: int = 60) -> np.ndarray:
    """Half near-duplicates (0 to radius + 3 bits away from a stored code), half random codes."""
    near = codes[rng.integers(0, len(codes), count // 2)]
    near = flip_bits(near, rng.integers(0, radius + 4, len(near)), rng)
    far = rng.integers(0, 256, (count - len(near), codes.shape[1]), dtype=np.uint8)
    return np.concatenate([near, far])


def clustered(rng: np.random.Generator, clusters: int, per_cluster: int, bytes_: int) -> np.ndarray:
    """Variants 4-40 bits from cluster centres, centres drawn with skewed bit frequencies."""
    p = rng.uniform(0.25, 0.75, bytes_ * 8)
    centres = np.packbits((rng.random((clusters, bytes_ * 8)) < p).astype(np.uint8), axis=1)
    rows = np.repeat(centres, per_cluster, axis=0)
    return flip_bits(rows, rng.integers(4, 41, len(rows)), rng)


def assert_same(got: list[tuple[np.ndarray, np.ndarray]], expected: list[tuple[np.ndarray, np.ndarray]]) -> None:
    assert len(got) == len(expected)
    for (ids, dists), (want_ids, want_dists) in zip(got, expected, strict=True):
        assert ids.tolist() == want_ids.tolist()
        assert dists.tolist() == want_dists.tolist()


@pytest.mark.parametrize(("bits", "radius"), [(256, 31), (256, 0), (256, 8), (256, 47), (64, 10), (64, 0), (64, 20)])
def test_it_finds_exactly_what_brute_force_finds(bits: int, radius: int) -> None:
    rng = np.random.default_rng(bits * 100 + radius)
    codes = rng.integers(0, 256, (20_000, bits // 8), dtype=np.uint8)
    ids = rng.choice(10**9, size=len(codes), replace=False).astype(np.int64)
    index = HammingIndex(bits)
    index.add(ids[:15_000], codes[:15_000])  # one indexed segment
    for start in range(15_000, len(codes), 700):  # the rest in small batches: delta and frozen segments
        index.add(ids[start:start + 700], codes[start:start + 700])
    queries = queries_near(codes, radius, rng)
    expected = brute_force_search(codes, ids, queries, radius)
    assert sum(len(i) for i, _ in expected) >= 3  # near-duplicates within the radius are there to find
    assert_same(index.search(queries, radius), expected)


def test_it_is_exact_on_clustered_codes_with_skewed_bits() -> None:
    rng = np.random.default_rng(7)
    codes = clustered(rng, clusters=500, per_cluster=20, bytes_=32)
    ids = np.arange(len(codes), dtype=np.int64) * 3
    index = HammingIndex(256)
    index.add(ids, codes)
    queries = queries_near(codes, 31, rng, count=80)
    expected = brute_force_search(codes, ids, queries, 31)
    assert sum(len(i) for i, _ in expected) > 40  # variants of one cluster match each other
    assert_same(index.search(queries, 31), expected)


def test_a_removed_id_stops_matching_at_once_in_every_kind_of_segment() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (12_000, 32), dtype=np.uint8)
    ids = np.arange(12_000, dtype=np.int64)
    index = HammingIndex(256)
    index.add(ids[:10_000], codes[:10_000])  # indexed segment
    index.add(ids[10_000:], codes[10_000:])  # delta
    gone = np.array([5, 9_999, 10_001, 11_999])
    assert index.remove(gone) == 4
    assert len(index) == 12_000 - 4
    for id_ in gone:
        found_ids, _ = index.search(codes[id_], 0)[0]
        assert id_ not in found_ids.tolist()
    kept_ids, kept_dists = index.search(codes[6], 0)[0]
    assert kept_ids.tolist() == [6] and kept_dists.tolist() == [0]


def test_removing_an_unknown_or_already_removed_id_changes_nothing() -> None:
    index = HammingIndex(64)
    index.add(np.array([1, 2]), np.zeros((2, 8), dtype=np.uint8))
    assert index.remove(np.array([1])) == 1
    assert index.remove(np.array([1, 99])) == 0
    assert len(index) == 1


def test_adding_an_id_again_replaces_its_code() -> None:
    index = HammingIndex(64)
    old, new = np.zeros((1, 8), dtype=np.uint8), np.full((1, 8), 255, dtype=np.uint8)
    index.add(np.array([42]), old)
    index.add(np.array([42]), new)
    assert len(index) == 1
    assert index.search(old, 0)[0][0].tolist() == []
    assert index.search(new, 0)[0][0].tolist() == [42]


def test_small_adds_are_frozen_and_merged_without_losing_or_duplicating_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "DELTA_ROWS", 64)
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 256, (3_000, 32), dtype=np.uint8)
    ids = np.arange(3_000, dtype=np.int64)
    index = HammingIndex(256)
    for start in range(0, 3_000, 50):
        index.add(ids[start:start + 50], codes[start:start + 50])
        index.remove(ids[start:start + 50:7])  # withdraw some as we go
    removed = np.concatenate([ids[s:s + 50:7] for s in range(0, 3_000, 50)])
    keep = ~np.isin(ids, removed)
    assert len(index) == int(keep.sum())
    assert 1 < index.stats().segments < 12  # merged, not one segment per batch
    queries = queries_near(codes, 31, rng)
    assert_same(index.search(queries, 31), brute_force_search(codes[keep], ids[keep], queries, 31))


def test_a_segment_mostly_withdrawn_is_compacted_and_still_exact() -> None:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (10_000, 32), dtype=np.uint8)
    ids = np.arange(10_000, dtype=np.int64)
    index = HammingIndex(256)
    index.add(ids, codes)
    index.remove(ids[:7_000])
    assert index.stats().rows == 3_000  # the withdrawn rows are gone from memory, not just flagged
    queries = codes[6_990:7_010]
    assert_same(index.search(queries, 31), brute_force_search(codes[7_000:], ids[7_000:], queries, 31))


def test_results_are_ordered_by_distance_then_id() -> None:
    base = np.zeros(8, dtype=np.uint8)
    codes = np.stack([base, base, base]).copy()
    codes[0, 0] = 0b11  # 2 bits away
    codes[2, 0] = 0b1  # 1 bit away
    index = HammingIndex(64)
    index.add(np.array([30, 20, 10]), codes)
    ids, dists = index.search(base, 5)[0]
    assert ids.tolist() == [20, 10, 30] and dists.tolist() == [0, 1, 2]


def test_budgets_follow_the_pigeonhole_principle() -> None:
    for tables, radius in [(16, 31), (4, 10), (16, 0), (4, 100)]:
        taus = chunk_budgets(tables, radius)
        assert int(np.sum(np.maximum(taus, -1) + 1)) >= min(radius + 1, 17 * tables)
    assert chunk_budgets(16, 31).tolist() == [1] * 16


def test_codes_of_the_wrong_width_and_bad_hex_are_refused() -> None:
    index = HammingIndex(256)
    with pytest.raises(ValueError, match="shape"):
        index.add(np.array([1]), np.zeros((1, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="multiple of 64"):
        HammingIndex(100)
    with pytest.raises(ValueError, match="hex"):
        hex_to_codes(["zz" * 8], 64)
    assert hex_to_codes(["ff" + "00" * 7], 64)[0, 0] == 255


@pytest.mark.parametrize("ids", [np.arange(20_000, dtype=np.int64),  # kept as 4-byte ids
                                 np.arange(20_000, dtype=np.int64) - 10_000,  # negative: 8-byte ids
                                 np.arange(20_000, dtype=np.int64) + (1 << 40)])  # beyond 32 bits
def test_ids_of_any_int64_value_are_returned_and_withdrawn_exactly(ids: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (len(ids), 32), dtype=np.uint8)
    index = HammingIndex(256)
    index.add(ids, codes)
    queries = queries_near(codes, 31, rng, count=20)
    results = index.search(queries, 31)
    assert_same(results, brute_force_search(codes, ids, queries, 31))
    assert all(found.dtype == np.int64 for found, _ in results)
    assert index.remove(ids[:5]) == 5
    assert all(found.size == 0 for found, _ in index.search(codes[:5], 0))
    assert [found.tolist() for found, _ in index.search(codes[5:8], 0)] == [[i] for i in ids[5:8].tolist()]
