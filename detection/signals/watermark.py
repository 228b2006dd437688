"""Invisible watermarks that open-source generators write and anyone can read.

Two marks are read, both written by the `invisible-watermark` package's ``dwtDct`` method:

- Stable Diffusion v1 (CompVis ``scripts/txt2img.py``): the 17 bytes ``StableDiffusionV1`` (136 bits).
- Stable Diffusion XL (diffusers ``StableDiffusionXLWatermarker``): a fixed 48-bit message.

The decoder is our own (`decode_bits`), a vectorised re-implementation of the package's
``EmbedMaxDct.decode``: one level of Haar DWT on the U channel of YUV, 4 x 4 blocks of the
approximation band, and in each block the coefficient of largest magnitude (the DC term excepted)
quantised with step 36; bit k is the majority over the blocks k, k + L, k + 2L, ... The package
itself imports torch and onnxruntime for a method we do not use; the tests check this decoder
against its encoder and decoder bit for bit.

The marks are fragile: re-encoding, resizing or cropping by a non-multiple of 4 destroys them, and
even a fresh encode of a bright or saturated image reads back with a few wrong bits. So the decision
is by Hamming distance to the known message, and the distance is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from detection.signals.base import NEUTRAL, Signal, open_untrusted

NAME = "watermark"

# A generator's own mark is strong evidence; the value sits at the combiner's clip.
WEIGHT = 1.0
FOUND = 0.99

# The package's defaults for dwtDct: only the U channel carries the mark, quantisation step 36,
# 4 x 4 blocks of the DWT approximation band (imwatermark/maxDct.py, EmbedMaxDct(scales=[0, 36, 36], block=4)).
SCALE = 36.0
BLOCK = 4
# Blocks the soft decoder reads: 2048 gives 15 votes per bit of the 136-bit message (43 for SDXL); marked
# test images read back 0-3 bits off from them; a 1024 x 768 image has 12,288.
MAX_BLOCKS = 2048
# The package refuses images under 256 x 256 pixels (imwatermark/watermark.py).
MIN_PIXELS = 256 * 256
# Bigger images are not decoded: generators write these marks at their output size (at most about
# 2048 x 2048) and the mark does not survive a resize, so a larger file cannot carry an intact one.
MAX_PIXELS = 4096 * 4096

SD_V1_MESSAGE = b"StableDiffusionV1"
# diffusers/pipelines/stable_diffusion_xl/watermark.py: WATERMARK_MESSAGE.
SDXL_MESSAGE_INT = 0b101100111110110010010000011110111011000110011110


@dataclass(frozen=True)
class KnownMark:
    name: str
    generator: str
    bits: np.ndarray
    max_distance: int  # Hamming distance at or below which the mark counts as present
    # (channel order handed to the encoder as "BGR", pixel domain) pairs that writers of this mark use
    variants: tuple[tuple[str, str], ...]


def _bits_of_bytes(message: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(message, dtype=np.uint8)).astype(np.uint8)


def _bits_of_int(message: int) -> np.ndarray:
    return np.array([int(bit) for bit in bin(message)[2:]], dtype=np.uint8)


# Thresholds: a string of n fair random bits lands within d bits of a fixed message with probability
# sum_{i<=d} C(n, i) / 2^n: 136 bits within 24 → 4.3e-15; 48 bits within 5 → 6.8e-9. Fresh encodes
# of generated scenes read back 0-3 bits off with the soft decoder; unmarked images read 50-75 (136)
# and 19-29 (48) off. Real images do not decode to random bits (flat areas read as 0s),
# so the tests also check unmarked photos and flat images.
KNOWN_MARKS: tuple[KnownMark, ...] = (
    # CompVis txt2img.py converts RGB to BGR and encodes uint8.
    KnownMark(
        "StableDiffusionV1",
        "Stable Diffusion v1 (CompVis reference scripts)",
        _bits_of_bytes(SD_V1_MESSAGE),
        24,
        (("BGR", "uint8"),),
    ),
    # diffusers hands RGB float32 to the encoder as if it were BGR; Stability's generative-models
    # flips to BGR first; both in float. A uint8 encode is how third-party tools re-apply it.
    KnownMark(
        "SDXL",
        "Stable Diffusion XL",
        _bits_of_int(SDXL_MESSAGE_INT),
        5,
        (("RGB", "float"), ("BGR", "float"), ("BGR", "uint8")),
    ),
)

NOTHING_FOUND = (
    "No known invisible watermark (Stable Diffusion v1 / SDXL) was found; most generators write none "
    "and re-encoding removes them, so absence proves nothing"
)


def decode_bits(bgr: np.ndarray, length: int, domain: str = "uint8", soft: bool = True) -> np.ndarray:
    """Decode `length` bits from a BGR uint8 image written by ``WatermarkEncoder(...).encode(img, 'dwtDct')``.

    `domain` is the pixel type the encoder was handed: "uint8" (the CompVis scripts) or "float"
    (diffusers and Stability's generative-models pass float32 in 0..255, so OpenCV's YUV has its
    chroma centred on 0.5 instead of 128, and the quantisation happened around that centre).

    With ``soft=False`` this is the package's own decoder (hard bit per block, majority per bit).
    The default soft decoder reads the same embedding better: the encoder moves a block's largest
    coefficient to residue 9 (bit 0) or 27 (bit 1) modulo 36, so each block votes
    ``-sin(2 pi r / 36)`` (+1 at 27, -1 at 9, 0 half-way), weighted by how clearly that coefficient
    is the largest (the encoder can lower it below its neighbour, and then the decoder reads a
    coefficient that was never set). Fresh encodes that the hard decoder reads 10-50 bits off come
    back 0-3 bits off (tests/detection/test_watermark_signal.py).
    """
    votes, offset = block_votes(bgr, domain, soft)
    return bits_from_votes(votes, offset, length, soft)


def block_votes(bgr: np.ndarray, domain: str = "uint8", soft: bool = True) -> tuple[np.ndarray, int]:
    """Each block's vote, and the number of the first block read (votes do not depend on the message length)."""
    rows, cols = bgr.shape[0] // 4 * 4, bgr.shape[1] // 4 * 4
    # Block (i, j) of the DWT band covers pixel rows 8i..8i+7 and carries bit (i * bcols + j) % length.
    # The soft decoder needs far fewer votes than a large image holds, so it reads a band of whole
    # block rows from the middle (at most MAX_BLOCKS blocks) and keeps the numbering.
    bcols_full = (cols // 2) // BLOCK
    first_row = 0
    if soft and bcols_full:
        brows_full = (rows // 2) // BLOCK
        keep = min(brows_full, max(1, MAX_BLOCKS // bcols_full))
        first_row = (brows_full - keep) // 2
        rows = min(rows, (first_row + keep) * 2 * BLOCK)
        source = np.ascontiguousarray(bgr[first_row * 2 * BLOCK : rows, :cols])
    else:
        source = np.ascontiguousarray(bgr[:rows, :cols])
    if domain == "float":
        source = source.astype(np.float32)
    elif domain != "uint8":
        raise ValueError(f"domain must be 'uint8' or 'float', got {domain!r}")
    channel = cv2.cvtColor(source, cv2.COLOR_BGR2YUV)[:, :, 1].astype(np.float32)
    # Haar DWT, approximation band: (a + b + c + d) / 2 over each 2 x 2 square.
    approx = (channel[0::2, 0::2] + channel[0::2, 1::2] + channel[1::2, 0::2] + channel[1::2, 1::2]) / 2.0
    brows, bcols = approx.shape[0] // BLOCK, approx.shape[1] // BLOCK
    blocks = (
        approx[: brows * BLOCK, : bcols * BLOCK]
        .reshape(brows, BLOCK, bcols, BLOCK)
        .transpose(0, 2, 1, 3)
        .reshape(brows * bcols, BLOCK * BLOCK)
    )
    magnitudes = np.abs(blocks[:, 1:])  # the DC term is never used
    rows_index = np.arange(len(magnitudes))
    if soft:
        top = magnitudes.argmax(axis=1)
        strongest = magnitudes[rows_index, top]
        magnitudes[rows_index, top] = -1.0
        runner_up = magnitudes.max(axis=1)
        votes = -np.sin(2.0 * np.pi * np.mod(strongest, SCALE) / SCALE)
        votes *= np.clip((strongest - runner_up) / (0.25 * SCALE), 0.0, 1.0)
    else:
        strongest = magnitudes[rows_index, magnitudes.argmax(axis=1)]
        votes = (np.mod(strongest, SCALE) > 0.5 * SCALE).astype(np.float64) - 0.5
    return votes, first_row * bcols


def bits_from_votes(votes: np.ndarray, offset: int, length: int, soft: bool = True) -> np.ndarray:
    # Block number n carries bit n % length, blocks numbered row by row.
    index = (np.arange(len(votes)) + offset) % length
    if soft:
        return (np.bincount(index, weights=votes, minlength=length) > 0).astype(np.uint8)
    counts = np.bincount(index, minlength=length)
    means = np.divide(
        np.bincount(index, weights=votes + 0.5, minlength=length), counts, out=np.zeros(length), where=counts > 0
    )
    return (means * 255 > 127).astype(np.uint8)


def watermark_signal(data: bytes, image: Image.Image | None = None) -> Signal:
    """Look for the Stable Diffusion v1 and SDXL invisible watermarks. Never raises on odd input."""
    try:
        opened_here = image is None
        if image is None:
            image = open_untrusted(data)
        try:
            return _read(image)
        finally:
            if opened_here:
                image.close()
    except Exception as exc:  # Pillow / OpenCV on hostile input; the signal reports and stays neutral.
        return Signal(
            NAME,
            NEUTRAL,
            WEIGHT,
            {"summary": f"The image could not be checked for watermarks ({type(exc).__name__})", "marks": []},
        )


def _read(image: Image.Image) -> Signal:
    width, height = image.size
    if width * height < MIN_PIXELS:
        return _neutral(f"The image ({width} x {height}) is too small to carry these watermarks", [])
    if width * height > MAX_PIXELS:
        return _neutral(
            f"The image ({width} x {height}) is larger than any generator writes these watermarks at; not checked",
            [],
        )
    rgb = np.asarray(image.convert("RGB"))
    orders = {"BGR": rgb[:, :, ::-1], "RGB": rgb}
    results: list[dict[str, Any]] = []
    votes: dict[tuple[str, str], tuple[np.ndarray, int]] = {}  # SD v1 and SDXL share the BGR/uint8 read
    for mark in KNOWN_MARKS:
        best: tuple[int, str] | None = None
        for order, domain in mark.variants:
            if (order, domain) not in votes:
                votes[(order, domain)] = block_votes(orders[order], domain)
            bits = bits_from_votes(*votes[(order, domain)], len(mark.bits))
            distance = int(np.count_nonzero(bits != mark.bits))
            if best is None or distance < best[0]:
                best = (distance, f"{order}/{domain}")
            if distance <= mark.max_distance:
                break
        assert best is not None
        results.append(
            {
                "mark": mark.name,
                "generator": mark.generator,
                "bits": len(mark.bits),
                "distance": best[0],
                "max_distance": mark.max_distance,
                "variant": best[1],
                "found": best[0] <= mark.max_distance,
            }
        )
    found = [result for result in results if result["found"]]
    if not found:
        closest = ", ".join(f"{r['mark']} {r['distance']}/{r['bits']} bits off" for r in results)
        return _neutral(f"{NOTHING_FOUND} (closest: {closest})", results)
    best_mark = min(found, key=lambda result: result["distance"] / result["bits"])
    summary = (
        f"The invisible watermark of {best_mark['generator']} ('{best_mark['mark']}') is present: "
        f"{best_mark['distance']} of {best_mark['bits']} bits differ from the known message "
        f"(a match needs at most {best_mark['max_distance']})"
    )
    return Signal(
        NAME,
        FOUND,
        WEIGHT,
        {"summary": summary, "mark": best_mark["mark"], "distance": best_mark["distance"], "marks": results},
    )


def _neutral(summary: str, results: list[dict[str, Any]]) -> Signal:
    return Signal(NAME, NEUTRAL, WEIGHT, {"summary": summary, "marks": results})
