"""Speed of synthetic-media scoring: all signals on a 1024 x 768 JPEG, on one CPU core.

    .venv/bin/python benchmarks/bench_detect.py [--images 60] [--image PATH]
    .venv/bin/python benchmarks/bench_detect.py --device cuda --batch 256   # batch inference on a GPU

Prints images/s for `score_bytes` (every signal, the combination, the decode) and each signal's
share of the time, then the same for the named baselines, measured in the same run:

  without embedding = every signal except the embedding probe (the signal set before issue 21); with the
  embedding stored = all signals, the image's embedding read from storage as the pipeline does for a
  sha256 it has seen (the encoder runs once per sha256);

  baseline = the same signals unoptimised: the watermark read by the invisible-watermark package's
  own decoder (a Python loop per 4 x 4 block, once per mark and variant), and the model run as a plain
  torch forward over the whole grey image at full resolution instead of 16 selected patches.

With --device cuda it measures the model's batched inference instead: images/s for patch selection
on the CPU plus one forward per batch on the GPU, against the same batch on the CPU.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZE = (1024, 768)


def one_core() -> None:
    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def test_jpeg(path: Path | None) -> bytes:
    if path is not None:
        image = Image.open(path).convert("RGB")
        image = image.resize(SIZE, Image.Resampling.LANCZOS)
    else:
        from tests.detection.images import scene

        image = Image.fromarray(scene(0, SIZE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def time_signals(data: bytes, count: int, signals: list[tuple[str, object]]) -> tuple[float, dict[str, float]]:
    from detection.scoring import _open, combine_with_provenance

    spent = dict.fromkeys(["decode", *(name for name, _ in signals), "combine"], 0.0)
    started = time.perf_counter()
    for _ in range(count):
        tick = time.perf_counter()
        image = _open(data)
        spent["decode"] += time.perf_counter() - tick
        results = []
        for name, function in signals:
            tick = time.perf_counter()
            results.append(function(data, image))  # type: ignore[operator]
            spent[name] += time.perf_counter() - tick
        tick = time.perf_counter()
        combine_with_provenance(results)
        spent["combine"] += time.perf_counter() - tick
        image.close()
    total = time.perf_counter() - started
    return count / total, {name: value / total for name, value in spent.items()}


def baseline_signals() -> list[tuple[str, object]]:
    """The unoptimised versions of the two expensive signals; the others as shipped."""
    try:
        from imwatermark import WatermarkDecoder
    except ImportError:  # PyWavelets or the package missing on this machine: our hard decoder instead
        WatermarkDecoder = None
        print("(invisible-watermark not importable here: the baseline watermark step is our own hard decoder, "
              "full image, numpy)")

    from detection.learned.patches import Calibration, grey
    from detection.learned.registry import load_network
    from detection.signals.base import NEUTRAL, Signal
    from detection.signals.c2pa_manifest import c2pa_signal
    from detection.signals.faces import faces_signal
    from detection.signals.metadata import metadata_signal
    from detection.signals.watermark import KNOWN_MARKS, decode_bits

    def watermark_package(data: bytes, image: Image.Image) -> Signal:
        rgb = np.asarray(image.convert("RGB"))
        for mark in KNOWN_MARKS:
            for order, domain in mark.variants:
                array = np.ascontiguousarray(rgb[:, :, ::-1] if order == "BGR" else rgb)
                if WatermarkDecoder is None:
                    decode_bits(array, len(mark.bits), domain, soft=False)
                    continue
                if domain == "float":
                    array = array.astype(np.float32)
                WatermarkDecoder("bits", len(mark.bits)).decode(array, "dwtDct")
        return Signal("watermark", NEUTRAL, 1.0, {"summary": "baseline"})

    net, card = load_network()
    calibration = Calibration(card["calibration"]["a"], card["calibration"]["b"])

    def model_full_resolution(data: bytes, image: Image.Image) -> Signal:
        plane = grey(image)
        plane = (plane - plane.mean()) / (plane.std() + 0.02)
        with torch.inference_mode():
            logit = float(net(torch.from_numpy(plane)[None, None]).item())
        return Signal("model", calibration.probability(logit), 0.5, {"summary": "baseline"})

    return [
        ("c2pa", c2pa_signal),
        ("metadata", metadata_signal),
        ("watermark", watermark_package),
        ("model", model_full_resolution),
        ("faces", faces_signal),
    ]


def cpu_benchmark(args: argparse.Namespace) -> None:
    one_core()
    from detection import scoring
    from detection.learned.registry import default_model

    data = test_jpeg(args.image)
    default_model()
    shipped = [(function.__name__.removesuffix("_signal"), function) for function in scoring.SIGNALS]
    time_signals(data, 3, shipped)  # warm-up: first calls load the model and the cascades
    rate, shares = time_signals(data, args.images, shipped)
    print(
        f"image: {SIZE[0]} x {SIZE[1]} JPEG q90, {len(data):,} bytes; "
        "one CPU core (ONNX Runtime, torch and OpenCV 1 thread)"
    )
    print(f"ours (score_bytes path, all signals): {rate:.1f} images/s = {1000 / rate:.1f} ms per image")
    print("  share of time: " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items()))
    without = [(name, function) for name, function in shipped if name != "embedding"]
    time_signals(data, 2, without)
    plain_rate, _ = time_signals(data, args.images, without)
    print(f"without the embedding signal (same run): {plain_rate:.1f} images/s = {1000 / plain_rate:.1f} ms per image")
    from detection.embedding import default_encoder
    from detection.signals.embedding import embedding_signal

    with scoring._open(data) as opened:
        stored = default_encoder().embed_one(opened)

    def embedding_stored(data: bytes, image: Image.Image) -> object:
        return embedding_signal(data, image, embedding=stored)

    reuse = [*without, ("embedding", embedding_stored)]
    reuse_rate, _ = time_signals(data, args.images, reuse)
    print(f"all signals, embedding stored for this sha256 (same run): {reuse_rate:.1f} images/s")
    print(f"encoder providers: {default_encoder().providers}")
    baseline = baseline_signals()
    time_signals(data, 1, baseline)
    count = max(3, args.images // 10)
    base_rate, base_shares = time_signals(data, count, baseline)
    print(
        f"baseline (package watermark decoder + full-resolution model forward): {base_rate:.2f} images/s "
        f"= {1000 / base_rate:.0f} ms per image"
    )
    print("  share of time: " + ", ".join(f"{name} {share:.0%}" for name, share in base_shares.items()))
    print(f"speed-up: {rate / base_rate:.1f}x")

    def whole(data: bytes, image: Image.Image) -> object:
        return scoring.score_image(image, data).signals[0]

    full_rate, _ = time_signals(data, max(5, args.images // 4), [("score", whole)])
    print(f"score_image end to end (one call, as the pipeline runs it): {full_rate:.1f} images/s")


def gpu_benchmark(args: argparse.Namespace) -> None:
    from detection.learned.network import ArtefactNet, image_mean_logits
    from detection.learned.patches import grey, select_patches

    weights = Path(__file__).resolve().parent.parent / "detection" / "weights"
    device = args.device
    net = ArtefactNet()
    try:
        from detection.learned.registry import load_network

        net = load_network()[0]
    except Exception as exc:  # the weights are optional for a throughput figure
        print(f"(shipped weights not loaded: {exc}; timing random weights of the same shape in {weights})")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(SIZE[1], SIZE[0], 3), dtype=np.uint8) for _ in range(8)]
    patch_sets = [select_patches(grey(image)) for image in images]
    batch_sets = [patch_sets[index % len(patch_sets)] for index in range(args.batch)]
    tick = time.perf_counter()
    for image in images:
        select_patches(grey(image))
    patch_ms = (time.perf_counter() - tick) / len(images) * 1000
    for name, dev in (("cpu", "cpu"), (device, device)):
        model = net.to(dev).eval()
        image_mean_logits(model, batch_sets, dev)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        rounds = 3 if dev == "cpu" else 20
        tick = time.perf_counter()
        for _ in range(rounds):
            image_mean_logits(model, batch_sets, dev)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - tick) / rounds
        print(
            f"model forward, batch of {args.batch} images x 16 patches on {name}: "
            f"{args.batch / seconds:,.0f} images/s (torch threads {torch.get_num_threads()})"
        )
    print(
        f"patch selection on one CPU core: {patch_ms:.1f} ms per 1024 x 768 image "
        f"(= {1000 / patch_ms:.0f} images/s per core; the GPU path is bound by this and by JPEG decoding)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--image", type=Path, default=None, help="Use this photo (resized to 1024 x 768).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    if args.device == "cpu":
        cpu_benchmark(args)
    else:
        gpu_benchmark(args)


if __name__ == "__main__":
    main()
