"""Hashing speed: ours against the reference pdqhash binding and the plain Pillow + imagehash path.

    python benchmarks/bench_hash.py                 # CPU, one core each
    python benchmarks/bench_hash.py --device cuda   # also the torch batch path on the GPU
    python benchmarks/bench_hash.py --device cuda --batch-only   # only that (needs no pdqhash/imagehash)

Measures, in one run and on one core (BLAS/OpenMP/torch threads set to 1 before they load):
1. PDQ of a 1024x768 and a 2048x1536 RGB array: ``hashing.pdq.pdq_hash_array`` against
   ``pdqhash.compute`` (Meta's C++ through its Python binding). Targets: 10x and 30x.
2. The whole file path on 1024x768 JPEG photos (decode + PDQ + pHash + dHash + MD5 + SHA-256):
   ``hashing.algorithms.hash_bytes`` against Pillow full decode + pdqhash + imagehash + hashlib. Target 5x.
3. With ``--device``: ``hashing.batch.pdq_hash_batch`` on 1024x768 arrays, in images per second.

Peak memory per image is the rise of the process's peak resident set while hashing one image (Linux
``/proc/self/clear_refs``), which counts Pillow's and C++ buffers that tracemalloc cannot see.
Images are the detection-eval photos (``../shared/data``) cropped and resized, or generated scenes
when that folder is absent.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hashing.batch import pdq_hash_batch  # noqa: E402
from hashing.pdq import pdq_hash_array  # noqa: E402

torch.set_num_threads(1)

PHOTOS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "detection-eval" / "real"
IMAGES_PER_SIZE = 8
TARGETS = {"pdq_1024x768": 10.0, "pdq_2048x1536": 30.0, "file_1024x768_jpeg": 5.0}


def photos(size: tuple[int, int], count: int) -> list[Image.Image]:
    """``count`` RGB photos of ``size``: centre crops of the real detection-eval photos, else generated."""
    width, height = size
    files = sorted(PHOTOS.glob("*.jpg"))[:count] if PHOTOS.is_dir() else []
    out = []
    for path in files:
        with Image.open(path) as img:
            img = img.convert("RGB")
            side_w = min(img.width, img.height * width // height)
            side_h = side_w * height // width
            left, top = (img.width - side_w) // 2, (img.height - side_h) // 2
            out.append(img.crop((left, top, left + side_w, top + side_h)).resize(size, Image.Resampling.LANCZOS))
    rng = np.random.default_rng(0)
    while len(out) < count:
        noise = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        img = Image.fromarray(noise).resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(2))
        out.append(img)
    return out


def rates(
    ours: Callable[[Any], object], base: Callable[[Any], object], items: list[Any], rounds: int
) -> tuple[float, float]:
    """Items per second for ours and the baseline: passes alternate, and each side's best pass counts.

    Alternating gives both sides the same chances on a shared, noisy machine; the best pass is the one
    least disturbed by other load.
    """
    for item in items[:2]:
        ours(item)  # warm up: weights per size, compiled kernels, imports
        base(item)
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for side, fn in enumerate((ours, base)):
            start = time.perf_counter()
            for item in items:
                fn(item)
            best[side] = min(best[side], time.perf_counter() - start)
    return len(items) / best[0], len(items) / best[1]


def peak_mb(fn: Callable[[object], object], item: object) -> float:
    """Rise of peak resident memory (MB) while running ``fn(item)`` once; NaN where Linux cannot tell."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed memory back, so reuse does not hide the peak
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        before = _status_kb("VmRSS")
        fn(item)
        return (_status_kb("VmHWM") - before) / 1024
    except OSError:
        return float("nan")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def baseline_file(data: bytes) -> tuple[str, int, str, str, str, str]:
    """The plain path: Pillow full decode, pdqhash, imagehash, hashlib."""
    import imagehash
    import pdqhash

    image = Image.open(io.BytesIO(data)).convert("RGB")
    bits, quality = pdqhash.compute(np.asarray(image))
    pdq = f"{int(''.join(str(int(b)) for b in bits), 2):064x}"
    return (
        pdq,
        int(quality),
        str(imagehash.phash(image)),
        str(imagehash.dhash(image)),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def cpu_comparisons(rounds: int) -> None:
    """Ours against the baselines on one core: PDQ of arrays, and the whole file path."""
    import pdqhash

    from hashing.algorithms import hash_bytes

    header = (
        f"{'case':<22}{'ours img/s':>12}{'baseline img/s':>16}{'ratio':>8}{'target':>8}{'ours MB':>9}{'base MB':>9}"
    )
    print(header)
    print("-" * len(header))
    results = {}
    for size in ((1024, 768), (2048, 1536)):
        arrays = [np.asarray(img) for img in photos(size, IMAGES_PER_SIZE)]
        name = f"pdq_{size[0]}x{size[1]}"
        ours, base = rates(pdq_hash_array, pdqhash.compute, arrays, rounds)
        results[name] = (ours, base, peak_mb(pdq_hash_array, arrays[0]), peak_mb(pdqhash.compute, arrays[0]))

    jpegs = []
    for img in photos((1024, 768), IMAGES_PER_SIZE):
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    ours, base = rates(hash_bytes, baseline_file, jpegs, rounds)
    results["file_1024x768_jpeg"] = (ours, base, peak_mb(hash_bytes, jpegs[0]), peak_mb(baseline_file, jpegs[0]))

    failed = []
    for name, (ours, base, ours_mb, base_mb) in results.items():
        ratio = ours / base
        target = TARGETS[name]
        if ratio < target:
            failed.append(name)
        print(f"{name:<22}{ours:>12.1f}{base:>16.1f}{ratio:>7.1f}x{target:>7.0f}x{ours_mb:>9.1f}{base_mb:>9.1f}")
    if failed:
        print(f"\nbelow target: {', '.join(failed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the images; the best counts")
    parser.add_argument("--device", default=None, help="also time the torch batch path on this device (cuda, cpu)")
    parser.add_argument("--batch", type=int, default=64, help="images per batch for --device")
    parser.add_argument("--batch-only", action="store_true", help="with --device: skip the CPU comparisons")
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, torch {torch.__version__}; threads: 1"
    )
    print(
        f"images: {'detection-eval photos' if PHOTOS.is_dir() else 'generated scenes'}, "
        f"{IMAGES_PER_SIZE} per size, best of {args.rounds} rounds\n"
    )
    if not args.batch_only:
        cpu_comparisons(args.rounds)

    if args.device:
        device = torch.device(args.device)
        arrays = [np.asarray(img) for img in photos((1024, 768), IMAGES_PER_SIZE)]
        batch = torch.from_numpy(np.stack([arrays[i % len(arrays)] for i in range(args.batch)]))
        if device.type == "cuda":
            batch = batch.pin_memory()
        pdq_hash_batch(batch, device=device)  # warm up (CUDA context, kernels)
        best = float("inf")
        for _ in range(args.rounds):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            pdq_hash_batch(batch, device=device)
            best = min(best, time.perf_counter() - start)
        pdq_hash_array(arrays[0])  # warm up (compiled kernel)
        start = time.perf_counter()
        for array in arrays:
            pdq_hash_array(array)
        single = len(arrays) / (time.perf_counter() - start)
        batch_hashes = pdq_hash_batch(batch, device=device)
        single_hashes = [pdq_hash_array(arrays[i % len(arrays)]) for i in range(args.batch)]
        bits_apart = max(
            (int(a, 16) ^ int(b, 16)).bit_count() for (a, _), (b, _) in zip(batch_hashes, single_hashes, strict=True)
        )
        quality_apart = max(abs(qa - qb) for (_, qa), (_, qb) in zip(batch_hashes, single_hashes, strict=True))
        name = f"batch on {device.type}"
        if device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(device)})"
        print(
            f"\n{name}: {args.batch / best:.1f} img/s for 1024x768 arrays, batches of {args.batch} "
            f"(host to device copy included); one CPU core, single-image path: {single:.1f} img/s"
        )
        print(f"batch against single-image hashes: at most {bits_apart} bits and {quality_apart} quality apart")


if __name__ == "__main__":
    main()
