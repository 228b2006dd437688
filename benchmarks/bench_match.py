"""Exact PDQ radius search: hashing.index.HammingIndex against FAISS, same data, same run, one core.

    .venv/bin/python benchmarks/bench_match.py                 # 1M codes, uniform and clustered
    .venv/bin/python benchmarks/bench_match.py --10m           # 10M codes (about 10 GB of RAM at peak)
    .venv/bin/python benchmarks/bench_match.py --n 200000 --distributions uniform --queries 200
    git show HEAD~1:hashing/index.py > /tmp/index_before.py
    .venv/bin/python benchmarks/bench_match.py --compare-with /tmp/index_before.py   # before/after, same run

For each distribution it prints, for ours and for FAISS ``IndexBinaryFlat`` (exhaustive range search)
and ``IndexBinaryMultiHash`` (16 tables x 16 bits, nflip=1, as Meta's HMA configures it): build time,
queries/s over the same queries (half near-duplicates of stored codes, half misses), memory, and for
ours the latency of adding and withdrawing single entries. Timed passes alternate between the three
indexes and the best pass of each counts, because the machine may be shared. Recall is checked exactly: our results
must equal FAISS IndexBinaryFlat's (an exhaustive scan) for every query, and a numpy brute force for a
sample. Radius 31 (d <= 31; FAISS's range search is strict, so it is given 32).
"""

from __future__ import annotations

import os

# One core for everyone: FAISS (OpenMP) and numpy's BLAS read these at import.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hashing.index import HammingIndex  # noqa: E402

RADIUS = 31
BYTES = 32
CLUSTERS = 100_000  # the "clustered like real banks": 100k clusters
_CHUNK = 200_000


def rss_bytes() -> int:
    """Resident memory now, after handing freed heap pages back to the system (so deltas mean something)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def flip_exact(codes: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(codes, axis=1)
    for row, count in enumerate(counts):
        bits[row, rng.choice(BYTES * 8, size=int(count), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def skewed_codes(count: int, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((count, BYTES), dtype=np.uint8)
    threshold = (p * 256).astype(np.int16)
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        out[start:start + n] = np.packbits(rng.integers(0, 256, (n, BYTES * 8), dtype=np.int16) < threshold, axis=1)
    return out


def make_data(kind: str, n: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stored codes and queries: half near-duplicates (0-31 bits from a stored code), half misses."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        codes = rng.integers(0, 256, (n, BYTES), dtype=np.uint8)
        misses = rng.integers(0, 256, (queries - queries // 2, BYTES), dtype=np.uint8)
    else:
        # Skewed bit frequencies (each bit set with p in [0.25, 0.75]); variants 4-40 bits from a centre.
        p = rng.uniform(0.25, 0.75, BYTES * 8)
        centres = skewed_codes(min(CLUSTERS, n), p, rng)
        codes = np.empty((n, BYTES), dtype=np.uint8)
        for start in range(0, n, _CHUNK):
            stop = min(n, start + _CHUNK)
            base = centres[np.arange(start, stop) % len(centres)]
            k = rng.integers(4, 41, stop - start)
            bits = np.unpackbits(base, axis=1)
            flips = rng.random((stop - start, BYTES * 8), dtype=np.float32) < (k[:, None] / 256.0)
            codes[start:stop] = np.packbits(bits ^ flips, axis=1)
        misses = skewed_codes(queries - queries // 2, p, rng)
    near = codes[rng.integers(0, n, queries // 2)]
    near = flip_exact(near, rng.integers(0, RADIUS + 1, len(near)), rng)
    q = np.concatenate([near, misses])
    return codes, q[rng.permutation(len(q))]


def brute_force(codes: np.ndarray, query: np.ndarray) -> set[int]:
    words = codes.view(np.uint64)
    qw = query.view(np.uint64)
    dist = np.zeros(len(codes), dtype=np.int64)
    for w in range(words.shape[1]):
        dist += np.bitwise_count(words[:, w] ^ qw[w])
    return set(np.flatnonzero(dist <= RADIUS).tolist())


def faiss_sets(lims: np.ndarray, labels: np.ndarray) -> list[set[int]]:
    return [set(labels[lims[i]:lims[i + 1]].tolist()) for i in range(len(lims) - 1)]


def run(kind: str, n: int, n_queries: int, skip_multihash: bool, seed: int, passes: int,
        baseline_queries: int) -> dict[str, float]:
    print(f"\n== {kind}, {n:,} codes, {n_queries} queries, radius {RADIUS}, one core ==", flush=True)
    t = time.perf_counter()
    codes, queries = make_data(kind, n, n_queries, seed)
    ids = np.arange(n, dtype=np.int64)
    print(f"data generated in {time.perf_counter() - t:.1f} s; raw code bytes + ids = "
          f"{(codes.nbytes + ids.nbytes) / 1e6:.0f} MB", flush=True)
    figures: dict[str, float] = {}

    # --- build: ours, FAISS IndexBinaryFlat, FAISS IndexBinaryMultiHash as HMA configures it -------
    import faiss

    faiss.omp_set_num_threads(1)
    warm = HammingIndex(256)
    warm.add(ids[:20_000], codes[:20_000])
    warm.search(queries[:2], RADIUS)  # compile the kernels outside the timings
    warm.add(np.array([n + 1]), codes[:1])
    warm.remove(np.array([n + 1]))
    del warm
    before = rss_bytes()
    t = time.perf_counter()
    ours = HammingIndex(256)
    ours.add(ids, codes)
    figures["ours_build_s"] = time.perf_counter() - t
    figures["ours_bytes"] = ours.stats().nbytes
    figures["ours_rss_bytes"] = rss_bytes() - before
    before = rss_bytes()
    t = time.perf_counter()
    flat = faiss.IndexBinaryFlat(256)
    flat.add(codes)
    figures["flat_build_s"] = time.perf_counter() - t
    figures["flat_bytes"] = max(rss_bytes() - before, flat.ntotal * flat.code_size)
    multi = None
    if not skip_multihash:
        before = rss_bytes()
        t = time.perf_counter()
        multi = faiss.IndexBinaryMultiHash(256, 16, 16)
        multi.nflip = 1
        multi.add(codes)
        figures["multihash_build_s"] = time.perf_counter() - t
        figures["multihash_bytes"] = rss_bytes() - before

    # --- queries: passes alternate between the three, best pass counts (the machine is shared) ----
    base_q = queries[:baseline_queries]
    best = {"ours": 0.0, "flat": 0.0, "multihash": 0.0}
    for _ in range(passes):
        t = time.perf_counter()
        results = ours.search(queries, RADIUS)
        best["ours"] = max(best["ours"], n_queries / (time.perf_counter() - t))
        t = time.perf_counter()
        lims, _, labels = flat.range_search(queries, RADIUS + 1)
        best["flat"] = max(best["flat"], n_queries / (time.perf_counter() - t))
        if multi is not None:
            t = time.perf_counter()
            mlims, _, mlabels = multi.range_search(base_q, RADIUS + 1)
            best["multihash"] = max(best["multihash"], len(base_q) / (time.perf_counter() - t))
    figures["ours_qps"], figures["flat_qps"] = best["ours"], best["flat"]
    ours_sets = [set(r[0].tolist()) for r in results]
    flat_sets = faiss_sets(lims, labels)
    hits = sum(len(s) for s in ours_sets)
    if multi is not None:
        figures["multihash_qps"] = best["multihash"]
        figures["multihash_recall_vs_flat"] = (
            sum(len(a & b) for a, b in zip(faiss_sets(mlims, mlabels), flat_sets[:len(base_q)], strict=True))
            / max(1, sum(len(b) for b in flat_sets[:len(base_q)])))
    del flat, multi
    gc.collect()
    single = []
    for i in range(min(200, n_queries)):
        t = time.perf_counter()
        ours.search(queries[i:i + 1], RADIUS)
        single.append(time.perf_counter() - t)
    figures["ours_single_query_ms_p50"] = statistics.median(single) * 1e3

    rng = np.random.default_rng(seed + 1)
    new_codes = rng.integers(0, 256, (1000, BYTES), dtype=np.uint8)
    add_lat, remove_lat = [], []
    for i in range(1000):
        t = time.perf_counter()
        ours.add(np.array([n + 10 + i]), new_codes[i:i + 1])
        add_lat.append(time.perf_counter() - t)
    added_found = all(n + 10 + i in ours.search(new_codes[i:i + 1], 0)[0][0].tolist() for i in range(0, 1000, 97))
    for i in range(1000):
        t = time.perf_counter()
        ours.remove(np.array([n + 10 + i]))
        remove_lat.append(time.perf_counter() - t)
    removed_gone = all(ours.search(new_codes[i:i + 1], 0)[0][0].size == 0 for i in range(0, 1000, 97))
    figures["ours_add_ms_p50"] = statistics.median(add_lat) * 1e3
    figures["ours_add_ms_max"] = max(add_lat) * 1e3
    figures["ours_withdraw_ms_p50"] = statistics.median(remove_lat) * 1e3
    figures["ours_withdraw_ms_max"] = max(remove_lat) * 1e3
    del ours
    gc.collect()

    exact = ours_sets == flat_sets
    sample = range(0, n_queries, max(1, n_queries // 20))
    brute_ok = all(brute_force(codes, queries[i]) == ours_sets[i] for i in sample)
    figures["recall_exact"] = float(exact and brute_ok)

    raw = codes.nbytes + ids.nbytes
    print(f"results within radius: {hits} over {n_queries} queries; exact recall (= FAISS flat for every "
          f"query, = numpy brute force for {len(sample)}): {'yes' if figures['recall_exact'] else 'NO'}")
    print(f"best of {passes} alternating passes; MultiHash timed on {baseline_queries} of the queries")
    print(f"{'':26}{'build s':>9}{'queries/s':>11}{'memory MB':>11}{'x raw':>7}")
    print(f"{'ours (HammingIndex)':26}{figures['ours_build_s']:9.1f}{figures['ours_qps']:11.0f}"
          f"{figures['ours_bytes'] / 1e6:11.0f}{figures['ours_bytes'] / raw:7.2f}")
    print(f"{'FAISS IndexBinaryFlat':26}{figures['flat_build_s']:9.1f}{figures['flat_qps']:11.0f}"
          f"{figures['flat_bytes'] / 1e6:11.0f}{figures['flat_bytes'] / raw:7.2f}")
    if not skip_multihash:
        print(f"{'FAISS MultiHash 16x16 nf1':26}{figures['multihash_build_s']:9.1f}{figures['multihash_qps']:11.0f}"
              f"{figures['multihash_bytes'] / 1e6:11.0f}{figures['multihash_bytes'] / raw:7.2f}"
              f"   (recall vs flat {figures['multihash_recall_vs_flat']:.4f})")
    print(f"ours / flat: {figures['ours_qps'] / figures['flat_qps']:.1f}x" + (
        "" if skip_multihash else f"; ours / multihash: {figures['ours_qps'] / figures['multihash_qps']:.1f}x"))
    print(f"ours single query p50 {figures['ours_single_query_ms_p50']:.2f} ms; add one entry p50 "
          f"{figures['ours_add_ms_p50']:.3f} ms (max {figures['ours_add_ms_max']:.1f} ms, includes segment merges); "
          f"withdraw one p50 {figures['ours_withdraw_ms_p50']:.3f} ms (max {figures['ours_withdraw_ms_max']:.1f} ms); "
          f"added found: {added_found}, withdrawn gone: {removed_gone}", flush=True)
    return figures


def compare(path: str, kind: str, n: int, n_queries: int, seed: int, passes: int) -> bool:
    """Another ``hashing/index.py`` (e.g. a previous commit's) against ours and FAISS flat, same data and run."""
    import importlib.util

    import faiss

    name = Path(path).stem  # numba's on-disk cache of the file's kernels refers to the module by this name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    before_module = importlib.util.module_from_spec(spec)
    sys.modules[name] = before_module  # dataclasses and numba look the module up there
    spec.loader.exec_module(before_module)
    faiss.omp_set_num_threads(1)
    codes, queries = make_data(kind, n, n_queries, seed)
    ids = np.arange(n, dtype=np.int64)
    before, after = before_module.HammingIndex(256), HammingIndex(256)
    before.add(ids, codes)
    after.add(ids, codes)
    flat = faiss.IndexBinaryFlat(256)
    flat.add(codes)
    before.search(queries[:5], RADIUS)
    after.search(queries[:5], RADIUS)
    best = {"before": 0.0, "after": 0.0, "flat": 0.0}
    for _ in range(passes):
        t = time.perf_counter()
        old = before.search(queries, RADIUS)
        best["before"] = max(best["before"], n_queries / (time.perf_counter() - t))
        t = time.perf_counter()
        new = after.search(queries, RADIUS)
        best["after"] = max(best["after"], n_queries / (time.perf_counter() - t))
        t = time.perf_counter()
        lims, _, labels = flat.range_search(queries, RADIUS + 1)
        best["flat"] = max(best["flat"], n_queries / (time.perf_counter() - t))
    exact = ([set(r[0].tolist()) for r in new] == faiss_sets(lims, labels)
             and all(a[0].tolist() == b[0].tolist() for a, b in zip(old, new, strict=True)))
    print(f"{kind} {n:,}: before {best['before']:.0f} q/s ({best['before'] / best['flat']:.1f}x flat), "
          f"after {best['after']:.0f} q/s ({best['after'] / best['flat']:.1f}x flat), "
          f"FAISS flat {best['flat']:.0f} q/s; "
          f"memory before {before.stats().nbytes / 1e6:.0f} MB, after {after.stats().nbytes / 1e6:.0f} MB; "
          f"exact and equal: {'yes' if exact else 'NO'}; load average {os.getloadavg()[0]:.1f}", flush=True)
    return exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="stored codes (default 1M)")
    parser.add_argument("--10m", dest="ten_million", action="store_true", help="10M stored codes")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--distributions", nargs="+", choices=["uniform", "clustered"],
                        default=["uniform", "clustered"])
    parser.add_argument("--skip-multihash", action="store_true", help="leave out FAISS IndexBinaryMultiHash")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--passes", type=int, default=3, help="timed passes per index, alternating; best counts")
    parser.add_argument("--compare-with", metavar="INDEX_PY",
                        help="time another hashing/index.py (e.g. a previous commit's) against ours and FAISS flat")
    parser.add_argument("--multihash-queries", type=int, default=0,
                        help="queries timed on MultiHash (default: all; 250 at 5M codes and more, it is slow)")
    args = parser.parse_args()
    n = 10_000_000 if args.ten_million else args.n
    failed = False
    if args.compare_with:
        for kind in args.distributions:
            failed |= not compare(args.compare_with, kind, n, args.queries, args.seed, args.passes)
        sys.exit(1 if failed else 0)
    for kind in args.distributions:
        figures = run(kind, n, args.queries, args.skip_multihash, args.seed, args.passes,
                      min(args.queries, args.multihash_queries or (250 if n >= 5_000_000 else args.queries)))
        failed |= not figures["recall_exact"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
